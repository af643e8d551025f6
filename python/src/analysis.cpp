// The layer tools: spec profiles (core/analysis/profile.h), layer statistics with spec suggestions
// (core/analysis/layer_stats.h) and the logit lens (core/analysis/lens.h), as rows of plain values that python/strata_llm/analysis.py turns into dicts
// or a pandas DataFrame.
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <optional>

#include "core/analysis/layer_stats.h"
#include "core/analysis/lens.h"
#include "core/analysis/perplexity.h"
#include "core/analysis/profile.h"
#include "core/text/tokenizer.h"
#include "python/src/model.h"

namespace strata::python {

namespace {

// The columns of `strata profile -o`'s profile.json, under the same names.
nb::dict profile_row(const ProfileRow& r) {
    nb::dict d;
    d["spec"] = r.spec;
    d["steps"] = r.steps;
    d["virtual_params"] = r.virtual_params;
    d["unique_weight_bytes"] = r.unique_weight_bytes;
    d["kv_bytes"] = r.kv_bytes;
    d["ppl"] = r.ppl.ppl;
    d["ppl_err"] = r.ppl.ppl_err;
    d["delta_ppl"] = r.delta_ppl;
    d["kl"] = r.ppl.kl_mean;
    d["kl_err"] = r.ppl.kl_err;
    d["top1_agreement"] = r.ppl.top1_agree;
    d["prompt_tok_s"] = r.prompt_tps;
    d["gen_tok_s"] = r.gen_tps;
    d["peak_rss_bytes"] = r.peak_rss_bytes;
    d["tokens_scored"] = r.ppl.count;
    d["chunks"] = r.ppl.n_chunks;
    if (r.has_draft) {
        d["draft_acceptance"] = r.draft_acceptance;
        d["draft_mean_accepted"] = r.draft_mean_accepted;
        d["greedy_tok_s"] = r.greedy_tps;
        d["draft_speedup"] = r.draft_speedup;
    }
    return d;
}

std::vector<nb::dict> profile(const ModelHandle& h, std::vector<std::string> specs, const std::string& text,
                              int n_ctx, int chunks, int n_gen, int draft_max, int n_threads,
                              nb::object progress) {
    const std::shared_ptr<const Model>& model = h.model();
    for (const std::string& s : specs) {  // a bad spec is a LayerSpecError before anything runs
        if (s == "base" || s.empty()) continue;
        try {
            parse_layer_spec(s, model->config().n_layers);
        } catch (const std::invalid_argument& e) {
            throw SpecError(e.what());
        }
    }
    ProfileOptions o;
    o.ppl.n_ctx = n_ctx;
    o.ppl.max_chunks = chunks;
    o.fwd = h.forward_options();
    o.fwd.n_threads = n_threads;
    o.n_gen = n_gen;
    o.draft_max = draft_max;
    // Progress (and Ctrl-C) between chunks: the GIL is taken for the callback, and a pending
    // KeyboardInterrupt ends the profile by the exception.
    o.on_progress = [&](int done, int total, const std::string& what) {
        nb::gil_scoped_acquire gil;
        if (!progress.is_none()) progress(done, total, what);
        check_signals();
    };
    std::vector<ProfileRow> rows;
    {
        nb::gil_scoped_release nogil;
        const std::vector<int32_t> tokens = tokenize_text(*model, text);
        rows = run_profile(model, tokens, std::move(specs), o);
    }
    std::vector<nb::dict> out;
    for (const ProfileRow& r : rows) out.push_back(profile_row(r));
    return out;
}

nb::dict layer_stats(const ModelHandle& h, const std::string& text, int n_ctx, int chunks, int max_block,
                     int n_threads) {
    const int L = h.model()->config().n_layers;
    if (L < 2) throw std::invalid_argument("layer statistics need a model with at least 2 layers");
    if (max_block < 1 || max_block >= L)
        throw std::invalid_argument("max_block must be in 1.." + std::to_string(L - 1) +
                                    " for this model's " + std::to_string(L) + " layers");
    PerplexityOptions po;
    po.n_ctx = n_ctx;
    po.max_chunks = chunks;
    ForwardOptions fo = h.forward_options();
    fo.n_threads = n_threads;
    LayerStats st;
    {
        nb::gil_scoped_release nogil;
        const std::vector<int32_t> tokens = tokenize_text(*h.model(), text);
        st = analyze_layers(h.model(), tokens, po, max_block, fo);
    }
    nb::dict d;
    d["n_layers"] = st.n_layers;
    d["max_block"] = st.max_block;
    d["tokens"] = st.tokens;
    d["block_influence"] = st.block_influence;
    d["angular"] = st.angular;
    return d;
}

std::vector<nb::dict> suggestions(int n_layers, int max_block, const std::vector<double>& block_influence,
                                  const std::vector<std::vector<double>>& angular) {
    if (static_cast<int>(block_influence.size()) != n_layers || static_cast<int>(angular.size()) != max_block)
        throw std::invalid_argument(
            "suggestions: block_influence needs n_layers values and angular max_block rows");
    for (size_t n = 1; n <= angular.size(); ++n)
        if (static_cast<int>(angular[n - 1].size()) != n_layers - static_cast<int>(n) + 1)
            throw std::invalid_argument("suggestions: angular row " + std::to_string(n) + " needs " +
                                        std::to_string(n_layers - static_cast<int>(n) + 1) + " values");
    LayerStats st;
    st.n_layers = n_layers;
    st.max_block = max_block;
    st.block_influence = block_influence;
    st.angular = angular;
    std::vector<nb::dict> out;
    for (const LayerSuggestion& s : suggest_layer_specs(st)) {
        nb::dict d;
        d["kind"] = s.kind;
        d["n"] = s.n;
        d["start"] = s.start;
        d["score"] = s.score;
        d["spec"] = s.spec;
        out.push_back(d);
    }
    return out;
}

// `strata lens -o json` over the Model's own plan: the report as the README's schema documents it.
std::string lens(const ModelHandle& h, const std::string& prompt, int top_k, const std::string& positions,
                 const std::string& compare, int n_threads) {
    if (const std::string why = check_number(std::to_string(top_k), kLensTopKRule); !why.empty())
        throw std::invalid_argument("top_k: " + why);
    if (positions != "last" && positions != "all")
        throw std::invalid_argument("positions: 'last' or 'all', not '" + positions + "'");
    const std::shared_ptr<const Model>& model = h.model();
    std::optional<Plan> reference_plan;
    if (!compare.empty()) {
        try {
            reference_plan = make_plan(*model, compare == "base" ? "" : compare);
        } catch (const std::invalid_argument& e) {
            throw SpecError(e.what());
        }
    }
    LensOptions o;
    o.top_k = top_k;
    o.all_positions = positions == "all";
    o.fwd = h.forward_options();
    o.fwd.n_threads = n_threads;
    nb::gil_scoped_release nogil;
    const std::vector<int32_t> tokens = model->tokenizer().encode(prompt, true, /*parse_special=*/true);
    if (tokens.empty()) throw std::invalid_argument("lens: the prompt gives no tokens");
    LensReport ref;
    if (reference_plan) {
        ref = run_lens(model, *reference_plan, tokens, o);
        o.reference_states = ref.final_states;
    }
    const LensReport r = run_lens(model, h.plan(), tokens, o);
    return lens_json(*model, r, reference_plan ? &ref : nullptr);
}

}  // namespace

void bind_analysis(nb::module_& m) {
    m.def("profile", &profile, nb::arg("model"), nb::arg("specs"), nb::arg("text"), nb::arg("n_ctx"),
          nb::arg("chunks"), nb::arg("n_gen"), nb::arg("draft_max"), nb::arg("n_threads"),
          nb::arg("progress").none());
    m.def("layer_stats", &layer_stats, nb::arg("model"), nb::arg("text"), nb::arg("n_ctx"), nb::arg("chunks"),
          nb::arg("max_block"), nb::arg("n_threads"));
    m.def("lens", &lens, nb::arg("model"), nb::arg("prompt"), nb::arg("top_k"), nb::arg("positions"),
          nb::arg("compare"), nb::arg("n_threads"));
    m.def("layer_suggestions", &suggestions, nb::arg("n_layers"), nb::arg("max_block"),
          nb::arg("block_influence"), nb::arg("angular"));
}

}  // namespace strata::python
