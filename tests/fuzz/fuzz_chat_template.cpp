// Chat-template recognition (tokenizer.chat_template text from a model file) and rendering. Input: a u8
// count of messages, each as a role byte and a NUL-terminated content, then the template text. Rejections are
// std::runtime_error / std::invalid_argument; anything else is a finding.
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/text/chat_template.h"

using namespace strata;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    size_t pos = 0;
    const int n_msgs = data[pos++] % 8;
    std::vector<ChatMessage> msgs;
    static const char* roles[] = {"system", "user", "assistant", "tool"};
    for (int m = 0; m < n_msgs && pos < size; ++m) {
        const char* role = roles[data[pos++] % 4];
        const void* nul = pos < size ? std::memchr(data + pos, 0, size - pos) : nullptr;
        const size_t end = nul ? static_cast<size_t>(static_cast<const uint8_t*>(nul) - data) : size;
        msgs.push_back({role, std::string(reinterpret_cast<const char*>(data + pos), end - pos)});
        pos = end < size ? end + 1 : size;
    }
    const std::string_view text(reinterpret_cast<const char*>(data + pos), size - pos);
    try {
        ChatTemplate t = ChatTemplate::detect(text);
        (void)t.name();
        (void)t.render(msgs, true);
        (void)t.render(msgs, false);
        // the roles a session opens a message for (a system message mid-conversation has no place in some
        // families: render_open then says so with std::logic_error, and no session asks for it)
        for (const char* role : {"user", "assistant"}) (void)t.render_open(msgs, role);
    } catch (const std::runtime_error&) {
    } catch (const std::invalid_argument&) {
    }
    (void)py_strip(text);
    return 0;
}
