// SmolLM2-135M-Instruct Q4_1 against llama.cpp (golden data from tests/reference/make_golden.py):
// tokenization, teacher-forced logits and free-running greedy continuations. The comparison itself lives in
// golden_compare.h (shared with the Gemma 3 test).
#include "golden_compare.h"

using namespace strata;
using namespace strata::test;

namespace {
golden::json golden_file() { return golden::load("smollm2_greedy.json"); }
}  // namespace

TEST(SmolLM2Golden, PromptTokenizationEqualsLlamaCpp) {
    STRATA_REQUIRE_FILE(smollm2_path());
    auto m = Model::load(smollm2_path());
    golden::expect_prompt_tokenization(*m, golden_file());
}

// Feed llama.cpp's own tokens (prompt + its greedy continuation) and compare logits where it recorded them.
TEST(SmolLM2Golden, TeacherForcedLogitsMatchLlamaCpp) {
    STRATA_REQUIRE_FILE(smollm2_path());
    auto m = Model::load(smollm2_path());
    const golden::json g = golden_file();
    const golden::Noise noise = golden::llama_cpp_noise(g);
    ASSERT_GT(noise.logit_spread, 0);
    const golden::TeacherForced r = golden::teacher_forced(m, g, noise);
    EXPECT_GT(r.top1_checked, 60);
    // We may differ from llama.cpp's default no more than llama.cpp's own configurations differ from it.
    EXPECT_LE(r.worst, noise.logit_spread);
}

// Free-running greedy: 64 tokens equal llama.cpp's, or equal up to a near-tie (a position where llama.cpp's
// margin is within the noise at which its own configurations split).
TEST(SmolLM2Golden, GreedyContinuationsMatchLlamaCppUpToNearTies) {
    STRATA_REQUIRE_FILE(smollm2_path());
    auto m = Model::load(smollm2_path());
    const golden::json g = golden_file();
    golden::greedy(m, g, golden::llama_cpp_noise(g));
}
