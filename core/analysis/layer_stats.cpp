#include "core/analysis/layer_stats.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>
#include <numeric>
#include <stdexcept>
#include <string>

#include "core/text/tokenizer.h"

namespace strata {

double cosine(const float* a, const float* b, int n) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; ++i) ab += static_cast<double>(a[i]) * b[i], aa += static_cast<double>(a[i]) * a[i],
                                bb += static_cast<double>(b[i]) * b[i];
    if (aa == 0 && bb == 0) return 1;
    if (aa == 0 || bb == 0) return 0;
    return std::clamp(ab / std::sqrt(aa * bb), -1.0, 1.0);
}

std::string spec_from_layers(const std::vector<int>& layers, int n_layers) {
    std::string s;
    for (size_t i = 0; i < layers.size();) {
        size_t j = i + 1;
        while (j < layers.size() && layers[j] == layers[j - 1] + 1) ++j;
        const int a = layers[i], b = layers[j - 1] + 1;
        if (!s.empty()) s += ',';
        s += std::to_string(a) + ":" + (b == n_layers ? "" : std::to_string(b));
        if (a == 0 && b == n_layers) s = "all";
        i = j;
    }
    return s;
}

LayerStats analyze_layers(const std::shared_ptr<const Model>& model, std::span<const int32_t> tokens,
                          const PerplexityOptions& o, int max_block, const ForwardOptions& fwd_opts) {
    const Model& m = *model;
    const int L = m.config().n_layers, dim = m.config().dim, T = o.n_ctx;
    if (max_block < 1 || max_block >= L)
        throw std::invalid_argument("block size -n must be in [1, " + std::to_string(L - 1) + "] for a model of " +
                                    std::to_string(L) + " layers");
    const int n_chunks = perplexity_chunks(m, tokens.size(), o);
    ForwardOptions fo = fwd_opts;
    fo.n_ctx = std::max(fo.n_ctx, T);
    Forward fwd(model, make_plan(m), fo);
    // states[s]: (T, dim) the residual stream entering file layer s (s = L: after the last layer).
    std::vector<std::vector<float>> states(static_cast<size_t>(L + 1), std::vector<float>(static_cast<size_t>(T) * dim));
    fwd.set_state_observer([&](int s, const float* x, int B, int pos) {
        std::memcpy(states[static_cast<size_t>(s)].data() + static_cast<size_t>(pos) * dim, x,
                    sizeof(float) * static_cast<size_t>(B) * dim);
    });
    LayerStats st;
    st.n_layers = L, st.max_block = max_block;
    std::vector<double> cos_sum(static_cast<size_t>(L), 0.0);
    std::vector<std::vector<double>> ang_sum(static_cast<size_t>(max_block));
    for (int n = 1; n <= max_block; ++n) ang_sum[static_cast<size_t>(n - 1)].assign(static_cast<size_t>(L - n + 1), 0.0);
    const bool add_bos = m.tokenizer().add_bos() && m.tokenizer().bos_id() >= 0;
    std::vector<int32_t> chunk(static_cast<size_t>(T));
    for (int c = 0; c < n_chunks; ++c) {
        const auto src = tokens.subspan(static_cast<size_t>(c) * T, static_cast<size_t>(T));
        std::copy(src.begin(), src.end(), chunk.begin());
        if (add_bos) chunk[0] = m.tokenizer().bos_id();
        fwd.eval(chunk, 0, false);
        for (int t = 1; t < T; ++t) {
            auto row = [&](int s) { return states[static_cast<size_t>(s)].data() + static_cast<size_t>(t) * dim; };
            for (int l = 0; l < L; ++l) cos_sum[static_cast<size_t>(l)] += cosine(row(l), row(l + 1), dim);
            for (int n = 1; n <= max_block; ++n)
                for (int l = 0; l + n <= L; ++l)
                    ang_sum[static_cast<size_t>(n - 1)][static_cast<size_t>(l)] +=
                        std::acos(cosine(row(l), row(l + n), dim)) / std::numbers::pi;
            st.tokens++;
        }
    }
    const double N = static_cast<double>(st.tokens);
    for (double v : cos_sum) st.block_influence.push_back(1 - v / N);
    for (auto& a : ang_sum) {
        for (double& v : a) v /= N;
        st.angular.push_back(a);
    }
    return st;
}

std::vector<LayerSuggestion> suggest_layer_specs(const LayerStats& st) {
    const int L = st.n_layers;
    std::vector<LayerSuggestion> out;
    for (int n = 1; n <= st.max_block; ++n) {  // drop the block [l, l+n) whose ends are closest in angle
        const auto& a = st.angular[static_cast<size_t>(n - 1)];
        const int l = static_cast<int>(std::min_element(a.begin(), a.end()) - a.begin());
        std::vector<int> keep;
        for (int i = 0; i < L; ++i)
            if (i < l || i >= l + n) keep.push_back(i);
        out.push_back({"prune-angular", n, l, a[static_cast<size_t>(l)], spec_from_layers(keep, L)});
    }
    std::vector<int> order(static_cast<size_t>(L));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int x, int y) {
        return st.block_influence[static_cast<size_t>(x)] < st.block_influence[static_cast<size_t>(y)];
    });
    for (int n = 1; n <= st.max_block; ++n) {  // drop the n least influential layers, wherever they are
        std::vector<bool> drop(static_cast<size_t>(L), false);
        double s = 0;
        for (int i = 0; i < n; ++i) drop[static_cast<size_t>(order[static_cast<size_t>(i)])] = true,
                                    s += st.block_influence[static_cast<size_t>(order[static_cast<size_t>(i)])];
        std::vector<int> keep;
        for (int i = 0; i < L; ++i)
            if (!drop[static_cast<size_t>(i)]) keep.push_back(i);
        out.push_back({"prune-bi", n, order[0], s, spec_from_layers(keep, L)});
    }
    // Self-merge seams: repeating block [a, a+k) right after itself feeds it x_{a+k}; where that is closest to
    // x_a, the block sees the kind of input it was trained on. The 3 best (a, k) over every k.
    std::vector<LayerSuggestion> seams;
    for (int k = 1; k <= st.max_block; ++k)
        for (int a = 0; a + k <= L; ++a) {
            const std::string spec = "0:" + std::to_string(a + k) + "," + std::to_string(a) + ":";
            seams.push_back({"merge", k, a, st.angular[static_cast<size_t>(k - 1)][static_cast<size_t>(a)], spec});
        }
    std::stable_sort(seams.begin(), seams.end(), [](const LayerSuggestion& x, const LayerSuggestion& y) { return x.score < y.score; });
    for (size_t i = 0; i < std::min<size_t>(3, seams.size()); ++i) out.push_back(seams[i]);
    return out;
}

}  // namespace strata
