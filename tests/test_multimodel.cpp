// Several models in one process: the registry maps a file once (same Model, same weight views, one mapping;
// RSS of two sessions ~ one model + two KV caches), the router's choice on reply strings, and the three
// commands (crosstalk, cobblers, think) end to end on SmolLM2 with small token limits.
#include <nlohmann/json.hpp>

#include "core/api/registry.h"
#include "core/engine/plan.h"
#include "core/engine/sysinfo.h"
#include "core/run/programs.h"
#include "core/run/session.h"
#include "test_util.h"

using namespace strata;
using namespace strata::test;
using nlohmann::json;

namespace {

std::unique_ptr<Session> session_on(std::shared_ptr<const Model> m, const std::string& spec, int n_ctx) {
    ForwardOptions fo;
    fo.n_ctx = n_ctx;
    fo.n_threads = 2;
    SamplerParams sp;
    sp.temperature = 0;
    SessionOptions so;
    so.max_new_tokens = 2;
    return std::make_unique<Session>(m, make_plan(*m, spec), fo, sp, so);
}

}  // namespace

TEST(Registry, OneFileOpenedTwiceIsMappedOnce) {
    STRATA_REQUIRE_FILE(smollm2_path());
    ModelRegistry reg;
    auto a = reg.open(smollm2_path());
    // Another spelling of the same file (a relative path through "..") is the same file.
    const std::filesystem::path p(smollm2_path());
    auto b = reg.open((p.parent_path() / ".." / p.parent_path().filename() / p.filename()).string());
    EXPECT_EQ(a.get(), b.get());
    ASSERT_EQ(reg.files().size(), 1u);
    EXPECT_EQ(reg.files()[0].opens, 2);
    EXPECT_EQ(reg.mapped_bytes(), a->file().file_bytes);
    EXPECT_EQ(a->file().mappings.size(), 1u);

    // A model and its pruned variant: separate plans and KV caches over the same weight views.
    auto full = session_on(a, "", 256);
    auto pruned = session_on(b, "0:20", 256);
    EXPECT_EQ(&full->model(), &pruned->model());
    EXPECT_EQ(full->forward().plan().n_steps(), 30);
    EXPECT_EQ(pruned->forward().plan().n_steps(), 20);
    for (int i = 0; i < 20; ++i)
        EXPECT_EQ(full->forward().plan().steps[i].w->wq->data, pruned->forward().plan().steps[i].w->wq->data);
    EXPECT_NE(&full->forward().kv_cache(), &pruned->forward().kv_cache());
    const std::string report = memory_report(reg, {{"full", full.get()}, {"pruned", pruned.get()}});
    EXPECT_NE(report.find("2 sessions: full, pruned"), std::string::npos) << report;
    EXPECT_NE(report.find("layer spec 0:20"), std::string::npos) << report;

    // Released by everyone: forgotten, and the next open loads it again.
    const Model* old = a.get();
    full.reset(), pruned.reset(), a.reset(), b.reset();
    EXPECT_TRUE(reg.files().empty());
    (void)old;
}

TEST(Registry, AFailedLoadLeavesTheOthersAlone) {
    STRATA_REQUIRE_FILE(smollm2_path());
    ModelRegistry reg;
    auto a = reg.open(smollm2_path());
    EXPECT_THROW(reg.open("/nonexistent/model.gguf"), std::exception);
    const std::string bad = temp_path("not_a_model.gguf");
    write_bytes(bad, {'G', 'G', 'U', 'F', 1, 2, 3});
    EXPECT_THROW(reg.open(bad), std::exception);
    ASSERT_EQ(reg.files().size(), 1u);
    EXPECT_EQ(reg.open(smollm2_path()).get(), a.get());
    auto s = session_on(a, "", 128);
    EXPECT_FALSE(s->send("Hi").text.empty());
}

// Two sessions on one file cost one model's weights plus two KV caches: the second session's evaluation
// touches the same (already resident) weight pages, so RSS grows by its own buffers only.
TEST(Registry, TwoSessionsOnOneFileCostOneModelPlusTwoCaches) {
    STRATA_REQUIRE_FILE(smollm2_path());
    ModelRegistry reg;
    const size_t before = current_rss_bytes();
    auto s1 = session_on(reg.open(smollm2_path()), "", 256);
    s1->send("Hi");
    const size_t after_one = current_rss_bytes();
    auto s2 = session_on(reg.open(smollm2_path()), "", 256);
    s2->send("Hi");
    const size_t after_two = current_rss_bytes();
    const size_t file = reg.mapped_bytes();
    const size_t kv = s1->forward().kv_cache().bytes();
    EXPECT_GT(after_one - before, file / 2) << "the first session should touch the weights";
    // The second session: its KV cache and activations, never a second copy of the weights.
    EXPECT_LT(after_two - after_one, kv + file / 4)
        << "second session added " << (after_two - after_one) << " bytes; file " << file << ", KV " << kv;
}

TEST(Router, ChoiceFromReplyStrings) {
    const std::vector<std::string> d = {"Programming", "Maths", "Others"};
    EXPECT_EQ(choose_domain("Maths", d).index, 1);
    EXPECT_EQ(choose_domain("2. Maths", d).index, 1);
    EXPECT_EQ(choose_domain("The question belongs to programming.", d).index, 0);  // case-insensitive
    // The name that comes first in the reply wins.
    EXPECT_EQ(choose_domain("This is Maths, not Programming", d).index, 1);
    // Numbers when no name is given.
    EXPECT_EQ(choose_domain("1", d).index, 0);
    EXPECT_EQ(choose_domain("Class 2.", d).index, 1);
    EXPECT_EQ(choose_domain("I would say 3", d).index, 2);
    EXPECT_EQ(choose_domain("42", d).index, 2);  // out of range: no match
    // No match: the last domain.
    const RouterChoice none = choose_domain("I cannot tell.", d);
    EXPECT_EQ(none.index, 2);
    EXPECT_NE(none.reason.find("no domain"), std::string::npos);
    EXPECT_EQ(choose_domain("", d).index, 2);
    // At one position the longer name wins ("Math" vs "Maths").
    EXPECT_EQ(choose_domain("maths", {"Math", "Maths", "Other"}).index, 1);
    EXPECT_NE(choose_domain("Maths", d).reason.find("\"Maths\""), std::string::npos);
    const std::string prompt = router_prompt(d, "What is 2+2?");
    EXPECT_NE(prompt.find("1. Programming\n2. Maths\n3. Others\n"), std::string::npos);
    EXPECT_NE(prompt.find("Question: What is 2+2?"), std::string::npos);
}

// crosstalk: SmolLM2 with itself (one mapping), 2 turns at --temp 0: A's opening, then B, then A; each reply
// is the next speaker's input; the same run twice gives the same text.
TEST(MultiCli, CrosstalkTwoTurnsAlternatesAndIsDeterministic) {
    STRATA_REQUIRE_FILE(smollm2_path());
    const std::string t1 = temp_path("ct1.jsonl"), t2 = temp_path("ct2.jsonl");
    const std::string base = "crosstalk -m " + smollm2_path() + " -m Bob=" + smollm2_path() +
                             " -p 'Hello, who are you?' --turns 2 --temp 0 --max-new-tokens 6 -c 256 -t 2 "
                             "--verbose --transcript ";
    const CliResult r = run_cli(base + t1);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.rfind("A > Hello, who are you?\nBob > ", 0), 0u) << r.out;
    EXPECT_NE(r.out.find("\nA > "), std::string::npos) << r.out;
    EXPECT_NE(r.err.find("2 sessions: A, Bob"), std::string::npos) << r.err;  // one file, mapped once
    const auto log = read_jsonl(t1);
    const auto turns = events(log, "turn");
    ASSERT_EQ(turns.size(), 2u);
    EXPECT_EQ(turns[0]["speaker"], "Bob");
    EXPECT_EQ(turns[1]["speaker"], "A");
    EXPECT_EQ(turns[0]["input"], "Hello, who are you?");
    EXPECT_EQ(turns[1]["input"], turns[0]["reply"]);
    const json end = events(log, "end").at(0);
    // A's history: its opening (as its own message), B's reply (as the user's), its answer.
    ASSERT_EQ(end["history_a"].size(), 3u);
    EXPECT_EQ(end["history_a"][0]["role"], "assistant");
    EXPECT_EQ(end["history_a"][1]["role"], "user");
    const CliResult again = run_cli(base + t2);
    ASSERT_EQ(again.exit_code, 0) << again.err;
    EXPECT_EQ(again.out, r.out);
}

TEST(MultiCli, CrosstalkReversedRoleAndPerModelLayerSpec) {
    STRATA_REQUIRE_FILE(smollm2_path());
    const std::string t = temp_path("ct_rev.jsonl");
    const CliResult r =
        run_cli("crosstalk -m " + smollm2_path() + " -m " + smollm2_path() +
                " -p 'Tell me a fact.' --turns 2 --temp 0 --max-new-tokens 4 -c 256 -t 2 --reversed-role-a "
                "--b-layer-spec 0:24 --verbose --transcript " + t);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("session B: 24 steps (layer spec 0:24)"), std::string::npos) << r.err;
    const json end = events(read_jsonl(t), "end").at(0);
    ASSERT_EQ(end["history_a"].size(), 3u);
    EXPECT_EQ(end["history_a"][0]["role"], "user");  // A speaks as the user
    EXPECT_EQ(end["history_a"][1]["role"], "assistant");
    EXPECT_EQ(end["history_a"][2]["role"], "user");
}

TEST(MultiCli, AFailedLoadNamesTheModel) {
    STRATA_REQUIRE_FILE(smollm2_path());
    const CliResult r = run_cli("crosstalk -m " + smollm2_path() + " -m /nonexistent/b.gguf -p hi --turns 1");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("cannot load model B (/nonexistent/b.gguf)"), std::string::npos) << r.err;
    const CliResult t = run_cli("think --thinker " + smollm2_path() + " --summarizer Sum=/nonexistent/s.gguf");
    EXPECT_EQ(t.exit_code, 1);
    EXPECT_NE(t.err.find("cannot load model Sum"), std::string::npos) << t.err;
    const CliResult c = run_cli("crosstalk -m " + smollm2_path() + " -m " + smollm2_path() +
                                " -p hi --b-layer-spec 0:99 --turns 1");
    EXPECT_EQ(c.exit_code, 1);
    EXPECT_NE(c.err.find("model B"), std::string::npos) << c.err;
}

// cobblers with SmolLM2 as router and as every expert (three sessions, one mapping): each new conversation is
// routed, the expert keeps it until /restart.
TEST(MultiCli, CobblersRoutesAndKeepsTheExpertUntilRestart) {
    STRATA_REQUIRE_FILE(smollm2_path());
    const std::string t = temp_path("cob.jsonl");
    const std::string m = smollm2_path();
    const CliResult r = run_cli("cobblers --router " + m + " --expert Programming=" + m + " --expert Others=" + m +
                                    " --router-max-new-tokens 6 --max-new-tokens 4 -c 384 -t 2 --verbose "
                                    "--transcript " + t,
                                "Write a Python function that adds two numbers.\nAnd one that multiplies?\n"
                                "/restart\nHi\n");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("3 sessions: router, Programming, Others"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("[router reply]"), std::string::npos) << r.err;
    const auto log = read_jsonl(t);
    const auto routes = events(log, "route");
    const auto turns = events(log, "turn");
    ASSERT_EQ(routes.size(), 2u);  // the first question and the one after /restart
    ASSERT_EQ(turns.size(), 3u);
    for (const json& rt : routes) {
        const RouterChoice c = choose_domain(rt["router_reply"].get<std::string>(), {"Programming", "Others"});
        EXPECT_EQ(rt["expert"], c.index == 0 ? "Programming" : "Others");
        EXPECT_NE(r.err.find("[router chose " + rt["expert"].get<std::string>() + ": "), std::string::npos);
    }
    EXPECT_EQ(turns[0]["expert"], routes[0]["expert"]);
    EXPECT_EQ(turns[1]["expert"], routes[0]["expert"]);  // kept for the follow-up
    EXPECT_EQ(turns[1]["history"].size(), 4u);          // the expert saw the whole conversation
    EXPECT_EQ(turns[2]["expert"], routes[1]["expert"]);
    EXPECT_EQ(turns[2]["history"].size(), 2u);  // a fresh conversation after /restart
    EXPECT_NE(r.out.find(routes[0]["expert"].get<std::string>() + " > "), std::string::npos) << r.out;
}

// think: the thinker's message holds the ai-prefix and both continuation suffixes, and the summariser's input
// holds the thinking.
TEST(MultiCli, ThinkContinuesWithTheStepsAndSummarises) {
    STRATA_REQUIRE_FILE(smollm2_path());
    const std::string t = temp_path("think.jsonl");
    const std::string m = smollm2_path();
    const CliResult r = run_cli("think --thinker " + m + " --summarizer " + m +
                                    " --thinker-layer-spec 0:24 --thinker-max-new-tokens 4 "
                                    "--summarizer-max-new-tokens 6 -c 512 -t 2 -s 7 --transcript " + t,
                                "What is 3 times 4?\n");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto th = events(read_jsonl(t), "think");
    ASSERT_EQ(th.size(), 1u);
    const std::string thinking = th[0]["thinking"];
    EXPECT_EQ(thinking.rfind("Let's break it down and think step by step.\n", 0), 0u) << thinking;
    const size_t again = thinking.find("\nThis question looks complex. Let me think again.\n");
    const size_t check = thinking.find("\nLet me check if my answer is correct or not.\n");
    ASSERT_NE(again, std::string::npos) << thinking;
    ASSERT_NE(check, std::string::npos) << thinking;
    EXPECT_LT(again, check);
    EXPECT_EQ(th[0]["steps"].size(), 3u);
    const std::string input = th[0]["summarizer_input"];
    EXPECT_NE(input.find(thinking), std::string::npos);
    EXPECT_NE(input.find("What is 3 times 4?"), std::string::npos);
    EXPECT_EQ(r.out, th[0]["answer"].get<std::string>() + "\n");  // stdout: the answer only
    EXPECT_NE(r.err.find("think #3"), std::string::npos) << r.err;  // the thinking went to stderr
}
