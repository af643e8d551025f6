// strata perplexity: llama.cpp's perplexity over a text, and llama.cpp's KL-divergence base files: written
// with --kl-divergence-base FILE, scored against with --kl-divergence-base FILE --kl-divergence.
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

void add_kl_base_options(CLI::App& sub, KlBaseOptions& o) {
    sub.add_option(
        "--kl-divergence-base", o.file,
        "llama.cpp's KL-divergence base file (llama-perplexity's format: full log-probs, 16-bit coded, "
        "2 bytes per vocabulary entry per scored token): written from this run's base, or, with "
        "--kl-divergence, read and scored against");
    sub.add_flag(
        "--kl-divergence", o.score,
        "score against --kl-divergence-base (made by strata or llama.cpp): its tokens and context are used, "
        "no text needed; llama.cpp's KL divergence statistics");
}

KlBaseInput open_kl_base(const CLI::App& sub, const KlBaseOptions& o, ModelOptions& model,
                         const std::string& text) {
    KlBaseInput in;
    if (o.score && o.file.empty())
        throw std::invalid_argument("--kl-divergence needs --kl-divergence-base FILE");
    if (!o.score) {
        if (text.empty())
            throw std::invalid_argument("give the text to score with -f (or a base to score against)");
        return in;
    }
    in.reader.emplace(o.file);
    const int file_ctx = in.reader->header().n_ctx;
    // The base's context decides the chunks; a larger -c is allowed (llama.cpp's rule), a smaller one cannot
    // hold them (-c 0, the model's context, is settled by kl_run_context once the model is loaded).
    if (sub.count("--ctx-size") > 0 && model.n_ctx > 0 && model.n_ctx < file_ctx)
        throw std::invalid_argument(o.file + " was made at a context of " + std::to_string(file_ctx) +
                                    " tokens; -c " + std::to_string(model.n_ctx) +
                                    " cannot hold them: raise -c or drop it");
    if (model.n_ctx > 0) model.n_ctx = std::max(model.n_ctx, file_ctx);
    in.n_ctx = file_ctx;
    if (!text.empty())
        std::fprintf(stderr, "note: the tokens come from %s; -f %s is not used\n", o.file.c_str(),
                     text.c_str());
    return in;
}

int kl_run_context(const Model& model, int n_ctx, const KlBaseInput& in) {
    const int ctx = context_size(model.config(), n_ctx);  // -c 0: the model's training context
    return in.reader ? std::max(ctx, in.n_ctx) : ctx;
}

std::function<int()> register_perplexity(CLI::App& app) {
    struct Args {
        ModelOptions model;
        std::string text;
        KlBaseOptions kl;
        int chunks = 0;
    };
    auto args = std::make_shared<Args>();
    CLI::App* sub =
        app.add_subcommand("perplexity", "perplexity over a text (llama.cpp's method), and KL vs a base");
    args->model.n_ctx = 512;
    add_model_options(*sub, args->model);
    sub->add_option("-f,--file", args->text, "the text to score (not needed with --kl-divergence)");
    sub->add_option("--chunks", args->chunks, "score at most this many chunks of -c tokens (0: all)")
        ->check(number_check(kCountRule));
    add_kl_base_options(*sub, args->kl);
    return [args, sub]() -> int {
        Args& a = *args;
        ModelOptions mo = a.model;
        KlBaseInput base = open_kl_base(*sub, a.kl, mo, a.text);
        const std::string text = base.reader ? "" : read_text_file(a.text);
        LoadedModel lm = load_model(mo);
        if (show_plan_if_asked(lm, mo)) return 0;
        mo.n_ctx = kl_run_context(*lm.model, mo.n_ctx, base);
        PerplexityOptions po;
        po.n_ctx = base.reader ? base.n_ctx : mo.n_ctx;
        po.max_chunks = a.chunks;
        const std::vector<int32_t> tokens =
            base.reader ? base.reader->tokens() : tokenize_text(*lm.model, text);
        const int n_chunks = perplexity_chunks(*lm.model, tokens.size(), po, base.reader ? 1 : 2);
        mo.n_batch = std::max(mo.n_batch, po.n_ctx);
        Forward fwd(lm.model, lm.plan, forward_options(mo));
        std::fprintf(
            stderr, "perplexity: %zu tokens, %d chunks of %d, spec %s, scoring the second half of each\n",
            tokens.size(), n_chunks, po.n_ctx, lm.plan.spec.empty() ? "(all layers)" : lm.plan.spec.c_str());
        PerplexityHooks hooks;
        if (base.reader) {
            hooks.kl_base = &*base.reader;
            std::printf("%s", kl_chunk_header().c_str());
            hooks.on_kl_chunk = [](int done, const KlStatistics& s) {
                std::printf("%s", kl_chunk_line(done, s).c_str());
                std::fflush(stdout);
            };
        } else {
            hooks.save_base = a.kl.file;
            if (!a.kl.file.empty()) {
                const LogitsFileHeader h{po.n_ctx, lm.model->config().vocab_size, n_chunks};
                std::fprintf(stderr, "perplexity: writing the KL-divergence base %s (%s)\n", a.kl.file.c_str(),
                             human_bytes(static_cast<double>(h.file_bytes())).c_str());
            }
            hooks.on_chunk = [](int done, int total, double ppl) {
                std::fprintf(stderr, "[%d/%d] %.4f\n", done, total, ppl);
            };
        }
        const PerplexityResult r = perplexity(fwd, tokens, po, hooks);
        if (r.has_kl) std::printf("\n%s\n", kl_report(r.kl).c_str());
        std::printf("PPL = %.4f ± %.5f  (%lld tokens scored, %d chunks of %d, %.1f tok/s)\n", r.ppl,
                    r.ppl_err, static_cast<long long>(r.count), r.n_chunks, po.n_ctx,
                    static_cast<double>(r.tokens_evaluated) / r.eval_seconds);
        if (!hooks.save_base.empty())
            std::fprintf(stderr, "wrote the KL-divergence base %s (%d chunks of %d, %lld scored tokens)\n",
                         hooks.save_base.c_str(), r.n_chunks, po.n_ctx, static_cast<long long>(r.count));
        return 0;
    };
}

}  // namespace strata::cli
