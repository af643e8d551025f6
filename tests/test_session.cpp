// Chat sessions on SmolLM2 (greedy): incremental KV reuse equals a fresh evaluation, ai-prefix, continue,
// reversed roles, restart, abort, and the context overflow policies.
#include <atomic>
#include <thread>

#include "core/engine/plan.h"
#include "core/run/generate.h"
#include "core/run/session.h"
#include "core/text/tokenizer.h"
#include "test_util.h"

using namespace strata;
using namespace strata::test;

namespace {

std::shared_ptr<const Model> smollm2() {
    static std::shared_ptr<const Model> m = Model::load(smollm2_path());
    return m;
}

std::unique_ptr<Session> make_session(SessionOptions so = {}, int n_ctx = 1024, int max_new = 24,
                                      int max_batch = 256) {
    auto model = smollm2();
    ForwardOptions fo;
    fo.n_ctx = n_ctx;
    fo.max_batch = max_batch;
    SamplerParams sp;
    sp.temperature = 0;
    so.max_new_tokens = max_new;
    return std::make_unique<Session>(model, make_plan(*model), fo, sp, so);
}

}  // namespace

// Turn 3 of an incremental conversation (cache reused across turns) gives the same tokens as a fresh session
// that evaluates the same history in one go. Batches of one token, so that the comparison does not depend on
// whether the kernels round a batched prefill exactly like single-token decoding: it isolates the cache
// reuse.
TEST(Session, IncrementalReuseEqualsAFreshEvaluation) {
    STRATA_REQUIRE_FILE(smollm2_path());
    auto s = make_session({}, 1024, 24, /*max_batch=*/1);
    const char* inputs[] = {"What is the capital of France?", "And of Italy?",
                            "Name one famous dish from there."};
    std::vector<TurnResult> turns;
    for (const char* in : inputs) turns.push_back(s->send(in));
    ASSERT_EQ(s->history().size(), 6u);
    EXPECT_EQ(turns[0].reused_tokens, 0);
    for (int i = 1; i < 3; ++i) {
        // Everything up to the end of the previous reply is reused; only the new turn is evaluated.
        EXPECT_GE(turns[i].reused_tokens, turns[i - 1].prompt_tokens) << i;
        EXPECT_EQ(turns[i].stats.prompt_tokens, turns[i].prompt_tokens - turns[i].reused_tokens) << i;
        EXPECT_LT(turns[i].stats.prompt_tokens, 40) << i;
    }
    for (const TurnResult& t : turns) EXPECT_FALSE(t.generated.empty());

    auto fresh = make_session({}, 1024, 24, /*max_batch=*/1);
    for (size_t i = 0; i < 4; ++i) fresh->add_message(s->history()[i].role, s->history()[i].text);
    const TurnResult again = fresh->send(inputs[2]);
    EXPECT_EQ(again.reused_tokens, 0);
    EXPECT_EQ(again.prompt_tokens, turns[2].prompt_tokens);
    EXPECT_EQ(again.tokens, turns[2].tokens);
    EXPECT_EQ(again.text, turns[2].text);
}

TEST(Session, TheTemplatesDefaultSystemPromptAndOneBos) {
    STRATA_REQUIRE_FILE(smollm2_path());
    auto s = make_session();
    s->add_message(Role::User, "Hi");
    EXPECT_EQ(
        s->next_prompt(),
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    s->set_system("Be brief.");
    EXPECT_EQ(s->next_prompt().rfind("<|im_start|>system\nBe brief.<|im_end|>\n", 0), 0u);
    // SmolLM2 adds no BOS; the prompt starts with the template's first token.
    const auto t = s->tokenize_prompt(s->next_prompt());
    EXPECT_EQ(t.front(), *smollm2()->tokenizer().find_token("<|im_start|>"));
}

TEST(Session, BosIsNeverDoubled) {
    STRATA_REQUIRE_FILE(shared_model("stories260K.gguf"));
    auto model = Model::load(shared_model("stories260K.gguf"));
    ASSERT_TRUE(model->tokenizer().add_bos());
    const int32_t bos = model->tokenizer().bos_id();
    for (const char* name : {"llama2", "chatml", "mistral"}) {
        SessionOptions so;
        so.chat_template = name;
        Session s(model, make_plan(*model), {}, {}, so);
        s.add_message(Role::User, "Hello");
        const auto t = s.tokenize_prompt(s.next_prompt());
        ASSERT_GE(t.size(), 2u) << name;
        EXPECT_EQ(t[0], bos) << name;
        EXPECT_NE(t[1], bos) << name;
    }
}

TEST(Session, AiPrefixIsPartOfTheReplyAndKeptInHistory) {
    STRATA_REQUIRE_FILE(smollm2_path());
    SessionOptions so;
    so.ai_prefix = "Sure! Here is";
    auto s = make_session(so);
    std::string streamed;
    const TurnResult r = s->send("Tell me a fact about cats.", [&](std::string_view p) { streamed += p; });
    EXPECT_EQ(r.text.rfind("Sure! Here is", 0), 0u) << r.text;
    EXPECT_EQ(streamed, r.text);
    EXPECT_EQ(s->history().back().text, r.text);
    EXPECT_EQ(r.text, "Sure! Here is" + r.generated);
    // Sticky: the next turn starts with it too; cleared, it does not.
    EXPECT_EQ(s->send("Another one.").text.rfind("Sure! Here is", 0), 0u);
    s->set_ai_prefix("");
    EXPECT_NE(s->send("One more.").text.rfind("Sure! Here is", 0), 0u);
}

TEST(Session, ContinueGeneratesIntoTheSameMessage) {
    STRATA_REQUIRE_FILE(smollm2_path());
    auto s = make_session({}, 1024, 8);
    const TurnResult first = s->send("Write a long story about a dragon.");
    ASSERT_TRUE(s->history().back().truncated);
    const size_t n = s->history().size();
    std::string streamed;
    const TurnResult more = s->continue_reply(" Then", [&](std::string_view p) { streamed += p; });
    EXPECT_EQ(s->history().size(), n);
    EXPECT_EQ(more.text, first.text + " Then" + more.generated);
    EXPECT_EQ(streamed, " Then" + more.generated);
    EXPECT_EQ(s->history().back().text, more.text);
    // The cache was reused up to the continued text.
    EXPECT_GE(more.reused_tokens, first.prompt_tokens);
    auto empty = make_session();
    EXPECT_THROW(empty->continue_reply("x"), std::invalid_argument);
}

TEST(Session, ReversedRoleTheModelSpeaksAsTheUser) {
    STRATA_REQUIRE_FILE(smollm2_path());
    SessionOptions so;
    so.reversed_role = true;
    auto s = make_session(so);
    s->add_message(s->model_role(), "Hello, I need help with my homework.");
    const TurnResult r = s->send("Sure, what subject is it?");
    ASSERT_EQ(s->history().size(), 3u);
    EXPECT_EQ(s->history()[0].role, Role::User);
    EXPECT_EQ(s->history()[1].role, Role::Assistant);
    EXPECT_EQ(s->history()[1].text, "Sure, what subject is it?");
    EXPECT_EQ(s->history()[2].role, Role::User);
    EXPECT_EQ(s->history()[2].text, r.text);
    s->add_message(Role::Assistant, "ok");
    const std::string next = s->next_prompt();
    EXPECT_EQ(next.substr(next.size() - std::string("<|im_start|>user\n").size()), "<|im_start|>user\n");
}

TEST(Session, RestartKeepsTheSystemPromptAndItsCache) {
    STRATA_REQUIRE_FILE(smollm2_path());
    SessionOptions so;
    so.system_prompt = "You are a pirate.";
    auto s = make_session(so);
    s->send("Hello!");
    s->restart();
    ASSERT_EQ(s->history().size(), 1u);
    EXPECT_EQ(s->history()[0].role, Role::System);
    const TurnResult r = s->send("Who are you?");
    EXPECT_GT(r.reused_tokens, 5);  // the system prompt's tokens
}

TEST(Session, AbortKeepsThePartialReplyMarkedInterrupted) {
    STRATA_REQUIRE_FILE(smollm2_path());
    auto s = make_session({}, 1024, 64);
    int pieces = 0;
    const TurnResult r = s->send("Write a long story about a dragon.", [&](std::string_view) {
        if (++pieces == 3) s->abort();
    });
    EXPECT_TRUE(r.interrupted);
    EXPECT_LE(r.tokens.size(), 4u);
    EXPECT_TRUE(s->history().back().interrupted);
    EXPECT_EQ(s->history().back().text, r.text);
    // The conversation goes on, and the cache agrees with the history.
    const TurnResult next = s->send("Thanks.");
    EXPECT_FALSE(next.interrupted);
    EXPECT_GE(next.reused_tokens, r.prompt_tokens);

    // From another thread, as a signal handler would.
    std::thread t([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(150));
        s->abort();
    });
    const TurnResult r2 = s->send("Tell me everything you know about the ocean.");
    t.join();
    EXPECT_TRUE(r2.interrupted);
    EXPECT_LT(r2.tokens.size(), 64u);
}

TEST(Session, ContextOverflowPolicies) {
    STRATA_REQUIRE_FILE(smollm2_path());
    const std::string long_input = "Please summarise this: " + std::string(40, 'a') +
                                   " the quick brown fox jumps over"
                                   " the lazy dog, again and again, until the end of the day.";
    SessionOptions so;
    so.system_prompt = "Be brief.";
    so.overflow = OverflowPolicy::Shift;
    {
        auto s = make_session(so, 160, 8);
        int dropped = 0;
        for (int i = 0; i < 5; ++i) dropped += s->send(long_input).dropped_messages;
        EXPECT_GT(dropped, 0);
        EXPECT_EQ(s->history()[0].text, "Be brief.");
        EXPECT_LE(s->stats().context_tokens, 160);
        EXPECT_EQ(s->history().size() % 2, 1u);  // system + whole exchanges
    }
    {
        so.overflow = OverflowPolicy::Restart;
        auto s = make_session(so, 160, 8);
        bool restarted = false;
        for (int i = 0; i < 5; ++i) {
            const TurnResult r = s->send(long_input);
            if (r.dropped_messages > 0) {
                restarted = true;
                EXPECT_EQ(s->history().size(), 3u);  // system, this input, its reply
            }
        }
        EXPECT_TRUE(restarted);
    }
    {
        so.overflow = OverflowPolicy::Error;
        auto s = make_session(so, 160, 8);
        bool failed = false;
        for (int i = 0; i < 5 && !failed; ++i) {
            const auto before = s->history();
            try {
                s->send(long_input);
            } catch (const std::runtime_error& e) {
                failed = true;
                EXPECT_NE(std::string(e.what()).find("context full"), std::string::npos) << e.what();
                EXPECT_EQ(s->history().size(), before.size());
            }
        }
        EXPECT_TRUE(failed);
    }
    {
        // Longer than the context on its own: refused under every policy, history untouched.
        for (OverflowPolicy p : {OverflowPolicy::Shift, OverflowPolicy::Restart, OverflowPolicy::Error}) {
            so.overflow = p;
            auto s = make_session(so, 160, 8);
            s->send("Hi");
            EXPECT_THROW(s->send(std::string(2000, 'x') + " and more words"), std::runtime_error);
            EXPECT_EQ(s->history().size(), 3u);
            EXPECT_FALSE(s->send("Still there?").generated.empty());
        }
    }
}

// Ctrl-C during a long prompt (issue 10): generate() stops between prompt batches, the cache keeps the batches
// already evaluated, and going on from there gives exactly what an uninterrupted run gives.
TEST(Generate, AbortDuringThePromptStopsBetweenBatchesAndLosesNothing) {
    STRATA_REQUIRE_FILE(shared_model("stories260K.gguf"));
    auto m = Model::load(shared_model("stories260K.gguf"));
    const std::vector<int32_t> prompt = m->tokenizer().encode(
        "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.", true, false);
    ASSERT_GT(prompt.size(), 20u);
    ForwardOptions fo;
    fo.n_ctx = 128;
    fo.max_batch = 8;
    fo.n_threads = 1;
    SamplerParams sp;
    sp.temperature = 0;
    GenerateOptions go;
    go.max_new_tokens = 16;

    Forward whole(m, make_plan(*m), fo);
    Sampler s1(sp);
    int pos1 = 0;
    const std::vector<int32_t> want = generate(whole, s1, prompt, pos1, go, nullptr, nullptr);

    Forward fwd(m, make_plan(*m), fo);
    Sampler s2(sp);
    int pos = 0;
    std::atomic<bool> stop{false};
    fwd.set_state_observer([&](int, const float*, int, int at) {
        if (at >= 8) stop = true;  // raised while the second batch (positions 8..15) runs
    });
    go.abort = &stop;
    GenerationStats st;
    EXPECT_TRUE(generate(fwd, s2, prompt, pos, go, nullptr, &st).empty());
    EXPECT_TRUE(st.aborted);
    EXPECT_EQ(pos, 16);  // the second batch finished; the third never started
    EXPECT_EQ(st.prompt_tokens, 16);

    fwd.set_state_observer(nullptr);
    stop = false;
    EXPECT_EQ(generate(fwd, s2, std::span<const int32_t>(prompt).subspan(16), pos, go, nullptr, nullptr), want);
}

// A session stopped before its prompt is evaluated (Ctrl-C right as a turn starts) keeps the history, and the
// next turn equals a fresh session's over the same history.
TEST(Session, AbortBeforeThePromptKeepsTheHistoryAndTheChatGoesOn) {
    STRATA_REQUIRE_FILE(smollm2_path());
    SessionOptions so;
    so.ai_prefix = "Sure,";
    auto s = make_session(so, 1024, 8);
    const TurnResult r = s->send("Write a long story about a dragon.", [&](std::string_view piece) {
        if (piece == "Sure,") s->abort();  // the ai-prefix is shown just before the prompt is evaluated
    });
    EXPECT_TRUE(r.interrupted);
    EXPECT_TRUE(r.tokens.empty());
    EXPECT_EQ(r.stats.prompt_tokens, 0);
    ASSERT_EQ(s->history().size(), 2u);
    EXPECT_EQ(s->history()[0].text, "Write a long story about a dragon.");
    EXPECT_EQ(s->history()[1].text, "Sure,");
    EXPECT_TRUE(s->history()[1].interrupted);

    const TurnResult next = s->send("Thanks.");
    EXPECT_FALSE(next.interrupted);
    auto fresh = make_session(so, 1024, 8);
    fresh->add_message(Role::User, "Write a long story about a dragon.");
    fresh->add_message(Role::Assistant, "Sure,");
    EXPECT_EQ(fresh->send("Thanks.").tokens, next.tokens);
}
