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
    // Progress: units done of total (chunks and speed runs over every spec), and what runs now; each finished row.
    std::function<void(int done, int total, const std::string& what)> on_progress;
    std::function<void(const ProfileRow&)> on_row;
};

// Runs "base" first (added when absent: KL needs it), then every other spec, over the same model mapping.
// Every spec is parsed before anything runs, so a bad one fails at once.
std::vector<ProfileRow> run_profile(const std::shared_ptr<const Model>& model, const std::vector<int32_t>& tokens,
                                    std::vector<std::string> specs, const ProfileOptions& o);

}  // namespace strata
