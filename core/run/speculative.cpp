#include "core/run/speculative.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <unordered_map>

#include "core/text/tokenizer.h"

namespace strata {

namespace {

using clock_type = std::chrono::steady_clock;
double since(clock_type::time_point t0) { return std::chrono::duration<double>(clock_type::now() - t0).count(); }

double prob_of(const std::vector<TokenProb>& d, int32_t id) {
    for (const TokenProb& t : d)
        if (t.id == id) return t.p;
    return 0.0;
}

// max(0, p - q), unnormalised (Sampler::draw normalises).
std::vector<TokenProb> residual(const std::vector<TokenProb>& p, const std::vector<TokenProb>& q) {
    std::unordered_map<int32_t, double> qm;
    for (const TokenProb& t : q) qm[t.id] = t.p;
    std::vector<TokenProb> r;
    for (const TokenProb& t : p) {
        const double v = t.p - (qm.count(t.id) ? qm[t.id] : 0.0);
        if (v > 0) r.push_back({t.id, v});
    }
    if (r.empty()) r = p;  // p == q: any draw from p is right
    return r;
}

}  // namespace

SpeculativeDecoder::SpeculativeDecoder(std::shared_ptr<const Model> model, Plan target, Plan draft,
                                       const ForwardOptions& fo, const SpeculativeOptions& so)
    : target_(model, std::move(target), fo), draft_(model, std::move(draft), fo), opts_(so) {
    if (so.draft_max < 1) throw std::invalid_argument("--draft-max must be at least 1");
}

std::vector<int32_t> SpeculativeDecoder::generate(std::span<const int32_t> prompt, Sampler& sampler,
                                                  const GenerateOptions& opts, const TokenCallback& on_token,
                                                  GenerationStats* stats, SpeculativeStats* spec) {
    int target_pos = 0, draft_pos = 0;
    return speculative_generate(target_, draft_, prompt, target_pos, draft_pos, sampler, opts_, opts, on_token,
                                stats, spec);
}

std::vector<int32_t> speculative_generate(Forward& target, Forward& draft, std::span<const int32_t> tokens,
                                          int& target_pos, int& draft_pos, Sampler& sampler,
                                          const SpeculativeOptions& so, const GenerateOptions& opts,
                                          const TokenCallback& on_token, GenerationStats* stats,
                                          SpeculativeStats* spec) {
    if (so.draft_max < 1) throw std::invalid_argument("--draft-max must be at least 1");
    if (&target.model() != &draft.model())
        throw std::invalid_argument("self-speculation: the draft must be a plan of the target's model");
    if (draft.n_ctx() != target.n_ctx())
        throw std::invalid_argument("self-speculation: the draft's context differs from the target's");
    if (target_pos < 0 || draft_pos < 0 || draft_pos > target_pos ||
        static_cast<size_t>(target_pos) >= tokens.size())
        throw std::invalid_argument("speculative_generate: the caches must hold a proper prefix of the tokens");
    const Tokenizer& tok = target.model().tokenizer();
    const size_t V = static_cast<size_t>(target.model().config().vocab_size);
    const int n_ctx = target.n_ctx();
    GenerationStats st;
    SpeculativeStats ss;
    std::vector<int32_t> seq(tokens.begin(), tokens.end());  // every token: position i holds seq[i]
    std::vector<int32_t> out;

    auto t0 = clock_type::now();
    const auto prompt = tokens.subspan(static_cast<size_t>(target_pos));
    std::span<const float> last = target.eval(prompt, target_pos);
    std::vector<float> logits(last.begin(), last.end());
    for (int32_t t : prompt) sampler.accept(t);
    st.prompt_tokens = static_cast<int>(prompt.size());
    st.prompt_seconds = since(t0);

    t0 = clock_type::now();
    clock_type::time_point d0;
    int n = static_cast<int>(seq.size());  // target cache valid for [0, n)
    int m = draft_pos;                     // draft cache valid for [0, m); catches up in the first round
    bool done = false;
    // Emits one token: returns false once generation must stop (limit, end of generation, callback).
    auto emit = [&](int32_t t) {
        sampler.accept(t);
        out.push_back(t);
        if (opts.stop_at_eog && tok.is_eog(t)) {
            st.stopped_by_eog = true;
            return false;
        }
        if (on_token && !on_token(t)) return false;
        if (opts.max_new_tokens >= 0 && static_cast<int>(out.size()) >= opts.max_new_tokens) return false;
        return true;
    };

    int32_t next = sampler.draw(sampler.distribution(logits));  // the target's token after the prompt
    done = !emit(next);
    int k = so.draft_max;
    while (!done && n < n_ctx) {
        if (opts.abort && opts.abort->load(std::memory_order_relaxed)) {
            st.aborted = true;
            break;
        }
        const int kk = std::max(0, std::min(k, n_ctx - n - 1));  // room for next + kk drafted tokens
        // ---- draft: catch up on accepted tokens, then propose kk tokens ------------------------------
        d0 = clock_type::now();
        std::vector<int32_t> drafted;
        std::vector<std::vector<TokenProb>> q;
        if (kk > 0) {
            std::vector<int32_t> feed(seq.begin() + m, seq.end());
            feed.push_back(next);
            Sampler probe = sampler;  // the same history as the target sees, for penalties
            std::span<const float> dl = draft.eval(feed, m);
            for (int i = 0; i < kk; ++i) {
                q.push_back(probe.distribution(dl));
                const int32_t d = sampler.draw(q.back());
                drafted.push_back(d);
                probe.accept(d);
                if (i + 1 < kk) dl = draft.eval(std::span<const int32_t>(&drafted.back(), 1), n + 1 + i);
            }
        }
        ss.draft_seconds += since(d0);

        // ---- verify: the target evaluates next + drafted in one batch --------------------------------
        const auto v0 = clock_type::now();
        std::vector<int32_t> batch = {next};
        batch.insert(batch.end(), drafted.begin(), drafted.end());
        std::span<const float> all = target.eval(batch, n, /*all_logits=*/true);
        ss.verify_seconds += since(v0);
        ++ss.rounds;
        ss.drafted += kk;

        seq.push_back(next);
        Sampler probe = sampler;  // history up to and including `next`
        int accepted = 0;
        int32_t correction = -1;
        for (int i = 0; i < kk && !done; ++i) {
            const std::span<const float> row = all.subspan(static_cast<size_t>(i) * V, V);
            const std::vector<TokenProb> p = probe.distribution(row);
            const double pd = prob_of(p, drafted[static_cast<size_t>(i)]);
            const double qd = prob_of(q[static_cast<size_t>(i)], drafted[static_cast<size_t>(i)]);
            const bool keep = qd > 0 && (pd >= qd || sampler.uniform() < pd / qd);
            if (!keep) {
                correction = sampler.draw(residual(p, q[static_cast<size_t>(i)]));
                break;
            }
            ++accepted;
            seq.push_back(drafted[static_cast<size_t>(i)]);
            probe.accept(drafted[static_cast<size_t>(i)]);
            done = !emit(drafted[static_cast<size_t>(i)]);
        }
        ss.accepted += accepted;
        // The target cache now holds next and the accepted drafts; later positions are simply overwritten.
        // The draft evaluated next and drafts 1..kk-1: it keeps next and the accepted ones among those.
        const int n_old = n;
        n = static_cast<int>(seq.size());
        if (kk > 0) m = n_old + 1 + std::min(accepted, kk - 1);
        if (done) break;
        if (correction < 0) {  // every draft accepted: the target's own next token is free
            const std::span<const float> row = all.subspan(static_cast<size_t>(kk) * V, V);
            correction = sampler.draw(probe.distribution(row));
        }
        next = correction;
        done = !emit(next);
        if (so.adaptive) {
            if (accepted == kk) k = std::min(k + 1, so.draft_max);
            else if (accepted == 0) k = std::max(1, k - 1);
        }
    }
    st.generated_tokens = static_cast<int>(out.size());
    // Comparable with plain decoding, which evaluates every generated token but the last one by one.
    st.decode_evals = std::max(0, st.generated_tokens - 1);
    st.generate_seconds = since(t0);
    target_pos = n;
    draft_pos = m;
    if (stats) *stats = st;
    if (spec) *spec = ss;
    return out;
}

}  // namespace strata
