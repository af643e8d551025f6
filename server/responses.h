// OpenAI's response shapes: chat.completion and text_completion objects, their streamed chunks, the model
// list and error objects. JSON text is dumped with invalid UTF-8 replaced (U+FFFD): a model can emit any
// bytes.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "server/catalog.h"
#include "server/request.h"
#include "server/scheduler.h"

namespace strata::server {

using nlohmann::json;

std::string dump(const json& j);
json error_json(const ApiError& e);

// The fields every response object of one request shares.
struct ResponseHead {
    Endpoint endpoint = Endpoint::Chat;
    std::string id;       // chatcmpl-... / cmpl-...
    int64_t created = 0;  // Unix time
    std::string model;
};
ResponseHead response_head(Endpoint endpoint, const std::string& model);

json usage_json(const Finish& f);
// The whole reply (stream: false).
json reply_json(const ResponseHead& h, const std::string& text, const Finish& f);
// Streamed chunks: the first (chat: the assistant role), one per piece of text, the last with the finish
// reason, and with stream_options.include_usage a usage chunk with no choices.
json first_chunk_json(const ResponseHead& h);
json text_chunk_json(const ResponseHead& h, const std::string& text);
json finish_chunk_json(const ResponseHead& h, const std::string& reason);
json usage_chunk_json(const ResponseHead& h, const Finish& f);

json model_json(const ServedModel& m, int64_t created);

}  // namespace strata::server
