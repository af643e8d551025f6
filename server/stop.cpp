#include "server/stop.h"

#include <algorithm>

namespace strata::server {

std::string StopMatcher::feed(std::string_view piece) {
    if (stopped_) return "";
    std::string text = held_;
    text += piece;
    held_.clear();
    // The earliest stop sequence in the text ends the reply.
    size_t first = std::string::npos;
    for (const std::string& s : stops_) first = std::min(first, text.find(s));
    if (first != std::string::npos) {
        stopped_ = true;
        text.resize(first);
        return text;
    }
    // Hold back the longest tail that a stop sequence starts with (its proper prefix); the next piece
    // decides.
    size_t hold = 0;
    for (const std::string& s : stops_)
        for (size_t k = std::min(s.size() - 1, text.size()); k > hold; --k)
            if (text.compare(text.size() - k, k, s, 0, k) == 0) {
                hold = k;
                break;
            }
    held_ = text.substr(text.size() - hold);
    text.resize(text.size() - hold);
    return text;
}

std::string StopMatcher::flush() {
    std::string out;
    out.swap(held_);
    return stopped_ ? std::string() : out;
}

}  // namespace strata::server
