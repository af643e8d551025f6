// Perplexity over a text, llama.cpp's way; writing a run's next-token distributions as a llama.cpp KL-divergence
// base, and scoring a run against one (full KL, llama.cpp's statistics). Used by `strata perplexity`,
// `strata profile` and `strata layers`.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "core/analysis/kl_divergence.h"
#include "core/analysis/logits_file.h"
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
// (llama.cpp's own minimum for a text; min_chunks = 1 for the tokens of a base file, which llama.cpp scores
// whatever their count) or n_ctx < 8.
int perplexity_chunks(const Model& model, size_t n_tokens, const PerplexityOptions& o, int min_chunks = 2);

struct PerplexityResult {
    double ppl = 0, ppl_err = 0;  // exp(mean NLL) and llama.cpp's estimate: ppl * sqrt(var(NLL) / (count - 1))
    double mean_nll = 0;
    int64_t count = 0;            // scored tokens
    int n_chunks = 0;
    // Against a base (PerplexityHooks::kl_base): llama.cpp's statistics, and the two headline numbers again.
    bool has_kl = false;
    KlStatistics kl;
    double kl_mean = 0, kl_err = 0;  // llama.cpp's "Mean KLD" (nats) and its standard error
    double top1_agree = 0;           // llama.cpp's "Same top p": the argmax equals the base's, a fraction
    double eval_seconds = 0;         // time in Forward::eval
    int64_t tokens_evaluated = 0;
};

struct PerplexityHooks {
    // Score against this llama.cpp base, read chunk by chunk from its first record on: its vocabulary must be
    // the model's, its context o.n_ctx, its tokens the ones given, and it must hold the chunks scored.
    LogitsFileReader* kl_base = nullptr;
    // Write this run's log-probs as a llama.cpp base here (the header, then chunk by chunk).
    std::string save_base;
    // After each chunk: chunks done, of how many, the running perplexity.
    std::function<void(int done, int total, double running_ppl)> on_chunk;
    // With kl_base, after each chunk: llama.cpp's running figures (no order statistics).
    std::function<void(int done, const KlStatistics& running)> on_kl_chunk;
    // Before each chunk is evaluated (e.g. to reset captured hidden states); chunk index and its tokens.
    std::function<void(int chunk, std::span<const int32_t> tokens)> before_chunk;
};

// fwd's context must hold o.n_ctx tokens. The KV cache is reused from position 0 for every chunk.
PerplexityResult perplexity(Forward& fwd, std::span<const int32_t> tokens, const PerplexityOptions& o,
                            const PerplexityHooks& hooks = {});

}  // namespace strata
