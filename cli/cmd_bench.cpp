// strata bench: prompt and generation tok/s, llama-bench style, one row per layer spec;
// strata synth: write a synthetic random-weight model of a real shape for benchmarks.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/analysis/synth.h"
#include "core/engine/sysinfo.h"
#include "core/run/generate.h"
#include "core/run/speculative.h"
#include "core/text/tokenizer.h"

namespace strata::cli {

namespace {

struct BenchArgs {
    ModelOptions model;
    std::vector<std::string> specs;
    int n_prompt = 512;
    int n_gen = 128;
    int reps = 3;
    std::string output = "md";
    std::vector<std::string> draft_specs;  // self-speculative decoding drafts to compare with plain greedy decoding
    int draft_max = 4;
};

struct Row {
    std::string spec, test;
    int steps = 0;
    double virtual_params = 0, unique_bytes = 0;
    double median = 0, stddev = 0;  // tok/s
    double acceptance = -1;         // speculative rows: drafted tokens the target kept
    int draft_steps = 0;            // speculative rows: the draft plan's steps and virtual parameters
    double draft_virtual_params = 0;
    double read_gbps = -1;          // --device cuda tg rows: weight bytes read per second
};

// Weight bytes one decode token reads on the GPU: every step's layer (repeats read again), the final norm
// and the output matrix. The embedding row is looked up on the host.
double decode_bytes_per_token(const Model& m, const Plan& plan) {
    double b = 0;
    for (const Step& s : plan.steps) b += static_cast<double>(m.weight_bytes_layer(s.file_layer));
    b += static_cast<double>(m.weights().output->nbytes + m.weights().output_norm->nbytes);
    return b;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}
double stddev(const std::vector<double>& v) {
    if (v.size() < 2) return 0;
    double m = 0, s = 0;
    for (double x : v) m += x;
    m /= static_cast<double>(v.size());
    for (double x : v) s += (x - m) * (x - m);
    return std::sqrt(s / static_cast<double>(v.size() - 1));
}

}  // namespace

std::function<int()> register_bench(CLI::App& app) {
    auto args = std::make_shared<BenchArgs>();
    CLI::App* sub = app.add_subcommand("bench", "prompt (pp) and generation (tg) speed, one row per layer spec");
    add_model_options(*sub, args->model);
    sub->get_option("--ctx-size")->default_str("the tests' tokens, at least 512");
    sub->add_option("--spec", args->specs, "a layer spec to compare (repeatable; 'base' = all layers)");
    sub->add_option("-p,--n-prompt", args->n_prompt, "prompt tokens for the pp test (0: skip)")
        ->check(number_check(kCountRule));
    sub->add_option("-n,--n-gen", args->n_gen, "generated tokens for the tg test (0: skip)")
        ->check(number_check(kCountRule));
    sub->add_option("-r,--repetitions", args->reps, "repetitions; the median is reported")
        ->check(number_check(kPositiveRule));
    sub->add_option("-o,--output", args->output, "md, csv or json")->check(CLI::IsMember({"md", "csv", "json"}));
    sub->add_option("--draft-spec,--draft_spec", args->draft_specs,
                    "also decode greedily with this draft plan (self-speculative; repeatable; 'auto' chooses one) next to "
                    "plain greedy decoding");
    sub->add_option("--draft-max", args->draft_max, "tokens drafted per round, at most")
        ->check(number_check(kPositiveRule));
    return [args]() -> int {
        BenchArgs& a = *args;
        std::vector<std::string> specs = a.specs;
        if (specs.empty()) specs.push_back(a.model.layer_spec.empty() ? "base" : a.model.layer_spec);
        ModelOptions mo = a.model;
        mo.layer_spec.clear();
        LoadedModel lm = load_model(mo);
        const Model& m = *lm.model;
        if (a.n_prompt > 0) mo.n_batch = std::max(mo.n_batch, a.n_prompt);
        const int need = std::max(a.n_prompt, a.n_gen) + 1;
        if (mo.n_ctx < 0) mo.n_ctx = std::max(need, 512);
        mo.n_ctx = context_size(m.config(), mo.n_ctx);  // -c 0: the model's training context
        if (mo.n_ctx < need) throw std::invalid_argument("context " + std::to_string(mo.n_ctx) + " is smaller than the test");
        const ForwardOptions fo = forward_options(mo);
        const bool gpu = fo.device == "cuda";
        std::string backend = cpu_kernel_isa();
        double copy_bw = 0;  // bytes/s, measured in this run
        if (gpu) {
            std::string why;
            if (!gpu_available(&why)) throw std::runtime_error("--device cuda: " + why);
            const GpuInfo d = gpu_info();
            copy_bw = gpu_copy_bandwidth();
            backend = "cuda";
            std::fprintf(stderr, "GPU: %s (sm_%d%d, %d SMs, %.1f GiB); copy bandwidth %.1f GB/s (read + write, median of 10)\n",
                         d.name.c_str(), d.cc_major, d.cc_minor, d.sm_count, d.mem_total / 1073741824.0, copy_bw / 1e9);
        }
        std::mt19937 rng(42);
        std::uniform_int_distribution<int32_t> tok(0, m.config().vocab_size - 1);
        std::vector<Row> rows;
        for (const std::string& spec : specs) {
            Plan plan = make_plan(m, spec == "base" ? "" : spec);
            Forward fwd(lm.model, plan, fo);
            Row base;
            base.spec = spec;
            base.steps = plan.n_steps();
            const PlanCost cost = plan_cost(m, plan);
            base.virtual_params = static_cast<double>(cost.virtual_params);
            base.unique_bytes = static_cast<double>(cost.unique_weight_bytes);
            using clock = std::chrono::steady_clock;
            auto run = [&](const std::string& test, int n, bool batched) {
                std::vector<double> tps;
                for (int r = -1; r < a.reps; ++r) {  // r = -1: warm-up, not counted
                    std::vector<int32_t> toks(static_cast<size_t>(n));
                    for (int32_t& t : toks) t = tok(rng);
                    const auto t0 = clock::now();
                    if (batched) {
                        fwd.eval(toks, 0);
                    } else {
                        for (int i = 0; i < n; ++i) fwd.eval(std::span<const int32_t>(&toks[static_cast<size_t>(i)], 1), i);
                    }
                    const double s = std::chrono::duration<double>(clock::now() - t0).count();
                    if (r >= 0) tps.push_back(n / s);
                }
                Row row = base;
                row.test = test;
                row.median = median(tps);
                row.stddev = stddev(tps);
                if (gpu && !batched && fwd.gpu_steps() == plan.n_steps())
                    row.read_gbps = decode_bytes_per_token(m, plan) * row.median / 1e9;
                rows.push_back(row);
            };
            if (a.n_prompt > 0) run("pp" + std::to_string(a.n_prompt), a.n_prompt, true);
            if (a.n_gen > 0) run("tg" + std::to_string(a.n_gen), a.n_gen, false);
            if (a.n_gen > 0 && !a.draft_specs.empty()) {
                // Real greedy generation (speculation needs the model's own tokens): plain, then each draft.
                std::vector<int32_t> prompt = m.tokenizer().encode("The history of the", true, false);
                if (prompt.empty()) prompt.push_back(m.tokenizer().bos_id());
                GenerateOptions go;
                go.max_new_tokens = a.n_gen;
                go.stop_at_eog = false;
                SamplerParams greedy;
                greedy.temperature = 0;
                auto greedy_row = [&](const std::string& test, const std::function<GenerationStats(SpeculativeStats*)>& gen) {
                    std::vector<double> tps, acc;
                    for (int r = -1; r < a.reps; ++r) {
                        SpeculativeStats ss;
                        const GenerationStats st = gen(&ss);
                        if (r >= 0) {
                            tps.push_back(st.generate_tps());
                            acc.push_back(ss.acceptance_rate());
                        }
                    }
                    Row row = base;
                    row.test = test;
                    row.median = median(tps);
                    row.stddev = stddev(tps);
                    if (test.find("draft") != std::string::npos) row.acceptance = median(acc);
                    rows.push_back(row);
                };
                greedy_row("tg" + std::to_string(a.n_gen) + " greedy", [&](SpeculativeStats*) {
                    Sampler s(greedy);
                    GenerationStats st;
                    int pos = 0;
                    generate(fwd, s, prompt, pos, go, nullptr, &st);
                    return st;
                });
                for (const std::string& draft : a.draft_specs) {
                    SpeculativeOptions so;
                    so.draft_max = a.draft_max;
                    SpeculativeDecoder dec(lm.model, plan, make_draft_plan(lm.model, draft, so.draft_max, forward_options(mo)),
                                           forward_options(mo), so);
                    const std::string label = draft == "auto" ? "auto=" + dec.draft().plan().spec : draft;
                    greedy_row("tg" + std::to_string(a.n_gen) + " greedy, draft " + label, [&](SpeculativeStats* ss) {
                        Sampler s(greedy);
                        GenerationStats st;
                        dec.generate(prompt, s, go, nullptr, &st, ss);
                        return st;
                    });
                    rows.back().draft_steps = dec.draft().plan().n_steps();
                    rows.back().draft_virtual_params = static_cast<double>(plan_cost(m, dec.draft().plan()).virtual_params);
                }
            }
        }
        const int threads = a.model.n_threads > 0 ? a.model.n_threads : 0;
        if (a.output == "json") {
            nlohmann::json j = nlohmann::json::array();
            for (const Row& r : rows)
                j.push_back({{"model", m.file().path}, {"spec", r.spec}, {"steps", r.steps}, {"test", r.test},
                             {"virtual_params", r.virtual_params}, {"unique_weight_bytes", r.unique_bytes},
                             {"tokens_per_second", r.median}, {"stddev", r.stddev}, {"isa", backend},
                             {"weight_read_gbps", r.read_gbps < 0 ? nlohmann::json() : nlohmann::json(r.read_gbps)},
                             {"copy_bandwidth_gbps", gpu ? nlohmann::json(copy_bw / 1e9) : nlohmann::json()},
                             {"draft_acceptance", r.acceptance < 0 ? nlohmann::json() : nlohmann::json(r.acceptance)},
                             {"draft_steps", r.draft_steps ? nlohmann::json(r.draft_steps) : nlohmann::json()},
                             {"draft_virtual_params",
                              r.draft_steps ? nlohmann::json(r.draft_virtual_params) : nlohmann::json()},
                             {"threads", threads}, {"repetitions", a.reps}});
            std::printf("%s\n", j.dump(1).c_str());
        } else if (a.output == "csv") {
            std::printf("model,spec,steps,virtual_params,unique_weight_bytes,test,tokens_per_second,stddev,isa,draft_acceptance,"
                        "weight_read_gbps,copy_bandwidth_gbps\n");
            for (const Row& r : rows)
                std::printf("\"%s\",\"%s\",%d,%.0f,%.0f,\"%s\",%.3f,%.3f,%s,%s,%s,%s\n", m.config().name.c_str(),
                            r.spec.c_str(), r.steps, r.virtual_params, r.unique_bytes, r.test.c_str(), r.median, r.stddev,
                            backend.c_str(), r.acceptance < 0 ? "" : std::to_string(r.acceptance).c_str(),
                            r.read_gbps < 0 ? "" : std::to_string(r.read_gbps).c_str(),
                            gpu ? std::to_string(copy_bw / 1e9).c_str() : "");
        } else {
            std::printf("| model | spec | steps | params | weights | isa | test | t/s | draft acceptance |%s\n",
                        gpu ? " weights read | % of copy bandwidth |" : "");
            std::printf("|---|---|--:|--:|--:|---|---|--:|--:|%s\n", gpu ? "--:|--:|" : "");
            for (const Row& r : rows) {
                char acc[32] = "", bw[96] = "";
                if (r.acceptance >= 0) std::snprintf(acc, sizeof acc, "%.0f%%", 100 * r.acceptance);
                if (gpu && r.read_gbps >= 0)
                    std::snprintf(bw, sizeof bw, " %.0f GB/s | %.1f%% |", r.read_gbps, 100 * r.read_gbps * 1e9 / copy_bw);
                else if (gpu)
                    std::snprintf(bw, sizeof bw, " | |");
                std::printf("| %s | %s | %d | %s | %s | %s | %s | %.2f ± %.2f | %s |%s\n", m.config().name.c_str(),
                            r.spec.c_str(), r.steps, human_count(r.virtual_params).c_str(),
                            human_bytes(r.unique_bytes).c_str(), backend.c_str(), r.test.c_str(), r.median, r.stddev, acc, bw);
            }
        }
        return 0;
    };
}

std::function<int()> register_synth(CLI::App& app) {
    struct SynthArgs {
        std::string shape = "llama3.2-1b", type = "Q4_0", out;
        uint64_t seed = 1;
    };
    auto args = std::make_shared<SynthArgs>();
    CLI::App* sub = app.add_subcommand("synth", "write a random-weight GGUF of a real model shape, for benchmarks");
    std::string shapes;
    for (const SynthShape& s : synth_shapes()) shapes += (shapes.empty() ? "" : ", ") + s.name;
    sub->add_option("--shape", args->shape, "model shape: " + shapes);
    sub->add_option("--type", args->type, "weight type: F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q4_K Q5_K Q6_K");
    sub->add_option("-o,--output", args->out, "output GGUF path")->required();
    sub->add_option("--seed", args->seed, "RNG seed of the weights")
        ->check(number_check({0, 9.2e18, false, true, "a seed >= 0"}));
    return [args]() -> int {
        DType type = DType::F32;
        bool found = false;
        for (uint32_t id = 0; id < kNumDTypes; ++id) {
            const DTypeTraits& t = dtype_traits(id);
            if (t.name && t.supported && args->type == t.name) {
                type = static_cast<DType>(id);
                found = true;
            }
        }
        if (!found) throw std::invalid_argument("unknown or unsupported weight type '" + args->type + "'");
        write_synthetic_model(args->out, synth_shape(args->shape), type, args->seed);
        std::printf("wrote %s (%s, %s, random weights)\n", args->out.c_str(), args->shape.c_str(), args->type.c_str());
        return 0;
    };
}

}  // namespace strata::cli
