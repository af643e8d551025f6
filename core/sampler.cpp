#include "core/sampler.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace strata {

int32_t argmax(std::span<const float> logits) {
    if (logits.empty()) throw std::invalid_argument("argmax of no logits");
    size_t best = 0;
    for (size_t i = 1; i < logits.size(); ++i)
        if (logits[i] > logits[best]) best = i;
    return static_cast<int32_t>(best);
}

Sampler::Sampler(const SamplerParams& p) : p_(p), rng_(p.seed) {
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
    if (p_.top_k > 0 && static_cast<size_t>(p_.top_k) < n) {
        std::partial_sort(cand_.begin(), cand_.begin() + p_.top_k, cand_.end(), by_logit);
        n = static_cast<size_t>(p_.top_k);
    } else {
        std::sort(cand_.begin(), cand_.end(), by_logit);
    }
    // Probabilities of the survivors (sorted, highest first) before temperature, as llama.cpp's chain does.
    std::vector<double> prob(n);
    double sum = 0;
    for (size_t i = 0; i < n; ++i) sum += prob[i] = std::exp(static_cast<double>(cand_[i].first - cand_[0].first));
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
