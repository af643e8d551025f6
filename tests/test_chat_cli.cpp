// `strata chat` end to end through stdin (non-TTY) on SmolLM2: a conversation with /continue, an ai-prefix
// and /restart whose turn 3 equals a fresh session's; SIGINT during a reply; bad input; roles, options and
// errors. The interactive (TTY) side is tests/chat_tty.sh.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "core/engine/plan.h"
#include "core/run/session.h"
#include "test_util.h"

using namespace strata;
using namespace strata::test;
using nlohmann::json;

namespace {

std::string chat_cmd(const std::string& extra) {
    return "chat -m " + smollm2_path() + " --temp 0 -t 2 " + extra;
}

// A child process with its stdin and stdout on pipes (stderr to a file).
struct Child {
    pid_t pid = -1;
    int in = -1, out = -1;
};

Child spawn(const std::vector<std::string>& args, const std::string& err_path) {
    int in[2], out[2];
    EXPECT_EQ(pipe(in), 0);
    EXPECT_EQ(pipe(out), 0);
    const pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        const int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(err, 2);
        for (int fd : {in[0], in[1], out[0], out[1], err}) close(fd);
        std::vector<char*> argv;
        for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        execv(argv[0], argv.data());
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    return {pid, in[1], out[0]};
}

// Reads from fd until `enough` says so, EOF, or the deadline.
std::string read_until(int fd, const std::function<bool(const std::string&)>& enough, int seconds) {
    std::string got;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (!enough(got) && std::chrono::steady_clock::now() < deadline) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0) continue;
        char buf[4096];
        const ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) break;
        got.append(buf, static_cast<size_t>(n));
    }
    return got;
}

void write_all(int fd, const std::string& s) {
    EXPECT_EQ(write(fd, s.data(), s.size()), static_cast<ssize_t>(s.size()));
}

}  // namespace

// The "done when": a 3-turn conversation, /continue with a suffix, an --ai-prefix turn and /restart,
// driven through stdin; the transcript's structure; and turn 3's tokens equal to a fresh session given the
// same history (-b 1 evaluates every token alone, so the comparison does not depend on batched-vs-single
// kernel rounding: it isolates the cache reuse).
TEST(ChatCli, ConversationContinuePrefixRestartAndExactReuse) {
    STRATA_REQUIRE_FILE(smollm2_path());
    const std::string log_path = temp_path("chat_e2e.jsonl");
    const std::string system = "You are a concise assistant.";
    const std::string input =
        "What is the capital of France?\n"
        "And of Italy?\n"
        "Name one famous dish from there.\n"
        "/continue  Also,\n"
        "/prefix Sure!\\n\n"
        "Tell me a fun fact.\n"
        "/restart\n"
        "Hi again!\n"
        "/quit\n";
    CliResult r = run_cli(
        chat_cmd("--max-new-tokens 24 -c 1024 -b 1 --system '" + system + "' --transcript " + log_path),
        input);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("strata chat: "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("134.5M parameters"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("context 1024 tokens"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("chat template chatml"), std::string::npos) << r.err;

    const std::vector<json> log = read_jsonl(log_path);
    std::vector<std::string> kinds;
    for (const json& e : log)
        kinds.push_back(e.at("event").get<std::string>() +
                        (e.contains("kind") ? ":" + e.at("kind").get<std::string>() : ""));
    const std::vector<std::string> want = {"turn:send", "turn:send", "turn:send", "turn:continue",
                                           "prefix",    "turn:send", "restart",   "turn:send"};
    ASSERT_EQ(kinds, want) << r.err;
    const std::vector<json> turns = events(log, "turn");

    // Turns 2 and 3 evaluate only their new tokens.
    for (int i = 1; i < 3; ++i) {
        EXPECT_GE(turns[i].at("reused_tokens").get<int>(), turns[i - 1].at("prompt_tokens").get<int>()) << i;
        EXPECT_LT(turns[i].at("evaluated_tokens").get<int>(), 30) << i;
    }
    for (int i = 0; i < 3; ++i) {
        const json& h = turns[i].at("history");
        ASSERT_EQ(h.size(), 2u * i + 3);
        EXPECT_EQ(h[0].at("role"), "system");
        EXPECT_EQ(h[0].at("text"), system);
        EXPECT_EQ(h.back().at("role"), "assistant");
        EXPECT_EQ(h.back().at("text"), turns[i].at("reply"));
    }
    // /continue: the suffix and what follows go into the same message.
    const json& cont = turns[3];
    EXPECT_EQ(cont.at("history").size(), turns[2].at("history").size());
    EXPECT_EQ(cont.at("reply").get<std::string>(),
              turns[2].at("reply").get<std::string>() + " Also," + cont.at("generated").get<std::string>());
    EXPECT_GE(cont.at("reused_tokens").get<int>(), turns[2].at("prompt_tokens").get<int>());
    // The ai-prefix (escape unescaped) starts the reply and stays in history.
    const std::string reply4 = turns[4].at("reply");
    EXPECT_EQ(reply4.rfind("Sure!\n", 0), 0u) << reply4;
    EXPECT_EQ(turns[4].at("history").back().at("text"), reply4);
    // /restart keeps the system prompt; the next turn reuses its cached tokens.
    const json restart = events(log, "restart").at(0);
    ASSERT_EQ(restart.at("history").size(), 1u);
    EXPECT_EQ(restart.at("history")[0].at("text"), system);
    EXPECT_EQ(turns[5].at("history").size(), 3u);
    EXPECT_GT(turns[5].at("reused_tokens").get<int>(), 5);
    EXPECT_EQ(turns[5].at("reply").get<std::string>().rfind("Sure!\n", 0), 0u);  // the prefix is sticky

    // stdout: every reply, in order.
    size_t at = 0;
    for (const json& t : turns) {
        const std::string reply = t.at("kind") == "continue" ? t.at("generated").get<std::string>()
                                                             : t.at("reply").get<std::string>();
        const size_t found = r.out.find(reply, at);
        ASSERT_NE(found, std::string::npos) << "missing reply '" << reply << "' in:\n" << r.out;
        at = found + reply.size();
    }

    // A fresh session given turn 3's history evaluates it all at once and generates the same tokens.
    auto model = Model::load(smollm2_path());
    ForwardOptions fo;
    fo.n_ctx = 1024;
    fo.max_batch = 1;
    SamplerParams sp;
    sp.temperature = 0;
    SessionOptions so;
    so.system_prompt = system;
    so.max_new_tokens = 24;
    Session fresh(model, make_plan(*model), fo, sp, so);
    const json& h3 = turns[2].at("history");
    for (size_t i = 1; i + 2 < h3.size(); ++i)
        fresh.add_message(h3[i].at("role") == "user" ? Role::User : Role::Assistant, h3[i].at("text"));
    const TurnResult again = fresh.send(h3[h3.size() - 2].at("text").get<std::string>());
    EXPECT_EQ(again.reused_tokens, 0);
    EXPECT_EQ(again.prompt_tokens, turns[2].at("prompt_tokens").get<int>());
    EXPECT_EQ(again.tokens, turns[2].at("tokens").get<std::vector<int32_t>>());
    EXPECT_EQ(again.text, turns[2].at("reply").get<std::string>());
}

// SIGINT during a reply stops it (kept, marked interrupted); the next turn completes; the exit is clean.
TEST(ChatCli, SigintStopsTheReplyAndTheChatGoesOn) {
    STRATA_REQUIRE_FILE(smollm2_path());
    signal(SIGPIPE, SIG_IGN);
    const std::string log_path = temp_path("chat_sigint.jsonl"), err_path = temp_path("chat_sigint.err");
    Child c = spawn({STRATA_CLI_PATH, "chat", "-m", smollm2_path(), "--temp", "0", "-t", "2", "-c", "1024",
                     "--max-new-tokens", "160", "--transcript", log_path},
                    err_path);
    write_all(c.in, "Write a very long story about a dragon and a knight.\n");
    std::string out = read_until(
        c.out, [](const std::string& s) { return s.size() >= 24; }, 60);
    ASSERT_GE(out.size(), 24u) << "no reply streamed: " << read_text(err_path);
    ASSERT_EQ(kill(c.pid, SIGINT), 0);
    write_all(c.in, "Say hello in one word.\n/quit\n");
    close(c.in);
    out += read_until(
        c.out, [](const std::string&) { return false; }, 120);
    close(c.out);
    int status = 0;
    ASSERT_EQ(waitpid(c.pid, &status, 0), c.pid);
    ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status);
    EXPECT_EQ(WEXITSTATUS(status), 0);
    const std::string err = read_text(err_path);
    EXPECT_NE(err.find("[interrupted"), std::string::npos) << err;

    const std::vector<json> turns = events(read_jsonl(log_path), "turn");
    ASSERT_EQ(turns.size(), 2u) << err;
    EXPECT_TRUE(turns[0].at("interrupted").get<bool>());
    EXPECT_LT(turns[0].at("tokens").size(), 160u);
    EXPECT_FALSE(turns[1].at("interrupted").get<bool>());
    EXPECT_FALSE(turns[1].at("reply").get<std::string>().empty());
    const json& h = turns[1].at("history");
    ASSERT_EQ(h.size(), 4u);
    EXPECT_TRUE(h[1].at("interrupted").get<bool>());
    EXPECT_EQ(h[1].at("text"), turns[0].at("reply"));
    EXPECT_NE(out.find(turns[1].at("reply").get<std::string>()), std::string::npos) << out;
}

// Invalid UTF-8, empty and blank lines, a 100 KB line and input longer than the context: a message each (or
// nothing, for empty lines), never a crash, and the conversation goes on.
TEST(ChatCli, BadInputGivesMessagesNotCrashes) {
    STRATA_REQUIRE_FILE(smollm2_path());
    std::string big;
    while (big.size() < 100 * 1024) big += "lorem ipsum dolor sit amet ";
    const std::string input = std::string("caf\xC3 \xFF\xFE ok\n") + "\n   \n" + big + "\n" + "Hi\n/quit\n";
    for (const char* policy : {"shift", "restart", "error"}) {
        SCOPED_TRACE(policy);
        const std::string log_path = temp_path("chat_bad.jsonl");
        CliResult r = run_cli(chat_cmd("--max-new-tokens 12 -c 512 --ctx-overflow " + std::string(policy) +
                                       " --transcript " + log_path),
                              input);
        ASSERT_EQ(r.exit_code, 0) << r.err;
        EXPECT_NE(r.err.find("not valid UTF-8"), std::string::npos) << r.err;
        EXPECT_NE(r.err.find("message too long"), std::string::npos) << r.err;
        const std::vector<json> log = read_jsonl(log_path);
        const std::vector<json> turns = events(log, "turn");
        ASSERT_EQ(turns.size(), 2u) << r.err;
        EXPECT_EQ(turns[0].at("input"), "caf\xEF\xBF\xBD \xEF\xBF\xBD\xEF\xBF\xBD ok");
        ASSERT_EQ(events(log, "error").size(), 1u);
        EXPECT_EQ(turns[1].at("input"), "Hi");
        EXPECT_EQ(turns[1].at("history").size(), 4u);  // the long line never entered the conversation
    }
}

// A long conversation in a small context: shift drops the oldest turns and says so.
TEST(ChatCli, ShiftDropsTheOldestTurns) {
    STRATA_REQUIRE_FILE(smollm2_path());
    std::string input;
    for (int i = 0; i < 5; ++i)
        input += "Tell me something about the number " + std::to_string(i) + ", please.\n";
    const std::string log_path = temp_path("chat_shift.jsonl");
    CliResult r =
        run_cli(chat_cmd("--max-new-tokens 16 -c 192 --system 'Be brief.' --transcript " + log_path), input);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("oldest messages were dropped"), std::string::npos) << r.err;
    const std::vector<json> turns = events(read_jsonl(log_path), "turn");
    ASSERT_EQ(turns.size(), 5u) << r.err;
    int dropped = 0;
    for (const json& t : turns) {
        dropped += t.at("dropped_messages").get<int>();
        EXPECT_EQ(t.at("history")[0].at("text"), "Be brief.");
    }
    EXPECT_GT(dropped, 0);
}

TEST(ChatCli, ReversedRoleWithAnOpeningLine) {
    STRATA_REQUIRE_FILE(smollm2_path());
    const std::string log_path = temp_path("chat_reversed.jsonl");
    CliResult r =
        run_cli(chat_cmd("--max-new-tokens 16 -c 512 --reversed-role -p 'Hello, can you help me with my "
                         "homework?' --transcript " +
                         log_path),
                "Sure, which subject is it?\n");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.rfind("Hello, can you help me with my homework?\n", 0), 0u) << r.out;
    EXPECT_NE(r.err.find("roles reversed"), std::string::npos) << r.err;
    const std::vector<json> turns = events(read_jsonl(log_path), "turn");
    ASSERT_EQ(turns.size(), 1u);
    const json& h = turns[0].at("history");
    ASSERT_EQ(h.size(), 3u);
    EXPECT_EQ(h[0].at("role"), "user");
    EXPECT_EQ(h[1].at("role"), "assistant");
    EXPECT_EQ(h[1].at("text"), "Sure, which subject is it?");
    EXPECT_EQ(h[2].at("role"), "user");
}

TEST(ChatCli, MultilineAndContinuedLines) {
    STRATA_REQUIRE_FILE(smollm2_path());
    const std::string log_path = temp_path("chat_multi.jsonl");
    CliResult r = run_cli(chat_cmd("--max-new-tokens 4 -c 512 --multiline --transcript " + log_path),
                          "First line\n\nthird line\n.\n/quit\n");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::vector<json> turns = events(read_jsonl(log_path), "turn");
    ASSERT_EQ(turns.size(), 1u);
    EXPECT_EQ(turns[0].at("input"), "First line\n\nthird line");
    r = run_cli(chat_cmd("--max-new-tokens 4 -c 512 --transcript " + log_path), "one \\\ntwo\n");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    turns = events(read_jsonl(log_path), "turn");
    ASSERT_EQ(turns.size(), 1u);
    EXPECT_EQ(turns[0].at("input"), "one \ntwo");
}

TEST(ChatCli, OptionErrorsNameTheChoices) {
    STRATA_REQUIRE_FILE(smollm2_path());
    CliResult r = run_cli(chat_cmd("--chat-template vicuna"), "");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("chatml"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("mistral-v3-tekken"), std::string::npos) << r.err;
    r = run_cli(chat_cmd("--ctx-overflow sometimes"), "");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("shift"), std::string::npos) << r.err;
    // A model without a chat template needs --chat-template.
    STRATA_REQUIRE_FILE(shared_model("stories260K.gguf"));
    r = run_cli("chat -m " + shared_model("stories260K.gguf"), "Hi\n");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("no chat template"), std::string::npos) << r.err;
    r = run_cli("chat -m " + shared_model("stories260K.gguf") + " --chat-template llama2 --max-new-tokens 4",
                "Hi\n");
    EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(ChatCli, BannerCountsVirtualAndUniqueParameters) {
    STRATA_REQUIRE_FILE(smollm2_path());
    CliResult r = run_cli(chat_cmd("-c 256 --layer-spec 0:20,10:30"), "/stats\n/quit\n");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("40 steps over 30 file layers"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("virtual parameters"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("134.5M unique"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("context: 0 of 256 tokens"), std::string::npos) << r.err;
}

// strata chat --draft-spec S --draft-max K: the same replies as plain greedy chat, with the speculation's
// statistics in the timings line and /stats; --draft-spec auto prints the spec it chose.
TEST(ChatCli, DraftSpecGivesTheSameRepliesAndItsStatistics) {
    STRATA_REQUIRE_FILE(shared_model("stories260K.gguf"));
    const std::string cmd = "chat -m " + shared_model("stories260K.gguf") +
                            " --chat-template llama2 --temp 0 -t 2 -c 512 --max-new-tokens 48 --timings";
    const std::string input = "Once upon a time\nWhat happened next?\n/stats\n";
    const CliResult plain = run_cli(cmd, input);
    ASSERT_EQ(plain.exit_code, 0) << plain.err;
    for (const char* draft : {"--draft-spec 0,2,4 --draft-max 3", "--draft-spec auto --draft-max 2"}) {
        const CliResult spec = run_cli(cmd + " " + draft, input);
        ASSERT_EQ(spec.exit_code, 0) << spec.err;
        EXPECT_EQ(spec.out, plain.out) << draft;
        for (const char* want : {"self-speculative decoding: draft", "drafted tokens accepted", "per round",
                                 "verify", "all turns speculative:", "last turn speculative:"})
            EXPECT_NE(spec.err.find(want), std::string::npos) << draft << ": " << want << "\n" << spec.err;
    }
    const CliResult autos = run_cli(cmd + " --draft-spec auto", "/quit\n");
    EXPECT_NE(autos.err.find("draft-spec auto: "), std::string::npos) << autos.err;
    EXPECT_EQ(plain.err.find("speculative"), std::string::npos) << plain.err;
}
