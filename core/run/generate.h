// Prompt -> tokens -> text: the evaluation loop shared by `run`, chat sessions and benchmarks.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "core/engine/forward.h"
#include "core/engine/sampler.h"

namespace strata {

struct GenerationStats {
    int prompt_tokens = 0;
    double prompt_seconds = 0;
    int generated_tokens = 0;
    int decode_evals = 0;          // single-token forward passes (generated_tokens - 1 at most)
    double generate_seconds = 0;
    bool stopped_by_eog = false;
    bool aborted = false;          // GenerateOptions::abort was raised
    double prompt_tps() const { return prompt_seconds > 0 ? prompt_tokens / prompt_seconds : 0; }
    double generate_tps() const { return generate_seconds > 0 ? decode_evals / generate_seconds : 0; }
};

// Called with each new token; return false to stop generating.
using TokenCallback = std::function<bool(int32_t token)>;

struct GenerateOptions {
    int max_new_tokens = 128;  // < 0: until end of generation or the context is full
    bool stop_at_eog = true;
    // Checked before each prompt batch and before sampling each token: once true, generation stops. Stopped
    // during the prompt, `pos` covers the batches already evaluated (the cache holds them) and nothing is returned.
    const std::atomic<bool>* abort = nullptr;
};

// Evaluates `prompt` at position `pos` (the cache holds [0, pos)), then samples up to max_new_tokens tokens,
// feeding each back. Returns the generated tokens; `pos` is advanced past everything evaluated.
// The last sampled token is not evaluated (it is returned; the next call's prompt should start with it), unless
// generation was aborted: `pos` always says how many of prompt + returned tokens the cache holds.
std::vector<int32_t> generate(Forward& fwd, Sampler& sampler, std::span<const int32_t> prompt, int& pos,
                              const GenerateOptions& opts, const TokenCallback& on_token, GenerationStats* stats);

}  // namespace strata
