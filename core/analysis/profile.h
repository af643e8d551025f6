// Profiling layer specs over one mapping of a model: quality (PPL, KL and top-1 agreement against the base),
// size (steps, virtual parameters, unique weight bytes, KV bytes) and speed, one row per spec. Drives
// `strata profile` and `strata layers --verify`; the front ends print and plot the rows.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/analysis/perplexity.h"

namespace strata {

struct ProfileRow {
    std::string spec;  // "base" for the identity plan
    int steps = 0;
    double virtual_params = 0, unique_weight_bytes = 0, kv_bytes = 0;
    PerplexityResult ppl;
    double delta_ppl = 0;
    double prompt_tps = 0, gen_tps = 0;
    double peak_rss_bytes = 0;
    // With ProfileOptions::draft_max: this spec as a self-speculative draft of the base (greedy, same output).
    bool has_draft = false;
    double greedy_tps = 0;         // greedy decode speed: plain for the base row, speculative for the others
    double draft_acceptance = 0;   // drafted tokens the base kept
    double draft_mean_accepted = 0;  // per verify round
    double draft_speedup = 0;      // greedy_tps / the base row's greedy_tps
};

struct ProfileOptions {
    PerplexityOptions ppl;
    ForwardOptions fwd;  // n_ctx and max_batch are raised to the perplexity context
    int n_gen = 32;      // tokens decoded one at a time for the generation speed
    int draft_max = 0;      // > 0: also try every spec as a self-speculative draft of the base
    int draft_tokens = 128;  // tokens generated greedily for that, from the text's first tokens
    // KL divergence against a base in llama.cpp's format (core/analysis/logits_file.h), streamed chunk by chunk:
    //  - kl_base_in: every spec, "base" too, is scored against this file (made by llama.cpp or strata, e.g. from
    //    a higher-precision model). The tokens passed must be its tokens (LogitsFileReader::tokens) and ppl.n_ctx
    //    its context.
    //  - otherwise the "base" row writes its log-probs to kl_base_out and every other spec is scored against
    //    them; kl_base_out empty: a temporary file in scratch_dir (empty: the system's temp directory), removed
    //    at the end. It takes 2 bytes per vocabulary entry per scored token (Gemma 3, 262k vocab: 0.5 MB per
    //    token, 134 MB per chunk of 512); run_profile checks the space first.
    std::string kl_base_in, kl_base_out, scratch_dir;
    // Progress: units done of total (chunks and speed runs over every spec), and what runs now; each finished row.
    std::function<void(int done, int total, const std::string& what)> on_progress;
    std::function<void(const ProfileRow&)> on_row;
};

// Runs "base" first (added when absent: KL needs it), then every other spec, over the same model mapping.
// Every spec is parsed before anything runs, so a bad one fails at once. KL and top-1 agreement are llama.cpp's
// "Mean KLD" and "Same top p" (full KL: core/analysis/kl_divergence.h); the base row's own are 0 and 1 by
// definition unless it is scored against kl_base_in.
std::vector<ProfileRow> run_profile(const std::shared_ptr<const Model>& model, const std::vector<int32_t>& tokens,
                                    std::vector<std::string> specs, const ProfileOptions& o);

}  // namespace strata
