// strata think: a thinker model reasons, a summariser answers (chatllm.cpp's scripts/ya_o1.py). Per question
// the thinker is restarted and answers under the ai-prefix "Let's break it down and think step by step.\n",
// then is continued with each --step suffix (by default "think again" and "check your answer"); its whole
// message goes to the summariser (temperature 0), which answers by summarising it. Thinking is shown dimmed
// (on stderr when stdout is not a terminal), the answer normally.
#include <unistd.h>

#include "cli/chat_io.h"
#include "cli/commands.h"
#include "cli/multi.h"
#include "core/run/programs.h"

namespace strata::cli {

namespace {

struct ThinkArgs {
    std::string thinker, summarizer;
    std::vector<std::string> steps;
    std::string prompt;
    bool verbose = false, no_color = false;
    std::string transcript;
    Settings shared, thinker_own, summarizer_own;
};

// The roles' own defaults (a shared option does not change them; --thinker-temp does).
Settings thinker_defaults() { return {{"temp", "0.7"}, {"ai-prefix", kThinkPrefix}}; }
Settings summarizer_defaults() { return {{"temp", "0"}, {"system", kSummarizerSystem}}; }

const char* kHelp =
    "commands:\n"
    "  /restart   clear the summariser's conversation (the thinker starts afresh for every question anyway)\n"
    "  /stats     memory (each file mapped once, a KV cache per model) and each model's statistics\n"
    "  /quit      leave (also Ctrl-D, or Ctrl-C at an empty prompt)\n"
    "Ctrl-C while a model writes stops that question.";

int run_think(ThinkArgs& args) {
    const bool interactive = isatty(STDIN_FILENO) != 0;
    const bool tty_out = isatty(STDOUT_FILENO) != 0;
    const bool color = tty_out && !args.no_color && !std::getenv("NO_COLOR");
    Output o(color, args.transcript);
    ModelRegistry registry;
    auto [tname, tpath] = split_named_path(args.thinker, "thinker");
    auto [sname, spath] = split_named_path(args.summarizer, "summarizer");
    if (tname == sname) sname += "'";
    const ModelSpec tspec{tname, tpath, thinker_defaults(), args.thinker_own};
    const ModelSpec sspec{sname, spath, summarizer_defaults(), args.summarizer_own};
    std::unique_ptr<Session> thinker = open_session(registry, tspec, args.shared);
    std::unique_ptr<Session> summarizer = open_session(registry, sspec, args.shared);
    const std::vector<NamedSession> named = {{tname, thinker.get()}, {sname, summarizer.get()}};
    std::vector<std::string> steps;
    if (args.steps.empty()) steps = default_think_steps();
    for (const std::string& s : args.steps) steps.push_back(unescape_c(s));
    o.note("strata think: thinker " + tname + ", summarizer " + sname + ", " + std::to_string(steps.size() + 1) +
           " thinking steps" + (interactive ? ". /help lists the commands." : ""));
    if (args.verbose) o.note(startup_report(registry, named));

    // Thinking: dimmed on stdout on a terminal, else on stderr (stdout carries only the answers).
    FILE* think_out = tty_out ? stdout : stderr;
    const auto think_print = [&](std::string_view text) {
        std::fflush(stdout);
        std::fwrite(text.data(), 1, text.size(), think_out);
        std::fflush(think_out);
    };
    const auto header = [&](const std::string& h) {
        think_print(color ? "\033[0;32m" + h + "\033[0;2m\n" : h + "\n");
    };

    const auto ask = [&](const std::string& question) {
        thinker->restart();
        nlohmann::json steps_log = nlohmann::json::array();
        bool interrupted = false;
        if (color) think_print("\033[2m");
        try {
            header("think #1");
            TurnResult r = guarded_turn(*thinker, [&] { return thinker->send(question, think_print); });
            steps_log.push_back({{"suffix", thinker->ai_prefix()}, {"generated", r.generated}});
            interrupted = r.interrupted;
            for (size_t i = 0; i < steps.size() && !interrupted; ++i) {
                think_print("\n");
                header("think #" + std::to_string(i + 2));
                r = guarded_turn(*thinker, [&] { return thinker->continue_reply(steps[i], think_print); });
                steps_log.push_back({{"suffix", steps[i]}, {"generated", r.generated}});
                interrupted = r.interrupted;
            }
        } catch (const std::exception& e) {
            if (color) think_print("\033[0m");
            think_print("\n");
            o.note(std::string("error: ") + e.what());
            return;
        }
        think_print(color ? "\033[0m\n" : "\n");
        const std::string thinking = thinker->history().back().text;
        if (interrupted) {
            o.note("[interrupted: no answer for this question]");
            o.log({{"event", "think"}, {"question", question}, {"steps", steps_log}, {"thinking", thinking},
                   {"interrupted", true}});
            return;
        }
        think_print(color ? "\033[0;33m-------\033[0m\n" : "-------\n");
        const std::string prompt = summarizer_prompt(question, thinking);
        TurnResult a;
        try {
            a = guarded_turn(*summarizer,
                             [&] { return summarizer->send(prompt, [&](std::string_view p) { o.out(p); }); });
        } catch (const std::exception& e) {
            o.out("\n");
            o.note(std::string("error: ") + e.what());
            return;
        }
        o.out("\n");
        if (a.interrupted) o.note("[interrupted]");
        o.log({{"event", "think"},
               {"question", question},
               {"steps", steps_log},
               {"thinking", thinking},
               {"summarizer_input", prompt},
               {"answer", a.text},
               {"interrupted", a.interrupted}});
    };

    if (!args.prompt.empty()) ask(args.prompt);
    question_loop(o, interactive, kHelp, [&] {
        summarizer->restart();
        o.note("[the summariser's conversation is cleared]");
    }, [&] { return stats_report(registry, named); }, ask);
    Interrupts::restore();
    if (args.verbose) o.note(stats_report(registry, named));
    return 0;
}

}  // namespace

std::function<int()> register_think(CLI::App& app) {
    auto args = std::make_shared<ThinkArgs>();
    CLI::App* sub =
        app.add_subcommand("think", "a thinker model reasons step by step, a summariser model answers");
    sub->add_option("--thinker", args->thinker, "the thinking model: FILE or NAME=FILE")->required();
    sub->add_option("--summarizer,--summariser", args->summarizer, "the answering model: FILE or NAME=FILE")
        ->required();
    sub->add_option("--step", args->steps,
                    "a continuation suffix (repeatable, C escapes work); default: \"\\nThis question looks "
                    "complex. Let me think again.\\n\" and \"\\nLet me check if my answer is correct or not.\\n\"");
    sub->add_option("-p,--prompt", args->prompt, "the first question");
    sub->add_flag("-v,--verbose", args->verbose, "memory (each file mapped once) and statistics");
    sub->add_flag("--no-color", args->no_color, "no colours, even on a terminal");
    sub->add_option("--transcript", args->transcript, "write every question's steps and answer as JSON Lines");
    add_shared_model_options(*sub, args->shared);
    add_role_options(*sub, "thinker", args->thinker_own, thinker_defaults());
    add_role_options(*sub, "summarizer", args->summarizer_own, summarizer_defaults());
    return [args]() { return run_think(*args); };
}

}  // namespace strata::cli
