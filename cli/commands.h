#pragma once
#include <CLI/CLI.hpp>
#include <functional>

namespace strata::cli {
// Each registers its subcommand on app and returns the function that runs it (exit code).
std::function<int()> register_run(CLI::App& app);
std::function<int()> register_show(CLI::App& app);
std::function<int()> register_chat(CLI::App& app);
std::function<int()> register_bench(CLI::App& app);
std::function<int()> register_synth(CLI::App& app);
std::function<int()> register_crosstalk(CLI::App& app);
std::function<int()> register_cobblers(CLI::App& app);
std::function<int()> register_think(CLI::App& app);
std::function<int()> register_perplexity(CLI::App& app);
std::function<int()> register_profile(CLI::App& app);
std::function<int()> register_layers(CLI::App& app);
std::function<int()> register_tokenize(CLI::App& app);
std::function<int()> register_lens(CLI::App& app);
}  // namespace strata::cli
