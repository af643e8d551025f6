#include "cli/multi.h"


#include <cstdio>
#include <filesystem>
#include <sstream>

#include "cli/chat_io.h"
#include "cli/common.h"
#include "core/engine/plan.h"
#include "core/run/settings.h"

namespace strata::cli {

namespace {

struct KeyInfo {
    const char* key;
    const char* help;
};
const KeyInfo kKeys[] = {
    {"layer-spec", "layers to run (Python slices, e.g. 0:20 prunes, 0:8,4:12 self-merges)"},
    {"tokenizer", "llama2.c tokenizer.bin"},
    {"ctx-size", "context size in tokens (0: the model's training context)"},
    {"threads", "threads (0: all hardware threads; never more than those)"},
    {"batch-size", "prompt tokens per batched pass"},
    {"temp", "temperature (0: greedy)"},
    {"top-k", "top-k (0: off)"},
    {"top-p", "top-p (1: off)"},
    {"min-p", "min-p (0: off)"},
    {"repeat-penalty", "repetition penalty (1: off)"},
    {"repeat-last-n", "tokens the penalty looks back over"},
    {"seed", "RNG seed (-1: a random one)"},
    {"system", "system prompt"},
    {"ai-prefix", "start every reply with this text (C escapes such as \\n work)"},
    {"chat-template", "override the chat template"},
    {"max-new-tokens", "tokens per reply at most (-1: until end of text or context)"},
    {"ctx-overflow", "when the context is full: shift, restart or error"},
};


// The names of key on the command line: "--PREFIXkey" and its other spellings: --PREFIXn-predict (first, so
// that messages name it) for max-new-tokens; --layer_spec and --ai_prefix unprefixed.
std::string option_names(const std::string& prefix, const std::string& key) {
    if (key == "max-new-tokens") return "--" + prefix + "n-predict,--" + prefix + key;
    std::string names = "--" + prefix + key;
    if (prefix.empty() && (key == "layer-spec" || key == "ai-prefix")) names += ",--" + key.substr(0, 2) + "_" + key.substr(3);
    return names;
}

// What --help shows as a numeric key's default: a session's own (core/run/settings.h), or the role's.
std::string default_text(const std::string& key, const Settings& role_defaults) {
    if (auto it = role_defaults.find(key); it != role_defaults.end() && session_setting_rule(key)) return it->second;
    static const SessionSettings d;
    std::ostringstream out;
    if (key == "ctx-size") out << "the model's, at most 4096";
    else if (key == "threads") out << d.forward.n_threads;
    else if (key == "batch-size") out << d.forward.max_batch;
    else if (key == "temp") out << d.sampler.temperature;
    else if (key == "top-k") out << d.sampler.top_k;
    else if (key == "top-p") out << d.sampler.top_p;
    else if (key == "min-p") out << d.sampler.min_p;
    else if (key == "repeat-penalty") out << d.sampler.repeat_penalty;
    else if (key == "repeat-last-n") out << d.sampler.repeat_last_n;
    else if (key == "seed") out << -1;
    else if (key == "max-new-tokens") out << d.session.max_new_tokens;
    else if (key == "ctx-overflow") out << overflow_policy_name(d.session.overflow);
    return out.str();
}

// A numeric key's value is checked as it is parsed (one line naming the option, exit 105), so a bad value
// never waits for the models to load; -t above the hardware threads warns once.
void check_value(CLI::Option* opt, const std::string& key, const Settings& role_defaults = {}) {
    opt->default_str(default_text(key, role_defaults));
    if (const NumberRule* rule = session_setting_rule(key))
        opt->check(number_check(*rule))->type_name(rule->integer ? "INT" : "FLOAT");
    if (key == "threads") opt->each([](const std::string& v) { warn_if_too_many_threads(std::stoi(v)); });
}

}  // namespace

const std::vector<std::string>& model_setting_keys() {
    static const std::vector<std::string> keys = [] {
        std::vector<std::string> k;
        for (const KeyInfo& i : kKeys) k.push_back(i.key);
        return k;
    }();
    return keys;
}

void add_shared_model_options(CLI::App& app, Settings& shared) {
    for (const KeyInfo& i : kKeys) {
        const std::string key = i.key;
        std::string names = option_names("", key);
        if (key == "ctx-size") names = "-c," + names;
        if (key == "threads") names = "-t," + names;
        if (key == "batch-size") names = "-b," + names;
        if (key == "seed") names = "-s," + names;
        if (key == "max-new-tokens") names = "-n," + names;
        check_value(app.add_option_function<std::string>(
                        names, [&shared, key](const std::string& v) { shared[key] = v; },
                        std::string(i.help) + " (every model)"),
                    key);
    }
}

void add_role_options(CLI::App& app, const std::string& role, Settings& own, const Settings& role_defaults) {
    for (const KeyInfo& i : kKeys) {
        const std::string key = i.key;
        check_value(app.add_option_function<std::string>(
                           option_names(role + "-", key), [&own, key](const std::string& v) { own[key] = v; },
                           std::string(i.help) + " (" + role + " only)")
                        ->group("Per-model options"),
                    key, role_defaults);
    }
}

void add_expert_options(CLI::App& app, std::map<std::string, Settings>& by_expert) {
    for (const KeyInfo& i : kKeys) {
        const std::string key = i.key;
        const NumberRule* rule = session_setting_rule(key);
        app.add_option_function<std::vector<std::string>>(
               option_names("expert-", key),
               [&by_expert, key, rule, name = option_names("expert-", key)](const std::vector<std::string>& vs) {
                   for (const std::string& v : vs) {
                       const size_t eq = v.find('=');
                       if (eq == std::string::npos || eq == 0)
                           throw CLI::ValidationError(name.substr(0, name.find(',')),
                                                      "expected Name=VALUE, got '" + v + "'");
                       const std::string value = v.substr(eq + 1);
                       if (rule)
                           if (const std::string why = check_number(value, *rule); !why.empty())
                               throw CLI::ValidationError(name.substr(0, name.find(',')), v.substr(0, eq) + "=" + why);
                       if (key == "threads") warn_if_too_many_threads(std::stoi(value));
                       by_expert[v.substr(0, eq)][key] = value;
                   }
               },
               std::string(i.help) + " of one expert: \"Name=VALUE\" (repeatable)")
            ->group("Per-model options");
    }
}

std::pair<std::string, std::string> split_named_path(const std::string& arg, const std::string& fallback_name) {
    const size_t eq = arg.find('=');
    if (eq == std::string::npos || eq == 0 || std::filesystem::exists(arg)) return {fallback_name, arg};
    return {arg.substr(0, eq), arg.substr(eq + 1)};
}

std::unique_ptr<Session> open_session(ModelRegistry& registry, const ModelSpec& spec, const Settings& shared) {
    Settings merged = shared;
    for (const auto& [k, v] : spec.role_defaults) merged[k] = v;
    for (const auto& [k, v] : spec.own) merged[k] = v;
    SessionSettings s;
    try {
        for (const auto& [k, v] : merged) apply_session_setting(s, k, k == "ai-prefix" ? unescape_c(v) : v);
    } catch (const std::exception& e) {
        throw std::invalid_argument("model " + spec.name + ": " + e.what());
    }
    std::shared_ptr<const Model> model;
    try {
        model = registry.open(spec.path, s.tokenizer);
    } catch (const std::exception& e) {
        throw std::runtime_error("cannot load model " + spec.name + " (" + spec.path + "): " + e.what());
    }
    try {
        Plan plan = make_plan(*model, s.layer_spec);
        return std::make_unique<Session>(model, std::move(plan), s.forward, s.sampler, s.session);
    } catch (const std::exception& e) {
        throw std::runtime_error("model " + spec.name + " (" + spec.path + "): " + e.what());
    }
}


Output::Output(bool color, const std::string& transcript_path) : color_(color) {
    if (transcript_path.empty()) return;
    transcript_.open(transcript_path, std::ios::binary | std::ios::trunc);
    if (!transcript_) throw std::runtime_error("cannot write transcript file '" + transcript_path + "'");
}

void Output::note(const std::string& text) const {
    std::fflush(stdout);
    if (color_) std::fprintf(stderr, "\033[2m%s\033[0m\n", text.c_str());
    else std::fprintf(stderr, "%s\n", text.c_str());
    std::fflush(stderr);
}

void Output::out(std::string_view text) const {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
}

void Output::log(const nlohmann::json& j) {
    if (!transcript_.is_open()) return;
    transcript_ << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
    transcript_.flush();
}

TurnResult guarded_turn(Session& s, const std::function<TurnResult()>& fn) {
    Interrupts::generating(&s);
    try {
        TurnResult r = fn();
        Interrupts::generating(nullptr);
        return r;
    } catch (...) {
        Interrupts::generating(nullptr);
        throw;
    }
}

nlohmann::json history_json(const Session& s) {
    nlohmann::json h = nlohmann::json::array();
    for (const Message& m : s.history())
        h.push_back({{"role", role_name(m.role)}, {"text", m.text}, {"interrupted", m.interrupted}});
    return h;
}

std::string startup_report(const ModelRegistry& registry, const std::vector<NamedSession>& sessions) {
    std::string out = memory_report(registry, sessions);
    for (const NamedSession& ns : sessions)
        out += "\n" + ns.name + ": seed " + std::to_string(ns.session->sampler_params().seed) + ", context " +
               std::to_string(ns.session->forward().n_ctx()) + " tokens, " +
               std::to_string(ns.session->forward().n_threads()) + " threads";
    return out;
}

std::string stats_report(const ModelRegistry& registry, const std::vector<NamedSession>& sessions) {
    std::string out = memory_report(registry, sessions);
    for (const NamedSession& ns : sessions) {
        const SessionStats st = ns.session->stats();
        char buf[256];
        std::snprintf(buf, sizeof buf,
                      "\n%s: %d replies, %d messages, context %d/%d | last: %d prompt tokens evaluated (%d "
                      "reused), %.1f tok/s; %d generated, %.1f tok/s",
                      ns.name.c_str(), st.turns, st.messages, st.context_tokens, st.n_ctx,
                      st.last.stats.prompt_tokens, st.last.reused_tokens, st.last.stats.prompt_tps(),
                      st.last.stats.generated_tokens, st.last.stats.generate_tps());
        out += buf;
    }
    return out;
}

void question_loop(Output& o, bool interactive, const std::string& help, const std::function<void()>& on_restart,
                   const std::function<std::string()>& stats, const std::function<void(const std::string&)>& ask) {
    std::unique_ptr<LineReader> reader =
        interactive ? make_editline_reader("strata", o.color(), default_history_path(), Interrupts::flag())
                    : make_plain_reader();
    for (;;) {
        Interrupts::on_input();
        Interrupts::clear();
        ReadResult in = reader->read(false);
        if (in.status != ReadStatus::Line || Interrupts::raised()) break;
        std::string line = in.line;
        if (line.find_first_not_of(" \t\r\n") == std::string::npos) continue;
        reader->add_history(line);
        if (line[0] == '/' && line.rfind("//", 0) != 0) {
            const std::string cmd = line.substr(0, line.find(' '));
            if (cmd == "/quit" || cmd == "/exit") break;
            if (cmd == "/restart") on_restart();
            else if (cmd == "/stats") o.note(stats());
            else if (cmd == "/help") o.note(help);
            else o.note("[unknown command " + cmd + "; /help lists them]");
            continue;
        }
        if (line.rfind("//", 0) == 0) line.erase(0, 1);
        sanitize_utf8(line);
        ask(line);
    }
}

}  // namespace strata::cli
