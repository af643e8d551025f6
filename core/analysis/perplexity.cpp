#include "core/analysis/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <numeric>
#include <stdexcept>

#include "core/text/tokenizer.h"

namespace strata {

std::vector<int32_t> tokenize_text(const Model& model, const std::string& text) {
    return model.tokenizer().encode(text, /*add_special=*/true, /*parse_special=*/false);
}

int perplexity_chunks(const Model& model, size_t n_tokens, const PerplexityOptions& o) {
    if (o.n_ctx < 8) throw std::invalid_argument("perplexity needs a context of at least 8 tokens (-c)");
    const size_t have = n_tokens / static_cast<size_t>(o.n_ctx);
    if (have < 2)
        throw std::invalid_argument("the text has " + std::to_string(n_tokens) + " tokens; perplexity at context " +
                                    std::to_string(o.n_ctx) + " needs at least " + std::to_string(2 * o.n_ctx) +
                                    " (2 chunks): give a longer text or a smaller -c");
    const int n = static_cast<int>(std::min<size_t>(have, 1u << 30));
    return o.max_chunks > 0 ? std::min(n, o.max_chunks) : n;
}

uint64_t hash_tokens(std::span<const int32_t> tokens) {
    uint64_t h = 1469598103934665603ull;
    for (int32_t t : tokens) {
        uint32_t u = static_cast<uint32_t>(t);
        for (int i = 0; i < 4; ++i, u >>= 8) h = (h ^ (u & 0xff)) * 1099511628211ull;
    }
    return h;
}

namespace {

constexpr char kMagic[8] = {'S', 'T', 'R', 'K', 'L', 'B', '1', '\0'};

// log(sum(exp(logits))) over the vocab, in double.
double logsumexp(const float* l, int n) {
    const float mx = *std::max_element(l, l + n);
    double s = 0;
    for (int i = 0; i < n; ++i) s += std::exp(static_cast<double>(l[i] - mx));
    return mx + std::log(s);
}

int argmax(const float* l, int n) { return static_cast<int>(std::max_element(l, l + n) - l); }

}  // namespace

void save_base_logits(const std::string& path, const BaseLogits& b) {
    std::ofstream out(path, std::ios::binary);
    if (!out) throw std::runtime_error("cannot write " + path);
    const int32_t hdr[4] = {b.n_vocab, b.n_ctx, b.n_chunks, b.top_k};
    const uint64_t n = b.n_scored();
    out.write(kMagic, sizeof kMagic);
    out.write(reinterpret_cast<const char*>(hdr), sizeof hdr);
    out.write(reinterpret_cast<const char*>(&b.tokens_hash), sizeof b.tokens_hash);
    out.write(reinterpret_cast<const char*>(&n), sizeof n);
    out.write(reinterpret_cast<const char*>(b.top_ids.data()), static_cast<std::streamsize>(b.top_ids.size() * 4));
    out.write(reinterpret_cast<const char*>(b.top_logp.data()), static_cast<std::streamsize>(b.top_logp.size() * 4));
    if (!out) throw std::runtime_error("write failed: " + path);
}

BaseLogits load_base_logits(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path);
    char magic[8];
    int32_t hdr[4];
    BaseLogits b;
    uint64_t n = 0;
    in.read(magic, sizeof magic);
    in.read(reinterpret_cast<char*>(hdr), sizeof hdr);
    in.read(reinterpret_cast<char*>(&b.tokens_hash), sizeof b.tokens_hash);
    in.read(reinterpret_cast<char*>(&n), sizeof n);
    if (!in || std::memcmp(magic, kMagic, sizeof magic) != 0)
        throw std::runtime_error(path + " is not a strata base-logits file (write one with --save-logits)");
    b.n_vocab = hdr[0], b.n_ctx = hdr[1], b.n_chunks = hdr[2], b.top_k = hdr[3];
    if (b.n_vocab <= 0 || b.n_ctx <= 0 || b.n_chunks <= 0 || b.top_k <= 0 || b.top_k > b.n_vocab ||
        n > (1ull << 32) / static_cast<uint64_t>(b.top_k))
        throw std::runtime_error(path + ": corrupt header");
    b.top_ids.resize(n * static_cast<uint64_t>(b.top_k));
    b.top_logp.resize(b.top_ids.size());
    in.read(reinterpret_cast<char*>(b.top_ids.data()), static_cast<std::streamsize>(b.top_ids.size() * 4));
    in.read(reinterpret_cast<char*>(b.top_logp.data()), static_cast<std::streamsize>(b.top_logp.size() * 4));
    if (!in) throw std::runtime_error(path + ": truncated");
    return b;
}

PerplexityResult perplexity(Forward& fwd, std::span<const int32_t> tokens, const PerplexityOptions& o,
                            const PerplexityHooks& hooks) {
    const Model& m = fwd.model();
    const int n_vocab = m.config().vocab_size;
    const int n_ctx = o.n_ctx;
    if (fwd.n_ctx() < n_ctx)
        throw std::invalid_argument("the forward pass context (" + std::to_string(fwd.n_ctx()) +
                                    ") is smaller than the perplexity context " + std::to_string(n_ctx));
    const int n_chunks = perplexity_chunks(m, tokens.size(), o);
    const int first = n_ctx / 2;
    const int per_chunk = n_ctx - first - 1;
    const bool add_bos = m.tokenizer().add_bos() && m.tokenizer().bos_id() >= 0;
    const uint64_t hash = hash_tokens(tokens.first(static_cast<size_t>(n_chunks) * n_ctx));

    const BaseLogits* base = hooks.kl_base;
    if (base) {
        auto mismatch = [](const std::string& what, long long a, long long b) {
            return std::runtime_error("--kl-base was saved with " + what + " " + std::to_string(a) + ", this run has " +
                                      std::to_string(b) + ": use the same model vocabulary, text, -c and --chunks");
        };
        if (base->n_vocab != n_vocab) throw mismatch("vocabulary", base->n_vocab, n_vocab);
        if (base->n_ctx != n_ctx) throw mismatch("context", base->n_ctx, n_ctx);
        if (base->n_chunks != n_chunks) throw mismatch("chunks", base->n_chunks, n_chunks);
        if (base->n_scored() != static_cast<size_t>(n_chunks) * per_chunk)
            throw std::runtime_error("--kl-base holds " + std::to_string(base->n_scored()) + " scored tokens, expected " +
                                     std::to_string(static_cast<size_t>(n_chunks) * per_chunk));
        if (base->tokens_hash != hash)
            throw std::runtime_error("--kl-base was saved over a different text (token hash differs)");
    }
    BaseLogits* save = hooks.save;
    if (save) {
        if (save->top_k <= 0 || save->top_k > n_vocab) save->top_k = std::min(32, n_vocab);
        save->n_vocab = n_vocab, save->n_ctx = n_ctx, save->n_chunks = n_chunks, save->tokens_hash = hash;
        save->top_ids.clear();
        save->top_logp.clear();
    }

    PerplexityResult r;
    r.n_chunks = n_chunks;
    double nll = 0, nll2 = 0, kl = 0, kl2 = 0;
    int64_t agree = 0;
    std::vector<int32_t> chunk(static_cast<size_t>(n_ctx));
    std::vector<int> order(static_cast<size_t>(n_vocab));
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
        for (int i = 0; i < per_chunk; ++i) {
            const float* l = logits.data() + static_cast<size_t>(i) * n_vocab;  // (vocab) at position first + i
            const double lse = logsumexp(l, n_vocab);
            const double tok_nll = lse - l[chunk[static_cast<size_t>(first + i + 1)]];
            nll += tok_nll;
            nll2 += tok_nll * tok_nll;
            if (save) {
                const int k = save->top_k;
                std::iota(order.begin(), order.end(), 0);
                auto better = [l](int a, int b) { return l[a] > l[b] || (l[a] == l[b] && a < b); };
                std::partial_sort(order.begin(), order.begin() + k, order.end(), better);
                for (int j = 0; j < k; ++j) {
                    save->top_ids.push_back(order[static_cast<size_t>(j)]);
                    save->top_logp.push_back(static_cast<float>(l[order[static_cast<size_t>(j)]] - lse));
                }
            }
            if (base) {
                const size_t row = static_cast<size_t>(r.count) * base->top_k;
                const int32_t* ids = base->top_ids.data() + row;
                const float* lp = base->top_logp.data() + row;
                double d = 0, p_in = 0, q_in = 0;
                for (int j = 0; j < base->top_k; ++j) {
                    const double p = std::exp(static_cast<double>(lp[j]));
                    const double logq = l[ids[j]] - lse;
                    d += p * (lp[j] - logq);
                    p_in += p;
                    q_in += std::exp(logq);
                }
                const double p_rest = 1 - p_in, q_rest = std::max(1 - q_in, 1e-30);
                if (p_rest > 1e-12) d += p_rest * std::log(p_rest / q_rest);
                d = std::max(d, 0.0);  // rounding can take an exact match a hair below 0
                kl += d;
                kl2 += d * d;
                agree += argmax(l, n_vocab) == ids[0];
            }
            r.count++;
        }
        if (hooks.on_chunk) hooks.on_chunk(c + 1, n_chunks, std::exp(nll / static_cast<double>(r.count)));
    }
    const double n = static_cast<double>(r.count);
    r.mean_nll = nll / n;
    r.ppl = std::exp(r.mean_nll);
    const double var = nll2 / n - r.mean_nll * r.mean_nll;
    r.ppl_err = var > 0 && r.count > 1 ? r.ppl * std::sqrt(var / (n - 1)) : 0;
    if (base) {
        r.has_kl = true;
        r.kl_mean = kl / n;
        const double kvar = kl2 / n - r.kl_mean * r.kl_mean;
        r.kl_err = kvar > 0 && r.count > 1 ? std::sqrt(kvar / (n - 1)) : 0;
        r.top1_agree = static_cast<double>(agree) / n;
    }
    return r;
}

}  // namespace strata
