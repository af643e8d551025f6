#include "core/run/generate.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "core/text/tokenizer.h"

namespace strata {

std::vector<int32_t> generate(Forward& fwd, Sampler& sampler, std::span<const int32_t> prompt, int& pos,
                              const GenerateOptions& opts, const TokenCallback& on_token, GenerationStats* stats) {
    using clock = std::chrono::steady_clock;
    if (prompt.empty()) throw std::invalid_argument("generate: empty prompt (nothing to condition on)");
    const Tokenizer& tok = fwd.model().tokenizer();
    GenerationStats st;
    std::vector<int32_t> out;

    const auto aborted = [&] { return opts.abort && opts.abort->load(std::memory_order_relaxed); };
    auto t0 = clock::now();
    // The prompt in the forward pass's own batches (the same split eval makes, so the same numbers), with the
    // abort flag checked between them: Ctrl-C during a long prefill stops within one batch.
    std::span<const float> logits;
    const size_t batch = static_cast<size_t>(std::max(1, fwd.max_batch()));
    for (size_t done = 0; done < prompt.size(); done += batch) {
        if (aborted()) {
            st.aborted = true;
            break;
        }
        const std::span<const int32_t> part = prompt.subspan(done, std::min(batch, prompt.size() - done));
        logits = fwd.eval(part, pos);
        pos += static_cast<int>(part.size());
        for (int32_t t : part) sampler.accept(t);
        st.prompt_tokens += static_cast<int>(part.size());
    }
    st.prompt_seconds = std::chrono::duration<double>(clock::now() - t0).count();
    if (st.aborted) {
        if (stats) *stats = st;
        return out;
    }

    t0 = clock::now();
    while (opts.max_new_tokens < 0 || static_cast<int>(out.size()) < opts.max_new_tokens) {
        if (aborted()) {
            st.aborted = true;
            break;
        }
        const int32_t next = sampler.sample(logits);
        sampler.accept(next);
        out.push_back(next);
        if (opts.stop_at_eog && tok.is_eog(next)) {
            st.stopped_by_eog = true;
            break;
        }
        if (on_token && !on_token(next)) break;
        if (opts.max_new_tokens >= 0 && static_cast<int>(out.size()) >= opts.max_new_tokens) break;
        if (pos >= fwd.n_ctx()) break;  // the context is full: stop rather than overflow
        const int32_t one[1] = {next};
        logits = fwd.eval(one, pos);
        ++pos;
        ++st.decode_evals;
    }
    st.generated_tokens = static_cast<int>(out.size());
    st.generate_seconds = std::chrono::duration<double>(clock::now() - t0).count();
    if (stats) *stats = st;
    return out;
}

}  // namespace strata
