// Self-speculative decoding: greedy output equals plain greedy decoding token for token; sampling keeps the
// target's distribution.
#include <map>

#include "core/speculative.h"
#include "core/tokenizer.h"
#include "test_util.h"

using namespace strata;
using namespace strata::test;

namespace {

std::vector<int32_t> plain(const std::shared_ptr<const Model>& m, const std::vector<int32_t>& prompt, int n,
                           const SamplerParams& sp = {0.f}) {
    ForwardOptions fo;
    fo.n_ctx = 512;
    fo.n_threads = 2;
    Forward f(m, make_plan(*m), fo);
    Sampler s(sp);
    GenerateOptions go;
    go.max_new_tokens = n;
    go.stop_at_eog = false;
    int pos = 0;
    return generate(f, s, prompt, pos, go, nullptr, nullptr);
}

std::vector<int32_t> speculative(const std::shared_ptr<const Model>& m, const std::vector<int32_t>& prompt, int n,
                                 const std::string& draft, int k, bool adaptive, SpeculativeStats* ss = nullptr,
                                 const SamplerParams& sp = {0.f}) {
    ForwardOptions fo;
    fo.n_ctx = 512;
    fo.n_threads = 2;
    SpeculativeOptions so;
    so.draft_max = k;
    so.adaptive = adaptive;
    SpeculativeDecoder d(m, make_plan(*m), make_plan(*m, draft), fo, so);
    Sampler s(sp);
    GenerateOptions go;
    go.max_new_tokens = n;
    go.stop_at_eog = false;
    return d.generate(prompt, s, go, nullptr, nullptr, ss);
}

}  // namespace

TEST(Speculative, GreedyEqualsPlainGreedyOnStories) {
    STRATA_REQUIRE_FILE(shared_model("stories260K.gguf"));
    auto m = Model::load(shared_model("stories260K.gguf"));
    for (const char* text : {"", "Once upon a time", "The little dog was sad because"}) {
        const std::vector<int32_t> prompt = m->tokenizer().encode(text, true, false);
        const std::vector<int32_t> ref = plain(m, prompt, 128);
        for (const char* draft : {"0,2,4", "0:3", "::2", "0:5"}) {
            for (int k : {1, 3, 6}) {
                for (bool adaptive : {false, true}) {
                    SpeculativeStats ss;
                    EXPECT_EQ(speculative(m, prompt, 128, draft, k, adaptive, &ss), ref)
                        << "prompt '" << text << "' draft " << draft << " k " << k << " adaptive " << adaptive;
                    EXPECT_GT(ss.rounds, 0);
                    EXPECT_LE(ss.accepted, ss.drafted);
                }
            }
        }
    }
}

TEST(Speculative, GreedyEqualsPlainGreedyOnSmolLM2) {
    STRATA_REQUIRE_FILE(smollm2_path());
    auto m = Model::load(smollm2_path());
    for (const char* text : {"The capital of France is", "def fibonacci(n):"}) {
        const std::vector<int32_t> prompt = m->tokenizer().encode(text, true, false);
        const std::vector<int32_t> ref = plain(m, prompt, 128);
        for (const auto& [draft, k] : std::vector<std::pair<std::string, int>>{{"0:20,24:", 4}, {"0:10,10:20:2,20:", 2}}) {
            SpeculativeStats ss;
            EXPECT_EQ(speculative(m, prompt, 128, draft, k, true, &ss), ref) << text << " / " << draft;
            std::printf("[ spec ] '%s' draft %s: %d drafted, %d accepted (%.0f%%), %.2f per round\n", text, draft.c_str(),
                        ss.drafted, ss.accepted, 100 * ss.acceptance_rate(), ss.mean_accepted());
        }
    }
}

// With sampling, the marginal distribution of the second generated token (the first one a draft proposes)
// must be the target's. Total variation between the two empirical distributions stays within sampling noise.
TEST(Speculative, SamplingKeepsTheTargetDistribution) {
    STRATA_REQUIRE_FILE(shared_model("stories260K.gguf"));
    auto m = Model::load(shared_model("stories260K.gguf"));
    const std::vector<int32_t> prompt = m->tokenizer().encode("Once upon a time, there was a", true, false);
    const int N = 3000;
    std::map<int32_t, int> a, b, c;
    for (int i = 0; i < N; ++i) {
        SamplerParams sp;
        sp.temperature = 1.0f;
        sp.top_k = 0;
        sp.top_p = 1.0f;
        sp.min_p = 0.0f;
        sp.seed = 1000 + i;
        a[plain(m, prompt, 2, sp)[1]]++;
        sp.seed = 900000 + i;
        b[speculative(m, prompt, 2, "0,4", 3, false, nullptr, sp)[1]]++;
        sp.seed = 500000 + i;
        c[plain(m, prompt, 2, sp)[1]]++;
    }
    auto tv = [&](std::map<int32_t, int>& x, std::map<int32_t, int>& y) {
        std::map<int32_t, int> keys = x;
        for (auto& [k, v] : y) keys[k];
        double d = 0;
        for (auto& [k, v] : keys) d += std::abs(x[k] - y[k]) / static_cast<double>(N);
        return d / 2;
    };
    const double noise = tv(a, c);  // two plain runs: what sampling noise alone gives
    const double spec = tv(a, b);
    std::printf("[ spec ] total variation plain/plain %.3f, plain/speculative %.3f (%zu distinct tokens)\n", noise, spec,
                a.size());
    EXPECT_LT(spec, std::max(0.06, 2.0 * noise));
}
