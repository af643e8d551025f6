// SVG plots, shared by the commands that draw: axis ticks, escaping, the document's frame.
#pragma once
#include <string>
#include <vector>

namespace strata::cli::svg {

std::vector<double> ticks(double lo, double hi, int want = 5);  // "nice" ticks covering [lo, hi]
std::vector<double> log_ticks(double lo, double hi);            // 1, 2, 5 times powers of ten in [lo, hi], lo > 0
std::string tick_label(double t, double span);                  // values within rounding of zero print as 0
std::string escape(const std::string& s);                       // text for an SVG text node or attribute
std::string num(const char* format, double v);                  // printf of one number
// The document's start (white background, sans-serif 12) for width x height pixels, and its end.
std::string begin(double width, double height);
inline const char* end() { return "</svg>\n"; }

}  // namespace strata::cli::svg
