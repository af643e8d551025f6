#include "core/analysis/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <optional>
#include <stdexcept>

#include "core/text/tokenizer.h"

namespace strata {

std::vector<int32_t> tokenize_text(const Model& model, const std::string& text) {
    return model.tokenizer().encode(text, /*add_special=*/true, /*parse_special=*/false);
}

int perplexity_chunks(const Model& model, size_t n_tokens, const PerplexityOptions& o, int min_chunks) {
    if (o.n_ctx < 8) throw std::invalid_argument("perplexity needs a context of at least 8 tokens (-c)");
    const size_t have = n_tokens / static_cast<size_t>(o.n_ctx);
    min_chunks = std::max(min_chunks, 1);
    if (have < static_cast<size_t>(min_chunks))
        throw std::invalid_argument("the text has " + std::to_string(n_tokens) + " tokens; perplexity at context " +
                                    std::to_string(o.n_ctx) + " needs at least " +
                                    std::to_string(static_cast<size_t>(min_chunks) * o.n_ctx) + " (" +
                                    std::to_string(min_chunks) + " chunks): give a longer text or a smaller -c");
    const int n = static_cast<int>(std::min<size_t>(have, 1u << 30));
    return o.max_chunks > 0 ? std::min(n, o.max_chunks) : n;
}

namespace {

// -log softmax(logits)[next]: the maximum, then a double sum of float terms.
double nll_of(const float* l, int n, int next) {
    const float hi = *std::max_element(l, l + n);
    double s = 0;
    for (int i = 0; i < n; ++i) s += std::exp(l[i] - hi);
    return hi + std::log(s) - l[next];
}

// A base must be for this model's vocabulary, this context and these tokens, and hold the chunks to score.
void check_base(const LogitsFileReader& base, int n_vocab, int n_ctx, int n_chunks, std::span<const int32_t> tokens) {
    const LogitsFileHeader& h = base.header();
    const std::string& f = base.name();
    if (base.records_read() != 0) throw std::logic_error("perplexity needs a base reader at its first record");
    if (h.n_vocab != n_vocab)
        throw std::runtime_error(f + " was made with a vocabulary of " + std::to_string(h.n_vocab) +
                                 " tokens, this model has " + std::to_string(n_vocab) +
                                 ": score a model with the base model's vocabulary");
    if (h.n_ctx != n_ctx)
        throw std::invalid_argument(f + " was made at a context of " + std::to_string(h.n_ctx) + " tokens, this run uses " +
                                    std::to_string(n_ctx));
    if (n_chunks > h.n_chunks)
        throw std::invalid_argument(f + " holds " + std::to_string(h.n_chunks) + " chunks, this run would score " +
                                    std::to_string(n_chunks));
    if (n_chunks > base.complete_chunks())
        throw std::runtime_error(f + " holds " + std::to_string(base.complete_chunks()) + " whole chunks of the " +
                                 std::to_string(h.n_chunks) + " its header announces (it was cut short): score at most " +
                                 std::to_string(base.complete_chunks()) + " with --chunks");
    const size_t n = static_cast<size_t>(n_chunks) * static_cast<size_t>(n_ctx);
    const auto diff = std::mismatch(tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(n), base.tokens().begin());
    if (diff.first != tokens.begin() + static_cast<std::ptrdiff_t>(n))
        throw std::invalid_argument("the tokens scored differ from " + f + "'s at token " +
                                    std::to_string(diff.first - tokens.begin()) +
                                    ": score the base's own tokens (they are in the file; no text needed)");
}

}  // namespace

PerplexityResult perplexity(Forward& fwd, std::span<const int32_t> tokens, const PerplexityOptions& o,
                            const PerplexityHooks& hooks) {
    const Model& m = fwd.model();
    const int n_vocab = m.config().vocab_size;
    const int n_ctx = o.n_ctx;
    if (fwd.n_ctx() < n_ctx)
        throw std::invalid_argument("the forward pass context (" + std::to_string(fwd.n_ctx()) +
                                    ") is smaller than the perplexity context " + std::to_string(n_ctx));
    LogitsFileReader* base = hooks.kl_base;
    const int n_chunks = perplexity_chunks(m, tokens.size(), o, base ? 1 : 2);
    const int first = n_ctx / 2;
    const int per_chunk = scored_per_chunk(n_ctx);
    const bool add_bos = m.tokenizer().add_bos() && m.tokenizer().bos_id() >= 0;
    const auto scored_tokens = tokens.first(static_cast<size_t>(n_chunks) * static_cast<size_t>(n_ctx));
    if (base) check_base(*base, n_vocab, n_ctx, n_chunks, scored_tokens);
    std::optional<LogitsFileWriter> writer;
    if (!hooks.save_base.empty()) writer.emplace(hooks.save_base, n_ctx, n_vocab, n_chunks, scored_tokens);

    // Positions are scored in pieces of kPiece, on the forward pass's threads; their records (a base's, this
    // run's) are all that is in memory of a base file: kPiece * 2 bytes * vocab each.
    constexpr int kPiece = 32;
    const size_t nv = record_values(n_vocab);
    std::vector<uint16_t> base_records(base ? kPiece * nv : 0), own_records(writer ? kPiece * nv : 0);
    std::vector<double> nlls(kPiece);
    std::vector<TokenKl> scores(kPiece);
    KlAccumulator kl;

    PerplexityResult r;
    r.n_chunks = n_chunks;
    double nll = 0, nll2 = 0;
    std::vector<int32_t> chunk(static_cast<size_t>(n_ctx));
    using clock = std::chrono::steady_clock;
    for (int c = 0; c < n_chunks; ++c) {
        const auto src = tokens.subspan(static_cast<size_t>(c) * n_ctx, static_cast<size_t>(n_ctx));
        std::copy(src.begin(), src.end(), chunk.begin());
        if (add_bos) chunk[0] = m.tokenizer().bos_id();
        if (hooks.before_chunk) hooks.before_chunk(c, chunk);
        // The first half only fills the cache; logits for the second half (its last token predicts nothing).
        const auto t0 = clock::now();
        fwd.eval(std::span<const int32_t>(chunk).first(static_cast<size_t>(first)), 0, false);
        const std::span<const float> logits =
            fwd.eval(std::span<const int32_t>(chunk).subspan(static_cast<size_t>(first)), first, true);
        r.eval_seconds += std::chrono::duration<double>(clock::now() - t0).count();
        r.tokens_evaluated += n_ctx;
        for (int p0 = 0; p0 < per_chunk; p0 += kPiece) {
            const int n = std::min(kPiece, per_chunk - p0);
            if (base) base->read_records(base_records.data(), static_cast<size_t>(n));
            fwd.parallel_for(n, [&](int64_t a, int64_t b) {
                for (int64_t i = a; i < b; ++i) {
                    const float* l = logits.data() + static_cast<size_t>(p0 + i) * n_vocab;  // (vocab)
                    const int next = chunk[static_cast<size_t>(first + p0 + i + 1)];
                    if (writer) nlls[i] = code_log_probs(l, n_vocab, next, own_records.data() + i * nv);
                    if (base) scores[i] = score_position(l, n_vocab, base_records.data() + i * nv, next);
                    if (base) nlls[i] = scores[i].nll;
                    if (!writer && !base) nlls[i] = nll_of(l, n_vocab, next);
                }
            });
            if (writer) writer->write_records(own_records.data(), static_cast<size_t>(n));
            for (int i = 0; i < n; ++i) {  // summed in order: the result does not depend on the threads
                nll += nlls[i];
                nll2 += nlls[i] * nlls[i];
                if (base) kl.add(scores[i]);
            }
            r.count += n;
        }
        if (hooks.on_chunk) hooks.on_chunk(c + 1, n_chunks, std::exp(nll / static_cast<double>(r.count)));
        if (base && hooks.on_kl_chunk) hooks.on_kl_chunk(c + 1, kl.statistics(false));
    }
    if (writer) writer->finish();
    const double n = static_cast<double>(r.count);
    r.mean_nll = nll / n;
    r.ppl = std::exp(r.mean_nll);
    const double var = nll2 / n - r.mean_nll * r.mean_nll;
    r.ppl_err = var > 0 && r.count > 1 ? r.ppl * std::sqrt(var / (n - 1)) : 0;
    if (base) {
        r.has_kl = true;
        r.kl = kl.statistics(true);
        r.kl_mean = r.kl.kld_mean, r.kl_err = r.kl.kld_err, r.top1_agree = r.kl.same_top;
    }
    return r;
}

}  // namespace strata
