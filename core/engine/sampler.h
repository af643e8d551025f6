// Turning logits into the next token: greedy, or temperature with top-k / top-p / min-p, and a
// repetition penalty; a seeded RNG makes a run reproducible.
#pragma once
#include <cstdint>
#include <deque>
#include <random>
#include <span>
#include <vector>

namespace strata {

// SamplerParams::seed that asks for a fresh random seed (llama.cpp's --seed -1): the Sampler draws one from
// std::random_device and keeps it in its params(), so a run can be repeated with that seed.
inline constexpr uint64_t kRandomSeed = UINT64_MAX;

// A seed for kRandomSeed (63 bits, so it can be given back as --seed); any other seed as it is.
uint64_t resolve_seed(uint64_t seed);

struct SamplerParams {
    float temperature = 0.8f;  // <= 0: greedy (argmax)
    int top_k = 40;            // <= 0: off
    float top_p = 0.95f;       // >= 1: off
    float min_p = 0.05f;       // <= 0: off
    float repeat_penalty = 1.0f;  // 1: off (llama.cpp's rule: divide positive logits, multiply negative)
    int repeat_last_n = 64;
    uint64_t seed = kRandomSeed;  // kRandomSeed: a new one per Sampler (see params().seed)
};

struct TokenProb {
    int32_t id;
    double p;
};

class Sampler {
public:
    explicit Sampler(const SamplerParams& p);
    // Picks the next token from the logits (vocab); does not record it (call accept()).
    int32_t sample(std::span<const float> logits);
    // The distribution sample() draws from (penalty, top-k, top-p, min-p, temperature applied), highest
    // first; greedy gives the argmax with probability 1. Speculative decoding compares two of these.
    std::vector<TokenProb> distribution(std::span<const float> logits);
    int32_t draw(const std::vector<TokenProb>& dist);  // one draw from the seeded RNG
    double uniform();                                   // U[0, 1) from the same RNG
    void accept(int32_t token);  // remember for the repetition penalty
    void reset();                // forget history (the RNG continues)
    const SamplerParams& params() const { return p_; }  // seed: the one in use (drawn for kRandomSeed)

private:
    SamplerParams p_;
    std::mt19937_64 rng_;
    std::deque<int32_t> recent_;
    std::vector<std::pair<float, int32_t>> cand_;  // (logit, id) scratch
};

int32_t argmax(std::span<const float> logits);

}  // namespace strata
