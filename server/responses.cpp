#include "server/responses.h"

#include <chrono>
#include <random>

namespace strata::server {

std::string dump(const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

json error_json(const ApiError& e) {
    auto or_null = [](const std::string& s) { return s.empty() ? json() : json(s); };
    return {
        {"error",
         {{"message", e.what()}, {"type", e.type}, {"param", or_null(e.param)}, {"code", or_null(e.code)}}}};
}

ResponseHead response_head(Endpoint endpoint, const std::string& model) {
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    static const char* hex = "0123456789abcdef";
    std::string id = endpoint == Endpoint::Chat ? "chatcmpl-" : "cmpl-";
    for (int i = 0; i < 24; ++i) id += hex[rng() % 16];
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    return {endpoint, id, std::chrono::duration_cast<std::chrono::seconds>(now).count(), model};
}

namespace {

json head_json(const ResponseHead& h, bool chunk) {
    const char* object = h.endpoint == Endpoint::Chat ? (chunk ? "chat.completion.chunk" : "chat.completion")
                                                      : "text_completion";
    return {{"id", h.id},
            {"object", object},
            {"created", h.created},
            {"model", h.model},
            {"system_fingerprint", nullptr}};
}

json choice_json(const ResponseHead& h, const json& text, const json& finish_reason, bool chunk) {
    json c = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish_reason}};
    if (h.endpoint == Endpoint::Completion)
        c["text"] = text.is_null() ? json("") : text;
    else if (chunk)
        c["delta"] = text.is_null() ? json::object() : json{{"content", text}};
    else
        c["message"] = {{"role", "assistant"}, {"content", text}, {"refusal", nullptr}};
    return c;
}

json chunk_json(const ResponseHead& h, json choice) {
    json j = head_json(h, true);
    j["choices"] = json::array({std::move(choice)});
    return j;
}

}  // namespace

json usage_json(const Finish& f) {
    return {{"prompt_tokens", f.prompt_tokens},
            {"completion_tokens", f.completion_tokens},
            {"total_tokens", f.prompt_tokens + f.completion_tokens}};
}

json reply_json(const ResponseHead& h, const std::string& text, const Finish& f) {
    json j = head_json(h, false);
    j["choices"] = json::array({choice_json(h, text, f.reason, false)});
    j["usage"] = usage_json(f);
    return j;
}

json first_chunk_json(const ResponseHead& h) {
    json c = choice_json(h, "", nullptr, true);
    if (h.endpoint == Endpoint::Chat) c["delta"] = {{"role", "assistant"}, {"content", ""}};
    return chunk_json(h, std::move(c));
}

json text_chunk_json(const ResponseHead& h, const std::string& text) {
    return chunk_json(h, choice_json(h, text, nullptr, true));
}

json finish_chunk_json(const ResponseHead& h, const std::string& reason) {
    return chunk_json(h, choice_json(h, nullptr, reason, true));
}

json usage_chunk_json(const ResponseHead& h, const Finish& f) {
    json j = head_json(h, true);
    j["choices"] = json::array();
    j["usage"] = usage_json(f);
    return j;
}

json model_json(const ServedModel& m, int64_t created) {
    json j = {{"id", m.id},           {"object", "model"},  {"created", created},
              {"owned_by", "strata"}, {"parent", m.parent}, {"layer_spec", m.layer_spec},
              {"steps", m.steps}};
    return j;
}

}  // namespace strata::server
