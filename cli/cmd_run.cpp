// strata run: complete a prompt, streaming tokens, then a line of timings.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/engine/sysinfo.h"
#include "core/run/generate.h"
#include "core/run/speculative.h"
#include "core/text/tokenizer.h"

namespace strata::cli {

namespace {
struct RunArgs {
    ModelOptions model;
    SamplerParams sampler;
    std::string prompt;
    std::string prompt_file;
    int n_predict = 128;
    bool ignore_eos = false;
    bool no_display_prompt = false;
    bool print_ids = false;
    bool verbose = false;
    DraftOptions draft;  // self-speculative decoding: the pruned plan that drafts
};
}  // namespace

std::function<int()> register_run(CLI::App& app) {
    auto args = std::make_shared<RunArgs>();
    CLI::App* sub = app.add_subcommand("run", "complete a prompt and print timings");
    add_model_options(*sub, args->model);
    add_sampler_options(*sub, args->sampler);
    sub->add_option("-p,--prompt", args->prompt, "prompt text");
    sub->add_option("-f,--file", args->prompt_file, "read the prompt from a file");
    add_n_predict_option(*sub, args->n_predict, /*also_max_new_tokens=*/false);
    sub->add_flag("--ignore-eos", args->ignore_eos, "keep generating past end-of-generation tokens");
    sub->add_flag("--no-display-prompt", args->no_display_prompt, "print only the continuation");
    sub->add_flag("--print-ids", args->print_ids, "also print the generated token ids on stderr");
    sub->add_flag("-v,--verbose", args->verbose, "print the seed, the context and the threads on stderr");
    add_draft_options(*sub, args->draft);
    return [args]() -> int {
        RunArgs& a = *args;
        if (!a.prompt_file.empty()) {
            std::ifstream in(a.prompt_file, std::ios::binary);
            if (!in) throw std::runtime_error("cannot read prompt file '" + a.prompt_file + "'");
            std::stringstream ss;
            ss << in.rdbuf();
            a.prompt = ss.str();
        }
        LoadedModel lm = load_model(a.model);
        if (show_plan_if_asked(lm, a.model)) return 0;
        const Tokenizer& tok = lm.model->tokenizer();
        std::vector<int32_t> prompt = tok.encode(a.prompt, /*add_special=*/true, /*parse_special=*/true);
        if (prompt.empty()) {
            // Nothing to condition on (an empty prompt and a vocab without BOS): start from BOS anyway.
            prompt.push_back(tok.bos_id());
        }
        Sampler sampler(a.sampler);
        StreamDecoder dec(tok);
        GenerateOptions go;
        go.max_new_tokens = a.n_predict;
        go.stop_at_eog = !a.ignore_eos;
        GenerationStats st;
        auto print = [&](int32_t t) {
            const std::string piece = dec.feed(t);
            std::fwrite(piece.data(), 1, piece.size(), stdout);
            std::fflush(stdout);
            return true;
        };
        std::vector<int32_t> out;
        std::unique_ptr<Forward> fwd;
        std::unique_ptr<SpeculativeDecoder> spec;
        SpeculativeStats ss;
        if (a.draft.spec.empty()) {
            fwd = std::make_unique<Forward>(lm.model, std::move(lm.plan), forward_options(a.model));
        } else {
            SpeculativeOptions so;
            so.draft_max = a.draft.draft_max;
            so.adaptive = !a.draft.fixed;
            Plan draft = make_draft_plan(lm.model, a.draft.spec, so.draft_max, forward_options(a.model));
            spec = std::make_unique<SpeculativeDecoder>(lm.model, std::move(lm.plan), std::move(draft),
                                                        forward_options(a.model), so);
        }
        const Forward& main_fwd = fwd ? *fwd : spec->target();
        if (a.verbose) print_verbose_settings(a.sampler, sampler.params().seed, main_fwd, a.model);
        if (!a.no_display_prompt) {  // only once everything is set up: an error prints nothing else
            std::fputs(a.prompt.c_str(), stdout);
            std::fflush(stdout);
        }
        if (fwd) {
            int pos = 0;
            out = generate(*fwd, sampler, prompt, pos, go, print, &st);
        } else {
            out = spec->generate(prompt, sampler, go, print, &st, &ss);
        }
        const std::string rest = dec.flush();
        std::fwrite(rest.data(), 1, rest.size(), stdout);
        std::fputs("\n", stdout);
        std::fflush(stdout);
        if (a.print_ids) {
            std::string ids;
            for (int32_t t : out) ids += std::to_string(t) + " ";
            std::fprintf(stderr, "ids: %s\n", ids.c_str());
        }
        std::fprintf(stderr,
                     "prompt: %d tokens, %.2f tok/s | generation: %d tokens, %.2f tok/s | %d threads, %s kernels\n",
                     st.prompt_tokens, st.prompt_tps(), st.generated_tokens, st.generate_tps(), main_fwd.n_threads(),
                     cpu_kernel_isa().c_str());
        std::fprintf(stderr, "memory: peak RSS %.1f MiB, KV cache %.1f MiB allocated, %d steps over %d file layers\n",
                     peak_rss_bytes() / 1048576.0, (main_fwd.kv_cache().bytes() + (spec ? spec->draft().kv_cache().bytes() : 0)) / 1048576.0,
                     main_fwd.plan().n_steps(),
                     lm.model->config().n_layers);
        if (spec)
            std::fprintf(stderr,
                         "speculative: draft %s (%d steps), %d rounds, %d drafted, %d accepted (%.1f%%), %.2f accepted per "
                         "round, draft %.2f s, verify %.2f s\n",
                         spec->draft().plan().spec.c_str(), spec->draft().plan().n_steps(), ss.rounds, ss.drafted, ss.accepted,
                         100.0 * ss.acceptance_rate(), ss.mean_accepted(), ss.draft_seconds, ss.verify_seconds);
        return 0;
    };
}

}  // namespace strata::cli
