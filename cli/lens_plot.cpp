// strata lens --plot: the heat map of the lens's top-1 token per (step, position), coloured by its
// probability, beside the mean KL to the final output per step.
#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <sstream>

#include "cli/lens_output.h"
#include "cli/svg.h"
#include "core/text/tokenizer.h"

namespace strata::cli {

namespace {

// A probability in [0, 1] as a colour from near-white to dark blue (ColorBrewer's Blues).
std::string prob_colour(double p) {
    static constexpr std::array<std::array<double, 3>, 5> stops = {
        {{247, 251, 255}, {198, 219, 239}, {107, 174, 214}, {33, 113, 181}, {8, 48, 107}}};
    const double t = std::clamp(p, 0.0, 1.0) * (stops.size() - 1);
    const size_t i = std::min(static_cast<size_t>(t), stops.size() - 2);
    const double f = t - static_cast<double>(i);
    char buf[16];
    std::snprintf(buf, sizeof buf, "#%02x%02x%02x",
                  static_cast<int>(std::lround(stops[i][0] * (1 - f) + stops[i + 1][0] * f)),
                  static_cast<int>(std::lround(stops[i][1] * (1 - f) + stops[i + 1][1] * f)),
                  static_cast<int>(std::lround(stops[i][2] * (1 - f) + stops[i + 1][2] * f)));
    return buf;
}

// "step 12 ← layer 8", with "(2nd)", "(3rd)", "(11th)", "(21st)" ... where the plan runs that layer again.
std::vector<std::string> row_labels(const LensReport& r) {
    std::map<int, int> seen;
    std::vector<std::string> out;
    for (const LensStep& s : r.steps) {
        const int k = ++seen[s.layer];
        std::string l = "step " + std::to_string(s.step) + " ← layer " + std::to_string(s.layer);
        if (k > 1) {
            const int d = k % 10;
            const char* suffix = k % 100 / 10 == 1 || d == 0 || d > 3 ? "th"
                                 : d == 1                             ? "st"
                                 : d == 2                             ? "nd"
                                                                      : "rd";
            l += " (" + std::to_string(k) + suffix + ")";
        }
        out.push_back(l);
    }
    return out;
}

struct Curve {
    std::vector<double> kl;  // per step
    std::string colour, label;
    bool dashed = false;
};

// The KL panel: one point per step at that step's row (row height rh from y0), x = KL in nats.
void kl_panel(std::ostringstream& s, const std::vector<Curve>& curves, double ox, double y0, double w,
              double rh, int rows) {
    double hi = 0;
    for (const Curve& c : curves)
        for (double v : c.kl) hi = std::max(hi, v);
    hi = hi > 0 ? hi * 1.05 : 1;
    const double h = rows * rh;
    auto X = [&](double v) { return ox + v / hi * w; };
    s << "<rect x='" << ox << "' y='" << y0 << "' width='" << w << "' height='" << h
      << "' fill='none' stroke='#444'/>\n";
    for (double t : svg::ticks(0, hi, 4)) {
        s << "<line x1='" << X(t) << "' y1='" << y0 << "' x2='" << X(t) << "' y2='" << y0 + h
          << "' stroke='#ddd'/><text x='" << X(t) << "' y='" << y0 + h + 15 << "' text-anchor='middle'>"
          << svg::tick_label(t, hi) << "</text>\n";
    }
    s << "<text x='" << ox + w / 2 << "' y='" << y0 + h + 32 << "' text-anchor='middle'>mean KL to the final "
      << "output (nats)</text>\n";
    double ly = y0 + h + 52;
    for (const Curve& c : curves) {
        s << "<polyline fill='none' stroke='" << c.colour << "' stroke-width='2'"
          << (c.dashed ? " stroke-dasharray='6,3'" : "") << " points='";
        for (size_t i = 0; i < c.kl.size(); ++i) s << X(c.kl[i]) << ',' << y0 + (i + 0.5) * rh << ' ';
        s << "'/>\n";
        for (size_t i = 0; i < c.kl.size(); ++i)
            s << "<circle cx='" << X(c.kl[i]) << "' cy='" << y0 + (i + 0.5) * rh << "' r='2.5' fill='"
              << c.colour << "'><title>step " << i << ": " << svg::num("%.4f", c.kl[i])
              << " nats</title></circle>\n";
        s << "<line x1='" << ox << "' y1='" << ly - 4 << "' x2='" << ox + 26 << "' y2='" << ly - 4
          << "' stroke='" << c.colour << "' stroke-width='2'" << (c.dashed ? " stroke-dasharray='6,3'" : "")
          << "/><text x='" << ox + 32 << "' y='" << ly << "'>" << svg::escape(c.label) << "</text>\n";
        ly += 17;
    }
}

// One heat-map row at y: its label, then a cell per position (top-1 token shaded by its probability, bold
// where it is the model's own prediction; the top-k and KL in the cell's tooltip).
void heat_row(std::ostringstream& s, const Tokenizer& tok, const LensStep& st, const std::string& label,
              double hx, double y, double cw, double rh) {
    s << "<text x='" << hx - 8 << "' y='" << y + rh - 5 << "' text-anchor='end' font-size='11'>"
      << svg::escape(label) << "</text>\n";
    for (size_t pi = 0; pi < st.cells.size(); ++pi) {
        const LensCell& c = st.cells[pi];
        const LensToken& t = c.top.front();
        const double x = hx + static_cast<double>(pi) * cw;
        std::string tip = label + ", position " + std::to_string(c.position) + ":";
        for (const LensToken& k : c.top)
            tip.append(" ")
                .append(visible_token(tok.token_to_piece(k.id)))
                .append(" ")
                .append(svg::num("%.3f", k.prob));
        tip += "; KL to the final output " + svg::num("%.3f", c.kl) + " nats";
        s << "<rect x='" << x << "' y='" << y << "' width='" << cw << "' height='" << rh << "' fill='"
          << prob_colour(t.prob) << "' stroke='white' stroke-width='0.5'><title>" << svg::escape(tip)
          << "</title></rect>\n<text x='" << x + cw / 2 << "' y='" << y + rh - 5
          << "' text-anchor='middle' font-size='10'" << (t.prob > 0.45 ? " fill='white'" : "")
          << (t.id == c.target ? " font-weight='bold'" : "") << ">"
          << svg::escape(visible_token(tok.token_to_piece(t.id), 8)) << "</text>\n";
    }
}

}  // namespace

std::string lens_svg(const Model& model, const LensReport& r, const LensReport* ref) {
    const Tokenizer& tok = model.tokenizer();
    const int S = static_cast<int>(r.steps.size()), P = static_cast<int>(r.positions.size());
    const int rows = std::max(S, ref ? static_cast<int>(ref->steps.size()) : 0);
    const std::vector<std::string> labels = row_labels(r);
    size_t longest = 0;
    for (const std::string& l : labels) longest = std::max(longest, l.size());
    const double cw = 66, rh = 18, label_w = 6.3 * static_cast<double>(longest) + 10, hx = label_w + 14,
                 hy = 130;
    // With a reference, its output row sits under the heat map, a row's height apart.
    const double heat_h = (S + (ref ? 2 : 0)) * rh, panel_w = 260;
    const double bar_w = 200, panel_x = hx + std::max(P * cw, bar_w) + 70;  // the colour bar under the map
    const double bottom = hy + std::max(heat_h + 40, rows * rh + 40 + 17 * (ref ? 3 : 1));
    std::vector<Curve> curves;
    curves.push_back({r.mean_kl(), "#1f77b4", spec_name(r.spec) + ": KL to its own output", false});
    if (ref) {  // the dashed curve last: where it equals the reference's (steps both plans share) it stays
                // visible
        curves.push_back({ref->mean_kl(), "#d62728",
                          spec_name(ref->spec) + " (step i on row i): KL to its own output", false});
        curves.push_back({r.mean_kl_reference(), "#ff7f0e",
                          spec_name(r.spec) + ": KL to " + spec_name(ref->spec) + " output", true});
    }
    size_t legend = 0;
    for (const Curve& c : curves) legend = std::max(legend, c.label.size());
    // At least as wide as the two lines of explanation under the title.
    const double W =
        std::max(600.0, panel_x + std::max(panel_w, 32 + 6.6 * static_cast<double>(legend)) + 24);
    const double H = bottom + 16;
    std::ostringstream s;
    s << svg::begin(W, H);
    const std::string name = model.config().name.empty() ? model.file().path : model.config().name;
    s << "<text x='14' y='24' font-size='15'>"
      << svg::escape("logit lens: " + name + ", layer spec " + spec_name(r.spec) +
                     (ref ? " (compared with " + spec_name(ref->spec) + ")" : ""))
      << "</text>\n<text x='14' y='43' fill='#444'>"
      << "each cell: the top-1 token of the final norm and output head applied after that step,</text>\n"
      << "<text x='14' y='59' fill='#444'>"
      << "shaded by its probability; bold: the model&apos;s own prediction at that position</text>\n";
    // Column heads: the input token at each position (the cell below predicts the token after it).
    for (int pi = 0; pi < P; ++pi) {
        const int pos = r.positions[static_cast<size_t>(pi)];
        const double cx = hx + (pi + 0.5) * cw;
        s << "<text transform='translate(" << cx << "," << hy - 8
          << ") rotate(-40)' font-size='11'><title>position " << pos << "</title>"
          << svg::escape(visible_token(tok.token_to_piece(r.tokens[static_cast<size_t>(pos)]), 12))
          << "</text>\n";
    }
    s << "<text x='" << hx - 8 << "' y='" << hy - 8
      << "' text-anchor='end' fill='#444'>input token →</text>\n";
    for (int si = 0; si < S; ++si)
        heat_row(s, tok, r.steps[static_cast<size_t>(si)], labels[static_cast<size_t>(si)], hx, hy + si * rh,
                 cw, rh);
    if (ref)
        heat_row(s, tok, ref->steps.back(), spec_name(ref->spec) + " output", hx, hy + (S + 1) * rh, cw, rh);
    // The colour scale, under the heat map.
    const double by = hy + heat_h + 16, bw = bar_w;
    for (int i = 0; i < 50; ++i)
        s << "<rect x='" << hx + bw * i / 50 << "' y='" << by << "' width='" << bw / 50 + 0.5
          << "' height='10' fill='" << prob_colour((i + 0.5) / 50) << "'/>\n";
    s << "<text x='" << hx << "' y='" << by + 24 << "'>0</text><text x='" << hx + bw << "' y='" << by + 24
      << "' text-anchor='end'>1</text><text x='" << hx + bw / 2 << "' y='" << by + 24
      << "' text-anchor='middle'>top-1 probability</text>\n";

    kl_panel(s, curves, panel_x, hy, panel_w, rh, rows);
    s << svg::end();
    return s.str();
}

}  // namespace strata::cli
