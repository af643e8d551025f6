#include "server/metrics.h"

#include <cstdio>

namespace strata::server {

void Metrics::count_request(int http_status) {
    std::lock_guard<std::mutex> lock(mu_);
    ++requests_[http_status];
}

void Metrics::count_prompt(int tokens) {
    std::lock_guard<std::mutex> lock(mu_);
    prompt_tokens_ += static_cast<uint64_t>(tokens);
}

void Metrics::count_generated(int tokens, clock::time_point when) {
    std::lock_guard<std::mutex> lock(mu_);
    generated_tokens_ += static_cast<uint64_t>(tokens);
    recent_.emplace_back(when, generated_tokens_);
    while (recent_.size() > 2 && recent_[1].first < when - kWindow) recent_.pop_front();
}

void Metrics::count_first_token(double seconds) {
    std::lock_guard<std::mutex> lock(mu_);
    first_token_seconds_ += seconds;
    ++first_tokens_;
}

void Metrics::count_pass(int sequences) {
    std::lock_guard<std::mutex> lock(mu_);
    ++passes_;
    pass_sequences_ += static_cast<uint64_t>(sequences);
}

double Metrics::generated_per_second(clock::time_point now) const {
    std::lock_guard<std::mutex> lock(mu_);
    while (recent_.size() > 2 && recent_[1].first < now - kWindow) recent_.pop_front();
    if (recent_.empty() || recent_.back().first < now - kWindow) return 0;  // nothing generated lately
    const auto& [t0, n0] = recent_.front();
    const double seconds = std::chrono::duration<double>(now - t0).count();
    return seconds > 0 ? static_cast<double>(generated_tokens_ - n0) / seconds : 0;
}

std::string Metrics::prometheus(const Load& load) const {
    const double tps = generated_per_second();
    std::lock_guard<std::mutex> lock(mu_);
    std::string out;
    char line[256];
    auto metric = [&](const char* name, const char* type, const char* help) {
        std::snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
        out += line;
    };
    metric("strata_requests_total", "counter", "HTTP requests answered, by status code.");
    for (const auto& [status, n] : requests_) {
        std::snprintf(line, sizeof line, "strata_requests_total{status=\"%d\"} %llu\n", status,
                      static_cast<unsigned long long>(n));
        out += line;
    }
    auto value = [&](const char* name, const char* type, const char* help, double v) {
        metric(name, type, help);
        std::snprintf(line, sizeof line, "%s %.17g\n", name, v);
        out += line;
    };
    value("strata_prompt_tokens_total", "counter", "Prompt tokens evaluated.",
          static_cast<double>(prompt_tokens_));
    value("strata_generated_tokens_total", "counter", "Tokens generated.",
          static_cast<double>(generated_tokens_));
    value("strata_generated_tokens_per_second", "gauge", "Tokens generated per second over the last 10 s.",
          tps);
    value("strata_time_to_first_token_seconds_sum", "counter",
          "Seconds from a request's arrival to its first generated token, summed.", first_token_seconds_);
    value("strata_time_to_first_token_seconds_count", "counter", "Requests that generated a first token.",
          static_cast<double>(first_tokens_));
    value("strata_batched_passes_total", "counter", "Batched forward passes (one per plan per engine step).",
          static_cast<double>(passes_));
    value("strata_batched_sequences_total", "counter",
          "Requests in those passes, summed (over the passes: the mean batch).",
          static_cast<double>(pass_sequences_));
    value("strata_queue_depth", "gauge", "Requests waiting for a slot.", load.queued);
    value("strata_slots_busy", "gauge", "Slots holding a request.", load.busy_slots);
    value("strata_slots_total", "gauge", "Slots (--parallel).", load.n_slots);
    return out;
}

}  // namespace strata::server
