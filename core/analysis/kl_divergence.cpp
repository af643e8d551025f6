#include "core/analysis/kl_divergence.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <stdexcept>

#include "core/analysis/logits_file.h"

namespace strata {

TokenKl score_position(const float* logits, int n_vocab, const uint16_t* record, int next_token) {
    int top = 0;
    for (int i = 1; i < n_vocab; ++i)
        if (logits[i] > logits[top]) top = i;
    const float hi = logits[top];
    double sum = 0;
    for (int i = 0; i < n_vocab; ++i) sum += std::exp(logits[i] - hi);  // float terms, a double sum
    const double log_norm = hi + std::log(sum);                         // log q_i = logits[i] - log_norm

    const RecordScale s = record_scale(record);
    const uint16_t* v = record + 4;
    TokenKl t;
    t.nll = log_norm - logits[next_token];
    t.nll_base = -(s.scale * v[next_token] + s.min_log_prob);  // float, as llama.cpp decodes
    int top_base = 0;
    double kld = 0, mass = 0;
    for (int i = 0; i < n_vocab; ++i) {
        if (v[i] > v[top_base]) top_base = i;
        const float log_p = s.scale * v[i] + s.min_log_prob;
        if (log_p > -16.f) {
            const double p = std::exp(log_p);
            kld += p * (log_p - (logits[i] - log_norm));
            mass += p;
        }
    }
    // Valid records hold probabilities summing to 1 within the coding (less the floored entries' < 1e-7
    // each).
    if (!(mass <= 1.01 && mass >= 0.5))
        throw std::runtime_error("a base record's probabilities sum to " + std::to_string(mass) +
                                 ": the file is corrupt or not a llama.cpp base");
    t.kld = kld;
    t.same_top = top == top_base;
    t.p_diff = std::exp(-t.nll) - std::exp(-t.nll_base);
    return t;
}

void KlAccumulator::add(const TokenKl& t) {
    ++count_;
    nll_ += t.nll, nll2_ += t.nll * t.nll;
    base_ += t.nll_base, base2_ += t.nll_base * t.nll_base;
    nll_base_ += t.nll * t.nll_base;
    kld_ += t.kld, kld2_ += t.kld * t.kld;
    dp_ += t.p_diff, dp2_ += t.p_diff * t.p_diff, dp4_ += t.p_diff * t.p_diff * t.p_diff * t.p_diff;
    same_top_ += t.same_top;
    kld_values_.push_back(static_cast<float>(t.kld));
    dp_values_.push_back(static_cast<float>(t.p_diff));
}

namespace {

struct MeanErr {
    double mean = 0, err = 0;
};
// The mean of n values from their sum and sum of squares, and its standard error (0 for 10 values or fewer,
// as llama.cpp gives it).
MeanErr mean_err(double sum, double sum2, int64_t n) {
    if (n < 1) return {};
    const double m = sum / static_cast<double>(n), var = sum2 / static_cast<double>(n) - m * m;
    return {m, var > 0 && n > 10 ? std::sqrt(var / static_cast<double>(n - 1)) : 0};
}

std::vector<double> quantiles(std::vector<float> v) {
    std::sort(v.begin(), v.end());
    std::vector<double> out;
    for (double q : KlStatistics::kQuantiles) {
        const double at = q * static_cast<double>(v.size() - 1);
        const size_t i = static_cast<size_t>(at);
        const double f = at - static_cast<double>(i);
        out.push_back((1 - f) * v[i] + f * v[std::min(i + 1, v.size() - 1)]);
    }
    return out;
}

double quantile_of(const std::vector<double>& values, double q) {
    const auto* at = std::find(std::begin(KlStatistics::kQuantiles), std::end(KlStatistics::kQuantiles), q);
    if (at == std::end(KlStatistics::kQuantiles) || values.empty())
        throw std::logic_error("no such quantile in KlStatistics (or none computed)");
    return values[static_cast<size_t>(at - std::begin(KlStatistics::kQuantiles))];
}

}  // namespace

double KlStatistics::kld_quantile(double q) const {
    return quantile_of(kld_quantiles, q);
}
double KlStatistics::dp_quantile(double q) const {
    return quantile_of(dp_quantiles, q);
}

KlStatistics KlAccumulator::statistics(bool with_quantiles) const {
    KlStatistics s;
    const int64_t n = s.count = count_;
    if (n == 0) return s;
    const MeanErr q = mean_err(nll_, nll2_, n), b = mean_err(base_, base2_, n);
    s.ppl_q = std::exp(q.mean), s.ppl_q_err = s.ppl_q * q.err;
    s.ppl_base = std::exp(b.mean), s.ppl_base_err = s.ppl_base * b.err;
    // The covariance of the two means (0 below 10 values).
    const double cov =
        n < 10 ? 0 : (nll_base_ / static_cast<double>(n) - q.mean * b.mean) / static_cast<double>(n - 1);
    s.log_ppl_cor = q.err > 0 && b.err > 0 ? cov / (q.err * b.err) : 0;
    s.log_ppl_ratio = q.mean - b.mean;
    s.log_ppl_ratio_err = std::sqrt(std::max(0.0, q.err * q.err + b.err * b.err - 2 * cov));
    s.ppl_ratio = std::exp(s.log_ppl_ratio), s.ppl_ratio_err = s.ppl_ratio * s.log_ppl_ratio_err;
    s.ppl_diff = s.ppl_q - s.ppl_base;
    s.ppl_diff_err = std::sqrt(std::max(
        0.0, s.ppl_q_err * s.ppl_q_err + s.ppl_base_err * s.ppl_base_err - 2 * s.ppl_q * s.ppl_base * cov));
    const MeanErr k = mean_err(kld_, kld2_, n);
    s.kld_mean = k.mean, s.kld_err = k.err;
    const MeanErr d = mean_err(dp_, dp2_, n);
    s.dp_mean = d.mean, s.dp_err = d.err;
    const MeanErr mse = mean_err(dp2_, dp4_, n);
    s.rms_dp = std::sqrt(mse.mean);
    s.rms_dp_err = s.rms_dp > 0 ? 0.5 / s.rms_dp * mse.err : 0;
    s.same_top = static_cast<double>(same_top_) / static_cast<double>(n);
    s.same_top_err = n > 1 ? std::sqrt(s.same_top * (1 - s.same_top) / static_cast<double>(n - 1)) : 0;
    if (with_quantiles) s.kld_quantiles = quantiles(kld_values_), s.dp_quantiles = quantiles(dp_values_);
    return s;
}

namespace {

void append(std::string& out, const char* fmt, auto... args) {
    char buf[256];
    std::snprintf(buf, sizeof buf, fmt, args...);
    out += buf;
}

}  // namespace

std::string kl_chunk_header() {
    return "chunk             PPL               ln(PPL(Q)/PPL(base))          KL Divergence              Δp "
           "RMS"
           "            Same top p\n";
}

std::string kl_chunk_line(int chunk, const KlStatistics& s) {
    std::string o;
    append(o, "%4d", chunk);
    append(o, "    %9.4lf ± %9.4lf", s.ppl_q, s.ppl_q_err);
    append(o, "    %10.5lf ± %10.5lf", s.log_ppl_ratio, s.log_ppl_ratio_err);
    append(o, "    %10.5lf ± %10.5lf", s.kld_mean, s.kld_err);
    append(o, "    %6.3lf ± %6.3lf %%", 100 * s.rms_dp, 100 * s.rms_dp_err);
    append(o, "    %6.3lf ± %6.3lf %%\n", 100 * s.same_top, 100 * s.same_top_err);
    return o;
}

std::string kl_report(const KlStatistics& s) {
    std::string o = "====== Perplexity statistics ======\n";
    append(o, "Mean PPL(Q)                   : %10.6lf ± %10.6lf\n", s.ppl_q, s.ppl_q_err);
    append(o, "Mean PPL(base)                : %10.6lf ± %10.6lf\n", s.ppl_base, s.ppl_base_err);
    append(o, "Cor(ln(PPL(Q)), ln(PPL(base))): %6.2lf%%\n", 100 * s.log_ppl_cor);
    append(o, "Mean ln(PPL(Q)/PPL(base))     : %10.6lf ± %10.6lf\n", s.log_ppl_ratio, s.log_ppl_ratio_err);
    append(o, "Mean PPL(Q)/PPL(base)         : %10.6lf ± %10.6lf\n", s.ppl_ratio, s.ppl_ratio_err);
    append(o, "Mean PPL(Q)-PPL(base)         : %10.6lf ± %10.6lf\n", s.ppl_diff, s.ppl_diff_err);
    o += "\n====== KL divergence statistics ======\n";
    append(o, "Mean    KLD: %10.6lf ± %10.6lf\n", s.kld_mean, s.kld_err);
    if (!s.kld_quantiles.empty()) {
        const std::pair<const char*, double> kld_rows[] = {
            {"Maximum KLD", 1.0},  {"99.9%   KLD", 0.999}, {"99.0%   KLD", 0.99}, {"95.0%   KLD", 0.95},
            {"90.0%   KLD", 0.90}, {"Median  KLD", 0.5},   {"10.0%   KLD", 0.10}, {" 5.0%   KLD", 0.05},
            {" 1.0%   KLD", 0.01}, {" 0.1%   KLD", 0.001}, {"Minimum KLD", 0.0}};
        for (const auto& [label, q] : kld_rows) append(o, "%s: %10.6f\n", label, s.kld_quantile(q));
    }
    o += "\n====== Token probability statistics ======\n";
    append(o, "Mean    Δp: %6.3lf ± %5.3lf %%\n", 100 * s.dp_mean, 100 * s.dp_err);
    if (!s.dp_quantiles.empty()) {
        const std::pair<const char*, double> dp_rows[] = {
            {"Maximum Δp", 1.0},  {"99.9%   Δp", 0.999}, {"99.0%   Δp", 0.99}, {"95.0%   Δp", 0.95},
            {"90.0%   Δp", 0.90}, {"75.0%   Δp", 0.75},  {"Median  Δp", 0.5},  {"25.0%   Δp", 0.25},
            {"10.0%   Δp", 0.10}, {" 5.0%   Δp", 0.05},  {" 1.0%   Δp", 0.01}, {" 0.1%   Δp", 0.001},
            {"Minimum Δp", 0.0}};
        for (const auto& [label, q] : dp_rows) append(o, "%s: %6.3lf%%\n", label, 100 * s.dp_quantile(q));
    }
    append(o, "RMS Δp    : %6.3lf ± %5.3lf %%\n", 100 * s.rms_dp, 100 * s.rms_dp_err);
    append(o, "Same top p: %6.3lf ± %5.3lf %%\n", 100 * s.same_top, 100 * s.same_top_err);
    return o;
}

}  // namespace strata
