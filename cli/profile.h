// strata profile: every layer spec over one mapping of the model — quality (PPL, KL and top-1 agreement vs
// the base), size (steps, virtual parameters, unique weight bytes, KV bytes) and speed — as a table, CSV,
// JSON and an SVG plot. Also used by `strata layers --verify`.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "cli/common.h"
#include "core/perplexity.h"

namespace strata::cli {

std::string read_text_file(const std::string& path);  // clear errors for unreadable and empty files

struct ProfileRow {
    std::string spec;  // "base" for the identity plan
    int steps = 0;
    double virtual_params = 0, unique_weight_bytes = 0, kv_bytes = 0;
    PerplexityResult ppl;
    double delta_ppl = 0;
    double prompt_tps = 0, gen_tps = 0;
    double peak_rss_bytes = 0;
};

struct ProfileOptions {
    PerplexityOptions ppl;
    ForwardOptions fwd;  // n_ctx and max_batch are raised to the perplexity context
    int n_gen = 32;      // tokens decoded one at a time for the generation speed
    bool progress = true;
};

// Runs "base" first (added when absent: KL needs it), then every other spec, over the same model mapping.
std::vector<ProfileRow> run_profile(const std::shared_ptr<const Model>& model, const std::vector<int32_t>& tokens,
                                    std::vector<std::string> specs, const ProfileOptions& o);

void print_profile_markdown(const std::vector<ProfileRow>& rows);
// DIR/profile.csv, DIR/profile.json, DIR/profile.svg (DIR created when missing).
void write_profile_files(const std::string& dir, const Model& model, const std::vector<ProfileRow>& rows,
                         const ProfileOptions& o);
std::string profile_svg(const std::vector<ProfileRow>& rows, const std::string& title);

}  // namespace strata::cli
