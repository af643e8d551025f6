#include "server/api_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <chrono>

#include "server/client_watch.h"
#include "server/responses.h"

namespace strata::server {

namespace {

constexpr auto kPoll = std::chrono::milliseconds(100);  // how often a waiting handler looks at its client

void send_error(httplib::Response& res, const ApiError& e) {
    res.status = e.status;
    if (e.status == 503) res.set_header("Retry-After", "1");
    res.set_content(dump(error_json(e)), "application/json");
}

// Compares without an early exit, so the time taken does not tell how much of a guessed key was right.
bool same_key(const std::string& given, const std::string& want) {
    unsigned char diff = given.size() == want.size() ? 0 : 1;
    for (size_t i = 0; i < given.size(); ++i)
        diff |= static_cast<unsigned char>(given[i] ^ want[i % want.size()]);
    return diff == 0;
}

std::string sse(const json& j) {
    return "data: " + dump(j) + "\n\n";
}

}  // namespace

ApiServer::ApiServer(const Catalog& catalog, Scheduler& scheduler, Metrics& metrics, const HttpOptions& opts)
    : catalog_(catalog),
      scheduler_(scheduler),
      metrics_(metrics),
      opts_(opts),
      http_(std::make_unique<httplib::Server>()) {
    started_ =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    const int threads = std::max(2, opts_.n_threads);
    http_->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
    // httplib's default also sets SO_REUSEPORT, which would let a second server bind the same port and take
    // half of its connections: only SO_REUSEADDR (a restart need not wait for TIME_WAIT).
    http_->set_socket_options([](socket_t sock) {
        int yes = 1;
        setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    http_->set_payload_max_length(opts_.max_body_bytes);
    http_->set_read_timeout(opts_.read_timeout_s, 0);
    http_->set_write_timeout(opts_.write_timeout_s, 0);
    http_->set_keep_alive_timeout(opts_.idle_timeout_s);
    http_->set_keep_alive_max_count(1000);
    routes();
}

ApiServer::~ApiServer() = default;

int ApiServer::bind() {
    if (opts_.port == 0) {
        port_ = http_->bind_to_any_port(opts_.host);
        if (port_ <= 0) throw std::runtime_error("cannot listen on " + opts_.host + " (any port)");
    } else {
        if (!http_->bind_to_port(opts_.host, opts_.port))
            throw std::runtime_error("cannot listen on " + opts_.host + ":" + std::to_string(opts_.port) +
                                     " (is another server there? --port 0 picks a free port)");
        port_ = opts_.port;
    }
    return port_;
}

void ApiServer::listen() {
    http_->listen_after_bind();
}

void ApiServer::drain() {
    draining_ = true;
    scheduler_.drain();
}

void ApiServer::stop() {
    draining_ = true;
    http_->stop();
}

void ApiServer::routes() {
    using httplib::Request, httplib::Response;
    http_->set_pre_routing_handler([this](const Request& req, Response& res) {
        if (opts_.api_key.empty() || req.path == "/health")
            return httplib::Server::HandlerResponse::Unhandled;
        if (same_key(req.get_header_value("Authorization"), "Bearer " + opts_.api_key))
            return httplib::Server::HandlerResponse::Unhandled;
        send_error(res,
                   ApiError(401, "a valid API key is needed: send the header 'Authorization: Bearer KEY'",
                            "authentication_error", "", "invalid_api_key"));
        return httplib::Server::HandlerResponse::Handled;
    });
    // httplib's own refusals (no such route, a body over the limit, a malformed request line) as error
    // objects.
    http_->set_error_handler([](const Request& req, Response& res) {
        if (!res.body.empty()) return;
        std::string message = "HTTP " + std::to_string(res.status);
        if (res.status == 404) message = "no such endpoint: " + req.method + " " + req.path;
        if (res.status == 413) message = "the request body is larger than the server's limit (--max-body)";
        send_error(res, ApiError(res.status, message,
                                 res.status == 404 ? "not_found_error" : "invalid_request_error"));
    });
    http_->set_exception_handler([](const Request&, Response& res, std::exception_ptr ep) {
        std::string what = "unknown error";
        try {
            std::rethrow_exception(ep);
        } catch (const std::exception& e) {
            what = e.what();
        } catch (...) {
        }
        send_error(res, ApiError(500, "internal error: " + what, "server_error"));
    });
    http_->set_logger([this](const Request&, const Response& res) { metrics_.count_request(res.status); });

    http_->Get("/health", [this](const Request&, Response& res) {
        if (draining_) {
            res.status = 503;
            res.set_content(R"({"status":"shutting down"})", "application/json");
            return;
        }
        res.set_content(R"({"status":"ok"})", "application/json");
    });
    http_->Get("/metrics", [this](const Request&, Response& res) {
        res.set_content(metrics_.prometheus(scheduler_.load()), "text/plain; version=0.0.4");
    });
    const auto list = [this](const Request&, Response& res) {
        json data = json::array();
        for (const ServedModel& m : catalog_.models()) data.push_back(model_json(m, started_));
        res.set_content(dump({{"object", "list"}, {"data", data}}), "application/json");
    };
    const auto one = [this](const Request& req, Response& res) {
        const std::string id = req.matches[1];
        for (const ServedModel& m : catalog_.models())
            if (m.id == id) return res.set_content(dump(model_json(m, started_)), "application/json");
        send_error(res, ApiError(404, "the model '" + id + "' does not exist", "invalid_request_error",
                                 "model", "model_not_found"));
    };
    const auto chat = [this](const Request& req, Response& res) { generate(Endpoint::Chat, req, res); };
    const auto completion = [this](const Request& req, Response& res) {
        generate(Endpoint::Completion, req, res);
    };
    for (const char* prefix : {"/v1", ""}) {
        const std::string p = prefix;
        http_->Get(p + "/models", list);
        http_->Get(p + "/models/(.+)", one);
        http_->Post(p + "/chat/completions", chat);
        http_->Post(p + "/completions", completion);
    }
}

void ApiServer::generate(Endpoint endpoint, const httplib::Request& req, httplib::Response& res) {
    // Counted until the reply is written: for a stream, until httplib drops its content provider.
    ++in_flight_;
    const std::shared_ptr<void> in_flight(nullptr, [this](void*) { --in_flight_; });
    try {
        const GenerationRequest r = parse_request(endpoint, req.body);
        PreparedRequest p = catalog_.prepare(r);
        const ResponseHead head = response_head(endpoint, p.model_id);
        std::shared_ptr<Reply> reply = scheduler_.submit(std::move(p));
        if (r.stream)
            stream_reply(std::move(reply), head, r.include_usage, in_flight, res);
        else
            whole_reply(std::move(reply), head, req, res);
    } catch (const ApiError& e) {
        send_error(res, e);
    }
}

void ApiServer::whole_reply(std::shared_ptr<Reply> reply, const ResponseHead& head,
                            const httplib::Request& req, httplib::Response& res) {
    const ClientWatch client(req.remote_addr, req.remote_port, port_);
    std::string text;
    for (;;) {
        Reply::Update u = reply->wait(kPoll);
        text += u.text;
        if (u.done) {
            if (!u.finish.error.empty())
                return send_error(res, ApiError(u.finish.status, u.finish.error, "server_error"));
            return res.set_content(dump(reply_json(head, text, u.finish)), "application/json");
        }
        if (client.gone()) {  // nobody to answer: free the slot now
            reply->cancel();
            res.status = 499;
            return;
        }
    }
}

void ApiServer::stream_reply(std::shared_ptr<Reply> reply, const ResponseHead& head, bool include_usage,
                             std::shared_ptr<void> in_flight, httplib::Response& res) {
    // Server-sent events: a first chunk at once (the client sees the stream open), then a chunk per piece of
    // text as the engine produces it, the finish reason, the usage (if asked), and [DONE].
    auto opened = std::make_shared<bool>(false);
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [reply, head, include_usage, opened, in_flight](size_t, httplib::DataSink& sink) {
            const auto send = [&](const std::string& s) { return sink.write(s.data(), s.size()); };
            if (!*opened) {
                *opened = true;
                if (!send(sse(first_chunk_json(head)))) return false;
            }
            Reply::Update u = reply->wait(kPoll);
            if (!u.text.empty() && !send(sse(text_chunk_json(head, u.text)))) return false;
            if (!u.done) return sink.is_writable();  // false: the client went away (the releaser cancels)
            if (!u.finish.error.empty()) {
                send(sse(error_json(ApiError(u.finish.status, u.finish.error, "server_error"))));
            } else {
                send(sse(finish_chunk_json(head, u.finish.reason)));
                if (include_usage) send(sse(usage_chunk_json(head, u.finish)));
            }
            send("data: [DONE]\n\n");
            sink.done();
            return true;
        },
        [reply](bool success) {
            if (!success) reply->cancel();
        });
}

}  // namespace strata::server
