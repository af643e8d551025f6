// strata profile's output: core/analysis/profile's rows as a table, CSV, JSON and an SVG plot. Also used by
// `strata layers --verify`.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "cli/common.h"
#include "core/analysis/profile.h"

namespace strata::cli {

std::string read_text_file(const std::string& path);  // clear errors for unreadable and empty files

// A progress bar on stderr (a terminal only) and one line per finished spec, through o's callbacks.
void attach_progress(ProfileOptions& o, bool enabled);

void print_profile_markdown(const std::vector<ProfileRow>& rows);
// DIR/profile.csv, DIR/profile.json, DIR/profile.svg (DIR created when missing).
void write_profile_files(const std::string& dir, const Model& model, const std::vector<ProfileRow>& rows,
                         const ProfileOptions& o);
std::string profile_svg(const std::vector<ProfileRow>& rows, const std::string& title);

}  // namespace strata::cli
