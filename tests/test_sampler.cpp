// Sampler::distribution against a plain reference: sort every candidate, then top-k, top-p (probabilities before
// temperature, normalised over the top-k survivors), min-p, temperature. Over a large vocabulary without top-k the
// sampler sorts only a growing prefix; the survivors and their order must be exactly the reference's.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "core/engine/sampler.h"

namespace {

using namespace strata;

std::vector<TokenProb> reference(std::vector<float> logits, const SamplerParams& p) {
    std::vector<std::pair<float, int32_t>> c(logits.size());
    for (size_t i = 0; i < logits.size(); ++i) c[i] = {logits[i], static_cast<int32_t>(i)};
    std::sort(c.begin(), c.end(), [](const auto& a, const auto& b) {
        return a.first > b.first || (a.first == b.first && a.second < b.second);
    });
    size_t n = p.top_k > 0 ? std::min(c.size(), static_cast<size_t>(p.top_k)) : c.size();
    std::vector<double> prob(n);
    double sum = 0;
    for (size_t i = 0; i < n; ++i) sum += prob[i] = std::exp(static_cast<double>(c[i].first - c[0].first));
    if (p.top_p < 1.0f) {
        double cum = 0;
        for (size_t i = 0; i < n; ++i) {
            cum += prob[i] / sum;
            if (cum >= p.top_p) {
                n = i + 1;
                break;
            }
        }
    }
    if (p.min_p > 0) {
        size_t keep = 1;
        while (keep < n && prob[keep] >= p.min_p * prob[0]) ++keep;
        n = keep;
    }
    std::vector<TokenProb> out(n);
    sum = 0;
    for (size_t i = 0; i < n; ++i) sum += prob[i] = std::exp(static_cast<double>(c[i].first - c[0].first) / p.temperature);
    for (size_t i = 0; i < n; ++i) out[i] = {c[i].second, prob[i] / sum};
    return out;
}

TEST(Sampler, DistributionMatchesAFullSort) {
    std::mt19937 rng(5);
    int cases = 0, grown = 0;
    for (int vocab : {50, 5000, 70000}) {
        // Peaked (a few tokens carry the mass), flat (top-p needs most of the vocabulary), and tied logits.
        for (float spread : {8.0f, 0.05f, 0.0f}) {
            std::normal_distribution<float> nd(0.0f, spread);
            std::vector<float> logits(static_cast<size_t>(vocab));
            for (auto& l : logits) l = spread > 0 ? nd(rng) : 1.5f;
            for (int top_k : {0, 40, vocab + 1})
                for (float top_p : {1.0f, 0.95f, 0.5f, 0.9999f})
                    for (float min_p : {0.0f, 0.05f, 0.0005f}) {
                        SamplerParams p;
                        p.temperature = 0.7f, p.top_k = top_k, p.top_p = top_p, p.min_p = min_p, p.repeat_penalty = 1.0f;
                        Sampler s(p);
                        const auto got = s.distribution(logits), want = reference(logits, p);
                        SCOPED_TRACE(testing::Message() << "vocab " << vocab << " spread " << spread << " top_k " << top_k
                                                        << " top_p " << top_p << " min_p " << min_p);
                        ASSERT_EQ(got.size(), want.size());
                        for (size_t i = 0; i < got.size(); ++i) {
                            ASSERT_EQ(got[i].id, want[i].id) << "rank " << i;
                            ASSERT_NEAR(got[i].p, want[i].p, 1e-12 + 1e-9 * want[i].p) << "rank " << i;
                        }
                        ++cases;
                        grown += vocab > 1024 && top_k != 40 && want.size() > 1024;
                    }
        }
    }
    EXPECT_EQ(cases, 3 * 3 * 3 * 4 * 3);
    EXPECT_GT(grown, 0) << "no case needed more than the first sorted prefix";
}

}  // namespace
