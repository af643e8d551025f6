#include "cli/common.h"

#include <cstdio>

#include "core/analysis/draft_select.h"
#include "core/analysis/mergekit.h"
#include "core/text/tokenizer.h"

namespace strata::cli {

CLI::Validator number_check(const NumberRule& rule) {
    return CLI::Validator([rule](std::string& v) { return check_number(v, rule); }, "");
}

CLI::Validator setting_check(std::string_view key) {
    const NumberRule* rule = session_setting_rule(key);
    if (!rule) throw std::logic_error("no range for setting " + std::string(key));
    return number_check(*rule);
}

void warn_if_too_many_threads(int n_threads) {
    const int hw = hardware_threads();
    if (n_threads > hw)
        std::fprintf(stderr, "warning: -t %d is more than this machine's %d hardware threads: running on %d\n",
                     n_threads, hw, hw);
}

CLI::Option* add_n_predict_option(CLI::App& app, int& n, bool also_max_new_tokens) {
    return app
        .add_option(also_max_new_tokens ? "-n,--n-predict,--max-new-tokens" : "-n,--n-predict", n,
                    "tokens to generate (-1: until end of text or context)")
        ->check(setting_check("max-new-tokens"));
}

void add_model_options(CLI::App& app, ModelOptions& o) {
    app.add_option("-m,--model", o.model_path, "model file: GGUF, or a llama2.c checkpoint (.bin)")->required();
    app.add_option("--tokenizer", o.tokenizer_path, "llama2.c tokenizer.bin (default: beside the checkpoint)");
    app.add_option("--layer-spec,--layer_spec", o.layer_spec,
                   "layers to run, e.g. 0:8,4:12,8:16 (self-merge) or 0:10,10:20:2,20: (prune); Python slices");
    app.add_option("--layer-spec-file,--layer_spec_file", o.layer_spec_file,
                   "mergekit passthrough YAML (one model) to read the layer spec from")
        ->check(CLI::ExistingFile);
    app.add_flag("--show", o.show_plan, "print the model's plan (layers, steps, parameters, memory) and exit");
    auto* ctx = app.add_option("-c,--ctx-size", o.n_ctx, "context size in tokens (0: the model's training context)")
                    ->check(setting_check("ctx-size"));
    if (o.n_ctx < 0) ctx->default_str("the model's, at most 4096");
    app.add_option("-t,--threads", o.n_threads, "threads (0: all hardware threads; never more than those)")
        ->check(setting_check("threads"))
        ->each([](const std::string& v) { warn_if_too_many_threads(std::stoi(v)); });
    app.add_option("-b,--batch-size", o.n_batch, "prompt tokens per batched pass")->check(setting_check("batch-size"));
    app.add_option("--device", o.device, "where the forward pass runs: cpu or cuda")
        ->check(CLI::IsMember({"cpu", "cuda"}));
    app.add_option("--n-gpu-layers,--gpu-layers", o.n_gpu_layers,
                   "-ngl N: run the first N plan steps on the GPU (implies --device cuda; N >= steps: all, and the "
                   "output)")
        ->check(number_check(kCountRule))
        ->default_str("all with --device cuda");
}

void add_sampler_options(CLI::App& app, SamplerParams& p) {
    app.add_option("--temp", p.temperature, "temperature (0: greedy)")->check(setting_check("temp"));
    app.add_option("--top-k", p.top_k, "top-k (0: off)")->check(setting_check("top-k"));
    app.add_option("--top-p", p.top_p, "top-p (1: off)")->check(setting_check("top-p"));
    app.add_option("--min-p", p.min_p, "min-p (0: off)")->check(setting_check("min-p"));
    app.add_option("--repeat-penalty", p.repeat_penalty, "repetition penalty (1: off)")
        ->check(setting_check("repeat-penalty"));
    app.add_option("--repeat-last-n", p.repeat_last_n, "tokens the penalty looks back over")
        ->check(setting_check("repeat-last-n"));
    app.add_option_function<long long>(
           "-s,--seed", [&p](long long v) { p.seed = v < 0 ? kRandomSeed : static_cast<uint64_t>(v); },
           "RNG seed (-1: a random one, printed with --verbose)")
        ->check(setting_check("seed"))
        ->default_str("-1");
}

void print_verbose_settings(const SamplerParams& asked, uint64_t seed, const Forward& fwd, const ModelOptions& o) {
    std::fprintf(stderr, "seed: %llu%s\n", static_cast<unsigned long long>(seed),
                 asked.seed == kRandomSeed ? " (drawn at random; --seed with it repeats this run)" : "");
    const int train = fwd.model().config().n_ctx_train;
    std::string why;
    if (o.n_ctx == 0) why = " (-c 0: the model's training context)";
    else if (o.n_ctx < 0) why = " (the model's training context, " + std::to_string(train) + ", at most 4096)";
    std::fprintf(stderr, "context: %d tokens%s\n", fwd.n_ctx(), why.c_str());
    std::fprintf(stderr, "threads: %d (the machine has %d)\n", fwd.n_threads(), hardware_threads());
}

void add_draft_options(CLI::App& app, DraftOptions& o, bool spec_option) {
    if (spec_option)
        app.add_option("--draft-spec,--draft_spec", o.spec,
                       "self-speculative decoding: a layer spec of the same model that drafts tokens (e.g. "
                       "0:10,10:20:2,20:), or 'auto' to choose one from the layer-importance analysis");
    app.add_option("--draft-max", o.draft_max, "tokens drafted per round, at most")->check(number_check(kPositiveRule));
    app.add_flag("--draft-fixed", o.fixed, "always draft --draft-max tokens (no adaptation)");
}

Plan make_draft_plan(const std::shared_ptr<const Model>& model, const std::string& spec, int draft_max,
                     const ForwardOptions& fo) {
    if (spec != "auto") return make_plan(*model, spec);
    const std::vector<int32_t> tokens =
        model->tokenizer().encode(builtin_calibration_text(), /*add_special=*/true, /*parse_special=*/false);
    ForwardOptions calib = fo;
    calib.n_ctx = kDefaultContext;
    const DraftSelection sel = select_draft_spec(model, tokens, draft_max, calib);
    const DraftCandidate& b = sel.best;
    std::fprintf(stderr,
                 "draft-spec auto: %s (%d of %d steps; skips %s) - greedy agreement %.1f%% with the full model on "
                 "%d calibration tokens, predicted %.2fx at %d drafted tokens per round%s\n",
                 b.spec.c_str(), b.steps, model->config().n_layers, b.how.c_str(), 100 * b.agreement,
                 sel.calibration_tokens, b.predicted_speedup, b.best_k,
                 b.predicted_speedup < 1 ? " (no candidate predicts a gain on this model)" : "");
    return make_plan(*model, b.spec);
}

LoadedModel load_model(const ModelOptions& o) {
    LoadOptions lo;
    lo.tokenizer_path = o.tokenizer_path;
    LoadedModel m;
    std::string spec = o.layer_spec;
    if (!o.layer_spec_file.empty()) {
        if (!spec.empty()) throw std::invalid_argument("give --layer-spec or --layer-spec-file, not both");
        spec = layer_spec_from_mergekit_file(o.layer_spec_file);
    }
    m.model = Model::load(o.model_path, lo);
    m.plan = make_plan(*m.model, spec);
    return m;
}

ForwardOptions forward_options(const ModelOptions& o) {
    ForwardOptions f;
    f.n_ctx = o.n_ctx;
    f.n_threads = o.n_threads;
    f.max_batch = o.n_batch;
    f.device = o.device.empty() ? (o.n_gpu_layers > 0 ? "cuda" : "cpu") : o.device;
    f.n_gpu_steps = o.n_gpu_layers;
    return f;
}

bool show_plan_if_asked(const LoadedModel& m, const ModelOptions& o) {
    if (!o.show_plan) return false;
    const int n_ctx = context_size(m.model->config(), o.n_ctx);
    print_plan_summary(*m.model, m.plan, n_ctx);
    return true;
}

std::string human_count(double n) {
    char buf[32];
    if (n >= 1e9) std::snprintf(buf, sizeof buf, "%.2fB", n / 1e9);
    else if (n >= 1e6) std::snprintf(buf, sizeof buf, "%.1fM", n / 1e6);
    else if (n >= 1e3) std::snprintf(buf, sizeof buf, "%.1fK", n / 1e3);
    else std::snprintf(buf, sizeof buf, "%.0f", n);
    return buf;
}

std::string human_bytes(double n) {
    char buf[32];
    if (n >= 1024.0 * 1024 * 1024) std::snprintf(buf, sizeof buf, "%.2f GiB", n / (1024.0 * 1024 * 1024));
    else if (n >= 1024.0 * 1024) std::snprintf(buf, sizeof buf, "%.1f MiB", n / (1024.0 * 1024));
    else if (n >= 1024.0) std::snprintf(buf, sizeof buf, "%.1f KiB", n / 1024.0);
    else std::snprintf(buf, sizeof buf, "%.0f B", n);
    return buf;
}

// Steps vs file layers, virtual parameters vs unique weight bytes, KV bytes: what a spec costs.
void print_plan_summary(const Model& m, const Plan& plan, int n_ctx) {
    const ModelConfig& c = m.config();
    const std::vector<int> layers = plan.layers();
    const PlanCost cost = plan_cost(m, plan);
    const int64_t virt = cost.virtual_params;
    const size_t unique_bytes = cost.unique_weight_bytes;
    const std::vector<int>& repeated = cost.repeated;
    const std::vector<int>& dropped = cost.dropped;
    const size_t kv_per_token = 2ull * layers.size() * c.kv_dim() * sizeof(float);
    std::printf("plan:          %s\n", plan.spec.empty() ? "(all layers)" : plan.spec.c_str());
    std::printf("layers:        %s\n", compact_layer_list(layers).c_str());
    std::printf("steps:         %zu (file layers: %d)\n", layers.size(), c.n_layers);
    std::printf("repeated:      %s\n", repeated.empty() ? "none" : compact_layer_list(repeated).c_str());
    std::printf("dropped:       %s\n", dropped.empty() ? "none" : compact_layer_list(dropped).c_str());
    if (c.sliding_window > 0) {
        std::string kinds;  // per step: L = sliding-window (local), G = global; the kind of the file layer
        for (const Step& s : plan.steps) kinds += s.kind == LayerKind::SlidingWindow ? 'L' : 'G';
        std::printf("kinds:         %s (L sliding-window %d, G global)\n", kinds.c_str(), c.sliding_window);
    }
    std::printf("virtual params: %s (%lld)\n", human_count(virt).c_str(), static_cast<long long>(virt));
    std::printf("unique weights: %s\n", human_bytes(unique_bytes).c_str());
    std::printf("KV cache:      %s per token, %s at context %d\n", human_bytes(kv_per_token).c_str(),
                human_bytes(static_cast<double>(kv_per_token) * n_ctx).c_str(), n_ctx);
}

}  // namespace strata::cli
