#include "cli/svg.h"

#include <cmath>
#include <cstdio>
#include <sstream>

namespace strata::cli::svg {

std::string num(const char* format, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, format, v);
    return buf;
}

std::vector<double> ticks(double lo, double hi, int want) {
    const double span = hi - lo > 0 ? hi - lo : 1;
    const double raw = span / want, mag = std::pow(10, std::floor(std::log10(raw)));
    const double step = raw / mag < 1.5 ? mag : raw / mag < 3 ? 2 * mag : raw / mag < 7 ? 5 * mag : 10 * mag;
    std::vector<double> t;
    for (double v = std::ceil(lo / step) * step; v <= hi + 1e-9 * span; v += step) t.push_back(v);
    return t;
}

std::vector<double> log_ticks(double lo, double hi) {
    std::vector<double> t;
    for (double d = std::pow(10, std::floor(std::log10(lo))); d <= hi; d *= 10)
        for (double m : {1.0, 2.0, 5.0})
            if (m * d >= lo && m * d <= hi) t.push_back(m * d);
    return t.size() >= 2 ? t : std::vector<double>{lo, hi};
}

std::string tick_label(double t, double span) { return num("%g", std::abs(t) < 1e-9 * span ? 0.0 : t); }

std::string escape(const std::string& s) {
    std::string o;
    for (char c : s) {
        if (c == '<') o += "&lt;";
        else if (c == '>') o += "&gt;";
        else if (c == '&') o += "&amp;";
        else if (c == '"') o += "&quot;";
        else if (c == '\'') o += "&apos;";
        else o += c;
    }
    return o;
}

std::string begin(double width, double height) {
    std::ostringstream s;
    s << "<?xml version='1.0' encoding='UTF-8'?>\n<svg xmlns='http://www.w3.org/2000/svg' width='" << width
      << "' height='" << height << "' viewBox='0 0 " << width << " " << height
      << "' font-family='sans-serif' font-size='12'>\n<rect width='100%' height='100%' fill='white'/>\n";
    return s.str();
}

}  // namespace strata::cli::svg
