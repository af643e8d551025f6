#include "core/run/settings.h"

#include <cerrno>
#include <cfloat>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <utility>

namespace strata {

namespace {

constexpr double kIntMax = INT_MAX;

const std::pair<const char*, NumberRule> kRules[] = {
    {"ctx-size", {0, kIntMax, false, true, "a size in tokens >= 1, or 0 for the model's training context"}},
    {"threads", {0, kIntMax, false, true, "a count >= 1, or 0 for all hardware threads"}},
    {"batch-size", {1, kIntMax, false, true, "a count of tokens >= 1"}},
    {"temp", {0, FLT_MAX, false, false, "a temperature >= 0 (0: greedy)"}},
    {"top-k", {0, kIntMax, false, true, "a count >= 0 (0: off)"}},
    {"top-p", {0, 1, true, false, "a probability > 0 and <= 1 (1: off)"}},
    {"min-p", {0, 1, false, false, "a probability from 0 to 1 (0: off)"}},
    {"repeat-penalty", {0, FLT_MAX, true, false, "a factor > 0 (1: off)"}},
    {"repeat-last-n", {0, kIntMax, false, true, "a count of tokens >= 0 (0: off)"}},
    {"seed", {-1, static_cast<double>(INT64_MAX), false, true, "a seed >= 0, or -1 for a random one"}},
    {"max-new-tokens", {-1, kIntMax, false, true, "a count >= 0, or -1 for until the end of text or context"}},
};
const char* const kTextKeys[] = {"layer-spec", "tokenizer", "system", "ai-prefix", "chat-template", "ctx-overflow",
                                 "reversed-role"};

std::string_view canonical(std::string_view key) { return key == "n-predict" ? "max-new-tokens" : key; }

// The value of text under rule (check_number has passed).
long long to_integer(const std::string& text) { return std::strtoll(text.c_str(), nullptr, 10); }

}  // namespace

std::string check_number(std::string_view text, const NumberRule& rule) {
    const std::string s(text);
    const std::string use = ": use " + std::string(rule.valid);
    if (s.empty()) return "an empty value is not valid" + use;
    char* end = nullptr;
    errno = 0;
    double v = 0;
    if (rule.integer) {
        const long long i = std::strtoll(s.c_str(), &end, 10);
        if (end != s.c_str() + s.size() || errno == ERANGE) {
            std::strtod(s.c_str(), &end);
            const bool numeric = end == s.c_str() + s.size();
            return numeric ? s + " is not valid" + use : "'" + s + "' is not a number" + use;
        }
        v = static_cast<double>(i);
    } else {
        v = std::strtod(s.c_str(), &end);
        if (end != s.c_str() + s.size() || end == s.c_str()) return "'" + s + "' is not a number" + use;
        if (!std::isfinite(v)) return s + " is not valid" + use;
    }
    const bool low = rule.min_exclusive ? !(v > rule.min) : !(v >= rule.min);
    if (low || !(v <= rule.max)) return s + " is not valid" + use;
    return "";
}

const std::vector<std::string>& session_setting_keys() {
    static const std::vector<std::string> keys = [] {
        std::vector<std::string> k;
        for (const auto& [name, rule] : kRules) k.emplace_back(name);
        for (const char* name : kTextKeys) k.emplace_back(name);
        return k;
    }();
    return keys;
}

const NumberRule* session_setting_rule(std::string_view key) {
    key = canonical(key);
    for (const auto& [name, rule] : kRules)
        if (key == name) return &rule;
    return nullptr;
}

void apply_session_setting(SessionSettings& s, std::string_view key_in, const std::string& v) {
    const std::string_view key = canonical(key_in);
    const std::string name = "--" + std::string(key_in);
    if (const NumberRule* rule = session_setting_rule(key)) {
        if (const std::string why = check_number(v, *rule); !why.empty())
            throw std::invalid_argument(name + ": " + why);
        const auto i = [&] { return static_cast<int>(to_integer(v)); };
        const auto f = [&] { return static_cast<float>(std::strtod(v.c_str(), nullptr)); };
        if (key == "ctx-size") s.forward.n_ctx = i();
        else if (key == "threads") s.forward.n_threads = i();
        else if (key == "batch-size") s.forward.max_batch = i();
        else if (key == "temp") s.sampler.temperature = f();
        else if (key == "top-k") s.sampler.top_k = i();
        else if (key == "top-p") s.sampler.top_p = f();
        else if (key == "min-p") s.sampler.min_p = f();
        else if (key == "repeat-penalty") s.sampler.repeat_penalty = f();
        else if (key == "repeat-last-n") s.sampler.repeat_last_n = i();
        else if (key == "seed") s.sampler.seed = to_integer(v) < 0 ? kRandomSeed : static_cast<uint64_t>(to_integer(v));
        else if (key == "max-new-tokens") s.session.max_new_tokens = i();
        return;
    }
    if (key == "layer-spec") s.layer_spec = v;
    else if (key == "tokenizer") s.tokenizer = v;
    else if (key == "system") s.session.system_prompt = v;
    else if (key == "ai-prefix") s.session.ai_prefix = v;
    else if (key == "chat-template") s.session.chat_template = v;
    else if (key == "ctx-overflow") {
        try {
            s.session.overflow = parse_overflow_policy(v);
        } catch (const std::invalid_argument& e) {
            throw std::invalid_argument(name + ": " + e.what());
        }
    }
    else if (key == "reversed-role") {
        if (v != "1" && v != "true" && v != "0" && v != "false")
            throw std::invalid_argument(name + ": " + v + " is not valid: use true or false");
        s.session.reversed_role = v == "1" || v == "true";
    } else {
        throw std::invalid_argument("unknown option " + name);
    }
}

}  // namespace strata
