// Continuous batching: N slots, each holding one request and its own KV cache, a bounded queue before them,
// and one engine thread that runs the batched passes. Every pass takes, per plan, the next token of every
// slot that is decoding plus a chunk of the prompts of the slots that are still reading theirs, and evaluates
// them in one Forward::eval_sequences call: each weight is read once per pass for all of them. Requests on
// different plans (variants of one mapping) run as one pass per plan. A request joins at the next pass after
// a slot frees, and leaves the moment it ends or its client goes away.
//
// Prefill is chunked into the decode passes: a pass holds at most the Forward's max_batch tokens, decode
// tokens first, then prompt tokens in arrival order. A long prompt therefore delays the running streams by at
// most one max_batch pass at a time instead of its whole length, and its tokens share the weight reads of the
// decode steps. The kernels are batch-invariant, so a request's tokens are the same whatever it shares a pass
// with.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "server/catalog.h"
#include "server/metrics.h"

namespace strata::server {

// How a request ends.
struct Finish {
    std::string reason;  // "stop" (end of generation or a stop sequence), "length" (max_tokens or full
                         // context), or "" with an error
    std::string error;   // non-empty: the request failed (the server is shutting down, an internal error)
    int status = 200;    // with an error: 503 (shutting down, no memory), 499 (the client went away), 500
    int prompt_tokens = 0;
    int completion_tokens = 0;  // tokens sampled, an end-of-generation token included

    static Finish ended(std::string reason) {
        Finish f;
        f.reason = std::move(reason);
        return f;
    }
    static Finish failed(int status, std::string error) {
        Finish f;
        f.status = status;
        f.error = std::move(error);
        return f;
    }
};

// What the engine hands a request's HTTP thread: the reply's text as it grows, then its end. Thread-safe.
class Reply {
  public:
    struct Update {
        std::string text;  // new text since the last update
        bool done = false;
        Finish finish;  // when done
    };
    // Waits up to `timeout` for new text or the end, and takes what came.
    Update wait(std::chrono::milliseconds timeout);
    // The client went away: the engine ends the request and frees its slot at its next pass.
    void cancel() { cancelled_.store(true, std::memory_order_relaxed); }
    bool cancelled() const { return cancelled_.load(std::memory_order_relaxed); }

    // The engine's side.
    void append(std::string_view text);
    void finish(Finish f);

  private:
    std::mutex mu_;
    std::condition_variable cv_;
    std::string text_;
    bool done_ = false;
    Finish finish_;
    std::atomic<bool> cancelled_{false};
};

struct SchedulerOptions {
    int n_slots = 4;     // requests generating at once
    int max_queue = 64;  // requests waiting for a slot; one more is refused (503)
};

class Scheduler {
  public:
    Scheduler(const SchedulerOptions& opts, Metrics& metrics);
    ~Scheduler();  // ends every request (abort) and joins the engine thread

    // Queues a request; throws ApiError 503 when the queue is full or the server is shutting down.
    std::shared_ptr<Reply> submit(PreparedRequest request);
    // Refuses new requests; the queued and active ones run to their end, then the engine thread ends.
    void drain();
    // Ends every queued and active request now (with an error) and stops the engine thread.
    void abort();
    void join();
    Load load() const;

  private:
    struct Slot;  // an admitted request: its cache, sampler, decoder and progress (engine thread only)
    struct Waiting {
        PreparedRequest request;
        std::shared_ptr<Reply> reply;
        std::chrono::steady_clock::time_point queued_at;
    };
    void run();
    void admit();
    void pass(Forward& fwd, std::vector<Slot*>& slots);  // one batched pass over the slots of one plan
    // Samples the slot's next token from its logits and hands its text on, or ends the request.
    void take_token(Slot& s, std::span<const float> logits);
    void end(Slot& s, Finish f);

    SchedulerOptions opts_;
    Metrics& metrics_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Waiting> queue_;
    bool draining_ = false, aborting_ = false;
    std::atomic<int> busy_{0};
    std::vector<std::unique_ptr<Slot>> slots_;  // active requests (engine thread only)
    std::thread engine_;
};

}  // namespace strata::server
