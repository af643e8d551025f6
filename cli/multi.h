// What the multi-model commands (crosstalk, cobblers, think) share: per-model options, loading every model
// through one ModelRegistry (a file opened twice is mapped once), Ctrl-C handling, notes and transcripts.
//
// Per-model options. Every model has a role name (a, b; router, and each expert's name; thinker, summarizer).
// An option without a prefix applies to every model (`--temp 0`, `-c 1024`, `--layer-spec 0:20`); the same
// option prefixed by a role applies to that model alone and wins (`--b-temp 0.9`, `--thinker-layer-spec
// 0:20`); experts take theirs as `--expert-KEY "Name=VALUE"` (`--expert-layer-spec "Maths=0:20"`). A role's
// own defaults (router temperature 0, thinker 0.7, summariser 0) are changed only by its prefixed option.
#pragma once
#include <CLI/CLI.hpp>
#include <atomic>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/chat_io.h"
#include "core/api/registry.h"
#include "core/run/session.h"

namespace strata::cli {

using Settings = std::map<std::string, std::string>;  // option key ("temp", "layer-spec") -> value

// The keys every model accepts (without the leading "--").
const std::vector<std::string>& model_setting_keys();

// Registers the unprefixed options (-c, -t, -b, -s and --KEY for every key) into `shared`.
void add_shared_model_options(CLI::App& app, Settings& shared);
// Registers --ROLE-KEY for every key into `own`; --help shows role_defaults (the command's own for that role).
void add_role_options(CLI::App& app, const std::string& role, Settings& own, const Settings& role_defaults = {});
// Registers --expert-KEY "Name=VALUE" (repeatable) for every key into `by_expert[Name][KEY]`.
void add_expert_options(CLI::App& app, std::map<std::string, Settings>& by_expert);

// "Name=path" -> {Name, path}; a plain path (or one that exists as given) -> {fallback_name, path}.
std::pair<std::string, std::string> split_named_path(const std::string& arg, const std::string& fallback_name);

struct ModelSpec {
    std::string name;  // shown as the speaker's label and in errors
    std::string path;
    Settings role_defaults;  // the command's own defaults for this role (shared options do not override them)
    Settings own;            // the role's prefixed options
};

// Loads spec.path through the registry and builds its session: role defaults < shared < own. A failure throws
// a message naming the model ("cannot load model B (path): ...").
std::unique_ptr<Session> open_session(ModelRegistry& registry, const ModelSpec& spec, const Settings& shared);


class Output {
  public:
    Output(bool color, const std::string& transcript_path);
    bool color() const { return color_; }
    void note(const std::string& text) const;  // stderr, dimmed on a terminal
    void out(std::string_view text) const;     // stdout, flushed
    void log(const nlohmann::json& j);         // one JSON line in the transcript (if any)

  private:
    bool color_;
    std::ofstream transcript_;
};

// Runs one model turn with Ctrl-C wired to the session; errors propagate.
TurnResult guarded_turn(Session& s, const std::function<TurnResult()>& fn);

nlohmann::json history_json(const Session& s);

// The question loop of cobblers and think: reads lines (libedit on a terminal) until /quit, end of input or
// Ctrl-C at the prompt; /restart calls on_restart, /stats prints stats(), /help the help text, "//x" sends
// "/x", and every other non-blank line goes to ask.
void question_loop(Output& o, bool interactive, const std::string& help, const std::function<void()>& on_restart,
                   const std::function<std::string()>& stats, const std::function<void(const std::string&)>& ask);
// What --verbose prints at the start: the memory report, then each session's seed (drawn at random unless
// given), context and threads.
std::string startup_report(const ModelRegistry& registry, const std::vector<NamedSession>& sessions);
// The per-session statistics lines for /stats and --verbose, memory report first.
std::string stats_report(const ModelRegistry& registry, const std::vector<NamedSession>& sessions);

}  // namespace strata::cli
