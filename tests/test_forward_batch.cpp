// Continuous batching: Forward::eval_sequences evaluates tokens of several sequences, each with its own KV
// cache and position, in one pass. Every kernel table is batch-invariant and every token's attention reads
// only its own sequence's cache, so each sequence's logits must be the very bits it gets when evaluated
// alone (Forward::eval, one sequence, its own cache), whatever else shares the pass: other sequences' decode
// steps, another sequence's prompt chunk, sequences that join or leave between passes.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "core/engine/forward.h"
#include "core/engine/sampler.h"
#include "core/text/tokenizer.h"
#include "test_util.h"

using namespace strata;
using namespace strata::test;

namespace {

// A sequence evaluated alone: its prompt in one call, then `steps` greedy decode steps. logits[0] is the
// prompt's last token's, logits[i] the i-th decode step's; tokens[i] the token fed at step i (greedy).
struct Alone {
    std::vector<std::vector<float>> logits;
    std::vector<int32_t> tokens;
};

Alone run_alone(const std::shared_ptr<const Model>& m, const Plan& plan, const std::vector<int32_t>& prompt,
                int steps, const ForwardOptions& fo) {
    Forward f(m, plan, fo);
    Alone a;
    auto l = f.eval(prompt, 0);
    a.logits.emplace_back(l.begin(), l.end());
    int pos = static_cast<int>(prompt.size());
    for (int i = 0; i < steps; ++i) {
        const int32_t next = argmax(a.logits.back());
        a.tokens.push_back(next);
        l = f.eval(std::span<const int32_t>(&next, 1), pos++);
        a.logits.emplace_back(l.begin(), l.end());
    }
    return a;
}

bool same_bits(std::span<const float> a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), b.size() * sizeof(float)) == 0;
}

// Three prompts of different lengths; sequence 2 joins after sequences 0 and 1 have decoded 3 steps, its
// prompt going through in the same passes as their decode steps, in chunks of 5 tokens.
void check_batched_equals_alone(const std::string& path, const std::string& spec, int threads) {
    auto m = Model::load(path);
    const Plan plan = make_plan(*m, spec);
    const Tokenizer& tok = m->tokenizer();
    const std::vector<std::vector<int32_t>> prompts = {
        tok.encode("Once upon a time, there was a little dog named Max.", true, false),
        tok.encode("The sun", true, false),
        tok.encode("Lily and Tom went to the park to play with the big red ball, and they", true, false),
    };
    const int steps = 8, join = 3, chunk = 5;
    ForwardOptions fo;
    fo.n_ctx = 96, fo.n_threads = threads, fo.max_batch = 16;
    std::vector<Alone> alone;
    for (const auto& p : prompts) alone.push_back(run_alone(m, plan, p, steps, fo));

    fo.own_cache = false;
    Forward f(m, plan, fo);
    std::vector<KVCache> caches;
    for (size_t s = 0; s < prompts.size(); ++s) caches.push_back(f.new_cache());
    std::vector<int> pos(prompts.size(), 0), step(prompts.size(), -1);  // step -1: prompt not yet done
    std::vector<size_t> prompt_done(prompts.size(), 0);

    for (int pass = 0; step[0] < steps || step[1] < steps || step[2] < steps; ++pass) {
        std::vector<SeqToken> batch;
        std::vector<size_t> owner;  // the sequence of each logits row
        for (size_t s = 0; s < prompts.size(); ++s) {
            if (s == 2 && pass < join) continue;
            if (step[s] >= steps) continue;
            if (step[s] < 0) {  // prompt tokens: all at once for 0 and 1, chunks for the late joiner
                const size_t n = s == 2 ? std::min<size_t>(chunk, prompts[s].size() - prompt_done[s])
                                        : prompts[s].size();
                for (size_t i = 0; i < n; ++i) {
                    const bool last = prompt_done[s] + 1 == prompts[s].size();
                    batch.push_back({prompts[s][prompt_done[s]], pos[s]++, &caches[s], last});
                    if (last) owner.push_back(s);
                    ++prompt_done[s];
                }
            } else {  // a decode step: the token the sequence alone chose
                batch.push_back({alone[s].tokens[static_cast<size_t>(step[s])], pos[s]++, &caches[s], true});
                owner.push_back(s);
            }
        }
        // A batch longer than max_batch is split into passes in order: still the same bits.
        const auto logits = f.eval_sequences(batch);
        const size_t V = static_cast<size_t>(m->config().vocab_size);
        ASSERT_EQ(logits.size(), owner.size() * V);
        for (size_t r = 0; r < owner.size(); ++r) {
            const size_t s = owner[r];
            const auto row = logits.subspan(r * V, V);
            ASSERT_TRUE(same_bits(row, alone[s].logits[static_cast<size_t>(step[s] + 1)]))
                << "sequence " << s << " step " << step[s] + 1 << " (pass " << pass << ")";
            ++step[s];
        }
    }
}

}  // namespace

TEST(ForwardBatch, SequencesBatchedTogetherGetTheirAloneLogitsBitForBit_Stories) {
    STRATA_REQUIRE_FILE(shared_model("stories260K.gguf"));
    check_batched_equals_alone(shared_model("stories260K.gguf"), "", 1);
    check_batched_equals_alone(shared_model("stories260K.gguf"), "0:3,1:5", 2);  // a self-merged plan too
}

TEST(ForwardBatch, SequencesBatchedTogetherGetTheirAloneLogitsBitForBit_SmolLM2) {
    STRATA_REQUIRE_FILE(smollm2_path());
    check_batched_equals_alone(smollm2_path(), "", 2);
}

TEST(ForwardBatch, BadBatchesAreRefused) {
    STRATA_REQUIRE_FILE(shared_model("stories260K.gguf"));
    auto m = Model::load(shared_model("stories260K.gguf"));
    ForwardOptions fo;
    fo.n_ctx = 8, fo.own_cache = false;
    Forward f(m, make_plan(*m), fo);
    Forward pruned(m, make_plan(*m, "0:2"), fo);
    KVCache c = f.new_cache(), other = pruned.new_cache();
    const SeqToken past_end[] = {{1, 8, &c, true}};
    EXPECT_THROW(f.eval_sequences(past_end), std::runtime_error);
    const SeqToken wrong_plan[] = {{1, 0, &other, true}};
    EXPECT_THROW(f.eval_sequences(wrong_plan), std::runtime_error);
    const SeqToken bad_token[] = {{-1, 0, &c, true}};
    EXPECT_THROW(f.eval_sequences(bad_token), std::runtime_error);
    const SeqToken no_cache[] = {{1, 0, nullptr, true}};
    EXPECT_THROW(f.eval_sequences(no_cache), std::runtime_error);
    const int32_t one[] = {1};
    EXPECT_THROW(f.eval(one, 0), std::logic_error);  // no cache of its own
    const SeqToken ok[] = {{1, 0, &c, false}, {1, 1, &c, true}};
    EXPECT_EQ(f.eval_sequences(ok).size(), static_cast<size_t>(m->config().vocab_size));
}

// stories260K's feed-forward is 172 wide, not a multiple of the 64-float blocks the elementwise work is cut
// into: the gated activation of a token must still take the path it takes alone (its own row's tail), not
// one that depends on where its row falls in the batch (it did: a batch of 2 gave other bits than 1 + 1).
TEST(ForwardBatch, BatchedPrefillEqualsTokenByTokenWhereRowsAreNotWholeBlocks) {
    STRATA_REQUIRE_FILE(shared_model("stories260K.gguf"));
    auto m = Model::load(shared_model("stories260K.gguf"));
    ASSERT_NE(m->config().hidden_dim % 64, 0);
    const std::vector<int32_t> prompt =
        m->tokenizer().encode("The sun is hot and the sky is blue.", true, false);
    const size_t V = static_cast<size_t>(m->config().vocab_size);
    ForwardOptions fo;
    fo.n_ctx = 64, fo.n_threads = 1;
    Forward batched(m, make_plan(*m), fo), single(m, make_plan(*m), fo);
    const auto all = batched.eval(prompt, 0, /*all_logits=*/true);
    const std::vector<float> prefill(all.begin(), all.end());
    for (size_t i = 0; i < prompt.size(); ++i) {
        const auto l = single.eval(std::span<const int32_t>(&prompt[i], 1), static_cast<int>(i));
        ASSERT_EQ(std::memcmp(l.data(), prefill.data() + i * V, V * sizeof(float)), 0) << "position " << i;
    }
}
