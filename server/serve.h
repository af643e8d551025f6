// `strata serve`: the subcommand, registered on the CLI's app by cli/main.cpp like the CLI's own commands.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>

namespace strata::server {
// Registers `serve` on app and returns the function that runs it (its exit code).
std::function<int()> register_serve(CLI::App& app);
}  // namespace strata::server
