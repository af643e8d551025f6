// strata_llm._strata.Model: a model file (from the process's registry), the plan a layer spec makes of it,
// and one Forward with its KV cache, for eval() and generate(). strata_llm.Model (python/strata_llm/model.py)
// is the Python face over it.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/engine/forward.h"
#include "core/engine/plan.h"
#include "python/src/binding.h"

namespace strata::python {

class ModelHandle {
  public:
    ModelHandle(const std::string& path, const std::string& tokenizer_path, const std::string& layer_spec,
                const ForwardOptions& fopts);

    const std::shared_ptr<const Model>& model() const { return model_; }
    const Plan& plan() const { return fwd_->plan(); }
    const ForwardOptions& forward_options() const { return fopts_; }
    int n_ctx() const { return fwd_->n_ctx(); }
    int n_threads() const { return fwd_->n_threads(); }
    size_t kv_bytes() const { return fwd_->kv_cache().bytes(); }

    // The prompt of a text as `strata run` tokenizes it: special tokens added as the vocabulary says and
    // special-token text parsed; an empty result starts from BOS.
    std::vector<int32_t> prompt_tokens(const std::string& text) const;

    // Evaluates tokens after those the cache holds, one batch at a time with the GIL released, checking for
    // Ctrl-C between batches. The logits of the last token are then what logits_data() points at.
    void eval(const std::vector<int32_t>& tokens);
    // The last eval()'s logits (vocab floats inside the Forward's buffer), or null before an eval and after
    // anything else that moved the cache (generate, reset).
    const float* logits_data() const { return logits_; }

    // Completes `prompt` (reusing the longest prefix the cache already holds, exactly as a fresh run would
    // compute it: the forward pass is batch-invariant), calling on_piece(str) with each UTF-8-complete piece
    // as it comes, with the GIL held only for that call. Returns the generation's statistics.
    nb::dict generate(const std::vector<int32_t>& prompt, const SamplerParams& sp, int max_tokens,
                      bool ignore_eos, nb::object on_piece);
    // Thread- and signal-safe: the generation in progress stops before its next token (or prompt batch).
    void abort() noexcept { abort_.store(true, std::memory_order_relaxed); }

    void reset();                         // forget the cache's tokens (the next eval starts at position 0)
    std::vector<int32_t> tokens() const;  // the tokens whose keys and values the cache holds

  private:
    void check_tokens(const std::vector<int32_t>& tokens, size_t pos) const;

    std::shared_ptr<const Model> model_;
    ForwardOptions fopts_;
    std::unique_ptr<Forward> fwd_;
    // Guards the Forward and the fields below: engine calls run with the GIL released, so two Python threads
    // may call in at once. Taken only after the GIL is released (never wait for it holding the GIL).
    mutable std::mutex mu_;
    std::vector<int32_t> cached_;  // tokens at cache positions 0..size-1
    const float* logits_ = nullptr;
    std::atomic<bool> abort_{false};
};

}  // namespace strata::python
