// strata layers: which layers matter (ShortGPT Block Influence, Gromov et al. angular distance), with
// ready-to-use --layer-spec suggestions for pruning and self-merging; --verify profiles the top ones.
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <numeric>

#include "cli/commands.h"
#include "cli/profile.h"
#include "core/analysis/layer_stats.h"

namespace strata::cli {

std::function<int()> register_layers(CLI::App& app) {
    struct Args {
        ModelOptions model;
        std::string text, out_dir;
        KlBaseOptions kl;
        int chunks = 0, max_block = 0;
        bool verify = false, json = false;
    };
    auto args = std::make_shared<Args>();
    CLI::App* sub = app.add_subcommand("layers", "layer importance (Block Influence, angular distance) and spec suggestions");
    args->model.n_ctx = 512;
    add_model_options(*sub, args->model);
    sub->add_option("-f,--file", args->text, "the text to measure over (not needed with --kl-divergence)");
    sub->add_option("-n,--max-block", args->max_block, "largest block size to suggest")
        ->check(number_check(kPositiveRule))
        ->default_str("4, at most the layers - 1");
    sub->add_option("--chunks", args->chunks, "use at most this many chunks of -c tokens (0: all)")
        ->check(number_check(kCountRule));
    sub->add_flag("--verify", args->verify, "run profile on base and the angular-distance pruning suggestions");
    sub->add_option("-o,--output-dir", args->out_dir, "with --verify: write the profile's CSV, JSON and SVG here");
    sub->add_flag("--json", args->json, "print the measurements and suggestions as JSON");
    add_kl_base_options(*sub, args->kl);
    return [args, sub]() -> int {
        Args& a = *args;
        ModelOptions mo = a.model;
        KlBaseInput base = open_kl_base(*sub, a.kl, mo, a.text);
        if (!a.kl.file.empty() && !a.verify)
            throw std::invalid_argument("--kl-divergence-base is for --verify's profile: add --verify");
        const std::string text = base.reader ? "" : read_text_file(a.text);
        if (!mo.layer_spec.empty() || !mo.layer_spec_file.empty())
            throw std::invalid_argument("layers measures the model's own layers: drop --layer-spec");
        LoadedModel lm = load_model(mo);
        mo.n_ctx = kl_run_context(*lm.model, mo.n_ctx, base);  // -c 0: the model's; at least the base's
        const int L = lm.model->config().n_layers;
        if (L < 2) throw std::invalid_argument("layers needs a model with at least 2 layers");
        const int K = a.max_block > 0 ? a.max_block : std::min(4, L - 1);
        PerplexityOptions po;
        po.n_ctx = base.reader ? base.n_ctx : mo.n_ctx;
        po.max_chunks = a.chunks;
        const std::vector<int32_t> tokens = base.reader ? base.reader->tokens() : tokenize_text(*lm.model, text);
        const LayerStats st = analyze_layers(lm.model, tokens, po, K, forward_options(mo));
        const std::vector<LayerSuggestion> sug = suggest_layer_specs(st);
        if (a.json) {
            nlohmann::json j = {{"n_layers", L}, {"tokens", st.tokens}, {"max_block", K},
                                {"block_influence", st.block_influence}, {"angular", st.angular}};
            j["suggestions"] = nlohmann::json::array();
            for (const LayerSuggestion& s : sug)
                j["suggestions"].push_back({{"kind", s.kind}, {"n", s.n}, {"start", s.start}, {"score", s.score},
                                            {"spec", s.spec}});
            std::printf("%s\n", j.dump(1).c_str());
        } else {
            std::printf("Block Influence (ShortGPT: 1 - mean cos(layer input, output)) over %lld tokens\n\n",
                        static_cast<long long>(st.tokens));
            std::vector<int> order(static_cast<size_t>(L));
            std::iota(order.begin(), order.end(), 0);
            std::stable_sort(order.begin(), order.end(), [&](int x, int y) {
                return st.block_influence[static_cast<size_t>(x)] < st.block_influence[static_cast<size_t>(y)];
            });
            std::vector<int> rank(static_cast<size_t>(L));
            for (int i = 0; i < L; ++i) rank[static_cast<size_t>(order[static_cast<size_t>(i)])] = i + 1;
            double mx = *std::max_element(st.block_influence.begin(), st.block_influence.end());
            std::printf("| layer | BI | rank (1 = least influential) | |\n|--:|--:|--:|---|\n");
            for (int l = 0; l < L; ++l) {
                const double bi = st.block_influence[static_cast<size_t>(l)];
                std::printf("| %d | %.5f | %d | %s |\n", l, bi, rank[static_cast<size_t>(l)],
                            std::string(static_cast<size_t>(mx > 0 ? 30 * bi / mx + 0.5 : 0), '#').c_str());
            }
            std::printf("\nSuggestions (--layer-spec):\n\n| kind | n | block / layers | score | --layer-spec |\n|---|--:|---|--:|---|\n");
            for (const LayerSuggestion& s : sug) {
                std::string what;
                if (s.kind == "prune-angular")
                    what = "drop " + std::to_string(s.start) + ".." + std::to_string(s.start + s.n - 1) +
                           " (angular distance x_" + std::to_string(s.start) + " to x_" + std::to_string(s.start + s.n) + ")";
                else if (s.kind == "prune-bi")
                    what = "drop the " + std::to_string(s.n) + " lowest-BI layer(s) (sum of BI)";
                else
                    what = "repeat " + std::to_string(s.start) + ".." + std::to_string(s.start + s.n - 1) +
                           " (seam x_" + std::to_string(s.start + s.n) + " ~ x_" + std::to_string(s.start) + ")";
                std::printf("| %s | %d | %s | %.5f | `%s` |\n", s.kind.c_str(), s.n, what.c_str(), s.score, s.spec.c_str());
            }
        }
        if (a.verify) {
            std::vector<std::string> specs;
            for (const LayerSuggestion& s : sug)
                if (s.kind == "prune-angular" && std::find(specs.begin(), specs.end(), s.spec) == specs.end())
                    specs.push_back(s.spec);
            ProfileOptions pf;
            pf.ppl = po;
            pf.fwd = forward_options(mo);
            set_kl_base(pf, a.kl, base);
            attach_progress(pf, true);
            std::fflush(stdout);
            const auto rows = run_profile(lm.model, tokens, specs, pf);
            std::printf("\n");
            print_profile_markdown(rows);
            if (!a.out_dir.empty()) write_profile_files(a.out_dir, *lm.model, rows, pf);
        }
        return 0;
    };
}

}  // namespace strata::cli
