#include "core/analysis/draft_select.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include "core/analysis/layer_stats.h"
#include "core/analysis/perplexity.h"
#include "core/engine/plan.h"

namespace strata {

namespace {

// Greedy token at every position of an all-logits evaluation: (T) argmax of each (vocab) row.
std::vector<int32_t> argmax_rows(std::span<const float> logits, size_t V) {
    std::vector<int32_t> out(logits.size() / V);
    for (size_t t = 0; t < out.size(); ++t) {
        const float* row = logits.data() + t * V;
        out[t] = static_cast<int32_t>(std::max_element(row, row + V) - row);
    }
    return out;
}

std::string join(const std::vector<int>& v) {
    std::string s;
    for (int x : v) {
        if (!s.empty()) s += ',';
        s += std::to_string(x);
    }
    return s;
}

}  // namespace

double predicted_speedup(double a, double r, int k) {
    a = std::clamp(a, 0.0, 1.0);
    const double tokens_per_round = a >= 1 ? k + 1 : (1 - std::pow(a, k + 1)) / (1 - a);
    return tokens_per_round / (k * r + 1);
}

DraftSelection select_draft_spec(const std::shared_ptr<const Model>& model, std::span<const int32_t> tokens,
                                 int draft_max, const ForwardOptions& fwd_opts) {
    const Model& m = *model;
    const int L = m.config().n_layers;
    const int T = static_cast<int>(tokens.size());
    if (L < 2) throw std::invalid_argument("--draft-spec auto: a model of one layer has nothing to skip");
    if (T < 32)
        throw std::invalid_argument("--draft-spec auto: the calibration text is too short (" + std::to_string(T) +
                                    " tokens, at least 32 needed)");
    if (draft_max < 1) throw std::invalid_argument("--draft-max must be at least 1");

    std::vector<int> sizes;  // block sizes to try: 1/8, 1/4, 3/8, 1/2 of the layers
    for (int eighths : {1, 2, 3, 4}) {
        const int n = std::clamp((L * eighths + 4) / 8, 1, L - 1);
        if (std::find(sizes.begin(), sizes.end(), n) == sizes.end()) sizes.push_back(n);
    }
    PerplexityOptions po;
    po.n_ctx = T / 2;  // two chunks, BOS first in each, as strata layers splits a text
    ForwardOptions fo = fwd_opts;
    fo.n_ctx = T;
    fo.max_batch = std::max(fo.max_batch, T);
    const LayerStats st = analyze_layers(model, tokens, po, sizes.back(), fo);

    std::vector<std::pair<std::vector<int>, std::string>> skips;  // skipped layers, and why
    for (int n : sizes) {
        const auto& ang = st.angular[static_cast<size_t>(n - 1)];
        int best = -1;
        for (int l = 0; l + n <= L - 1; ++l)  // the last layer stays
            if (best < 0 || ang[static_cast<size_t>(l)] < ang[static_cast<size_t>(best)]) best = l;
        if (best >= 0) {
            std::vector<int> s(static_cast<size_t>(n));
            std::iota(s.begin(), s.end(), best);
            skips.emplace_back(s, n == 1 ? "layer " + std::to_string(best) + " (angular distance)"
                                         : "layers " + std::to_string(best) + "-" + std::to_string(best + n - 1) +
                                               " (angular distance)");
        }
        std::vector<int> order(static_cast<size_t>(L - 1));  // the last layer stays
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](int x, int y) {
            return st.block_influence[static_cast<size_t>(x)] < st.block_influence[static_cast<size_t>(y)];
        });
        std::vector<int> s(order.begin(), order.begin() + n);
        std::sort(s.begin(), s.end());
        skips.emplace_back(s, "layers " + join(s) + " (lowest Block Influence)");
    }

    const size_t V = static_cast<size_t>(m.config().vocab_size);
    const Plan full = make_plan(m);
    const double full_params = static_cast<double>(plan_cost(m, full).virtual_params);
    std::vector<int32_t> ref;
    {
        Forward f(model, full, fo);
        ref = argmax_rows(f.eval(tokens, 0, true), V);
    }
    DraftSelection out;
    out.calibration_tokens = T;
    std::vector<std::string> seen;
    for (const auto& [skip, how] : skips) {
        std::vector<int> keep;
        for (int l = 0; l < L; ++l)
            if (!std::binary_search(skip.begin(), skip.end(), l)) keep.push_back(l);
        DraftCandidate c;
        c.spec = spec_from_layers(keep, L);
        if (std::find(seen.begin(), seen.end(), c.spec) != seen.end()) continue;
        seen.push_back(c.spec);
        c.how = how;
        const Plan plan = make_plan(m, c.spec);
        c.steps = plan.n_steps();
        c.cost_ratio = static_cast<double>(plan_cost(m, plan).virtual_params) / full_params;
        Forward f(model, plan, fo);
        const std::vector<int32_t> got = argmax_rows(f.eval(tokens, 0, true), V);
        int agree = 0;
        for (size_t t = 0; t < got.size(); ++t) agree += got[t] == ref[t];
        c.agreement = static_cast<double>(agree) / static_cast<double>(got.size());
        for (int k = 1; k <= draft_max; ++k) {
            const double s = predicted_speedup(c.agreement, c.cost_ratio, k);
            if (s > c.predicted_speedup) c.predicted_speedup = s, c.best_k = k;
        }
        out.candidates.push_back(c);
    }
    std::stable_sort(out.candidates.begin(), out.candidates.end(), [](const DraftCandidate& a, const DraftCandidate& b) {
        return a.predicted_speedup > b.predicted_speedup;
    });
    out.best = out.candidates.front();
    return out;
}

const char* builtin_calibration_text() {
    return "Once upon a time, in a small town by the sea, there lived an old baker and his granddaughter, Anna. "
           "Every morning before the sun came up, they lit the big oven and mixed flour, water and salt in a "
           "wooden bowl. Anna liked to shape the loaves into little animals: a cat, a fish, a bird with two "
           "raisins for eyes. The fishermen who came in from the boats bought the bread while it was still warm.\n\n"
           "One winter the storms were so strong that the boats could not go out for a week, and nobody came to "
           "the shop. \"If the sea stays angry, we will have to close,\" the baker said. Anna put on her coat, "
           "filled a basket with rolls, and gave the bread away to the families along the harbour. When the boats "
           "came home with full nets, the fishermen remembered who had fed their children, and by spring the shop "
           "was busier than it had ever been.";
}

}  // namespace strata
