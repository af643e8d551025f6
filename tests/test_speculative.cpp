// Self-speculative decoding: greedy output equals plain greedy decoding token for token; sampling keeps the
// target's distribution.
#include <map>

#include "core/analysis/draft_select.h"
#include "core/run/session.h"
#include "core/run/speculative.h"
#include "core/text/tokenizer.h"
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

namespace {

// A greedy conversation, turn after turn (the cache reused across turns, a /continue in the middle), with or
// without a draft: the replies' tokens.
std::vector<std::vector<int32_t>> converse(const std::shared_ptr<const Model>& m, const std::string& tmpl,
                                           const std::string& draft, int k, SpeculativeStats* total = nullptr) {
    ForwardOptions fo;
    fo.n_ctx = 512;
    fo.n_threads = 2;
    SamplerParams sp;
    sp.temperature = 0;
    SessionOptions so;
    so.chat_template = tmpl;
    so.max_new_tokens = 40;
    Session s(m, make_plan(*m), fo, sp, so);
    if (!draft.empty()) {
        SpeculativeOptions spo;
        spo.draft_max = k;
        s.enable_speculation(make_plan(*m, draft), spo);
    }
    std::vector<std::vector<int32_t>> replies;
    for (const char* in : {"Tell me a story about a dog.", "What did the dog do next?"}) {
        const TurnResult r = s.send(in);
        EXPECT_EQ(r.speculative, !draft.empty());
        replies.push_back(r.tokens);
    }
    replies.push_back(s.continue_reply(" Then").tokens);
    if (total) *total = s.stats().spec_total;
    return replies;
}

}  // namespace

// strata chat --draft-spec: a session that drafts with a pruned plan gives the same greedy replies as a plain
// one, across turns that reuse the cache (the draft keeps its own cache and rolls back with the target's).
TEST(Speculative, ChatSessionEqualsPlainOnStories) {
    STRATA_REQUIRE_FILE(shared_model("stories260K.gguf"));
    auto m = Model::load(shared_model("stories260K.gguf"));
    const auto ref = converse(m, "llama2", "", 0);
    for (const auto& [draft, k] : std::vector<std::pair<std::string, int>>{{"0,2,4", 3}, {"0:3", 1}, {"::2", 5}}) {
        SpeculativeStats ss;
        EXPECT_EQ(converse(m, "llama2", draft, k, &ss), ref) << draft << " k " << k;
        EXPECT_GT(ss.rounds, 0);
        EXPECT_LE(ss.accepted, ss.drafted);
    }
}

TEST(Speculative, ChatSessionEqualsPlainOnSmolLM2) {
    STRATA_REQUIRE_FILE(smollm2_path());
    auto m = Model::load(smollm2_path());
    const auto ref = converse(m, "", "", 0);
    SpeculativeStats ss;
    EXPECT_EQ(converse(m, "", "0:20,24:", 3, &ss), ref);
    EXPECT_GT(ss.accepted, 0);
}

// --draft-spec auto: the chosen spec parses, skips layers, and drafts for identical greedy output.
TEST(Speculative, AutoDraftSpecIsValidAndKeepsGreedyOutput) {
    STRATA_REQUIRE_FILE(smollm2_path());
    auto m = Model::load(smollm2_path());
    ForwardOptions fo;
    fo.n_threads = 2;
    const auto calib = m->tokenizer().encode(builtin_calibration_text(), true, false);
    const DraftSelection sel = select_draft_spec(m, calib, 3, fo);
    ASSERT_FALSE(sel.candidates.empty());
    const int L = m->config().n_layers;
    for (const DraftCandidate& c : sel.candidates) {
        const Plan p = make_plan(*m, c.spec);
        EXPECT_EQ(p.n_steps(), c.steps) << c.spec;
        EXPECT_LT(c.steps, L) << c.spec;
        EXPECT_EQ(p.layers().back(), L - 1) << c.spec;  // the last layer always stays
        EXPECT_GE(c.agreement, 0.0);
        EXPECT_LE(c.agreement, 1.0);
        EXPECT_NEAR(c.predicted_speedup, predicted_speedup(c.agreement, c.cost_ratio, c.best_k), 1e-12);
        EXPECT_GE(c.predicted_speedup, sel.candidates.back().predicted_speedup);
    }
    EXPECT_EQ(sel.best.spec, sel.candidates.front().spec);
    const std::vector<int32_t> prompt = m->tokenizer().encode("The capital of France is", true, false);
    EXPECT_EQ(speculative(m, prompt, 64, sel.best.spec, 3, true), plain(m, prompt, 64));
}

TEST(Speculative, PredictedSpeedupFormula) {
    EXPECT_DOUBLE_EQ(predicted_speedup(0, 0.5, 3), 1 / 2.5);    // nothing accepted: one token per round
    EXPECT_DOUBLE_EQ(predicted_speedup(1, 0.25, 4), 5 / 2.0);   // everything accepted: k + 1 tokens per round
    EXPECT_NEAR(predicted_speedup(0.5, 0.1, 1), 1.5 / 1.1, 1e-12);
}
