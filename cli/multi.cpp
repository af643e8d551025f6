#include "cli/multi.h"


#include <cstdio>
#include <filesystem>

#include "cli/chat_io.h"
#include "core/engine/plan.h"

namespace strata::cli {

namespace {

struct KeyInfo {
    const char* key;
    const char* help;
};
const KeyInfo kKeys[] = {
    {"layer-spec", "layers to run (Python slices, e.g. 0:20 prunes, 0:8,4:12 self-merges)"},
    {"tokenizer", "llama2.c tokenizer.bin"},
    {"ctx-size", "context size in tokens"},
    {"threads", "threads"},
    {"batch-size", "prompt tokens per batched pass"},
    {"temp", "temperature; 0 = greedy"},
    {"top-k", "top-k (0 = off)"},
    {"top-p", "top-p (1 = off)"},
    {"min-p", "min-p (0 = off)"},
    {"repeat-penalty", "repetition penalty (1 = off)"},
    {"repeat-last-n", "tokens the penalty looks back over"},
    {"seed", "RNG seed"},
    {"system", "system prompt"},
    {"ai-prefix", "start every reply with this text (C escapes such as \\n work)"},
    {"chat-template", "override the chat template"},
    {"max-new-tokens", "tokens per reply at most (-1: no limit)"},
    {"ctx-overflow", "when the context is full: shift, restart or error"},
};


template <class T>
T parse_number(const std::string& key, const std::string& v) {
    try {
        size_t end = 0;
        T x;
        if constexpr (std::is_floating_point_v<T>) x = static_cast<T>(std::stod(v, &end));
        else x = static_cast<T>(std::stoll(v, &end));
        if (end == v.size()) return x;
    } catch (const std::exception&) {
    }
    throw std::invalid_argument("--" + key + ": not a number: '" + v + "'");
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
        std::string names = std::string("--") + i.key;
        const std::string key = i.key;
        if (key == "ctx-size") names = "-c," + names;
        if (key == "threads") names = "-t," + names;
        if (key == "batch-size") names = "-b," + names;
        if (key == "seed") names = "-s," + names;
        if (key == "layer-spec") names += ",--layer_spec";
        if (key == "ai-prefix") names += ",--ai_prefix";
        app.add_option_function<std::string>(
            names, [&shared, key](const std::string& v) { shared[key] = v; },
            std::string(i.help) + " (every model)");
    }
}

void add_role_options(CLI::App& app, const std::string& role, Settings& own) {
    for (const KeyInfo& i : kKeys) {
        const std::string key = i.key;
        app.add_option_function<std::string>(
               "--" + role + "-" + key, [&own, key](const std::string& v) { own[key] = v; },
               std::string(i.help) + " (" + role + " only)")
            ->group("Per-model options");
    }
}

void add_expert_options(CLI::App& app, std::map<std::string, Settings>& by_expert) {
    for (const KeyInfo& i : kKeys) {
        const std::string key = i.key;
        app.add_option_function<std::vector<std::string>>(
               "--expert-" + key,
               [&by_expert, key](const std::vector<std::string>& vs) {
                   for (const std::string& v : vs) {
                       const size_t eq = v.find('=');
                       if (eq == std::string::npos || eq == 0)
                           throw CLI::ValidationError("--expert-" + key, "expected Name=VALUE, got '" + v + "'");
                       by_expert[v.substr(0, eq)][key] = v.substr(eq + 1);
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
    Settings s = shared;
    for (const auto& [k, v] : spec.role_defaults) s[k] = v;
    for (const auto& [k, v] : spec.own) s[k] = v;
    ForwardOptions fo;
    SamplerParams sp;
    SessionOptions so;
    std::string layer_spec, tokenizer;
    try {
        for (const auto& [k, v] : s) {
            if (k == "layer-spec") layer_spec = v;
            else if (k == "tokenizer") tokenizer = v;
            else if (k == "ctx-size") fo.n_ctx = parse_number<int>(k, v);
            else if (k == "threads") fo.n_threads = parse_number<int>(k, v);
            else if (k == "batch-size") fo.max_batch = parse_number<int>(k, v);
            else if (k == "temp") sp.temperature = parse_number<float>(k, v);
            else if (k == "top-k") sp.top_k = parse_number<int>(k, v);
            else if (k == "top-p") sp.top_p = parse_number<float>(k, v);
            else if (k == "min-p") sp.min_p = parse_number<float>(k, v);
            else if (k == "repeat-penalty") sp.repeat_penalty = parse_number<float>(k, v);
            else if (k == "repeat-last-n") sp.repeat_last_n = parse_number<int>(k, v);
            else if (k == "seed") sp.seed = parse_number<uint64_t>(k, v);
            else if (k == "system") so.system_prompt = v;
            else if (k == "ai-prefix") so.ai_prefix = unescape_c(v);
            else if (k == "chat-template") so.chat_template = v;
            else if (k == "max-new-tokens") so.max_new_tokens = parse_number<int>(k, v);
            else if (k == "ctx-overflow") so.overflow = parse_overflow_policy(v);
            else if (k == "reversed-role") so.reversed_role = v == "1" || v == "true";
            else throw std::invalid_argument("unknown model option --" + k);
        }
        if (fo.n_ctx < 0 || fo.n_threads < 0 || fo.max_batch <= 0)
            throw std::invalid_argument("-c and -t must be >= 0, -b > 0");
    } catch (const std::exception& e) {
        throw std::invalid_argument("model " + spec.name + ": " + e.what());
    }
    std::shared_ptr<const Model> model;
    try {
        model = registry.open(spec.path, tokenizer);
    } catch (const std::exception& e) {
        throw std::runtime_error("cannot load model " + spec.name + " (" + spec.path + "): " + e.what());
    }
    try {
        Plan plan = make_plan(*model, layer_spec);
        return std::make_unique<Session>(model, std::move(plan), fo, sp, so);
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
