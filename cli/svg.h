// SVG plots, shared by the commands that draw (profile, lens): axis ticks, escaping, the document's frame,
// and writing FILE.svg as it is or FILE.png rendered by rsvg-convert.
#pragma once
#include <string>
#include <vector>

namespace strata::cli::svg {

std::vector<double> ticks(double lo, double hi, int want = 5);  // "nice" ticks covering [lo, hi]
std::vector<double> log_ticks(double lo, double hi);  // 1, 2, 5 times powers of ten in [lo, hi], lo > 0
std::string tick_label(double t, double span);        // values within rounding of zero print as 0
std::string escape(const std::string& s);             // text for an SVG text node or attribute
std::string num(const char* format, double v);        // printf of one number
// The document's start (white background, sans-serif 12) for width x height pixels, and its end.
std::string begin(double width, double height);
inline const char* end() { return "</svg>\n"; }

// Writes the plot to path by its extension: .svg as it is, .png rendered by rsvg-convert (Debian package
// librsvg2-bin; a clear error where it is missing). Anything else is an error naming both.
void write_plot(const std::string& path, const std::string& svg);
// Throws unless path ends in .svg or .png (to check before the work that makes the plot).
void check_plot_path(const std::string& path);

}  // namespace strata::cli::svg
