#include "server/scheduler.h"

#include <algorithm>

#include "core/text/tokenizer.h"
#include "server/stop.h"

namespace strata::server {

using clock = std::chrono::steady_clock;

// ---- Reply: the engine -> HTTP thread channel
// ----------------------------------------------------------------

Reply::Update Reply::wait(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return done_ || !text_.empty(); });
    Update u;
    u.text.swap(text_);
    u.done = done_;
    if (done_) u.finish = finish_;
    return u;
}

void Reply::append(std::string_view text) {
    if (text.empty()) return;
    {
        std::lock_guard<std::mutex> lock(mu_);
        text_ += text;
    }
    cv_.notify_all();
}

void Reply::finish(Finish f) {
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (done_) return;
        done_ = true;
        finish_ = std::move(f);
    }
    cv_.notify_all();
}

// ---- the engine
// ---------------------------------------------------------------------------------------------

struct Scheduler::Slot {
    Slot(PreparedRequest r, std::shared_ptr<Reply> rep, clock::time_point arrived)
        : req(std::move(r)),
          reply(std::move(rep)),
          arrived(arrived),
          cache(req.forward->new_cache()),
          sampler(req.sampling),
          decoder(req.forward->model().tokenizer()),
          stop(req.stop) {}
    PreparedRequest req;
    std::shared_ptr<Reply> reply;
    clock::time_point arrived;
    KVCache cache;  // this request's keys and values: a slot per plan step, positions [0, pos) filled
    Sampler sampler;
    StreamDecoder decoder;
    StopMatcher stop;
    size_t prompt_done = 0;  // prompt tokens evaluated
    int pos = 0;             // positions the cache holds
    int32_t next = -1;       // once the prompt is read: the sampled token the next pass evaluates
    int generated = 0;       // tokens sampled
    int in_pass = 0;         // tokens this slot put into the current pass
    bool ended = false;
    bool decoding() const { return prompt_done == req.prompt.size(); }
};

Scheduler::Scheduler(const SchedulerOptions& opts, Metrics& metrics) : opts_(opts), metrics_(metrics) {
    if (opts_.n_slots < 1) throw std::invalid_argument("--parallel must be at least 1");
    if (opts_.max_queue < 0) throw std::invalid_argument("--queue must be at least 0");
    engine_ = std::thread([this] { run(); });
}

Scheduler::~Scheduler() {
    abort();
    join();
}

std::shared_ptr<Reply> Scheduler::submit(PreparedRequest request) {
    auto reply = std::make_shared<Reply>();
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (draining_ || aborting_)
            throw ApiError(503, "the server is shutting down", "server_error", "", "shutting_down");
        if (static_cast<int>(queue_.size()) >= opts_.max_queue)  // make room of those whose client left
            std::erase_if(queue_, [](const Waiting& w) { return w.reply->cancelled(); });
        if (static_cast<int>(queue_.size()) >= opts_.max_queue)
            throw ApiError(503,
                           "the server is busy: " + std::to_string(opts_.n_slots) +
                               " requests are generating and " + std::to_string(queue_.size()) +
                               " are waiting; retry later",
                           "server_error", "", "server_busy");
        queue_.push_back({std::move(request), reply, clock::now()});
    }
    cv_.notify_all();
    return reply;
}

void Scheduler::drain() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        draining_ = true;
    }
    cv_.notify_all();
}

void Scheduler::abort() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        aborting_ = true;
    }
    cv_.notify_all();
}

void Scheduler::join() {
    if (engine_.joinable()) engine_.join();
}

Load Scheduler::load() const {
    std::lock_guard<std::mutex> lock(mu_);
    return {busy_.load(), opts_.n_slots, static_cast<int>(queue_.size())};
}

void Scheduler::run() {
    for (;;) {
        {
            std::unique_lock<std::mutex> lock(mu_);
            cv_.wait(lock, [&] { return aborting_ || draining_ || !queue_.empty() || !slots_.empty(); });
            if (aborting_) {
                for (Waiting& w : queue_) w.reply->finish(Finish::failed(503, "the server is shutting down"));
                queue_.clear();
                lock.unlock();
                for (auto& s : slots_) end(*s, Finish::failed(503, "the server is shutting down"));
                slots_.clear();
                busy_ = 0;
                return;
            }
            if (draining_ && queue_.empty() && slots_.empty()) return;
        }
        admit();
        for (auto& s : slots_)
            if (s->reply->cancelled()) end(*s, Finish::failed(499, "the client went away"));
        std::erase_if(slots_, [](const auto& s) { return s->ended; });
        // One pass per plan, over every slot on it.
        std::vector<Slot*> group;
        for (size_t i = 0; i < slots_.size(); ++i) {
            Forward* fwd = slots_[i]->req.forward.get();
            if (std::any_of(slots_.begin(), slots_.begin() + static_cast<std::ptrdiff_t>(i),
                            [&](const auto& s) { return s->req.forward.get() == fwd; }))
                continue;  // done with an earlier slot of the same plan
            group.clear();
            for (auto& s : slots_)
                if (s->req.forward.get() == fwd) group.push_back(s.get());
            pass(*fwd, group);
        }
        std::erase_if(slots_, [](const auto& s) { return s->ended; });
        busy_ = static_cast<int>(slots_.size());
    }
}

void Scheduler::admit() {
    std::vector<Waiting> taken;
    {
        std::lock_guard<std::mutex> lock(mu_);
        while (static_cast<int>(slots_.size() + taken.size()) < opts_.n_slots && !queue_.empty()) {
            taken.push_back(std::move(queue_.front()));
            queue_.pop_front();
        }
    }
    for (Waiting& w : taken) {
        if (w.reply->cancelled()) {
            w.reply->finish(Finish::failed(499, "the client went away"));
            continue;
        }
        try {
            auto s = std::make_unique<Slot>(std::move(w.request), w.reply, w.queued_at);
            s->reply->append(s->req.reply_prefix);
            slots_.push_back(std::move(s));
        } catch (const std::exception& e) {  // no memory for its cache
            w.reply->finish(Finish::failed(503, e.what()));
        }
    }
    busy_ = static_cast<int>(slots_.size());
}

void Scheduler::pass(Forward& fwd, std::vector<Slot*>& slots) {
    std::vector<SeqToken> batch;
    std::vector<Slot*> rows;  // the slot of each logits row, in batch order
    for (Slot* s : slots) {
        s->in_pass = 0;
        if (!s->decoding()) continue;
        batch.push_back({s->next, s->pos, &s->cache, true});
        rows.push_back(s);
        s->in_pass = 1;
    }
    // The prompts still being read, in arrival order, as far as the pass has room.
    int room = fwd.max_batch() - static_cast<int>(batch.size());
    for (Slot* s : slots) {
        if (s->decoding() || room <= 0) continue;
        const auto& prompt = s->req.prompt;
        const int n = std::min(room, static_cast<int>(prompt.size() - s->prompt_done));
        for (int i = 0; i < n; ++i) {
            const size_t at = s->prompt_done + static_cast<size_t>(i);
            batch.push_back({prompt[at], s->pos + i, &s->cache, at + 1 == prompt.size()});
        }
        if (s->prompt_done + static_cast<size_t>(n) == prompt.size()) rows.push_back(s);
        s->in_pass = n;
        room -= n;
    }
    if (batch.empty()) return;

    std::span<const float> logits;
    try {
        logits = fwd.eval_sequences(batch);
    } catch (const std::exception& e) {
        for (Slot* s : slots) end(*s, Finish::failed(500, std::string("internal error: ") + e.what()));
        return;
    }
    for (Slot* s : slots) {
        if (!s->decoding()) {
            s->prompt_done += static_cast<size_t>(s->in_pass);
            if (s->decoding()) metrics_.count_prompt(static_cast<int>(s->req.prompt.size()));
        }
        s->pos += s->in_pass;
    }
    const size_t V = static_cast<size_t>(fwd.model().config().vocab_size);
    for (size_t r = 0; r < rows.size(); ++r) take_token(*rows[r], logits.subspan(r * V, V));
    metrics_.count_generated(static_cast<int>(rows.size()));
    metrics_.count_pass(static_cast<int>(
        std::count_if(slots.begin(), slots.end(), [](const Slot* s) { return s->in_pass > 0; })));
}

void Scheduler::take_token(Slot& s, std::span<const float> logits) {
    if (s.generated == 0)
        metrics_.count_first_token(std::chrono::duration<double>(clock::now() - s.arrived).count());
    const int32_t t = s.sampler.sample(logits);
    s.sampler.accept(t);
    ++s.generated;
    const Tokenizer& tok = s.req.forward->model().tokenizer();
    if (s.req.stop_at_eog && tok.is_eog(t)) {
        end(s, Finish::ended("stop"));
        return;
    }
    s.reply->append(s.stop.feed(s.decoder.feed(t)));
    if (s.stop.stopped()) {
        end(s, Finish::ended("stop"));
        return;
    }
    if (s.req.max_new_tokens >= 0 && s.generated >= s.req.max_new_tokens) {
        end(s, Finish::ended("length"));
        return;
    }
    if (s.pos >= s.cache.n_ctx()) {  // no position left for this token: the context is full
        end(s, Finish::ended("length"));
        return;
    }
    s.next = t;
}

void Scheduler::end(Slot& s, Finish f) {
    if (s.ended) return;
    s.ended = true;
    if (f.error
            .empty()) {  // the text still held back (a partial character, a possible stop sequence's start)
        s.reply->append(s.stop.feed(s.decoder.flush()));
        s.reply->append(s.stop.flush());
    }
    f.prompt_tokens = static_cast<int>(s.req.prompt.size());
    f.completion_tokens = s.generated;
    s.reply->finish(std::move(f));
}

}  // namespace strata::server
