// strata profile's output: core/analysis/profile's rows as a table, CSV, JSON and an SVG plot. Also used by
// `strata layers --verify`.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/common.h"
#include "core/analysis/profile.h"

namespace strata::cli {

std::string read_text_file(const std::string& path);  // clear errors for unreadable and empty files

// --kl-divergence-base FILE [--kl-divergence], llama-perplexity's flags (perplexity, profile, layers).
struct KlBaseOptions {
    std::string file;
    bool score = false;  // read FILE and score against it; otherwise FILE is written
};
void add_kl_base_options(CLI::App& sub, KlBaseOptions& o);
// With --kl-divergence: the base opened (its header and tokens read and checked) and its context, which
// becomes the run's; model.n_ctx is raised to it, and an explicit smaller -c is an error. Without: nothing
// opened, and `text` (-f) must be given.
struct KlBaseInput {
    std::optional<LogitsFileReader> reader;
    int n_ctx = 0;
};
KlBaseInput open_kl_base(const CLI::App& sub, const KlBaseOptions& o, ModelOptions& model, const std::string& text);
// The run's context once the model is loaded: -c, or the model's for -c 0, and at least the base's.
int kl_run_context(const Model& model, int n_ctx, const KlBaseInput& in);
// The profile's base: read from the file (--kl-divergence), written to it, or (no file) a temporary one.
void set_kl_base(ProfileOptions& po, const KlBaseOptions& kl, const KlBaseInput& in);

// A progress bar on stderr (a terminal only) and one line per finished spec, through o's callbacks.
void attach_progress(ProfileOptions& o, bool enabled);

void print_profile_markdown(const std::vector<ProfileRow>& rows);
// DIR/profile.csv, DIR/profile.json, DIR/profile.svg (DIR created when missing).
void write_profile_files(const std::string& dir, const Model& model, const std::vector<ProfileRow>& rows,
                         const ProfileOptions& o);
std::string profile_svg(const std::vector<ProfileRow>& rows, const std::string& title);

}  // namespace strata::cli
