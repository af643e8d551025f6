#include "core/generate.h"

#include <chrono>
#include <stdexcept>

#include "core/tokenizer.h"

namespace strata {

std::vector<int32_t> generate(Forward& fwd, Sampler& sampler, std::span<const int32_t> prompt, int& pos,
                              const GenerateOptions& opts, const TokenCallback& on_token, GenerationStats* stats) {
    using clock = std::chrono::steady_clock;
    if (prompt.empty()) throw std::invalid_argument("generate: empty prompt (nothing to condition on)");
    const Tokenizer& tok = fwd.model().tokenizer();
    GenerationStats st;
    std::vector<int32_t> out;

    auto t0 = clock::now();
    std::span<const float> logits = fwd.eval(prompt, pos);
    pos += static_cast<int>(prompt.size());
    for (int32_t t : prompt) sampler.accept(t);
    st.prompt_tokens = static_cast<int>(prompt.size());
    st.prompt_seconds = std::chrono::duration<double>(clock::now() - t0).count();

    t0 = clock::now();
    while (opts.max_new_tokens < 0 || static_cast<int>(out.size()) < opts.max_new_tokens) {
        if (opts.abort && opts.abort->load(std::memory_order_relaxed)) {
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
