// strata perplexity: llama.cpp's perplexity over a text, with base-logit saving and KL divergence.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/profile.h"
#include "core/analysis/perplexity.h"

namespace strata::cli {

std::string read_text_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read the text file " + path);
    std::stringstream ss;
    ss << in.rdbuf();
    if (ss.str().empty()) throw std::runtime_error("the text file " + path + " is empty");
    return ss.str();
}

std::function<int()> register_perplexity(CLI::App& app) {
    struct Args {
        ModelOptions model;
        std::string text, kl_base, save_logits;
        int chunks = 0, top_k = 32;
    };
    auto args = std::make_shared<Args>();
    CLI::App* sub = app.add_subcommand("perplexity", "perplexity over a text (llama.cpp's method), and KL vs a base");
    args->model.n_ctx = 512;
    add_model_options(*sub, args->model);
    sub->add_option("-f,--file", args->text, "the text to score")->required();
    sub->add_option("--chunks", args->chunks, "score at most this many chunks of -c tokens (0: all)")
        ->check(number_check(kCountRule));
    auto* kl = sub->add_option("--kl-base", args->kl_base,
                               "base logits written by --save-logits: report KL divergence and top-1 agreement");
    sub->add_option("--save-logits", args->save_logits,
                    "write this model's top-k log-probabilities per scored token (8*k bytes each) for --kl-base")
        ->excludes(kl);
    sub->add_option("--save-top-k", args->top_k, "k for --save-logits")
        ->check(number_check({1, 4096, false, true, "a count from 1 to 4096"}));
    return [args]() -> int {
        Args& a = *args;
        const std::string text = read_text_file(a.text);
        LoadedModel lm = load_model(a.model);
        if (show_plan_if_asked(lm, a.model)) return 0;
        a.model.n_ctx = context_size(lm.model->config(), a.model.n_ctx);  // -c 0: the model's training context
        PerplexityOptions po;
        po.n_ctx = a.model.n_ctx;
        po.max_chunks = a.chunks;
        const std::vector<int32_t> tokens = tokenize_text(*lm.model, text);
        const int n_chunks = perplexity_chunks(*lm.model, tokens.size(), po);
        ModelOptions mo = a.model;
        mo.n_batch = std::max(mo.n_batch, po.n_ctx);
        Forward fwd(lm.model, lm.plan, forward_options(mo));
        std::fprintf(stderr, "perplexity: %zu tokens, %d chunks of %d, spec %s, scoring the second half of each\n",
                     tokens.size(), n_chunks, po.n_ctx, lm.plan.spec.empty() ? "(all layers)" : lm.plan.spec.c_str());
        BaseLogits base, saved;
        PerplexityHooks hooks;
        if (!a.kl_base.empty()) {
            base = load_base_logits(a.kl_base);
            hooks.kl_base = &base;
        }
        if (!a.save_logits.empty()) {
            saved.top_k = a.top_k;
            hooks.save = &saved;
        }
        hooks.on_chunk = [](int done, int total, double ppl) {
            std::fprintf(stderr, "[%d/%d] %.4f\n", done, total, ppl);
        };
        const PerplexityResult r = perplexity(fwd, tokens, po, hooks);
        std::printf("PPL = %.4f ± %.5f  (%lld tokens scored, %d chunks of %d, %.1f tok/s)\n", r.ppl, r.ppl_err,
                    static_cast<long long>(r.count), r.n_chunks, po.n_ctx,
                    static_cast<double>(r.tokens_evaluated) / r.eval_seconds);
        if (r.has_kl)
            std::printf("KL  = %.6f ± %.6f nats (vs top-%d of the base)\ntop-1 agreement = %.2f%%\n", r.kl_mean,
                        r.kl_err, base.top_k, 100 * r.top1_agree);
        if (!a.save_logits.empty()) {
            save_base_logits(a.save_logits, saved);
            std::fprintf(stderr, "wrote %s (top-%d log-probs of %zu tokens)\n", a.save_logits.c_str(), saved.top_k,
                         saved.n_scored());
        }
        return 0;
    };
}

}  // namespace strata::cli
