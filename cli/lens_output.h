// strata lens's output: core/analysis/lens's report as a Markdown table, CSV and an SVG heat map (the JSON
// comes from core, shared with the C API).
#pragma once
#include <string>
#include <string_view>

#include "core/analysis/lens.h"

namespace strata::cli {

// A token's text made visible for tables and plots: a space as ␣, a newline as ↵, a tab as ⇥, other control
// bytes and bytes that are not UTF-8 as \xNN. max_chars > 0: cut to that many characters, … marking the cut.
std::string visible_token(std::string_view piece, int max_chars = 0);

// A plan's name in the output: its layer spec, or "base" for the identity plan.
inline std::string spec_name(const std::string& spec) {
    return spec.empty() ? "base" : spec;
}

// reference (may be null): the --compare run, whose final output fills the "KL to <ref>" column and whose own
// rows follow.
std::string lens_markdown(const Model& model, const LensReport& r, const LensReport* reference);
std::string lens_csv(const Model& model, const LensReport& r, const LensReport* reference);
// The heat map (steps by positions: the lens's top-1 token, coloured by its probability) beside a panel of
// the mean KL to the final output per step (the reference's curves too where given).
std::string lens_svg(const Model& model, const LensReport& r, const LensReport* reference);

}  // namespace strata::cli
