// The numbers GET /metrics shows, in Prometheus' text format: requests by status, prompt and generated
// tokens, generated tokens per second (over the last 10 s), time to first token, batched passes and the
// requests in them, queue depth and busy slots.
#pragma once
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>

namespace strata::server {

// The scheduler's state at one moment.
struct Load {
    int busy_slots = 0;
    int n_slots = 0;
    int queued = 0;
};

class Metrics {
  public:
    using clock = std::chrono::steady_clock;
    void count_request(int http_status);
    void count_prompt(int tokens);
    void count_generated(int tokens, clock::time_point when = clock::now());
    void count_first_token(double seconds_since_arrival);
    void count_pass(int sequences);  // one batched forward pass over that many requests
    double generated_per_second(clock::time_point now = clock::now()) const;  // over the last 10 s
    std::string prometheus(const Load& load) const;

  private:
    static constexpr std::chrono::seconds kWindow{10};
    mutable std::mutex mu_;
    std::map<int, uint64_t> requests_;  // by HTTP status
    uint64_t prompt_tokens_ = 0, generated_tokens_ = 0;
    double first_token_seconds_ = 0;
    uint64_t first_tokens_ = 0;
    uint64_t passes_ = 0, pass_sequences_ = 0;
    // (time, generated tokens so far) at each pass of the last kWindow, and one before it
    mutable std::deque<std::pair<clock::time_point, uint64_t>> recent_;
};

}  // namespace strata::server
