#include "core/analysis/profile.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>

#include "core/engine/sysinfo.h"
#include "core/run/generate.h"
#include "core/run/speculative.h"

namespace strata {

namespace {

void reset_peak_rss(const Model& m) {
    for (const auto& mf : m.file().mappings)
        if (mf->is_mmap()) madvise(const_cast<uint8_t*>(mf->data()), mf->size(), MADV_DONTNEED);
    if (FILE* f = std::fopen("/proc/self/clear_refs", "w")) {
        std::fputs("5", f);
        std::fclose(f);
    }
}

std::string fmt(const char* f, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}

// Greedy decoding of o.draft_tokens tokens after the text's first 16: plain (draft null) or drafted by `draft`.
void measure_draft(const std::shared_ptr<const Model>& model, const std::vector<int32_t>& tokens, const Plan& base,
                   const Plan* draft, const ProfileOptions& o, ProfileRow& r) {
    const std::vector<int32_t> prompt(tokens.begin(), tokens.begin() + std::min<size_t>(16, tokens.size()));
    ForwardOptions fo = o.fwd;
    fo.n_ctx = static_cast<int>(prompt.size()) + o.draft_tokens + 8;
    GenerateOptions go;
    go.max_new_tokens = o.draft_tokens;
    go.stop_at_eog = false;
    SamplerParams greedy;
    greedy.temperature = 0;
    Sampler sampler(greedy);
    GenerationStats st;
    r.has_draft = true;
    if (!draft) {
        Forward f(model, base, fo);
        int pos = 0;
        generate(f, sampler, prompt, pos, go, nullptr, &st);
    } else {
        SpeculativeOptions so;
        so.draft_max = o.draft_max;
        SpeculativeDecoder dec(model, base, *draft, fo, so);
        SpeculativeStats ss;
        dec.generate(prompt, sampler, go, nullptr, &st, &ss);
        r.draft_acceptance = ss.acceptance_rate();
        r.draft_mean_accepted = ss.mean_accepted();
    }
    r.greedy_tps = st.generate_tps();
}

// The base file a profile scores against: the caller's, one it asks to be written, or a temporary one that is
// removed when the profile ends (also on an error).
class ProfileBase {
public:
    ProfileBase(const Model& m, const ProfileOptions& o, int n_chunks) {
        if (!o.kl_base_in.empty()) {
            path_ = o.kl_base_in, reading_only_ = true;
            return;
        }
        if (!o.kl_base_out.empty()) {
            path_ = o.kl_base_out;
            return;
        }
        namespace fs = std::filesystem;
        const fs::path dir = o.scratch_dir.empty() ? fs::temp_directory_path() : fs::path(o.scratch_dir);
        LogitsFileHeader h{o.ppl.n_ctx, m.config().vocab_size, n_chunks};
        std::error_code ec;
        const fs::space_info space = fs::space(dir, ec);
        const double need = static_cast<double>(h.file_bytes()), margin = 256.0 * (1 << 20);
        if (!ec && static_cast<double>(space.available) < need + margin)
            throw std::runtime_error("the profile's base (full log-probs for KL: " + fmt("%.2f", need / 1e9) +
                                     " GB) does not fit in " + dir.string() + " (" +
                                     fmt("%.2f", static_cast<double>(space.available) / 1e9) +
                                     " GB free): fewer --chunks, or another scratch directory (TMPDIR)");
        path_ = (dir / ("strata-profile-base-" + std::to_string(::getpid()) + "-" +
                        std::to_string(reinterpret_cast<uintptr_t>(this)) + ".kld"))
                    .string();
        temporary_ = true;
    }
    ~ProfileBase() {
        if (temporary_) std::remove(path_.c_str());
    }
    ProfileBase(const ProfileBase&) = delete;
    ProfileBase& operator=(const ProfileBase&) = delete;
    const std::string& path() const { return path_; }
    bool reading_only() const { return reading_only_; }  // every row is scored; none writes

private:
    std::string path_;
    bool reading_only_ = false, temporary_ = false;
};

}  // namespace

std::vector<ProfileRow> run_profile(const std::shared_ptr<const Model>& model, const std::vector<int32_t>& tokens,
                                    std::vector<std::string> specs, const ProfileOptions& o) {
    const Model& m = *model;
    auto is_base = [](const std::string& s) { return s == "base" || s.empty(); };
    specs.erase(std::remove_if(specs.begin(), specs.end(), is_base), specs.end());
    specs.insert(specs.begin(), "base");
    std::vector<Plan> plans;
    for (const std::string& s : specs) plans.push_back(make_plan(m, s == "base" ? "" : s));  // spec errors first
    const bool external = !o.kl_base_in.empty();
    const int n_chunks = perplexity_chunks(m, tokens.size(), o.ppl, external ? 1 : 2);
    const ProfileBase base_file(m, o, n_chunks);
    ForwardOptions fo = o.fwd;
    fo.n_ctx = std::max(o.ppl.n_ctx, o.n_gen);
    fo.max_batch = std::max(fo.max_batch, o.ppl.n_ctx);
    const int per_spec = n_chunks + 1;
    const int total = static_cast<int>(specs.size()) * per_spec;
    auto progress = [&](int done, const std::string& what) {
        if (o.on_progress) o.on_progress(done, total, what);
    };
    std::vector<ProfileRow> rows;
    for (size_t i = 0; i < specs.size(); ++i) {
        const Plan& plan = plans[i];
        ProfileRow r;
        r.spec = specs[i];
        r.steps = plan.n_steps();
        const PlanCost cost = plan_cost(m, plan);
        r.virtual_params = static_cast<double>(cost.virtual_params);
        r.unique_weight_bytes = static_cast<double>(cost.unique_weight_bytes);
        reset_peak_rss(m);
        {
            Forward fwd(model, plan, fo);
            r.kv_bytes = static_cast<double>(fwd.kv_cache().bytes());
            PerplexityHooks h;
            std::optional<LogitsFileReader> reader;
            if (i == 0 && !base_file.reading_only()) {
                h.save_base = base_file.path();
            } else {
                reader.emplace(base_file.path());
                h.kl_base = &*reader;
            }
            const int done0 = static_cast<int>(i) * per_spec;
            const std::string label = "spec " + std::to_string(i + 1) + "/" + std::to_string(specs.size()) + " " + r.spec;
            h.on_chunk = [&](int done, int chunks, double ppl) {
                progress(done0 + done, label + "  chunk " + std::to_string(done) + "/" + std::to_string(chunks) +
                                           "  PPL " + fmt("%.3f", ppl));
            };
            progress(done0, label);
            r.ppl = perplexity(fwd, tokens, o.ppl, h);
            r.prompt_tps = static_cast<double>(r.ppl.tokens_evaluated) / r.ppl.eval_seconds;
            if (i == 0 && !base_file.reading_only()) {  // the base against itself: KL 0, full agreement
                r.ppl.has_kl = true;
                r.ppl.top1_agree = 1;
            }
            if (o.n_gen > 0) {
                const auto t0 = std::chrono::steady_clock::now();
                for (int p = 0; p < o.n_gen; ++p)
                    fwd.eval(std::span<const int32_t>(&tokens[static_cast<size_t>(p) % tokens.size()], 1), p);
                r.gen_tps = o.n_gen / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            }
            r.peak_rss_bytes = static_cast<double>(peak_rss_bytes());
        }
        if (o.draft_max > 0) {
            measure_draft(model, tokens, plans[0], i == 0 ? nullptr : &plan, o, r);
            r.draft_speedup = rows.empty() ? 1.0 : r.greedy_tps / rows[0].greedy_tps;
            if (i == 0) r.draft_acceptance = 1, r.draft_mean_accepted = 0;
        }
        r.delta_ppl = rows.empty() ? 0 : r.ppl.ppl - rows[0].ppl.ppl;
        if (o.on_row) o.on_row(r);
        rows.push_back(std::move(r));
    }
    return rows;
}

}  // namespace strata
