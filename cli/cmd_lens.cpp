// strata lens: a logit lens per plan step (the final norm and output head applied to the residual stream
// after every step), as a table, CSV or JSON, and a heat-map plot; --compare puts another spec's run beside
// it.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/lens_output.h"
#include "cli/svg.h"
#include "core/analysis/lens.h"
#include "core/text/tokenizer.h"

namespace strata::cli {

std::function<int()> register_lens(CLI::App& app) {
    struct Args {
        ModelOptions model;
        std::string prompt, prompt_file, positions, format = "md", plot, compare;
        int top_k = 5;
    };
    auto args = std::make_shared<Args>();
    CLI::App* sub = app.add_subcommand("lens", "logit lens per plan step: what each step would predict");
    add_model_options(*sub, args->model);
    sub->add_option("-p,--prompt", args->prompt, "prompt text");
    sub->add_option("-f,--file", args->prompt_file, "read the prompt from a file")->check(CLI::ExistingFile);
    sub->add_option("--top-k", args->top_k, "tokens listed per step and position")->check(number_check(kLensTopKRule));
    sub->add_option(
           "--positions", args->positions,
           "last: the last prompt position only (default); all: every position (the default with --plot)")
        ->check(CLI::IsMember({"last", "all"}));
    sub->add_option("-o,--output", args->format, "md (default), csv or json, on stdout")
        ->check(CLI::IsMember({"md", "csv", "json"}));
    sub->add_option("--plot", args->plot,
                    "also draw the heat map and KL panel: FILE.svg, or FILE.png (rsvg-convert)");
    sub->add_option(
        "--compare", args->compare,
        "another layer spec of the same model ('base': all layers) run over the same prompt: its KL "
        "curve in the plot, its rows in the output, and the KL to its final output per row");
    return [args]() -> int {
        Args& a = *args;
        if (a.prompt.empty() == a.prompt_file.empty())
            throw std::invalid_argument("lens: give -p TEXT or -f FILE");
        if (!a.prompt_file.empty()) {
            std::ifstream in(a.prompt_file, std::ios::binary);
            std::stringstream ss;
            ss << in.rdbuf();
            if (!in) throw std::runtime_error("cannot read prompt file '" + a.prompt_file + "'");
            a.prompt = ss.str();
        }
        LoadedModel lm = load_model(a.model);
        if (show_plan_if_asked(lm, a.model)) return 0;
        const std::vector<int32_t> tokens =
            lm.model->tokenizer().encode(a.prompt, true, /*parse_special=*/true);
        if (tokens.empty()) throw std::invalid_argument("lens: the prompt gives no tokens");
        LensOptions lo;
        lo.top_k = a.top_k;
        lo.all_positions = a.positions.empty() ? !a.plot.empty() : a.positions == "all";
        lo.fwd = forward_options(a.model);
        if (!a.plot.empty()) svg::check_plot_path(a.plot);  // before the work
        LensReport ref;
        if (!a.compare.empty()) {
            ref = run_lens(lm.model, make_plan(*lm.model, a.compare == "base" ? "" : a.compare), tokens, lo);
            lo.reference_states = ref.final_states;
        }
        const LensReport r = run_lens(lm.model, lm.plan, tokens, lo);
        const LensReport* rp = a.compare.empty() ? nullptr : &ref;
        const std::string out = a.format == "json"  ? lens_json(*lm.model, r, rp) + "\n"
                                : a.format == "csv" ? lens_csv(*lm.model, r, rp)
                                                    : lens_markdown(*lm.model, r, rp);
        std::fwrite(out.data(), 1, out.size(), stdout);
        if (!a.plot.empty()) {
            svg::write_plot(a.plot, lens_svg(*lm.model, r, rp));
            std::fprintf(stderr, "wrote %s\n", a.plot.c_str());
        }
        return 0;
    };
}

}  // namespace strata::cli
