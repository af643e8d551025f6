// strata: the command-line front end. Every error is caught here, once, and printed as one line.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <functional>
#include <new>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "server/serve.h"

int main(int argc, char** argv) {
    CLI::App app{"strata: run GGUF models, and duplicate, delete or reorder their layers on the fly", "strata"};
    app.require_subcommand(1);
    app.option_defaults()->always_capture_default();  // --help shows every option's default
    // A bad option is one line, as every other error: "error: --n-predict: -5 is not valid: use ...".
    app.failure_message([](const CLI::App*, const CLI::Error& e) { return "error: " + std::string(e.what()) + "\n"; });
    std::vector<std::pair<CLI::App*, std::function<int()>>> commands;
    auto add = [&](std::function<int()> (*reg)(CLI::App&)) {
        const size_t before = app.get_subcommands({}).size();
        auto fn = reg(app);
        commands.emplace_back(app.get_subcommands({})[before], std::move(fn));
    };
    add(strata::cli::register_run);
    add(strata::cli::register_show);
    add(strata::cli::register_chat);
    add(strata::cli::register_bench);
    add(strata::cli::register_synth);
    add(strata::cli::register_crosstalk);
    add(strata::cli::register_cobblers);
    add(strata::cli::register_think);
    add(strata::cli::register_perplexity);
    add(strata::cli::register_profile);
    add(strata::cli::register_layers);
    add(strata::cli::register_tokenize);
    add(strata::cli::register_lens);
    add(strata::server::register_serve);
    // Lists start empty: no "[]" as their default in --help.
    for (CLI::App* sub : app.get_subcommands({}))
        for (CLI::Option* opt : sub->get_options())
            if (opt->get_default_str() == "[]") opt->default_str("");
    // llama.cpp's spelling -ngl N (a multi-letter single-dash flag, which CLI11 does not take) is
    // --n-gpu-layers N.
    std::vector<std::string> args;
    for (int i = argc - 1; i > 0; --i) args.emplace_back(std::string(argv[i]) == "-ngl" ? "--n-gpu-layers" : argv[i]);
    try {
        app.parse(args);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    try {
        for (auto& [sub, fn] : commands)
            if (sub->parsed()) return fn();
    } catch (const std::bad_alloc&) {
        std::fflush(stdout);
        std::fprintf(stderr, "error: out of memory (a smaller context, -c, or a smaller model may fit)\n");
        return 1;
    } catch (const std::exception& e) {
        std::fflush(stdout);
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 1;
}
