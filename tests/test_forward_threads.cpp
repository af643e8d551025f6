// The forward pass gives the same bits however its work is cut: the matmul kernels are batch-invariant and split
// rows, attention splits (token, head) jobs, and the elementwise work (residual adds, the gated activation, norms,
// RoPE) splits whole rows or 64-float blocks, each element through the same arithmetic as in one call. So a
// batched prefill on two threads equals token-by-token decoding on one, bit for bit. A real model (SmolLM2,
// 1536-wide FFN) and a prompt long enough that a batch's elementwise work is split across the threads.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "core/engine/forward.h"
#include "core/text/tokenizer.h"
#include "test_util.h"

using namespace strata;
using namespace strata::test;

namespace {
void expect_batched_equals_token_by_token(KvType kv_type) {
    auto m = Model::load(smollm2_path());
    const std::string text =
        "The layers of a transformer can be repeated, removed or reordered without copying a single weight: "
        "every step of the plan points at the weights of one layer and has its own slot in the cache. ";
    const std::vector<int32_t> prompt = m->tokenizer().encode(text + text, true, false);
    ASSERT_GT(prompt.size(), size_t{64});
    const size_t V = static_cast<size_t>(m->config().vocab_size);

    ForwardOptions fo;
    fo.n_ctx = 128, fo.max_batch = 64, fo.n_threads = 2;  // two batches, the first of 64 x 1536 FFN floats
    fo.kv_type = kv_type;
    Forward batched(m, make_plan(*m), fo);
    const auto all = batched.eval(prompt, 0, /*all_logits=*/true);
    const std::vector<float> prefill(all.begin(), all.end());
    ASSERT_EQ(prefill.size(), prompt.size() * V);

    fo.n_threads = 1;
    Forward single(m, make_plan(*m), fo);
    for (size_t i = 0; i < prompt.size(); ++i) {
        const auto l = single.eval(std::span<const int32_t>(&prompt[i], 1), static_cast<int>(i));
        ASSERT_EQ(std::memcmp(l.data(), prefill.data() + i * V, V * sizeof(float)), 0) << "position " << i;
    }
}
}  // namespace

TEST(ForwardThreads, BatchedPrefillOnTwoThreadsEqualsTokenByTokenOnOneBitForBit) {
    STRATA_REQUIRE_FILE(smollm2_path());
    expect_batched_equals_token_by_token(KvType::F32);
}

// The same with an F16 cache (--cache-type f16): its rows are rounded once, when they are written.
TEST(ForwardThreads, SameWithAnF16Cache) {
    STRATA_REQUIRE_FILE(smollm2_path());
    expect_batched_equals_token_by_token(KvType::F16);
}
