// A model's next-token distributions scored against a base's (records of a llama.cpp KL-divergence base file,
// core/analysis/logits_file.h), with llama.cpp's definitions and statistics, so that the numbers stand beside
// those of `llama-perplexity --kl-divergence`:
//   KLD       sum_i p_i (log p_i - log q_i) over the vocabulary entries within 16 nats of the base's top
//             (p: the base, decoded from its record; q: the model): the full KL up to those floored
//             entries, each below 1e-7 of probability; not a top-k bound
//   Δp        q(next token) - p(next token)
//   same top  the model's most probable token (first on ties) is the base's (first of the highest codes)
//   PPL(Q), PPL(base): exp of the mean negative log-likelihood of the text's next tokens under each.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace strata {

struct TokenKl {
    double nll = 0;         // -log q(next token)
    double nll_base = 0;    // -log p(next token), as coded
    double kld = 0;         // nats
    double p_diff = 0;      // q(next) - p(next)
    bool same_top = false;
};

// One position: the model's logits (n_vocab) against the base's record (record_values(n_vocab) uint16,
// already checked by check_record). Throws when the record's probabilities do not sum to about 1 (a corrupt
// file).
TokenKl score_position(const float* logits, int n_vocab, const uint16_t* record, int next_token);

// llama.cpp's summary, value ± uncertainty where it gives one (the standard error of the mean; for ratios and
// differences with the covariance of ln PPL(Q) and ln PPL(base) taken into account).
struct KlStatistics {
    int64_t count = 0;  // positions scored
    double ppl_q = 0, ppl_q_err = 0, ppl_base = 0, ppl_base_err = 0;
    double log_ppl_cor = 0;  // correlation of the per-token ln-likelihoods, a fraction
    double log_ppl_ratio = 0, log_ppl_ratio_err = 0, ppl_ratio = 0, ppl_ratio_err = 0;
    double ppl_diff = 0, ppl_diff_err = 0;
    double kld_mean = 0, kld_err = 0;
    double rms_dp = 0, rms_dp_err = 0;   // root mean square of Δp
    double dp_mean = 0, dp_err = 0;
    double same_top = 0, same_top_err = 0;  // fractions
    // Order statistics (filled when asked for: they sort every position's value). Quantiles interpolate
    // linearly between neighbours, as llama.cpp's do; index i of kQuantiles below.
    std::vector<double> kld_quantiles, dp_quantiles;
    static constexpr double kQuantiles[] = {1.0,  0.999, 0.99, 0.95, 0.90,  0.75, 0.5,
                                            0.25, 0.10,  0.05, 0.01, 0.001, 0.0};
    double kld_quantile(double q) const;  // one of kQuantiles; throws for another
    double dp_quantile(double q) const;
};

class KlAccumulator {
public:
    void add(const TokenKl& t);
    int64_t count() const { return count_; }
    // with_quantiles: also sort the per-position values for the order statistics.
    KlStatistics statistics(bool with_quantiles = true) const;

private:
    int64_t count_ = 0, same_top_ = 0;
    double nll_ = 0, nll2_ = 0, base_ = 0, base2_ = 0, nll_base_ = 0, kld_ = 0, kld2_ = 0;
    double dp_ = 0, dp2_ = 0, dp4_ = 0;
    std::vector<float> kld_values_, dp_values_;  // (count) 8 bytes per scored position
};

// llama.cpp's words: the per-chunk table (a header line, then one line per chunk with the running figures)
// and the closing report ("====== Perplexity statistics ======", "Mean PPL(Q)", ..., "Same top p").
std::string kl_chunk_header();
std::string kl_chunk_line(int chunk, const KlStatistics& running);
std::string kl_report(const KlStatistics& s);

}  // namespace strata
