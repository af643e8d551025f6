// Stop sequences over text that arrives in pieces: what might be the start of a stop sequence is held back
// until the next piece shows it is not, so a streamed reply never shows a stop sequence or part of one, and
// equals the non-streamed reply.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace strata::server {

class StopMatcher {
  public:
    explicit StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {}
    // Takes the next piece; returns the text that is now certain to be part of the reply. Once a stop
    // sequence appears, returns the text before it and stopped() turns true; the rest is dropped.
    std::string feed(std::string_view piece);
    // The text still held back, at the end of generation (empty once stopped).
    std::string flush();
    bool stopped() const { return stopped_; }

  private:
    std::vector<std::string> stops_;
    std::string held_;  // a tail that is a proper prefix of some stop sequence
    bool stopped_ = false;
};

}  // namespace strata::server
