// One CLI convention across the commands (llama.cpp's where a user types it): -n/--n-predict on every command
// that generates, --seed -1 (the default) a random seed, -c 0 the model's training context, -t clamped to the
// hardware threads, a bad value one line naming the option and its range (exit 105), and strata tokenize as
// llama-tokenize prints.
#include <regex>
#include <thread>

#include "test_util.h"

using namespace strata::test;
using json = nlohmann::json;

namespace {

std::string stories() { return shared_model("stories260K.gguf"); }

// "generation: N tokens" from run's timings line (-1 when absent).
int generated(const CliResult& r) {
    std::smatch m;
    return std::regex_search(r.err, m, std::regex("generation: (\\d+) tokens")) ? std::stoi(m[1]) : -1;
}

// The tokens NAME generated in its last turn, from --verbose's closing statistics (-1 when absent).
int last_generated(const CliResult& r, const std::string& name) {
    std::smatch m;
    const std::regex re("\n" + name + ": [^\n]*; (\\d+) generated,");
    return std::regex_search(r.err, m, re) ? std::stoi(m[1]) : -1;
}

}  // namespace

// At temperature 0.8, two runs with the default seed (-1: random) differ, and two with one fixed seed are the
// same, as is a rerun with the seed --verbose printed for a random run.
TEST(CliOptions, RandomSeedByDefaultAndAFixedSeedRepeats) {
    STRATA_REQUIRE_FILE(stories());
    const std::string run = "run -m " + stories() + " -p 'Once upon a time' -n 48 --temp 0.8 -t 1 ";
    const CliResult a = run_cli(run + "-v"), b = run_cli(run);
    ASSERT_EQ(a.exit_code, 0) << a.err;
    ASSERT_EQ(b.exit_code, 0) << b.err;
    EXPECT_NE(a.out, b.out);
    const CliResult s1 = run_cli(run + "--seed 42"), s2 = run_cli(run + "-s 42");
    ASSERT_EQ(s1.exit_code, 0) << s1.err;
    EXPECT_EQ(s1.out, s2.out);
    std::smatch m;
    ASSERT_TRUE(std::regex_search(a.err, m, std::regex("seed: (\\d+) \\(drawn at random"))) << a.err;
    EXPECT_EQ(run_cli(run + "--seed " + m[1].str()).out, a.out);
    EXPECT_EQ(run_cli(run + "--seed -1 -v").err.find("seed: " + m[1].str()), std::string::npos);
}

// strata chat at its default temperature: two sessions do not give the same reply word for word; a seed does.
TEST(CliOptions, ChatRepliesDifferUnlessSeeded) {
    STRATA_REQUIRE_FILE(smollm2_path());
    const std::string chat = "chat -m " + smollm2_path() + " -n 32 -c 512 -t 2 ";
    const std::string ask = "Write a short poem about the sea.\n";
    const CliResult a = run_cli(chat, ask), b = run_cli(chat, ask);
    ASSERT_EQ(a.exit_code, 0) << a.err;
    ASSERT_EQ(b.exit_code, 0) << b.err;
    EXPECT_NE(a.out, b.out);
    const CliResult s1 = run_cli(chat + "--seed 7", ask), s2 = run_cli(chat + "--seed 7", ask);
    EXPECT_EQ(s1.out, s2.out);
    EXPECT_FALSE(s1.out.empty());
}

// -n / --n-predict on run and chat; -n -1 runs until the end of the context (or text).
TEST(CliOptions, NPredictOnRunAndChat) {
    STRATA_REQUIRE_FILE(stories());
    const std::string run = "run -m " + stories() + " -p '' --temp 0 -t 1 --ignore-eos ";
    EXPECT_EQ(generated(run_cli(run + "-n 7")), 7);
    EXPECT_EQ(generated(run_cli(run + "--n-predict 9")), 9);
    EXPECT_EQ(generated(run_cli(run + "-n 0")), 0);
    // The prompt is BOS alone: a context of 64 holds 63 more tokens, and the 64th is sampled from the last
    // position's logits (it needs no room in the cache).
    EXPECT_EQ(generated(run_cli(run + "-n -1 -c 64")), 64);
    EXPECT_EQ(generated(run_cli(run + "-n -1 -c 100")), 100);

    const std::string log = temp_path("npredict_chat.jsonl");
    const std::string chat = "chat -m " + stories() + " --chat-template llama2 --temp 0 -t 1 -c 256 --transcript " + log;
    for (const char* opt : {"-n 3", "--n-predict 3", "--max-new-tokens 3"}) {
        const CliResult r = run_cli(chat + " " + opt, "Once upon a time\n");
        ASSERT_EQ(r.exit_code, 0) << opt << ": " << r.err;
        const auto turns = events(read_jsonl(log), "turn");
        ASSERT_EQ(turns.size(), 1u) << opt;
        EXPECT_EQ(turns[0]["tokens"].size(), 3u) << opt;
        EXPECT_FALSE(turns[0]["stopped_by_eog"].get<bool>()) << opt;
    }
}

// -n / --n-predict (every model) and --ROLE-n-predict (one model) on crosstalk, cobblers and think.
TEST(CliOptions, NPredictOnTheMultiModelCommands) {
    STRATA_REQUIRE_FILE(stories());
    const std::string m = stories();
    const std::string common = " --chat-template llama2 --temp 0 -t 1 -c 512 --verbose";
    const std::string log = temp_path("npredict_ct.jsonl");
    CliResult r = run_cli("crosstalk -m " + m + " -m " + m + " -p 'Once upon a time' --turns 2 -n 4 --b-n-predict 2" +
                          common + " --transcript " + log);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto turns = events(read_jsonl(log), "turn");
    ASSERT_EQ(turns.size(), 2u);
    EXPECT_EQ(turns[0]["speaker"], "B");
    EXPECT_EQ(turns[0]["generated_tokens"], 2);  // B: its own -n
    EXPECT_EQ(turns[1]["generated_tokens"], 4);  // A: the shared -n

    r = run_cli("cobblers --router " + m + " --expert Stories=" + m + " --router-n-predict 2 --n-predict 5" + common,
                "Tell me a story.\n");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(last_generated(r, "router"), 2) << r.err;
    EXPECT_EQ(last_generated(r, "Stories"), 5) << r.err;

    r = run_cli("think --thinker " + m + " --summarizer " + m + " --thinker-n-predict 3 --summarizer-n-predict 6" +
                    common,
                "Why is the sky blue?\n");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(last_generated(r, "thinker"), 3) << r.err;
    EXPECT_EQ(last_generated(r, "summarizer"), 6) << r.err;
}

// A bad value of any numeric option of any command: one line on stderr naming the option and what is valid,
// exit 105 (CLI11's ValidationError), before any model is loaded.
TEST(CliOptions, BadNumbersGetOneLineNamingTheOptionAndItsRange) {
    const std::string m = " -m " + stories();
    const std::string model_cmds[] = {"run" + m + " -p hi", "chat" + m, "bench" + m, "show" + m,
                                      "perplexity" + m + " -f x", "profile" + m + " -f x", "layers" + m + " -f x"};
    std::vector<std::pair<std::string, std::string>> cases;  // (arguments, the option the message names)
    for (const std::string& cmd : model_cmds)
        for (const auto& [arg, name] : std::vector<std::pair<std::string, std::string>>{
                 {"-c -1", "--ctx-size"}, {"-t -2", "--threads"}, {"-t 1.5", "--threads"},
                 {"-b 0", "--batch-size"}, {"-c abc", "--ctx-size"}, {"--n-gpu-layers -3", "--n-gpu-layers"}})
            cases.push_back({cmd + " " + arg, name});
    for (const std::string& cmd : {"run" + m + " -p hi", "chat" + m}) {
        for (const auto& [arg, name] : std::vector<std::pair<std::string, std::string>>{
                 {"--temp -0.5", "--temp"}, {"--top-k -1", "--top-k"}, {"--top-p 0", "--top-p"},
                 {"--top-p 1.5", "--top-p"}, {"--min-p 2", "--min-p"}, {"--repeat-penalty 0", "--repeat-penalty"},
                 {"--repeat-last-n -1", "--repeat-last-n"}, {"--seed -2", "--seed"}, {"-s x", "--seed"},
                 {"-n -5", "--n-predict"}, {"--n-predict -2", "--n-predict"}, {"--draft-max 0", "--draft-max"}})
            cases.push_back({cmd + " " + arg, name});
    }
    cases.push_back({"chat" + m + " --max-new-tokens -7", "--n-predict"});
    for (const auto& [arg, name] : std::vector<std::pair<std::string, std::string>>{
             {"-p -1", "--n-prompt"}, {"-n -1", "--n-gen"}, {"-r 0", "--repetitions"}, {"--draft-max -1", "--draft-max"}})
        cases.push_back({"bench" + m + " " + arg, name});
    cases.push_back({"synth --shape stories260k -o /dev/null --seed -1", "--seed"});
    cases.push_back({"perplexity" + m + " -f x --chunks -1", "--chunks"});
    for (const auto& [arg, name] : std::vector<std::pair<std::string, std::string>>{
             {"--chunks -1", "--chunks"}, {"-n -1", "--n-gen"}, {"--draft-max -1", "--draft-max"},
             {"--draft-tokens 0", "--draft-tokens"}})
        cases.push_back({"profile" + m + " -f x " + arg, name});
    cases.push_back({"layers" + m + " -f x -n 0", "--max-block"});
    cases.push_back({"layers" + m + " -f x --chunks -1", "--chunks"});
    const std::string two = "crosstalk" + m + m + " -p hi ";
    for (const auto& [arg, name] : std::vector<std::pair<std::string, std::string>>{
             {"--turns -1", "--turns"}, {"-n -5", "--n-predict"}, {"--max-new-tokens -5", "--n-predict"},
             {"--b-n-predict -4", "--b-n-predict"}, {"--a-max-new-tokens -4", "--a-n-predict"},
             {"--a-temp x", "--a-temp"}, {"-c -1", "--ctx-size"}, {"--b-threads -1", "--b-threads"},
             {"-s -3", "--seed"}, {"--top-p 2", "--top-p"}, {"-b 0", "--batch-size"}})
        cases.push_back({two + arg, name});
    const std::string cob = "cobblers --router " + stories() + " --expert A=" + stories() + " ";
    cases.push_back({cob + "--router-top-p 2", "--router-top-p"});
    cases.push_back({cob + "--expert-seed A=-3", "--expert-seed"});
    cases.push_back({cob + "--expert-n-predict A=-2", "--expert-n-predict"});
    const std::string think = "think --thinker " + stories() + " --summarizer " + stories() + " ";
    cases.push_back({think + "--thinker-n-predict -2", "--thinker-n-predict"});
    cases.push_back({think + "--summarizer-threads -1", "--summarizer-threads"});
    cases.push_back({think + "--min-p -0.1", "--min-p"});

    for (const auto& [args, name] : cases) {
        const CliResult r = run_cli(args);
        EXPECT_EQ(r.exit_code, 105) << args << "\n" << r.err;
        EXPECT_EQ(r.err.rfind("error: " + name + ": ", 0), 0u) << args << "\n" << r.err;
        EXPECT_TRUE(r.err.find(" is not valid: use ") != std::string::npos ||
                    r.err.find(" is not a number: use ") != std::string::npos)
            << args << "\n" << r.err;
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args << "\n" << r.err;  // one line
        EXPECT_TRUE(r.out.empty()) << args << "\n" << r.out;
    }
    // -1 is valid where it means something: -n -1 (until the end), --seed -1 (random).
    STRATA_REQUIRE_FILE(stories());
    EXPECT_EQ(run_cli("run" + m + " -p hi -n 1 --seed -1 -t 1").exit_code, 0);
}

// -t above the hardware threads: a one-line warning, and the run goes on with the hardware threads.
TEST(CliOptions, TooManyThreadsWarnAndRunOnTheMachinesThreads) {
    STRATA_REQUIRE_FILE(stories());
    const CliResult r = run_cli("run -m " + stories() + " -p hi -n 2 -t 1000");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
    EXPECT_NE(r.err.find("warning: -t 1000 is more than this machine's " + std::to_string(hw) + " hardware threads"),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("| " + std::to_string(hw) + " threads,"), std::string::npos) << r.err;
}

// -c 0 is the model's training context (as strata show reports it); no -c is that, at most 4096.
TEST(CliOptions, ContextZeroIsTheTrainingContext) {
    for (const std::string& path : {stories(), smollm2_path()}) {
        STRATA_REQUIRE_FILE(path);
        std::smatch m;
        const CliResult show = run_cli("show -m " + path);
        ASSERT_TRUE(std::regex_search(show.out, m, std::regex("context: +(\\d+) \\(training\\)")))
            << show.out;
        const int train = std::stoi(m[1]);
        const CliResult zero = run_cli("run -m " + path + " -p hi -n 1 -t 1 -c 0 -v");
        ASSERT_EQ(zero.exit_code, 0) << zero.err;
        EXPECT_NE(zero.err.find("context: " + std::to_string(train) + " tokens (-c 0: the model's training context)"),
                  std::string::npos)
            << zero.err;
        const CliResult plain = run_cli("run -m " + path + " -p hi -n 1 -t 1 -v");
        EXPECT_NE(plain.err.find("context: " + std::to_string(std::min(train, 4096)) + " tokens (the model's"),
                  std::string::npos)
            << plain.err;
    }
}

// strata tokenize against llama.cpp's tokenizer test vectors (ggml-vocab-*.gguf{,.inp,.out}): every input
// through the command (-f, verbatim, no BOS, --ids) gives the ids llama.cpp recorded.
TEST(CliOptions, TokenizeMatchesLlamaCppTestVectors) {
    int checked = 0;
    for (const char* vocab : {"ggml-vocab-llama-spm.gguf", "ggml-vocab-gpt-2.gguf", "ggml-vocab-phi-3.gguf"}) {
        const std::string base = shared_model(vocab);
        if (!std::filesystem::exists(base)) continue;
        const std::string inp = read_text(base + ".inp"), sep = "\n__ggml_vocab_test__\n";
        std::vector<std::string> texts;
        for (size_t pos = 0, hit; (hit = inp.find(sep, pos)) != std::string::npos; pos = hit + sep.size())
            texts.push_back(inp.substr(pos, hit - pos));
        std::istringstream out(read_text(base + ".out"));
        const std::string file = temp_path("tokenize_input.txt");
        for (const std::string& text : texts) {
            std::string line, ids;
            std::getline(out, line);
            std::istringstream ls(line);
            for (int id; ls >> id;) ids += (ids.empty() ? "" : ", ") + std::to_string(id);
            {
                std::ofstream f(file, std::ios::binary);
                f << text;
            }
            const CliResult r = run_cli("tokenize -m " + base + " -f " + file + " --no-escape --no-bos --ids");
            ASSERT_EQ(r.exit_code, 0) << r.err;
            EXPECT_EQ(r.out, "[" + ids + "]\n") << vocab << ": '" << text << "'";
            ++checked;
        }
    }
    if (checked == 0) GTEST_SKIP() << "no vocab files in " << shared_model("");
    EXPECT_GT(checked, 100);
}

// The default output, as llama-tokenize (llama.cpp d32676d) printed it for the same vocabulary and text: BOS
// added, special tokens parsed, escapes processed, "%6d -> '%s'" per token, and --show-count.
TEST(CliOptions, TokenizePrintsAsLlamaTokenize) {
    const std::string vocab = shared_model("ggml-vocab-llama-spm.gguf");
    STRATA_REQUIRE_FILE(vocab);
    const CliResult r = run_cli("tokenize -m " + vocab + " -p 'Hello <s> world\\n é' --show-count");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out,
              "     1 -> '<s>'\n 15043 -> ' Hello'\n 29871 -> ' '\n     1 -> '<s>'\n 29871 -> ' '\n  3186 -> ' world'\n"
              "    13 -> '\n'\n   904 -> ' é'\nTotal number of tokens: 8\n");
    const CliResult ids = run_cli("tokenize -m " + vocab + " -p 'Hello <s> world' --ids --no-parse-special");
    EXPECT_EQ(ids.out.rfind("[1, 15043, ", 0), 0u) << ids.out;
    EXPECT_EQ(ids.out.find(", 1,"), std::string::npos) << ids.out;  // "<s>" stayed text
    const CliResult none = run_cli("tokenize -m " + vocab);
    EXPECT_EQ(none.exit_code, 1);
    EXPECT_NE(none.err.find("-p TEXT, -f FILE or --stdin"), std::string::npos) << none.err;
}
