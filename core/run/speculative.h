// Self-speculative decoding: a pruned plan of the same model drafts k tokens cheaply, the full plan checks
// them in one batched pass and keeps the longest agreeing prefix plus one token of its own. Both plans
// point at the same weights; the draft costs only its own KV slots. Greedy output equals plain greedy
// decoding token for token; with sampling, the speculative-sampling acceptance rule (accept a drafted
// token with probability min(1, p/q), else draw from the normalised max(0, p - q)) keeps the target's
// distribution.
#pragma once
#include <memory>
#include <span>
#include <vector>

#include "core/engine/forward.h"
#include "core/engine/sampler.h"
#include "core/run/generate.h"

namespace strata {

struct SpeculativeOptions {
    int draft_max = 4;     // tokens drafted per round, at most
    bool adaptive = true;  // grow k after a fully accepted round, shrink it after an early rejection
};

struct SpeculativeStats {
    int rounds = 0;    // verify passes
    int drafted = 0;   // tokens the draft proposed
    int accepted = 0;  // of which the target kept
    double draft_seconds = 0, verify_seconds = 0;
    double acceptance_rate() const { return drafted ? static_cast<double>(accepted) / drafted : 0; }
    double mean_accepted() const { return rounds ? static_cast<double>(accepted) / rounds : 0; }
    SpeculativeStats& operator+=(const SpeculativeStats& o) {
        rounds += o.rounds, drafted += o.drafted, accepted += o.accepted;
        draft_seconds += o.draft_seconds, verify_seconds += o.verify_seconds;
        return *this;
    }
};

// The self-speculative loop over two Forwards of one model: `target` (the full plan) and `draft` (a pruned plan
// with the same n_ctx). The caches hold tokens[0, target_pos) (target) and tokens[0, draft_pos) (draft),
// draft_pos <= target_pos; the rest of `tokens` is evaluated (the draft catches up lazily, in its first round),
// then generation goes on like strata::generate(): the sampler has accepted tokens[0, target_pos) and accepts the
// rest, and every token returned has been sampled from the target's distribution. On return target_pos and
// draft_pos say how many of tokens + returned tokens each cache holds. Positions past them hold rejected drafts:
// that is the KV rollback, in both plans - they are overwritten by whatever is evaluated there next.
std::vector<int32_t> speculative_generate(Forward& target, Forward& draft, std::span<const int32_t> tokens,
                                          int& target_pos, int& draft_pos, Sampler& sampler,
                                          const SpeculativeOptions& so, const GenerateOptions& opts,
                                          const TokenCallback& on_token, GenerationStats* stats,
                                          SpeculativeStats* spec);

// Two Forwards over one mapping, generating from position 0 (strata run, strata bench, strata profile).
class SpeculativeDecoder {
public:
    // target and draft must be plans of the same model.
    SpeculativeDecoder(std::shared_ptr<const Model> model, Plan target, Plan draft, const ForwardOptions& fo,
                       const SpeculativeOptions& so = {});

    // Evaluates the prompt from position 0 in both plans and generates like strata::generate().
    std::vector<int32_t> generate(std::span<const int32_t> prompt, Sampler& sampler, const GenerateOptions& opts,
                                  const TokenCallback& on_token, GenerationStats* stats, SpeculativeStats* spec);

    const Forward& target() const { return target_; }
    const Forward& draft() const { return draft_; }

private:
    Forward target_, draft_;
    SpeculativeOptions opts_;
};

}  // namespace strata
