#include "cli/common.h"

#include <cstdio>

namespace strata::cli {

void add_model_options(CLI::App& app, ModelOptions& o) {
    app.add_option("-m,--model", o.model_path, "model file: GGUF, or a llama2.c checkpoint (.bin)")->required();
    app.add_option("--tokenizer", o.tokenizer_path, "llama2.c tokenizer.bin (default: beside the checkpoint)");
    app.add_option("--layer-spec,--layer_spec", o.layer_spec,
                   "layers to run, e.g. 0:8,4:12,8:16 (self-merge) or 0:10,10:20:2,20: (prune); Python slices");
    app.add_option("-c,--ctx-size", o.n_ctx, "context size in tokens (default: the model's, at most 4096)")
        ->check(CLI::NonNegativeNumber);
    app.add_option("-t,--threads", o.n_threads, "threads (default: all cores)")->check(CLI::NonNegativeNumber);
    app.add_option("-b,--batch-size", o.n_batch, "prompt tokens per batched pass")->check(CLI::PositiveNumber);
}

void add_sampler_options(CLI::App& app, SamplerParams& p) {
    app.add_option("--temp", p.temperature, "temperature; 0 = greedy");
    app.add_option("--top-k", p.top_k, "top-k (0 = off)");
    app.add_option("--top-p", p.top_p, "top-p (1 = off)");
    app.add_option("--min-p", p.min_p, "min-p (0 = off)");
    app.add_option("--repeat-penalty", p.repeat_penalty, "repetition penalty (1 = off)");
    app.add_option("--repeat-last-n", p.repeat_last_n, "tokens the penalty looks back over");
    app.add_option("-s,--seed", p.seed, "RNG seed");
}

LoadedModel load_model(const ModelOptions& o) {
    LoadOptions lo;
    lo.tokenizer_path = o.tokenizer_path;
    LoadedModel m;
    m.model = Model::load(o.model_path, lo);
    m.plan = make_plan(*m.model, o.layer_spec);
    return m;
}

ForwardOptions forward_options(const ModelOptions& o) {
    ForwardOptions f;
    f.n_ctx = o.n_ctx;
    f.n_threads = o.n_threads;
    f.max_batch = o.n_batch;
    return f;
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

}  // namespace strata::cli
