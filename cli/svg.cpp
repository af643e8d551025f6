#include "cli/svg.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

extern char** environ;

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

namespace {

void write_file(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
    out.close();
    if (!out) throw std::runtime_error("cannot write " + path);
}

bool ends_with(const std::string& s, const char* suffix) {
    const size_t n = std::strlen(suffix);
    if (s.size() < n) return false;
    for (size_t i = 0; i < n; ++i)
        if (std::tolower(static_cast<unsigned char>(s[s.size() - n + i])) != suffix[i]) return false;
    return true;
}

}  // namespace

void check_plot_path(const std::string& path) {
    if (!ends_with(path, ".svg") && !ends_with(path, ".png"))
        throw std::invalid_argument("plot file '" + path + "': give a name ending in .svg or .png");
}

void write_plot(const std::string& path, const std::string& svg) {
    check_plot_path(path);
    if (ends_with(path, ".svg")) return write_file(path, svg);
    // rsvg-convert draws the same SVG (text through the system's fonts), so both files show the same picture.
    const std::string name = "strata-plot-" + std::to_string(::getpid()) + ".svg";
    const std::string tmp = (std::filesystem::temp_directory_path() / name).string();
    write_file(tmp, svg);
    const char* argv[] = {"rsvg-convert", "-o", path.c_str(), tmp.c_str(), nullptr};
    pid_t pid = 0;
    const int err =
        posix_spawnp(&pid, "rsvg-convert", nullptr, nullptr, const_cast<char* const*>(argv), environ);
    int status = 0;
    if (err == 0) waitpid(pid, &status, 0);
    std::filesystem::remove(tmp);
    if (err == ENOENT)
        throw std::runtime_error("--plot " + path +
                                 " needs rsvg-convert to render PNG (Debian/Ubuntu package librsvg2-bin), "
                                 "or give a .svg file name");
    if (err != 0) throw std::runtime_error("cannot run rsvg-convert: " + std::string(std::strerror(err)));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        throw std::runtime_error("rsvg-convert failed to write " + path);
}

}  // namespace strata::cli::svg
