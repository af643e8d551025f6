#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/commands.h"
#include "cli/profile.h"
#include "cli/svg.h"
#include "core/engine/sysinfo.h"

namespace strata::cli {

using svg::escape, svg::log_ticks, svg::tick_label, svg::ticks;

namespace {

// Peak RSS per spec: reset the kernel's high-water mark (clear_refs 5) and drop this process's resident pages
// of the (read-only) weight mapping, so each spec faults in only the layers it runs. The page cache keeps the
// file, so this costs page-table work, not disk reads.
class ProgressBar {
public:
    ProgressBar(int total, bool enabled) : total_(total), enabled_(enabled), tty_(isatty(2)) {}
    void update(int done, int total, const std::string& what) {
        total_ = total;
        if (!enabled_ || !tty_) return;
        const int width = 30, fill = total_ ? width * done / total_ : width;
        std::fprintf(stderr, "\r[%s%s] %3d%% %-60.60s", std::string(static_cast<size_t>(fill), '#').c_str(),
                     std::string(static_cast<size_t>(width - fill), '.').c_str(), total_ ? 100 * done / total_ : 100,
                     what.c_str());
        std::fflush(stderr);
    }
    void line(const std::string& s) {  // a finished spec: a line of its own on any stderr
        if (!enabled_) return;
        if (tty_) std::fprintf(stderr, "\r%-100s\r", "");
        std::fprintf(stderr, "%s\n", s.c_str());
    }

private:
    int total_;
    bool enabled_, tty_;
};

std::string fmt(const char* f, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}

}  // namespace

void set_kl_base(ProfileOptions& po, const KlBaseOptions& kl, const KlBaseInput& in) {
    if (in.reader) po.kl_base_in = kl.file;
    else po.kl_base_out = kl.file;
}

void attach_progress(ProfileOptions& o, bool enabled) {
    if (!enabled) return;
    auto bar = std::make_shared<ProgressBar>(0, true);
    o.on_progress = [bar](int done, int total, const std::string& what) { bar->update(done, total, what); };
    o.on_row = [bar](const ProfileRow& r) {
        bar->line("profile: " + r.spec + "  PPL " + fmt("%.4f", r.ppl.ppl) + "  KL " + fmt("%.5f", r.ppl.kl_mean) +
                  "  top-1 " + fmt("%.1f%%", 100 * r.ppl.top1_agree));
    };
}

void print_profile_markdown(const std::vector<ProfileRow>& rows) {
    const bool draft = !rows.empty() && rows[0].has_draft;
    std::printf("| spec | steps | virtual params | unique weights | KV | PPL | ΔPPL | KL vs base | top-1 | pp tok/s | tg tok/s | "
                "peak RSS |%s\n",
                draft ? " draft acceptance | accepted per round | greedy tok/s | speed-up as draft |" : "");
    std::printf("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|%s\n", draft ? "--:|--:|--:|--:|" : "");
    for (size_t i = 0; i < rows.size(); ++i) {
        const ProfileRow& r = rows[i];
        std::printf("| %s | %d | %s | %s | %s | %.4f ± %.4f | %+.4f | %.5f ± %.5f | %.2f%% | %.1f | %.1f | %s |",
                    r.spec.c_str(), r.steps, human_count(r.virtual_params).c_str(),
                    human_bytes(r.unique_weight_bytes).c_str(), human_bytes(r.kv_bytes).c_str(), r.ppl.ppl,
                    r.ppl.ppl_err, r.delta_ppl, r.ppl.kl_mean, r.ppl.kl_err, 100 * r.ppl.top1_agree, r.prompt_tps,
                    r.gen_tps, human_bytes(r.peak_rss_bytes).c_str());
        if (draft && i == 0)
            std::printf(" (plain) | - | %.1f | 1.00x |", r.greedy_tps);
        else if (draft)
            std::printf(" %.1f%% | %.2f | %.1f | %.2fx |", 100 * r.draft_acceptance, r.draft_mean_accepted, r.greedy_tps,
                        r.draft_speedup);
        std::printf("\n");
    }
}

namespace {

struct Box {
    double x0, y0, x1, y1;
    bool overlaps(const Box& o) const { return x0 < o.x1 && o.x0 < x1 && y0 < o.y1 && o.y0 < y1; }
};

// One scatter panel: PPL (with its error bar) against x, a label per point, the base in another colour. The
// perplexity axis is logarithmic when the values span more than a factor of 8 (a broken spec would otherwise
// flatten all the others); labels go to the first free place around their point, inside the panel.
void panel(std::ostringstream& s, const std::vector<ProfileRow>& rows, double ox, double oy, double w, double h,
           const std::string& xlabel, double (*xof)(const ProfileRow&)) {
    double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
    for (const ProfileRow& r : rows) {
        x0 = std::min(x0, xof(r)), x1 = std::max(x1, xof(r));
        y0 = std::min(y0, r.ppl.ppl - r.ppl.ppl_err), y1 = std::max(y1, r.ppl.ppl + r.ppl.ppl_err);
    }
    double lo_ppl = 1e300;
    for (const ProfileRow& r : rows) lo_ppl = std::min(lo_ppl, r.ppl.ppl);
    const bool log_y = lo_ppl > 0 && y1 / lo_ppl > 8;
    if (log_y) y0 = std::max(y0, lo_ppl / 1.5);  // an error bar reaching below zero is clipped there
    const double xp = (x1 - x0) * 0.1 + 1e-9 * std::abs(x1) + 1e-12;
    x0 -= xp, x1 += xp;
    auto ty = [&](double v) { return log_y ? std::log(std::max(v, 1e-300)) : v; };
    double ty0 = ty(y0), ty1 = ty(y1);
    const double yp = (ty1 - ty0) * 0.1 + 1e-9 * std::abs(ty1) + 1e-12;
    ty0 -= yp, ty1 += yp;
    auto X = [&](double v) { return ox + (v - x0) / (x1 - x0) * w; };
    auto Y = [&](double v) { return std::clamp(oy + h - (ty(v) - ty0) / (ty1 - ty0) * h, oy, oy + h); };
    s << "<rect x='" << ox << "' y='" << oy << "' width='" << w << "' height='" << h
      << "' fill='none' stroke='#444'/>\n";
    for (double t : ticks(x0, x1)) {
        s << "<line x1='" << X(t) << "' y1='" << oy + h << "' x2='" << X(t) << "' y2='" << oy + h + 5
          << "' stroke='#444'/><text x='" << X(t) << "' y='" << oy + h + 18 << "' text-anchor='middle'>"
          << tick_label(t, x1 - x0) << "</text>\n";
    }
    const double ylo = log_y ? std::exp(ty0) : ty0, yhi = log_y ? std::exp(ty1) : ty1;
    for (double t : log_y ? log_ticks(ylo, yhi) : ticks(ylo, yhi)) {
        s << "<line x1='" << ox - 5 << "' y1='" << Y(t) << "' x2='" << ox << "' y2='" << Y(t)
          << "' stroke='#444'/><text x='" << ox - 8 << "' y='" << Y(t) + 4 << "' text-anchor='end'>"
          << tick_label(t, yhi - ylo) << "</text>\n";
    }
    s << "<text x='" << ox + w / 2 << "' y='" << oy + h + 38 << "' text-anchor='middle'>" << escape(xlabel) << "</text>\n";
    s << "<text transform='translate(" << ox - 50 << "," << oy + h / 2 << ") rotate(-90)' text-anchor='middle'>"
      << (log_y ? "perplexity, log scale (lower is better)" : "perplexity (lower is better)") << "</text>\n";
    std::vector<Box> taken;
    for (size_t i = 0; i < rows.size(); ++i) {  // points first: labels must not cover any of them
        const double px = X(xof(rows[i])), py = Y(rows[i].ppl.ppl);
        taken.push_back({px - 4, py - 4, px + 4, py + 4});
    }
    for (size_t i = 0; i < rows.size(); ++i) {
        const ProfileRow& r = rows[i];
        const double px = X(xof(r)), py = Y(r.ppl.ppl);
        const char* colour = i == 0 ? "#d62728" : "#1f77b4";
        s << "<line x1='" << px << "' y1='" << Y(r.ppl.ppl - r.ppl.ppl_err) << "' x2='" << px << "' y2='"
          << Y(r.ppl.ppl + r.ppl.ppl_err) << "' stroke='" << colour << "'/>\n";
        s << "<circle cx='" << px << "' cy='" << py << "' r='4' fill='" << colour << "'><title>" << escape(r.spec)
          << ": PPL " << fmt("%.4f", r.ppl.ppl) << "</title></circle>\n";
        // Label candidates: right/left of the point, level, above or below, then further out.
        const double tw = 6.2 * static_cast<double>(r.spec.size()), th = 12;
        Box best{};
        bool found = false;
        for (double dy : {-6.0, 10.0, -18.0, 22.0, -30.0, 34.0, -42.0, 46.0}) {
            for (bool right : {true, false}) {
                const double lx = right ? px + 7 : px - 7 - tw;
                const Box b{lx, py + dy - th + 2, lx + tw, py + dy + 2};
                if (b.x0 < ox + 2 || b.x1 > ox + w - 2 || b.y0 < oy + 2 || b.y1 > oy + h - 2) continue;
                if (std::any_of(taken.begin(), taken.end(), [&](const Box& t) { return t.overlaps(b); })) continue;
                best = b, found = true;
                break;
            }
            if (found) break;
        }
        if (!found) {  // crowded: right of the point, or left where the right edge would cut it
            const double lx = px + 7 + tw > ox + w ? px - 7 - tw : px + 7;
            best = {lx, py - 6 - th + 2, lx + tw, py - 4};
        }
        taken.push_back(best);
        s << "<text x='" << best.x0 << "' y='" << best.y1 - 2 << "' font-size='11'>" << escape(r.spec) << "</text>\n";
    }
}

}  // namespace

std::string profile_svg(const std::vector<ProfileRow>& rows, const std::string& title) {
    std::ostringstream s;
    const double W = 960, H = 420;
    s << svg::begin(W, H);
    s << "<text x='" << W / 2 << "' y='24' text-anchor='middle' font-size='15'>" << escape(title) << "</text>\n";
    if (!rows.empty()) {
        panel(s, rows, 80, 50, 360, 300, "virtual parameters (millions)",
              [](const ProfileRow& r) { return r.virtual_params / 1e6; });
        panel(s, rows, 570, 50, 360, 300, "generation speed (tokens/s)", [](const ProfileRow& r) { return r.gen_tps; });
    }
    s << svg::end();
    return s.str();
}

void write_profile_files(const std::string& dir, const Model& model, const std::vector<ProfileRow>& rows,
                         const ProfileOptions& o) {
    std::filesystem::create_directories(dir);
    const std::string name = model.config().name.empty() ? model.file().path : model.config().name;
    auto open = [&](const std::string& f) {
        std::ofstream out(dir + "/" + f, std::ios::binary);
        if (!out) throw std::runtime_error("cannot write " + dir + "/" + f);
        return out;
    };
    {
        std::ofstream csv = open("profile.csv");
        csv << "spec,steps,virtual_params,unique_weight_bytes,kv_bytes,ppl,ppl_err,delta_ppl,kl,kl_err,top1_agreement,"
               "prompt_tok_s,gen_tok_s,peak_rss_bytes"
            << (o.draft_max > 0 ? ",draft_acceptance,draft_mean_accepted,greedy_tok_s,draft_speedup" : "") << "\n";
        for (const ProfileRow& r : rows) {
            csv << '"' << r.spec << "\"," << r.steps << ',' << fmt("%.0f", r.virtual_params) << ','
                << fmt("%.0f", r.unique_weight_bytes) << ',' << fmt("%.0f", r.kv_bytes) << ',' << fmt("%.6f", r.ppl.ppl)
                << ',' << fmt("%.6f", r.ppl.ppl_err) << ',' << fmt("%.6f", r.delta_ppl) << ','
                << fmt("%.8f", r.ppl.kl_mean) << ',' << fmt("%.8f", r.ppl.kl_err) << ',' << fmt("%.6f", r.ppl.top1_agree)
                << ',' << fmt("%.3f", r.prompt_tps) << ',' << fmt("%.3f", r.gen_tps) << ','
                << fmt("%.0f", r.peak_rss_bytes);
            if (o.draft_max > 0)
                csv << ',' << fmt("%.6f", r.draft_acceptance) << ',' << fmt("%.4f", r.draft_mean_accepted) << ','
                    << fmt("%.3f", r.greedy_tps) << ',' << fmt("%.4f", r.draft_speedup);
            csv << '\n';
        }
    }
    {
        nlohmann::json j;
        j["model"] = name;
        j["model_path"] = model.file().path;
        j["n_ctx"] = o.ppl.n_ctx;
        j["isa"] = cpu_kernel_isa();
        j["rows"] = nlohmann::json::array();
        if (o.draft_max > 0) j["draft_max"] = o.draft_max, j["draft_tokens"] = o.draft_tokens;
        for (const ProfileRow& r : rows) {
            j["rows"].push_back({{"spec", r.spec}, {"steps", r.steps}, {"virtual_params", r.virtual_params},
                                 {"unique_weight_bytes", r.unique_weight_bytes}, {"kv_bytes", r.kv_bytes},
                                 {"ppl", r.ppl.ppl}, {"ppl_err", r.ppl.ppl_err}, {"delta_ppl", r.delta_ppl},
                                 {"kl", r.ppl.kl_mean}, {"kl_err", r.ppl.kl_err}, {"top1_agreement", r.ppl.top1_agree},
                                 {"prompt_tok_s", r.prompt_tps}, {"gen_tok_s", r.gen_tps},
                                 {"peak_rss_bytes", r.peak_rss_bytes}, {"tokens_scored", r.ppl.count},
                                 {"chunks", r.ppl.n_chunks}});
            if (r.has_draft) {
                auto& row = j["rows"].back();
                row["draft_acceptance"] = r.draft_acceptance;
                row["draft_mean_accepted"] = r.draft_mean_accepted;
                row["greedy_tok_s"] = r.greedy_tps;
                row["draft_speedup"] = r.draft_speedup;
            }
        }
        open("profile.json") << j.dump(1) << '\n';
    }
    open("profile.svg") << profile_svg(rows, name + ": perplexity vs size and speed (n_ctx " +
                                                 std::to_string(o.ppl.n_ctx) + ")");
}

std::function<int()> register_profile(CLI::App& app) {
    struct Args {
        ModelOptions model;
        std::string text, out_dir;
        std::vector<std::string> specs;
        KlBaseOptions kl;
        int chunks = 0, n_gen = 32, draft_max = 0, draft_tokens = 128;
        bool quiet = false;
    };
    auto args = std::make_shared<Args>();
    CLI::App* sub = app.add_subcommand("profile", "quality, size and speed of layer specs over one model mapping");
    args->model.n_ctx = 512;
    add_model_options(*sub, args->model);
    sub->add_option("-f,--file", args->text, "the text to score (not needed with --kl-divergence)");
    sub->add_option("--spec", args->specs, "a layer spec (repeatable; 'base' = all layers, always run first)");
    add_kl_base_options(*sub, args->kl);
    sub->add_option("--chunks", args->chunks, "score at most this many chunks of -c tokens (0: all)")
        ->check(number_check(kCountRule));
    sub->add_option("-n,--n-gen", args->n_gen, "tokens decoded one by one for the generation speed")
        ->check(number_check(kCountRule));
    sub->add_option("--draft-max", args->draft_max,
                    "also try every spec as a self-speculative draft of the base with up to this many drafted "
                    "tokens per round: acceptance and greedy speed-up columns")
        ->check(number_check(kCountRule));
    sub->add_option("--draft-tokens", args->draft_tokens, "tokens generated greedily for the draft columns")
        ->check(number_check(kPositiveRule));
    sub->add_option("-o,--output-dir", args->out_dir, "also write profile.csv, profile.json and profile.svg here");
    sub->add_flag("-q,--quiet", args->quiet, "no progress on stderr");
    return [args, sub]() -> int {
        Args& a = *args;
        ModelOptions mo = a.model;
        KlBaseInput base = open_kl_base(*sub, a.kl, mo, a.text);
        const std::string text = base.reader ? "" : read_text_file(a.text);
        std::vector<std::string> specs = a.specs;
        if (!mo.layer_spec.empty()) specs.push_back(mo.layer_spec);
        mo.layer_spec.clear();
        LoadedModel lm = load_model(mo);
        mo.n_ctx = kl_run_context(*lm.model, mo.n_ctx, base);  // -c 0: the model's; at least the base's
        ProfileOptions po;
        set_kl_base(po, a.kl, base);
        po.ppl.n_ctx = base.reader ? base.n_ctx : mo.n_ctx;
        po.ppl.max_chunks = a.chunks;
        po.fwd = forward_options(mo);
        po.n_gen = a.n_gen;
        po.draft_max = a.draft_max;
        po.draft_tokens = a.draft_tokens;
        attach_progress(po, !a.quiet);
        const std::vector<int32_t> tokens = base.reader ? base.reader->tokens() : tokenize_text(*lm.model, text);
        const auto rows = run_profile(lm.model, tokens, specs, po);
        print_profile_markdown(rows);
        if (!a.out_dir.empty()) {
            write_profile_files(a.out_dir, *lm.model, rows, po);
            std::fprintf(stderr, "wrote %s/profile.{csv,json,svg}\n", a.out_dir.c_str());
        }
        return 0;
    };
}

}  // namespace strata::cli
