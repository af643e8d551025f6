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
    int n_depth = 0;  // tokens already in the KV cache when a test starts (llama-bench's -d)
    int reps = 3;
    std::string output = "md";
    std::vector<std::string> draft_specs;  // self-speculative decoding drafts to compare with plain greedy decoding
    int draft_max = 4;
};

struct Row {
    std::string spec, test;
    int steps = 0, depth = 0;
    double virtual_params = 0, unique_bytes = 0;
    std::vector<double> samples;    // tok/s of each repetition
    double median = 0, stddev = 0;  // tok/s
    double acceptance = -1;         // speculative rows: drafted tokens the target kept
    int draft_steps = 0;            // speculative rows: the draft plan's steps and virtual parameters
    double draft_virtual_params = 0;
    double read_gbps = -1;          // tg rows: weight bytes read per second
    double kv_read_gbps = -1;       // tg rows on the CPU: KV cache bytes read per second
    double int8_gops = -1;          // pp rows on the CPU: the weight matrices' multiply-adds (x2) per second
    double spread() const {         // max / min over the repetitions
        if (samples.empty()) return 0;
        const auto [lo, hi] = std::minmax_element(samples.begin(), samples.end());
        return *lo > 0 ? *hi / *lo : 0;
    }
};

// Weight bytes one decode token reads: every step's layer (repeats read again), the final norm and the output
// matrix (the embedding row looked up is left out: a few KiB).
double decode_bytes_per_token(const Model& m, const Plan& plan) {
    double b = 0;
    for (const Step& s : plan.steps) b += static_cast<double>(m.weight_bytes_layer(s.file_layer));
    b += static_cast<double>(m.weights().output->nbytes + m.weights().output_norm->nbytes);
    return b;
}

// Multiply-adds of the plan's weight matrices per prompt token (the output matrix runs for the last token only).
double prompt_macs_per_token(const Model& m, const Plan& plan) {
    double n = 0;
    for (const Step& s : plan.steps) {
        const LayerWeights& L = *s.w;
        for (const WeightView* w : {L.wq, L.wk, L.wv, L.wo, L.w_gate, L.w_up, L.w_down})
            if (w) n += static_cast<double>(w->elements());
    }
    return n;
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

void set_samples(Row& row, std::vector<double> tps) {
    row.samples = std::move(tps);
    row.median = median(row.samples);
    row.stddev = stddev(row.samples);
}

nlohmann::json or_null(double v) { return v < 0 ? nlohmann::json() : nlohmann::json(v); }

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
    sub->add_option("-d,--n-depth", args->n_depth,
                    "tokens already in the KV cache when each test starts (llama-bench's -d; filled once, not timed)")
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
        const int need = a.n_depth + std::max(a.n_prompt, a.n_gen) + 1;
        if (mo.n_ctx < 0) mo.n_ctx = std::max(need, 512);
        mo.n_ctx = context_size(m.config(), mo.n_ctx);  // -c 0: the model's training context
        if (mo.n_ctx < need) throw std::invalid_argument("context " + std::to_string(mo.n_ctx) + " is smaller than the test");
        const ForwardOptions fo = forward_options(mo);
        const bool gpu = fo.device == "cuda";
        std::string backend = cpu_kernel_isa();
        double copy_bw = 0;  // bytes/s, measured in this run: the GPU's copy bandwidth, or the CPU's read bandwidth
        CpuLimits cpu;       // the CPU's read bandwidth and int8 dot peak, measured in this run
        if (!gpu) {
            cpu = measure_cpu_limits(fo.n_threads);
            copy_bw = cpu.read_bytes_per_s;
            std::fprintf(stderr, "CPU: %s kernels, %d threads; read bandwidth %.1f GB/s (median of 15 passes over 512 MiB), "
                         "int8 dot peak %.0f GOPS (median of 7)\n",
                         backend.c_str(), cpu.n_threads, cpu.read_bytes_per_s / 1e9, cpu.int8_ops_per_s / 1e9);
        } else {
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
            // -d: the cache filled once with the depth's tokens; every repetition then writes the same positions
            // after them, so each starts from the same state (as llama-bench's saved depth state does).
            if (a.n_depth > 0) {
                std::vector<int32_t> toks(static_cast<size_t>(a.n_depth));
                for (int32_t& t : toks) t = tok(rng);
                fwd.eval(toks, 0);
            }
            const std::string at = a.n_depth > 0 ? " @ d" + std::to_string(a.n_depth) : "";
            auto run = [&](const std::string& test, int n, bool batched) {
                std::vector<double> tps;
                for (int r = -1; r < a.reps; ++r) {  // r = -1: warm-up, not counted
                    std::vector<int32_t> toks(static_cast<size_t>(n));
                    for (int32_t& t : toks) t = tok(rng);
                    const auto t0 = clock::now();
                    if (batched) {
                        fwd.eval(toks, a.n_depth);
                    } else {
                        for (int i = 0; i < n; ++i)
                            fwd.eval(std::span<const int32_t>(&toks[static_cast<size_t>(i)], 1), a.n_depth + i);
                    }
                    const double s = std::chrono::duration<double>(clock::now() - t0).count();
                    if (r >= 0) tps.push_back(n / s);
                }
                Row row = base;
                row.test = test + at;
                row.depth = a.n_depth;
                set_samples(row, std::move(tps));
                if (!batched && (!gpu || fwd.gpu_steps() == plan.n_steps()))
                    row.read_gbps = decode_bytes_per_token(m, plan) * row.median / 1e9;
                if (!batched && !gpu)  // token i of the test attends to depth + i + 1 positions
                    row.kv_read_gbps = static_cast<double>(fwd.kv_cache().bytes_per_position()) *
                                       (a.n_depth + (n + 1) / 2.0) * row.median / 1e9;
                if (batched && !gpu) row.int8_gops = 2 * prompt_macs_per_token(m, plan) * row.median / 1e9;
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
                    set_samples(row, std::move(tps));
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
        // The probes once more after the tests, and the higher of the two kept: a shared machine's bandwidth moves
        // (a cloud VM here read 35 and 55 GB/s minutes apart), and a limit measured in its slow phase would credit
        // a row with more than the memory gave it.
        const double read_before = copy_bw / 1e9;
        if (!gpu) {
            const CpuLimits again = measure_cpu_limits(fo.n_threads);
            copy_bw = std::max(copy_bw, again.read_bytes_per_s);
            cpu.int8_ops_per_s = std::max(cpu.int8_ops_per_s, again.int8_ops_per_s);
            std::fprintf(stderr, "CPU after the tests: read bandwidth %.1f GB/s, int8 dot peak %.0f GOPS; the higher of "
                         "each pair is the limit\n", again.read_bytes_per_s / 1e9, again.int8_ops_per_s / 1e9);
        }
        const int threads = a.model.n_threads > 0 ? a.model.n_threads : 0;
        // A tg row's share of the read limit (weights + KV cache read per second over the probe), a CPU pp row's
        // share of the int8 dot peak; -1 where the row has none.
        auto read_pct = [&](const Row& r) {
            return r.read_gbps < 0 || copy_bw <= 0 ? -1.0
                                                   : 100 * (r.read_gbps + std::max(0.0, r.kv_read_gbps)) * 1e9 / copy_bw;
        };
        auto int8_pct = [&](const Row& r) {
            return r.int8_gops < 0 || cpu.int8_ops_per_s <= 0 ? -1.0 : 100 * r.int8_gops * 1e9 / cpu.int8_ops_per_s;
        };
        if (a.output == "json") {
            nlohmann::json j = nlohmann::json::array();
            for (const Row& r : rows)
                j.push_back({{"model", m.file().path}, {"spec", r.spec}, {"steps", r.steps}, {"test", r.test},
                             {"n_depth", r.depth}, {"kv_type", fo.kv_type == KvType::F16 ? "f16" : "f32"},
                             {"virtual_params", r.virtual_params},
                             {"unique_weight_bytes", r.unique_bytes}, {"tokens_per_second", r.median},
                             {"stddev", r.stddev}, {"samples", r.samples}, {"spread", r.spread()}, {"isa", backend},
                             {"weight_read_gbps", or_null(r.read_gbps)}, {"kv_read_gbps", or_null(r.kv_read_gbps)},
                             {"copy_bandwidth_gbps", copy_bw > 0 ? nlohmann::json(copy_bw / 1e9) : nlohmann::json()},
                             {"read_probe_before_gbps", gpu ? nlohmann::json() : nlohmann::json(read_before)},
                             {"read_pct_of_limit", or_null(read_pct(r))},
                             {"int8_gops", or_null(r.int8_gops)},
                             {"int8_peak_gops", gpu ? nlohmann::json() : nlohmann::json(cpu.int8_ops_per_s / 1e9)},
                             {"int8_pct_of_peak", or_null(int8_pct(r))},
                             {"draft_acceptance", or_null(r.acceptance)},
                             {"draft_steps", r.draft_steps ? nlohmann::json(r.draft_steps) : nlohmann::json()},
                             {"draft_virtual_params",
                              r.draft_steps ? nlohmann::json(r.draft_virtual_params) : nlohmann::json()},
                             {"threads", threads}, {"repetitions", a.reps}});
            std::printf("%s\n", j.dump(1).c_str());
        } else if (a.output == "csv") {
            std::printf("model,spec,steps,virtual_params,unique_weight_bytes,test,n_depth,tokens_per_second,stddev,spread,"
                        "isa,draft_acceptance,weight_read_gbps,kv_read_gbps,copy_bandwidth_gbps,read_pct_of_limit,"
                        "int8_gops,int8_pct_of_peak\n");
            auto num = [](double v) { return v < 0 ? std::string() : std::to_string(v); };
            for (const Row& r : rows)
                std::printf("\"%s\",\"%s\",%d,%.0f,%.0f,\"%s\",%d,%.3f,%.3f,%.3f,%s,%s,%s,%s,%s,%s,%s,%s\n",
                            m.config().name.c_str(), r.spec.c_str(), r.steps, r.virtual_params, r.unique_bytes,
                            r.test.c_str(), r.depth, r.median, r.stddev, r.spread(), backend.c_str(),
                            num(r.acceptance).c_str(), num(r.read_gbps).c_str(), num(r.kv_read_gbps).c_str(),
                            num(copy_bw > 0 ? copy_bw / 1e9 : -1).c_str(), num(read_pct(r)).c_str(),
                            num(r.int8_gops).c_str(), num(int8_pct(r)).c_str());
        } else {
            const char* limit = gpu ? "copy bandwidth" : "limit";
            std::printf("| model | spec | steps | params | weights | isa | test | t/s | spread | read | %% of %s | "
                        "draft acceptance |\n",
                        limit);
            std::printf("|---|---|--:|--:|--:|---|---|--:|--:|--:|--:|--:|\n");
            for (const Row& r : rows) {
                char acc[32] = "", rd[48] = "", pct[48] = "";
                if (r.acceptance >= 0) std::snprintf(acc, sizeof acc, "%.0f%%", 100 * r.acceptance);
                if (r.read_gbps >= 0)
                    std::snprintf(rd, sizeof rd, "%.1f GB/s", r.read_gbps + std::max(0.0, r.kv_read_gbps));
                else if (r.int8_gops >= 0)
                    std::snprintf(rd, sizeof rd, "%.0f GOPS", r.int8_gops);
                if (read_pct(r) >= 0)
                    std::snprintf(pct, sizeof pct, "%.1f%%", read_pct(r));
                else if (int8_pct(r) >= 0)
                    std::snprintf(pct, sizeof pct, "%.1f%% of int8 peak", int8_pct(r));
                std::printf("| %s | %s | %d | %s | %s | %s | %s | %.2f ± %.2f | %.3f | %s | %s | %s |\n",
                            m.config().name.c_str(), r.spec.c_str(), r.steps, human_count(r.virtual_params).c_str(),
                            human_bytes(r.unique_bytes).c_str(), backend.c_str(), r.test.c_str(), r.median, r.stddev,
                            r.spread(), rd, pct, acc);
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
    sub->add_option("--type", args->type, "weight type: F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q4_K Q5_K Q6_K, or the mixes Q4_K_M Q5_K_M");
    sub->add_option("-o,--output", args->out, "output GGUF path")->required();
    sub->add_option("--seed", args->seed, "RNG seed of the weights")
        ->check(number_check({0, 9.2e18, false, true, "a seed >= 0"}));
    return [args]() -> int {
        write_synthetic_model(args->out, synth_shape(args->shape), synth_types(args->type), args->seed);
        std::printf("wrote %s (%s, %s, random weights)\n", args->out.c_str(), args->shape.c_str(), args->type.c_str());
        return 0;
    };
}

}  // namespace strata::cli
