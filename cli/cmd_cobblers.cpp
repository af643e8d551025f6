// strata cobblers: a router model picks an expert for each new conversation (chatllm.cpp's
// scripts/threecobblers.py). The router (temperature 0, restarted every time) classifies the question into
// the numbered domains; the first domain named in its reply wins (else a number, else the last domain); the
// chosen expert answers and keeps the conversation until /restart.
#include <unistd.h>

#include "cli/chat_io.h"
#include "cli/commands.h"
#include "cli/multi.h"
#include "core/run/programs.h"

namespace strata::cli {

namespace {

struct CobblersArgs {
    std::string router;
    std::vector<std::string> experts;
    std::string prompt;
    bool verbose = false, no_color = false;
    std::string transcript;
    Settings shared, router_own;
    std::map<std::string, Settings> expert_own;
};

// The router's own defaults (a shared option does not change them; --router-temp does).
Settings router_defaults() { return {{"temp", "0"}, {"max-new-tokens", "64"}}; }

const char* kHelp =
    "commands:\n"
    "  /restart   a new conversation: the router chooses an expert for the next question\n"
    "  /stats     memory (each file mapped once, a KV cache per model) and each model's statistics\n"
    "  /quit      leave (also Ctrl-D, or Ctrl-C at an empty prompt)\n"
    "Ctrl-C while a model writes stops that reply.";

int run_cobblers(CobblersArgs& args) {
    if (args.experts.empty()) throw std::invalid_argument("cobblers needs at least one --expert \"Name=FILE\"");
    const bool interactive = isatty(STDIN_FILENO) != 0;
    const bool color = interactive && isatty(STDOUT_FILENO) && !args.no_color && !std::getenv("NO_COLOR");
    Output o(color, args.transcript);
    ModelRegistry registry;

    std::vector<std::string> domains;
    std::vector<ModelSpec> specs;
    for (const std::string& e : args.experts) {
        auto [name, path] = split_named_path(e, "");
        if (name.empty()) throw std::invalid_argument("--expert wants \"Name=FILE\", got '" + e + "'");
        for (const std::string& d : domains)
            if (d == name) throw std::invalid_argument("two experts named '" + name + "'");
        domains.push_back(name);
        specs.push_back({name, path, {}, {}});
    }
    for (const auto& [name, s] : args.expert_own) {
        bool found = false;
        for (ModelSpec& sp : specs)
            if (sp.name == name) sp.own = s, found = true;
        if (!found) throw std::invalid_argument("--expert-... names '" + name + "', which is no expert");
    }
    auto [rname, rpath] = split_named_path(args.router, "router");
    ModelSpec rspec{rname, rpath, router_defaults(), args.router_own};

    std::unique_ptr<Session> router = open_session(registry, rspec, args.shared);
    std::vector<std::unique_ptr<Session>> experts;
    for (const ModelSpec& sp : specs) experts.push_back(open_session(registry, sp, args.shared));
    std::vector<NamedSession> named = {{rspec.name, router.get()}};
    for (size_t i = 0; i < specs.size(); ++i) named.push_back({specs[i].name, experts[i].get()});
    std::string list;
    for (const std::string& d : domains) list += (list.empty() ? "" : ", ") + d;
    o.note("strata cobblers: router " + rspec.name + ", experts " + list +
           (interactive ? ". /help lists the commands; /restart starts a new conversation." : ""));
    if (args.verbose) o.note(startup_report(registry, named));

    int selected = -1;
    const auto ask = [&](const std::string& question) {
        if (selected < 0) {
            router->restart();
            const std::string prompt = router_prompt(domains, question);
            TurnResult rr = guarded_turn(*router, [&] { return router->send(prompt); });
            if (rr.interrupted) {
                o.note("[interrupted]");
                return;
            }
            const RouterChoice c = choose_domain(rr.text, domains);
            selected = c.index;
            experts[static_cast<size_t>(selected)]->restart();
            o.note("[" + rspec.name + " chose " + domains[static_cast<size_t>(selected)] + ": " + c.reason + "]");
            if (args.verbose) o.note("[router reply] " + rr.text);
            o.log({{"event", "route"},
                   {"question", question},
                   {"router_prompt", prompt},
                   {"router_reply", rr.text},
                   {"expert", domains[static_cast<size_t>(selected)]},
                   {"index", selected},
                   {"reason", c.reason}});
        }
        Session& ex = *experts[static_cast<size_t>(selected)];
        const std::string l = domains[static_cast<size_t>(selected)] + " > ";
        o.out(color ? "\033[1;32m" + l + "\033[0;36m" : l);
        TurnResult r;
        try {
            r = guarded_turn(ex, [&] { return ex.send(question, [&](std::string_view p) { o.out(p); }); });
        } catch (const std::exception& e) {
            o.out(color ? "\033[0m\n" : "\n");
            o.note(std::string("error: ") + e.what());
            return;
        }
        o.out(color ? "\033[0m\n" : "\n");
        if (r.interrupted) o.note("[interrupted: the partial reply stays in the conversation]");
        o.log({{"event", "turn"},
               {"expert", domains[static_cast<size_t>(selected)]},
               {"input", question},
               {"reply", r.text},
               {"interrupted", r.interrupted},
               {"history", history_json(ex)}});
    };

    if (!args.prompt.empty()) ask(args.prompt);
    question_loop(o, interactive, kHelp, [&] {
        selected = -1;
        o.note("[new conversation: the router chooses the expert for the next question]");
        o.log({{"event", "restart"}});
    }, [&] { return stats_report(registry, named); }, ask);
    Interrupts::restore();
    if (args.verbose) o.note(stats_report(registry, named));
    return 0;
}

}  // namespace

std::function<int()> register_cobblers(CLI::App& app) {
    auto args = std::make_shared<CobblersArgs>();
    CLI::App* sub = app.add_subcommand(
        "cobblers", "a router model chooses, per conversation, the expert model that answers");
    sub->add_option("--router", args->router, "the router model: FILE or NAME=FILE")->required();
    sub->add_option("--expert", args->experts,
                    "an expert: \"Domain=FILE\" (repeatable; the last one is the catch-all)")
        ->required();
    sub->add_option("-p,--prompt", args->prompt, "the first question");
    sub->add_flag("-v,--verbose", args->verbose, "memory, statistics and the router's raw reply");
    sub->add_flag("--no-color", args->no_color, "no colours, even on a terminal");
    sub->add_option("--transcript", args->transcript, "write every routing and turn as JSON Lines to this file");
    add_shared_model_options(*sub, args->shared);
    add_role_options(*sub, "router", args->router_own, router_defaults());
    add_expert_options(*sub, args->expert_own);
    return [args]() { return run_cobblers(*args); };
}

}  // namespace strata::cli
