// strata crosstalk: two models talk to each other (chatllm.cpp's scripts/crosstask.py). A opens with the
// prompt, B answers, A answers B, ... for --turns replies or until Ctrl-C. Both may be one file: it is mapped
// once and each side has its own plan, KV cache, sampler and history.
#include <unistd.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/multi.h"

namespace strata::cli {

namespace {

struct CrosstalkArgs {
    std::vector<std::string> models;
    std::string prompt;
    int turns = 0;
    bool reversed_a = false, reversed_b = false;
    bool verbose = false, no_color = false;
    std::string transcript;
    Settings shared, a, b;
};

int run_crosstalk(CrosstalkArgs& args) {
    if (args.models.size() != 2)
        throw std::invalid_argument("crosstalk needs two models: -m A.gguf -m B.gguf (one file twice is fine)");
    const bool color = isatty(STDOUT_FILENO) && !args.no_color && !std::getenv("NO_COLOR");
    Output o(color, args.transcript);
    ModelRegistry registry;
    ModelSpec specs[2];
    const Settings* own[2] = {&args.a, &args.b};
    const bool reversed[2] = {args.reversed_a, args.reversed_b};
    for (int i = 0; i < 2; ++i) {
        auto [name, path] = split_named_path(args.models[static_cast<size_t>(i)], i == 0 ? "A" : "B");
        specs[i] = {name, path, {}, *own[i]};
        if (reversed[i]) specs[i].role_defaults["reversed-role"] = "1";
    }
    if (specs[0].name == specs[1].name) specs[1].name += "'";
    std::unique_ptr<Session> a = open_session(registry, specs[0], args.shared);
    std::unique_ptr<Session> b = open_session(registry, specs[1], args.shared);
    Session* sessions[2] = {a.get(), b.get()};
    const std::vector<NamedSession> named = {{specs[0].name, a.get()}, {specs[1].name, b.get()}};
    if (args.verbose) o.note(startup_report(registry, named));

    const auto label = [&](int who) {
        const std::string l = specs[who].name + " > ";
        return color ? std::string(who == 0 ? "\033[1;32m" : "\033[1;34m") + l + "\033[0m" : l;
    };
    // A said the opening line: it goes into A's history as its own message, and is B's first input.
    std::string input = args.prompt;
    a->add_message(a->model_role(), input);
    o.out(label(0) + input + "\n");
    o.log({{"event", "opening"}, {"speaker", specs[0].name}, {"text", input}});
    Interrupts::clear();
    int turn = 0;
    while (args.turns <= 0 || turn < args.turns) {
        const int who = turn % 2 == 0 ? 1 : 0;
        Session& s = *sessions[who];
        o.out(label(who));
        TurnResult r = guarded_turn(s, [&] {
            return s.send(input, [&](std::string_view piece) { o.out(piece); });
        });
        o.out("\n");
        ++turn;
        o.log({{"event", "turn"},
               {"turn", turn},
               {"speaker", specs[who].name},
               {"input", input},
               {"reply", r.text},
               {"generated_tokens", r.stats.generated_tokens},
               {"interrupted", r.interrupted},
               {"stopped_by_eog", r.stopped_by_eog}});
        if (r.interrupted || Interrupts::raised()) {
            o.note("[interrupted]");
            break;
        }
        input = r.text;
    }
    Interrupts::restore();
    if (args.verbose) o.note(stats_report(registry, named));
    o.log({{"event", "end"}, {"turns", turn}, {"history_a", history_json(*a)}, {"history_b", history_json(*b)}});
    return 0;
}

}  // namespace

std::function<int()> register_crosstalk(CLI::App& app) {
    auto args = std::make_shared<CrosstalkArgs>();
    CLI::App* sub = app.add_subcommand("crosstalk", "let two models talk to each other");
    sub->add_option("-m,--model", args->models, "the two models, A then B: FILE or NAME=FILE (NAME labels it)")
        ->required()
        ->expected(1, 2);
    sub->add_option("-p,--prompt", args->prompt, "A's opening line")->required();
    sub->add_option("--turns", args->turns, "replies to generate (B, A, B, ...); 0 = until Ctrl-C")
        ->check(number_check({0, 2147483647, false, true, "a count >= 0 (0: until Ctrl-C)"}));
    sub->add_flag("--reversed-role-a,--reversed_role_a", args->reversed_a, "A speaks as the user");
    sub->add_flag("--reversed-role-b,--reversed_role_b", args->reversed_b, "B speaks as the user");
    sub->add_flag("-v,--verbose", args->verbose, "memory (each file mapped once, a KV cache per model) and statistics");
    sub->add_flag("--no-color", args->no_color, "no colours, even on a terminal");
    sub->add_option("--transcript", args->transcript, "write every turn as JSON Lines to this file");
    add_shared_model_options(*sub, args->shared);
    add_role_options(*sub, "a", args->a);
    add_role_options(*sub, "b", args->b);
    return [args]() { return run_crosstalk(*args); };
}

}  // namespace strata::cli
