#include "core/engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>

namespace strata {

namespace {
constexpr size_t kSortAll = 1024;  // vocabularies up to this size are sorted whole
}  // namespace

int32_t argmax(std::span<const float> logits) {
    if (logits.empty()) throw std::invalid_argument("argmax of no logits");
    size_t best = 0;
    for (size_t i = 1; i < logits.size(); ++i)
        if (logits[i] > logits[best]) best = i;
    return static_cast<int32_t>(best);
}

uint64_t resolve_seed(uint64_t seed) {
    if (seed != kRandomSeed) return seed;
    std::random_device rd;
    const uint64_t hi = rd(), lo = rd();
    return ((hi << 32) ^ lo) & INT64_MAX;
}

Sampler::Sampler(const SamplerParams& p) : p_(p) {
    p_.seed = resolve_seed(p.seed);
    rng_.seed(p_.seed);
    if (!(p.top_p > 0)) throw std::invalid_argument("top-p must be > 0");
    if (p.repeat_penalty <= 0) throw std::invalid_argument("repeat penalty must be > 0");
}

void Sampler::accept(int32_t token) {
    if (p_.repeat_last_n <= 0) return;
    recent_.push_back(token);
    while (static_cast<int>(recent_.size()) > p_.repeat_last_n) recent_.pop_front();
}

void Sampler::reset() { recent_.clear(); }

std::vector<TokenProb> Sampler::distribution(std::span<const float> logits) {
    cand_.resize(logits.size());
    for (size_t i = 0; i < logits.size(); ++i) cand_[i] = {logits[i], static_cast<int32_t>(i)};
    if (p_.repeat_penalty != 1.0f) {
        std::vector<int32_t> seen(recent_.begin(), recent_.end());
        std::sort(seen.begin(), seen.end());
        seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
        for (int32_t t : seen) {
            if (t < 0 || static_cast<size_t>(t) >= cand_.size()) continue;
            float& l = cand_[static_cast<size_t>(t)].first;
            l = l > 0 ? l / p_.repeat_penalty : l * p_.repeat_penalty;
        }
    }
    auto by_logit = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
    if (p_.temperature <= 0) return {{std::min_element(cand_.begin(), cand_.end(), by_logit)->second, 1.0}};

    size_t n = cand_.size();
    std::vector<double> prob;
    double sum = 0;
    if (p_.top_k > 0 && static_cast<size_t>(p_.top_k) < n) {
        std::partial_sort(cand_.begin(), cand_.begin() + p_.top_k, cand_.end(), by_logit);
        n = static_cast<size_t>(p_.top_k);
    } else if (n > kSortAll && (p_.top_p < 1.0f || p_.min_p > 0)) {
        // No top-k over a large vocabulary (262,144 tokens for Gemma): sorting it all took longer than the
        // forward pass. Only a prefix of the sorted order can survive top-p or min-p, so sort the best m first
        // and grow m until that prefix holds the top-p mass or reaches below the min-p floor; the survivors are
        // those of a full sort. The normalizer is the sum over every candidate (in index order).
        float top = cand_[0].first;
        for (const auto& c : cand_) top = std::max(top, c.first);
        for (const auto& c : cand_) sum += std::exp(static_cast<double>(c.first - top));
        size_t m = std::min(n, kSortAll), sorted = 0;
        double cum = 0;  // summed in order as the top-p cut below sums it, so the two agree on where the mass is
        for (;;) {
            // The first `sorted` candidates (and their probabilities, and cum over them) stay as they are.
            if (m < n) std::nth_element(cand_.begin() + sorted, cand_.begin() + m, cand_.end(), by_logit);
            std::sort(cand_.begin() + sorted, cand_.begin() + m, by_logit);
            prob.resize(m);
            for (size_t i = sorted; i < m; ++i) {
                prob[i] = std::exp(static_cast<double>(cand_[i].first - top));
                cum += prob[i] / sum;
            }
            const bool mass = p_.top_p < 1.0f && cum >= p_.top_p;
            const bool floor = p_.min_p > 0 && prob[m - 1] < p_.min_p * prob[0];
            if (m == n || mass || floor) break;
            sorted = m;
            m = std::min(n, 4 * m);
        }
        n = m;
    } else {
        std::sort(cand_.begin(), cand_.end(), by_logit);
    }
    // Probabilities of the survivors (sorted, highest first) before temperature, as llama.cpp's chain does
    // (the large-vocabulary path above has them already).
    if (prob.empty()) {
        prob.resize(n);
        for (size_t i = 0; i < n; ++i) sum += prob[i] = std::exp(static_cast<double>(cand_[i].first - cand_[0].first));
    }
    if (p_.top_p < 1.0f) {
        double cum = 0;
        size_t keep = n;
        for (size_t i = 0; i < n; ++i) {
            cum += prob[i] / sum;
            if (cum >= p_.top_p) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
    }
    if (p_.min_p > 0) {
        size_t keep = 1;
        while (keep < n && prob[keep] >= p_.min_p * prob[0]) ++keep;  // prob[0] is the max (relative: exp(0))
        n = keep;
    }
    sum = 0;
    for (size_t i = 0; i < n; ++i)
        sum += prob[i] = std::exp(static_cast<double>(cand_[i].first - cand_[0].first) / p_.temperature);
    std::vector<TokenProb> out(n);
    for (size_t i = 0; i < n; ++i) out[i] = {cand_[i].second, prob[i] / sum};
    return out;
}

int32_t Sampler::draw(const std::vector<TokenProb>& dist) {
    if (dist.empty()) throw std::invalid_argument("sampling from an empty distribution");
    if (dist.size() == 1) return dist[0].id;
    double sum = 0;
    for (const TokenProb& t : dist) sum += t.p;
    std::uniform_real_distribution<double> u(0.0, sum);
    const double r = u(rng_);
    double cum = 0;
    for (const TokenProb& t : dist) {
        cum += t.p;
        if (r < cum) return t.id;
    }
    return dist.back().id;
}

double Sampler::uniform() {
    std::uniform_real_distribution<double> u(0.0, 1.0);
    return u(rng_);
}

int32_t Sampler::sample(std::span<const float> logits) { return draw(distribution(logits)); }

}  // namespace strata
