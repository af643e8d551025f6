// The OpenAI request bodies strata serve accepts, parsed and validated: JSON text in, a GenerationRequest (or
// an ApiError) out. A pure function of its input (no model, no sockets), so it is fuzzed as it is
// (tests/fuzz/fuzz_server_request.cpp); the model-dependent checks (the model's name, the layer spec against
// its layers, the prompt against the context) come after, in server/catalog.h.
#pragma once
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/run/session.h"

namespace strata::server {

// An error as the API answers it: an HTTP status and OpenAI's error object
// {"error": {"message", "type", "param", "code"}}.
struct ApiError : std::runtime_error {
    ApiError(int status, std::string message, std::string type = "invalid_request_error",
             std::string param = "", std::string code = "")
        : std::runtime_error(std::move(message)),
          status(status),
          type(std::move(type)),
          param(std::move(param)),
          code(std::move(code)) {}
    int status;
    std::string type;   // invalid_request_error, authentication_error, not_found_error, server_error, ...
    std::string param;  // the request field at fault, or ""
    std::string code;   // a machine-readable reason, or ""
};

enum class Endpoint { Chat, Completion };  // /v1/chat/completions, /v1/completions

struct GenerationRequest {
    Endpoint endpoint = Endpoint::Chat;
    std::string model;  // "" when the request names none (the server's first model then answers)

    // Chat: the conversation. A last assistant message is continued (its text is the start of the reply);
    // otherwise the model opens a new assistant message, starting with ai_prefix.
    std::vector<Message> messages;
    std::string ai_prefix;  // extension

    // Completion: the prompt, as text or as token ids.
    std::string prompt;
    std::vector<int32_t> prompt_tokens;
    bool prompt_is_tokens = false;
    bool echo = false;  // the reply text starts with the prompt

    std::string layer_spec;         // extension: a plan over the model's layers for this request only
    std::optional<int> max_tokens;  // absent: until end of generation or a full context
    std::vector<std::string> stop;  // up to 4 sequences; the text stops before the first that appears
    bool stream = false;
    bool include_usage = false;  // stream_options.include_usage: a last chunk with the token counts
    bool ignore_eos = false;     // extension (llama-server's): generate past end-of-generation tokens

    // Sampling: OpenAI's defaults (temperature 1, top_p 1); top_k and min_p are extensions (0: off).
    double temperature = 1.0;
    double top_p = 1.0;
    int top_k = 0;
    double min_p = 0.0;
    std::optional<uint64_t> seed;  // absent: a random seed
};

// Parses a request body for `endpoint`. Malformed JSON, a missing or mistyped field, a value out of range
// (temperature outside [0, 2], top_p outside (0, 1], max_tokens < 1, ...) and an OpenAI feature strata does
// not implement (n > 1, logprobs, tools, ...) throw ApiError 400 naming the field. Unknown fields are
// ignored, as OpenAI's clients send fields of newer API versions.
GenerationRequest parse_request(Endpoint endpoint, std::string_view body);

}  // namespace strata::server
