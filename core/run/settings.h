// A session's settings by name, with their valid ranges: what the C API's argv-style options, the CLI's
// per-model options and a server's request fields share, so that every front end accepts the same values and
// refuses a bad one with the same sentence ("--top-p: 1.5 is not valid: use a probability > 0 and <= 1 ...").
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "core/engine/forward.h"
#include "core/engine/sampler.h"
#include "core/run/session.h"

namespace strata {

// The values a numeric option takes.
struct NumberRule {
    double min = 0, max = 0;     // bounds, inclusive unless min_exclusive
    bool min_exclusive = false;  // (min, max]
    bool integer = true;
    const char* valid = "";      // what to use, for the message: "a count >= 0, or -1 for until the end"
};

// "" when text is a number the rule takes; else the sentence that says why not and what is valid:
// "-5 is not valid: use a count >= 0, or -1 for until the end of text or context".
std::string check_number(std::string_view text, const NumberRule& rule);

// Everything a Session is built from.
struct SessionSettings {
    std::string layer_spec;
    std::string tokenizer;  // llama2.c tokenizer.bin
    ForwardOptions forward;
    SamplerParams sampler;
    SessionOptions session;
};

// The setting keys, long option names without "--": layer-spec tokenizer ctx-size threads batch-size temp
// top-k top-p min-p repeat-penalty repeat-last-n seed system ai-prefix chat-template max-new-tokens
// ctx-overflow, and reversed-role (true/false). "n-predict" is another name of max-new-tokens.
const std::vector<std::string>& session_setting_keys();
// The rule of a numeric key (nullptr for a text one or an unknown key).
const NumberRule* session_setting_rule(std::string_view key);
// Sets key to value (text verbatim: no escape processing). Throws std::invalid_argument "--KEY: ..." for an
// unknown key or a bad value. seed -1 is kRandomSeed.
void apply_session_setting(SessionSettings& s, std::string_view key, const std::string& value);

}  // namespace strata
