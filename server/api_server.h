// The HTTP side of strata serve (cpp-httplib): routes, API key, limits, streamed (SSE) and whole replies, and
// error objects. HTTP threads parse and prepare a request, hand it to the Scheduler and carry its text back;
// the engine thread does all the model work.
//
//   POST /v1/chat/completions, /v1/completions   (also without /v1)
//   GET  /v1/models, /v1/models/{id}, /health, /metrics
#pragma once
#include <atomic>
#include <cstddef>
#include <memory>
#include <string>

#include "server/catalog.h"
#include "server/metrics.h"
#include "server/scheduler.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace strata::server {

struct ResponseHead;

struct HttpOptions {
    std::string host = "127.0.0.1";
    int port = 8080;      // 0: any free port (port() says which)
    std::string api_key;  // non-empty: every request but /health needs "Authorization: Bearer KEY"
    size_t max_body_bytes = 4 << 20;
    int read_timeout_s = 10;   // a request's headers and body must arrive within this (per read)
    int write_timeout_s = 10;  // a client that stops reading for this long is dropped
    int idle_timeout_s = 5;    // an idle keep-alive connection is closed after this
    int n_threads = 16;        // connections served at once (each waiting request holds one)
};

class ApiServer {
  public:
    ApiServer(const Catalog& catalog, Scheduler& scheduler, Metrics& metrics, const HttpOptions& opts);
    ~ApiServer();
    // Binds the listening socket; throws when the address is taken. Returns the port.
    int bind();
    // Serves until stop(); returns once every connection's handler has finished.
    void listen();
    // The first half of a graceful stop: /health answers 503 (a balancer takes the server out) and new
    // generation requests get 503 with Retry-After (a balancer retries them elsewhere), while the requests in
    // progress run to their end.
    void drain();
    // Generation requests whose reply is not yet fully written.
    int in_flight() const { return in_flight_.load(); }
    // Closes the listening socket and every connection; listen() returns. Streams still being written are cut
    // off (httplib ends them): call it once in_flight() is 0, or to stop at once. Thread-safe.
    void stop();
    int port() const { return port_; }

  private:
    void routes();
    void generate(Endpoint endpoint, const httplib::Request& req, httplib::Response& res);
    void stream_reply(std::shared_ptr<Reply> reply, const ResponseHead& head, bool include_usage,
                      std::shared_ptr<void> in_flight, httplib::Response& res);
    void whole_reply(std::shared_ptr<Reply> reply, const ResponseHead& head, const httplib::Request& req,
                     httplib::Response& res);

    const Catalog& catalog_;
    Scheduler& scheduler_;
    Metrics& metrics_;
    HttpOptions opts_;
    std::unique_ptr<httplib::Server> http_;
    int port_ = 0;
    std::atomic<bool> draining_{false};
    std::atomic<int> in_flight_{0};
    int64_t started_ = 0;  // Unix time, the models' "created"
};

}  // namespace strata::server
