// Perplexity over a text, llama.cpp's way, and KL divergence of a variant's next-token distributions
// against saved base-model ones. Used by `strata perplexity`, `strata profile` and `strata layers`.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "core/engine/forward.h"
#include "core/engine/model.h"

namespace strata {

// The whole text tokenized as llama.cpp's perplexity tool does: special tokens added as the vocab says
// (BOS when tokenizer.ggml.add_bos_token), special-token text not parsed.
std::vector<int32_t> tokenize_text(const Model& model, const std::string& text);

struct PerplexityOptions {
    int n_ctx = 512;     // tokens per chunk
    int max_chunks = 0;  // 0: every whole chunk the text holds
};

// How llama.cpp splits: chunks of n_ctx consecutive tokens (a partial tail is dropped); when the vocab adds
// BOS, each chunk's first token is *replaced* by BOS; the logits at chunk positions [n_ctx/2, n_ctx-1) score the
// tokens after them, so n_ctx - n_ctx/2 - 1 tokens per chunk. Throws when the text holds fewer than 2 chunks
// (llama.cpp's own minimum) or n_ctx < 8.
int perplexity_chunks(const Model& model, size_t n_tokens, const PerplexityOptions& o);

// The base model's next-token distributions at every scored token, kept compactly: its top-k token ids and
// their log-probabilities (log-softmax over the whole vocab, i.e. the logsumexp is folded in). KL against it
// lumps every token outside the base's top k into one "rest" bucket: exact when the variant equals the base,
// otherwise a lower bound of the full KL (log-sum inequality) that is tight once the top k hold nearly all of
// the base's mass (k = 32 keeps > 0.99 of it on typical text). A file of these: 8 bytes * k per scored token.
struct BaseLogits {
    int n_vocab = 0, n_ctx = 0, n_chunks = 0, top_k = 0;
    uint64_t tokens_hash = 0;        // FNV-1a of the evaluated tokens: a variant must score the same text
    std::vector<int32_t> top_ids;    // (n_scored, top_k), most probable first
    std::vector<float> top_logp;     // (n_scored, top_k)
    size_t n_scored() const { return top_k ? top_ids.size() / static_cast<size_t>(top_k) : 0; }
};
void save_base_logits(const std::string& path, const BaseLogits& b);
BaseLogits load_base_logits(const std::string& path);
uint64_t hash_tokens(std::span<const int32_t> tokens);

struct PerplexityResult {
    double ppl = 0, ppl_err = 0;  // exp(mean NLL) and llama.cpp's estimate: ppl * sqrt(var(NLL) / (count - 1))
    double mean_nll = 0;
    int64_t count = 0;            // scored tokens
    int n_chunks = 0;
    bool has_kl = false;
    double kl_mean = 0, kl_err = 0;  // nats; err = sqrt(var / (count - 1))
    double top1_agree = 0;           // fraction of scored tokens whose argmax equals the base's
    double eval_seconds = 0;         // time in Forward::eval
    int64_t tokens_evaluated = 0;
};

struct PerplexityHooks {
    const BaseLogits* kl_base = nullptr;  // compare against these
    BaseLogits* save = nullptr;           // record this model's distributions (top_k set by the caller)
    // After each chunk: chunks done, of how many, the running perplexity.
    std::function<void(int done, int total, double running_ppl)> on_chunk;
    // Before each chunk is evaluated (e.g. to reset captured hidden states); chunk index and its tokens.
    std::function<void(int chunk, std::span<const int32_t> tokens)> before_chunk;
};

// fwd's context must hold o.n_ctx tokens. The KV cache is reused from position 0 for every chunk.
PerplexityResult perplexity(Forward& fwd, std::span<const int32_t> tokens, const PerplexityOptions& o,
                            const PerplexityHooks& hooks = {});

}  // namespace strata
