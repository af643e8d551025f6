#include "server/request.h"

#include <climits>
#include <nlohmann/json.hpp>

namespace strata::server {

using nlohmann::json;

namespace {

ApiError bad(const std::string& param, const std::string& message) {
    return ApiError(400, message, "invalid_request_error", param);
}

ApiError unsupported(const std::string& param, const std::string& what) {
    return ApiError(400, what + " is not supported by strata serve", "invalid_request_error", param,
                    "unsupported");
}

// A field's value, or null where it is absent (OpenAI treats an explicit null as absent).
const json& field(const json& body, const char* name) {
    static const json null_value;
    const auto it = body.find(name);
    return it == body.end() ? null_value : *it;
}

std::optional<std::string> opt_string(const json& body, const char* name) {
    const json& v = field(body, name);
    if (v.is_null()) return std::nullopt;
    if (!v.is_string()) throw bad(name, std::string("'") + name + "' must be a string");
    return v.get<std::string>();
}

std::optional<bool> opt_bool(const json& body, const char* name) {
    const json& v = field(body, name);
    if (v.is_null()) return std::nullopt;
    if (!v.is_boolean()) throw bad(name, std::string("'") + name + "' must be true or false");
    return v.get<bool>();
}

std::optional<double> opt_number(const json& body, const char* name, double lo, double hi,
                                 bool lo_open = false) {
    const json& v = field(body, name);
    if (v.is_null()) return std::nullopt;
    if (!v.is_number()) throw bad(name, std::string("'") + name + "' must be a number");
    const double x = v.get<double>();
    if (!(lo_open ? x > lo : x >= lo) || !(x <= hi))
        throw bad(name, std::string("'") + name + "' is " + v.dump() + "; it must lie in " +
                            (lo_open ? "(" : "[") + json(lo).dump() + ", " + json(hi).dump() + "]");
    return x;
}

std::optional<int64_t> opt_integer(const json& body, const char* name, int64_t lo, int64_t hi) {
    const json& v = field(body, name);
    if (v.is_null()) return std::nullopt;
    if (!v.is_number_integer()) throw bad(name, std::string("'") + name + "' must be an integer");
    if (v.is_number_unsigned() ? v.get<uint64_t>() > static_cast<uint64_t>(hi) : v.get<int64_t>() > hi)
        throw bad(name, std::string("'") + name + "' is " + v.dump() + "; at most " + std::to_string(hi));
    const int64_t x = v.is_number_unsigned() ? static_cast<int64_t>(v.get<uint64_t>()) : v.get<int64_t>();
    if (x < lo)
        throw bad(name, std::string("'") + name + "' is " + v.dump() + "; at least " + std::to_string(lo));
    return x;
}

// Fields that change what the reply means, which strata does not implement: refused unless absent or at their
// no-op value, so a client never gets a silently different answer.
void refuse_unsupported(const json& body, Endpoint endpoint) {
    if (const auto n = opt_integer(body, "n", 1, 128); n && *n != 1)
        throw unsupported("n", "n > 1 (several choices)");
    for (const char* p : {"presence_penalty", "frequency_penalty"})
        if (const auto x = opt_number(body, p, -2, 2); x && *x != 0)
            throw unsupported(p, std::string("'") + p + "'");
    const json& bias = field(body, "logit_bias");
    if (!bias.is_null() && !(bias.is_object() && bias.empty())) throw unsupported("logit_bias", "logit_bias");
    if (endpoint == Endpoint::Chat) {
        if (opt_bool(body, "logprobs").value_or(false)) throw unsupported("logprobs", "logprobs");
        if (!field(body, "top_logprobs").is_null()) throw unsupported("top_logprobs", "top_logprobs");
        for (const char* p : {"tools", "functions"}) {
            const json& v = field(body, p);
            if (!v.is_null() && !(v.is_array() && v.empty())) throw unsupported(p, "tool calling");
        }
        const json& rf = field(body, "response_format");
        if (!rf.is_null() && !(rf.is_object() && rf.value("type", json()) == "text"))
            throw unsupported("response_format", "a response_format other than text");
    } else {
        const json& lp = field(body, "logprobs");
        if (!lp.is_null() && !(lp.is_number_integer() && lp.get<int64_t>() == 0))
            throw unsupported("logprobs", "logprobs");
        if (!field(body, "suffix").is_null()) throw unsupported("suffix", "suffix (insertion)");
        if (const auto b = opt_integer(body, "best_of", 1, 128); b && *b != 1)
            throw unsupported("best_of", "best_of > 1");
    }
}

Role parse_role(const json& m, const std::string& where) {
    const json& r = field(m, "role");
    if (!r.is_string()) throw bad(where + ".role", "'" + where + ".role' must be a string");
    const std::string role = r.get<std::string>();
    if (role == "system" || role == "developer") return Role::System;
    if (role == "user") return Role::User;
    if (role == "assistant") return Role::Assistant;
    if (role == "tool" || role == "function") throw unsupported(where + ".role", "a '" + role + "' message");
    throw bad(where + ".role",
              "'" + where + ".role' is '" + role + "'; expected system, developer, user or assistant");
}

// A message's content: a string, or an array of text parts (joined), or null for an empty assistant message.
std::string parse_content(const json& m, const std::string& where, Role role) {
    const json& c = field(m, "content");
    if (c.is_string()) return c.get<std::string>();
    if (c.is_null()) {
        if (role == Role::Assistant) return "";
        throw bad(where + ".content", "'" + where + ".content' is missing");
    }
    if (!c.is_array())
        throw bad(where + ".content", "'" + where + ".content' must be a string or an array of parts");
    std::string text;
    for (size_t i = 0; i < c.size(); ++i) {
        const std::string part = where + ".content[" + std::to_string(i) + "]";
        const json& p = c[i];
        if (!p.is_object() || !field(p, "type").is_string())
            throw bad(part, "'" + part + "' must be an object with a type");
        if (p["type"] != "text")
            throw unsupported(part, "a '" + p["type"].get<std::string>() + "' content part");
        if (!field(p, "text").is_string()) throw bad(part + ".text", "'" + part + ".text' must be a string");
        text += p["text"].get<std::string>();
    }
    return text;
}

std::vector<Message> parse_messages(const json& body) {
    const json& ms = field(body, "messages");
    if (!ms.is_array()) throw bad("messages", "'messages' must be an array of messages");
    if (ms.empty()) throw bad("messages", "'messages' is empty: there is nothing to answer");
    std::vector<Message> out;
    for (size_t i = 0; i < ms.size(); ++i) {
        const std::string where = "messages[" + std::to_string(i) + "]";
        if (!ms[i].is_object()) throw bad(where, "'" + where + "' must be an object with a role and content");
        const Role role = parse_role(ms[i], where);
        const json& calls = field(ms[i], "tool_calls");
        if (!calls.is_null() && !(calls.is_array() && calls.empty()))
            throw unsupported(where + ".tool_calls", "tool calls");
        out.push_back({role, parse_content(ms[i], where, role)});
    }
    return out;
}

// A completion prompt: a string, a list of token ids, or a list holding one of those.
void parse_prompt(const json& body, GenerationRequest& r) {
    json p = field(body, "prompt");
    if (p.is_array() && p.size() == 1 && (p[0].is_string() || p[0].is_array())) p = json(p[0]);
    if (p.is_string()) {
        r.prompt = p.get<std::string>();
        return;
    }
    if (!p.is_array()) throw bad("prompt", "'prompt' must be a string or an array of token ids");
    for (const json& t : p) {
        if (t.is_string() || t.is_array()) throw unsupported("prompt", "several prompts in one request");
        if (!t.is_number_integer()) throw bad("prompt", "'prompt' must be a string or an array of token ids");
        if (t.is_number_unsigned() ? t.get<uint64_t>() > INT32_MAX
                                   : (t.get<int64_t>() < 0 || t.get<int64_t>() > INT32_MAX))
            throw bad("prompt", "token id " + t.dump() + " is out of range");
        r.prompt_tokens.push_back(static_cast<int32_t>(t.get<int64_t>()));
    }
    r.prompt_is_tokens = true;
}

std::vector<std::string> parse_stop(const json& body) {
    const json& s = field(body, "stop");
    if (s.is_null()) return {};
    std::vector<std::string> out;
    if (s.is_string()) {
        out.push_back(s.get<std::string>());
    } else if (s.is_array()) {
        if (s.size() > 4)
            throw bad("stop", "'stop' holds " + std::to_string(s.size()) + " sequences; at most 4");
        for (const json& x : s) {
            if (!x.is_string()) throw bad("stop", "'stop' must be a string or an array of strings");
            out.push_back(x.get<std::string>());
        }
    } else {
        throw bad("stop", "'stop' must be a string or an array of strings");
    }
    for (const std::string& x : out)
        if (x.empty()) throw bad("stop", "a stop sequence is empty");
    return out;
}

}  // namespace

GenerationRequest parse_request(Endpoint endpoint, std::string_view body_text) {
    json body;
    try {
        body = json::parse(body_text);
    } catch (const json::exception& e) {  // a syntax error, or a number too large for a double (out_of_range)
        throw ApiError(400, std::string("the request body is not valid JSON: ") + e.what(),
                       "invalid_request_error", "", "invalid_json");
    }
    if (!body.is_object()) throw bad("", "the request body must be a JSON object");
    GenerationRequest r;
    r.endpoint = endpoint;
    r.model = opt_string(body, "model").value_or("");
    refuse_unsupported(body, endpoint);
    if (endpoint == Endpoint::Chat) {
        r.messages = parse_messages(body);
        r.ai_prefix = opt_string(body, "ai_prefix").value_or("");
    } else {
        parse_prompt(body, r);
        r.echo = opt_bool(body, "echo").value_or(false);
        r.max_tokens = 16;  // the legacy completions endpoint's default
    }
    r.layer_spec = opt_string(body, "layer_spec").value_or("");
    const char* max_field =
        field(body, "max_completion_tokens").is_null() ? "max_tokens" : "max_completion_tokens";
    if (const auto n = opt_integer(body, max_field, 1, INT_MAX)) r.max_tokens = static_cast<int>(*n);
    r.stop = parse_stop(body);
    r.stream = opt_bool(body, "stream").value_or(false);
    const json& so = field(body, "stream_options");
    if (!so.is_null()) {
        if (!so.is_object()) throw bad("stream_options", "'stream_options' must be an object");
        r.include_usage = opt_bool(so, "include_usage").value_or(false);
    }
    r.ignore_eos = opt_bool(body, "ignore_eos").value_or(false);
    r.temperature = opt_number(body, "temperature", 0, 2).value_or(1.0);
    r.top_p = opt_number(body, "top_p", 0, 1, /*lo_open=*/true).value_or(1.0);
    r.top_k = static_cast<int>(opt_integer(body, "top_k", 0, INT_MAX).value_or(0));
    r.min_p = opt_number(body, "min_p", 0, 1).value_or(0.0);
    if (const auto s = opt_integer(body, "seed", INT64_MIN, INT64_MAX)) r.seed = static_cast<uint64_t>(*s);
    return r;
}

}  // namespace strata::server
