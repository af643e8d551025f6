// Comparing strata with llama.cpp's golden greedy runs (tests/reference/make_golden.py writes
// tests/golden/<family>_greedy.json): teacher-forced logits and free-running greedy continuations, judged
// against llama.cpp's own spread between its recorded configurations (default, flash attention off, F32 K/V).
// Shared by test_smollm2_golden.cpp and test_gemma3_golden.cpp.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/engine/forward.h"
#include "core/run/generate.h"
#include "core/text/tokenizer.h"
#include "test_util.h"

namespace strata::test::golden {

using nlohmann::json;

inline json load(const std::string& file) { return json::parse(read_text(test_data("golden/" + file))); }

// llama.cpp's runs: "default" (F16 K/V, flash attention auto = on) and the alternatives the script also
// recorded (flash attention off; F32 K/V with flash attention off).
inline std::vector<std::string> run_names(const json& g) {
    std::vector<std::string> names = {"default"};
    for (const auto& [name, run] : g["alt_runs"].items()) names.push_back(name);
    return names;
}

struct Case {
    std::string name, prompt;
    bool parse_special = false;
    std::vector<int32_t> prompt_ids, generated;
    std::vector<double> margin;  // llama.cpp's top1 - top2 logit gap at each generated position
    json top_logits;
};

inline std::vector<Case> cases(const json& g, const std::string& run = "default") {
    std::map<std::string, json> ref;
    for (const json& r : run == "default" ? g["cases"] : g["alt_runs"][run]["results"]) ref[r["name"]] = r;
    std::vector<Case> out;
    for (const json& c : g["cases"]) {
        Case k;
        k.name = c["name"];
        k.prompt = c["prompt"];
        k.parse_special = c["parse_special"];
        k.prompt_ids = c["prompt_ids"].get<std::vector<int32_t>>();
        const json& r = ref.at(k.name);
        k.generated = r["generated_ids"].get<std::vector<int32_t>>();
        k.margin = r["top1_top2_margin"].get<std::vector<double>>();
        k.top_logits = r["top_logits"];
        out.push_back(std::move(k));
    }
    return out;
}

// How far llama.cpp is from itself, measured in the golden file: its recorded configurations differ by
// up to `logit_spread` on the same context, and their greedy runs split where the default run's top1-top2
// margin is as large as `tie_margin`. Below those, "identical to llama.cpp" is not defined by llama.cpp.
struct Noise {
    double logit_spread = 0, tie_margin = 0;
};
inline Noise llama_cpp_noise(const json& g) {
    Noise n;
    std::map<std::string, json> base;
    for (const json& c : g["cases"]) base[c["name"]] = c;
    for (const auto& [name, run] : g["alt_runs"].items()) {
        n.logit_spread = std::max(n.logit_spread, run["max_abs_logit_diff_vs_default_same_context"].get<double>());
        for (const json& r : run["results"]) {
            const json& b = base.at(r["name"]);
            const auto x = b["generated_ids"].get<std::vector<int32_t>>(), y = r["generated_ids"].get<std::vector<int32_t>>();
            for (size_t i = 0; i < x.size() && i < y.size(); ++i)
                if (x[i] != y[i]) {
                    n.tie_margin = std::max(n.tie_margin, b["top1_top2_margin"][i].get<double>());
                    break;
                }
        }
    }
    return n;
}

inline void expect_prompt_tokenization(const Model& m, const json& g) {
    for (const Case& c : cases(g)) EXPECT_EQ(m.tokenizer().encode(c.prompt, true, c.parse_special), c.prompt_ids) << c.name;
}

struct TeacherForced {
    double worst = 0;  // max |dlogit| over llama.cpp's recorded top-k, all cases and positions
    int top1_checked = 0;
    // The same against each recorded configuration (positions where its context equals the default's):
    // strata (F32 K/V, no flash attention) may sit nearer one of llama.cpp's alternatives than its default.
    std::map<std::string, double> worst_by_run;
};

// Feed llama.cpp's own tokens (prompt + its greedy continuation) and compare logits where it recorded them;
// top-1 must agree wherever llama.cpp's margin exceeds its own tie noise.
inline TeacherForced teacher_forced(const std::shared_ptr<const Model>& m, const json& g, const Noise& noise) {
    const size_t V = static_cast<size_t>(m->config().vocab_size);
    TeacherForced res;
    std::map<std::string, std::vector<Case>> runs;
    for (const std::string& r : run_names(g)) runs[r] = cases(g, r);
    const std::vector<Case> base = cases(g);
    for (size_t k = 0; k < base.size(); ++k) {
        const Case& c = base[k];
        std::vector<int32_t> seq = c.prompt_ids;
        seq.insert(seq.end(), c.generated.begin(), c.generated.begin() + 9);  // positions with recorded logits
        ForwardOptions fo;
        fo.n_ctx = 128;
        fo.n_threads = 2;
        Forward f(m, make_plan(*m), fo);
        auto all = f.eval(seq, 0, true);
        double case_worst = 0;
        for (const json& t : c.top_logits) {
            const std::string pos = t["pos"];
            // prompt_last predicts generated[0]; gen_i is the logits after feeding generated[i].
            const size_t row = pos == "prompt_last" ? c.prompt_ids.size() - 1 : c.prompt_ids.size() + std::stoul(pos.substr(4));
            const size_t gen_index = row + 1 - c.prompt_ids.size();
            const float* l = all.data() + row * V;
            const auto ids = t["ids"].get<std::vector<int32_t>>();
            const auto ref = t["logits"].get<std::vector<double>>();
            for (size_t i = 0; i < ids.size(); ++i) case_worst = std::max(case_worst, std::fabs(l[ids[i]] - ref[i]));
            const int32_t ours = static_cast<int32_t>(std::max_element(l, l + V) - l);
            if (gen_index < c.margin.size() && c.margin[gen_index] > noise.tie_margin) {
                EXPECT_EQ(ours, ids[0]) << c.name << " " << pos << ": top-1 differs where llama.cpp's margin is "
                                        << c.margin[gen_index];
                ++res.top1_checked;
            }
        }
        for (auto& [name, rc] : runs) {
            const Case& o = rc[k];
            size_t same = 0;  // o.top_logits[j] saw the default's context while j <= first differing token
            while (same < o.generated.size() && o.generated[same] == c.generated[same]) ++same;
            for (size_t j = 0; j < o.top_logits.size() && j <= same; ++j) {
                const json& t = o.top_logits[j];
                const float* l = all.data() + (c.prompt_ids.size() - 1 + j) * V;
                const auto ids = t["ids"].get<std::vector<int32_t>>();
                const auto ref = t["logits"].get<std::vector<double>>();
                for (size_t i = 0; i < ids.size(); ++i)
                    res.worst_by_run[name] = std::max(res.worst_by_run[name], std::fabs(l[ids[i]] - ref[i]));
            }
        }
        std::printf("[ logits ] %-16s max |dlogit| over llama.cpp's top-10: %.4f\n", c.name.c_str(), case_worst);
        res.worst = std::max(res.worst, case_worst);
    }
    for (const auto& [name, w] : res.worst_by_run) std::printf("[ logits ] vs llama.cpp %-22s %.4f\n", name.c_str(), w);
    std::printf("[ logits ] worst %.4f (llama.cpp's own configurations: %.4f); top-1 equal at %d positions "
                "with margin > %.4f\n", res.worst, noise.logit_spread, res.top1_checked, noise.tie_margin);
    return res;
}

struct Greedy {
    int identical_to_default = 0, identical_to_a_run = 0, n = 0;
};

// Free-running greedy: 64 tokens equal to one of llama.cpp's recorded configurations, or equal to one up to a
// near-tie: a position where that configuration's margin is within the noise at which they split, or where
// its margin plus ours (the swing that separates the two choices) is within the logit spread llama.cpp's
// configurations show among themselves.
inline Greedy greedy(const std::shared_ptr<const Model>& m, const json& g, const Noise& noise) {
    std::map<std::string, std::vector<Case>> runs;
    for (const std::string& r : run_names(g)) runs[r] = cases(g, r);
    Greedy res;
    for (size_t k = 0; k < runs["default"].size(); ++k) {
        const Case& c = runs["default"][k];
        ForwardOptions fo;
        fo.n_ctx = 128;
        fo.n_threads = 2;
        Forward f(m, make_plan(*m), fo);
        SamplerParams sp;
        sp.temperature = 0;
        Sampler s(sp);
        GenerateOptions go;
        go.max_new_tokens = 64;
        go.stop_at_eog = false;
        int pos = 0;
        const std::vector<int32_t> ours = generate(f, s, c.prompt_ids, pos, go, nullptr, nullptr);
        ++res.n;
        bool any = false;
        for (auto& [name, rc] : runs) any |= rc[k].generated == ours;
        res.identical_to_a_run += any;
        res.identical_to_default += ours == c.generated;
        // Every recorded llama.cpp configuration is an equally valid reference: follow the one that agrees
        // with us longest. Where it and we part, its own margin must be within the noise.
        std::string best_run = "default";
        size_t first = 0;
        for (auto& [name, rc] : runs) {
            const std::vector<int32_t>& ref = rc[k].generated;
            size_t f = 0;
            while (f < ours.size() && f < ref.size() && ours[f] == ref[f]) ++f;
            if (f > first || (f == first && name == "default")) {
                first = f;
                best_run = name;
            }
        }
        const Case& best = runs[best_run][k];
        double our_gap = 0;  // at the parting, how far our logit for our token is above llama.cpp's token's
        if (first < best.generated.size()) {
            std::vector<int32_t> prefix = c.prompt_ids;
            prefix.insert(prefix.end(), ours.begin(), ours.begin() + static_cast<std::ptrdiff_t>(first));
            Forward g(m, make_plan(*m), fo);
            const std::span<const float> l = g.eval(prefix, 0);
            our_gap = l[static_cast<size_t>(ours[first])] - l[static_cast<size_t>(best.generated[first])];
            // A near-tie for llama.cpp, or a swing (its margin + ours) no larger than the logit spread between
            // llama.cpp's own configurations on the same context.
            EXPECT_TRUE(best.margin[first] <= noise.tie_margin || best.margin[first] + our_gap <= noise.logit_spread)
                << c.name << ": diverges from llama.cpp (" << best_run << ") at token " << first << " where its margin is "
                << best.margin[first] << " and ours " << our_gap;
        }
        std::printf("[ greedy ] %-16s %s\n", c.name.c_str(),
                    first == best.generated.size()
                        ? ("identical to llama.cpp " + best_run).c_str()
                        : ("follows llama.cpp " + best_run + " to token " + std::to_string(first) + " (margins there: its " +
                           std::to_string(best.margin[first]) + ", ours " + std::to_string(our_gap) + ")")
                              .c_str());
    }
    std::printf("[ greedy ] %d/%d identical to llama.cpp's default, %d/%d to one of its %zu configurations; "
                "near-tie margin %.4f\n", res.identical_to_default, res.n, res.identical_to_a_run, res.n, runs.size(),
                noise.tie_margin);
    return res;
}

}  // namespace strata::test::golden
