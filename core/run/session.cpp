#include "core/run/session.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "core/text/tokenizer.h"

namespace strata {

OverflowPolicy parse_overflow_policy(std::string_view name) {
    if (name == "shift") return OverflowPolicy::Shift;
    if (name == "restart") return OverflowPolicy::Restart;
    if (name == "error") return OverflowPolicy::Error;
    throw std::invalid_argument("unknown context overflow policy '" + std::string(name) +
                                "'; choose one of: shift, restart, error");
}

const char* overflow_policy_name(OverflowPolicy p) {
    switch (p) {
        case OverflowPolicy::Shift:
            return "shift";
        case OverflowPolicy::Restart:
            return "restart";
        case OverflowPolicy::Error:
            return "error";
    }
    return "?";
}

const char* role_name(Role r) {
    switch (r) {
        case Role::System:
            return "system";
        case Role::User:
            return "user";
        case Role::Assistant:
            return "assistant";
    }
    return "?";
}

Session::Session(std::shared_ptr<const Model> model, Plan plan, const ForwardOptions& fopts,
                 const SamplerParams& sp, SessionOptions opts)
    : opts_(std::move(opts)),
      fopts_(fopts),
      fwd_(model, std::move(plan), fopts),
      sampler_(sp),
      template_(ChatTemplate::for_model(model->file().meta, model->tokenizer(), opts_.chat_template)),
      tok_(model->tokenizer()) {
    if (!opts_.date.empty()) template_.options().date = opts_.date;
    if (!opts_.system_prompt.empty()) history_.push_back({Role::System, opts_.system_prompt});
}

Role parse_role(std::string_view name) {
    for (Role r : {Role::System, Role::User, Role::Assistant})
        if (name == role_name(r)) return r;
    throw std::invalid_argument("unknown role '" + std::string(name) + "' (user, assistant or system)");
}

std::string chat_prompt_text(const ChatTemplate& t, std::span<const Message> h) {
    if (h.empty()) throw std::invalid_argument("chat prompt: no message to open");
    const Message& open = h.back();
    std::vector<ChatMessage> before;
    before.reserve(h.size() - 1);
    for (const Message& m : h.first(h.size() - 1)) before.push_back({role_name(m.role), m.text});
    if (open.text.empty() && open.role == Role::Assistant) return t.render(before, true);
    return t.render_open(before, role_name(open.role)) + open.text;
}

std::vector<int32_t> tokenize_chat_prompt(const Tokenizer& tok, const std::string& text) {
    std::vector<int32_t> t = tok.encode(text, /*add_special=*/false, /*parse_special=*/true);
    if (tok.add_bos() && tok.bos_id() >= 0 && (t.empty() || t.front() != tok.bos_id()))
        t.insert(t.begin(), tok.bos_id());
    return t;
}

std::string Session::prompt_text(std::span<const Message> h) const { return chat_prompt_text(template_, h); }

std::string Session::next_prompt() const {
    if (!history_.empty() && history_.back().role == model_role()) return prompt_text(history_);
    std::vector<Message> h = history_;
    h.push_back({model_role(), opts_.ai_prefix});
    return prompt_text(h);
}

std::vector<int32_t> Session::tokenize_prompt(const std::string& text) const {
    return tokenize_chat_prompt(tok_, text);
}

int Session::reply_reserve() const {
    const int n_ctx = fwd_.n_ctx();
    const int want = opts_.max_new_tokens < 0 ? n_ctx / 4 : opts_.max_new_tokens;
    return std::clamp(want, 1, std::max(1, n_ctx / 2));
}

int Session::fit_context(std::vector<int32_t>& tokens, size_t protect) {
    const int n_ctx = fwd_.n_ctx();
    const int reserve = reply_reserve();
    const auto fits = [&](const std::vector<int32_t>& t) {
        return static_cast<int>(t.size()) + reserve <= n_ctx;
    };
    if (fits(tokens)) return 0;
    const size_t first = !history_.empty() && history_[0].role == Role::System ? 1 : 0;
    protect = std::min(protect, history_.size() - first);
    const auto need = [&](size_t n) {
        return std::to_string(n) + " tokens, plus room for " + std::to_string(reserve) +
               " reply tokens, and the context holds " + std::to_string(n_ctx);
    };
    // The smallest conversation this turn can have: the system prompt and the protected (current) messages.
    std::vector<Message> minimal(history_.begin(), history_.begin() + static_cast<std::ptrdiff_t>(first));
    minimal.insert(minimal.end(), history_.end() - static_cast<std::ptrdiff_t>(protect), history_.end());
    const std::vector<int32_t> least = tokenize_prompt(prompt_text(minimal));
    if (!fits(least))
        throw std::runtime_error("message too long: even without earlier turns it needs " +
                                 need(least.size()) +
                                 " (-c sets the context, -n / --max-new-tokens the room for the reply)");
    if (opts_.overflow == OverflowPolicy::Error)
        throw std::runtime_error(
            "context full: the conversation needs " + need(tokens.size()) +
            " (--ctx-overflow shift or restart drops earlier turns; -c sets the context)");
    int dropped = 0;
    while (!fits(tokens)) {
        const size_t limit = history_.size() - protect;
        if (first >= limit) throw std::logic_error("context overflow: nothing left to drop");
        // Whole exchanges go, so the conversation keeps alternating.
        const size_t n =
            opts_.overflow == OverflowPolicy::Restart ? limit - first : std::min<size_t>(2, limit - first);
        history_.erase(history_.begin() + static_cast<std::ptrdiff_t>(first),
                       history_.begin() + static_cast<std::ptrdiff_t>(first + n));
        dropped += static_cast<int>(n);
        tokens = tokenize_prompt(prompt_text(history_));
    }
    return dropped;
}

TurnResult Session::generate_turn(bool fresh, size_t protect, std::string_view lead,
                                  const PieceCallback& on_piece) {
    abort_.store(false, std::memory_order_relaxed);
    if (fresh) history_.push_back({model_role(), opts_.ai_prefix});
    std::vector<int32_t> tokens = tokenize_prompt(prompt_text(history_));
    TurnResult r;
    r.dropped_messages = fit_context(tokens, protect);
    if (tokens.empty()) throw std::runtime_error("the chat template rendered an empty prompt");

    // Reuse the longest common prefix with the cache; at least one token is evaluated, for its logits.
    size_t common = 0;
    while (common < cached_.size() && common < tokens.size() && cached_[common] == tokens[common]) ++common;
    if (common == tokens.size()) --common;
    cached_.resize(common);
    sampler_.reset();
    for (size_t i = 0; i < common; ++i) sampler_.accept(tokens[i]);

    // What is written into the message before generating (the ai-prefix, a continuation's suffix) is shown
    // first.
    Message& msg = history_.back();
    if (on_piece && !lead.empty()) on_piece(lead);

    GenerateOptions go;
    go.max_new_tokens = opts_.max_new_tokens;
    go.stop_at_eog = true;
    go.abort = &abort_;
    StreamDecoder decoder(tok_);
    std::string generated;
    auto emit = [&](const std::string& piece) {
        if (piece.empty()) return;
        generated += piece;
        if (on_piece) on_piece(piece);
    };
    int pos = static_cast<int>(common);
    const auto on_token = [&](int32_t t) {
        emit(decoder.feed(t));
        return true;
    };
    if (draft_) {
        int draft_pos = std::min(draft_cached_, pos);
        r.tokens = speculative_generate(fwd_, *draft_, tokens, pos, draft_pos, sampler_, spec_opts_, go, on_token,
                                        &r.stats, &r.spec);
        draft_cached_ = draft_pos;
        r.speculative = true;
    } else {
        const std::span<const int32_t> rest = std::span<const int32_t>(tokens).subspan(common);
        r.tokens = generate(fwd_, sampler_, rest, pos, go, on_token, &r.stats);
    }
    emit(decoder.flush());

    // The cache now holds prompt + generated tokens up to pos (the last sampled token is not evaluated).
    cached_ = tokens;
    cached_.insert(cached_.end(), r.tokens.begin(), r.tokens.end());
    cached_.resize(static_cast<size_t>(pos));
    if (draft_) {
        draft_cached_ = std::min(draft_cached_, pos);
        r.plain_decode_tps = probe_plain_decode();
        spec_total_ += r.spec;
        if (r.plain_decode_tps > 0 && r.stats.decode_evals > 0) {
            spec_seconds_ += r.stats.generate_seconds;
            plain_seconds_ += r.stats.decode_evals / r.plain_decode_tps;
        }
    }

    const bool hit_max =
        opts_.max_new_tokens >= 0 && static_cast<int>(r.tokens.size()) >= opts_.max_new_tokens;
    r.interrupted = r.stats.aborted;
    r.stopped_by_eog = r.stats.stopped_by_eog;
    r.context_full = !r.stopped_by_eog && !r.interrupted && !hit_max;
    msg.text += generated;
    msg.interrupted = r.interrupted;
    msg.truncated = !r.stopped_by_eog && !r.interrupted;
    r.text = msg.text;
    r.generated = generated;
    r.prompt_tokens = static_cast<int>(tokens.size());
    r.reused_tokens = static_cast<int>(common);
    ++turns_;
    last_ = r;
    return r;
}

TurnResult Session::send(std::string_view text, const PieceCallback& on_piece) {
    const std::vector<Message> saved = history_;
    history_.push_back({human_role(), std::string(text)});
    try {
        return generate_turn(/*fresh=*/true, /*protect=*/2, opts_.ai_prefix, on_piece);
    } catch (...) {
        history_ = saved;
        throw;
    }
}

TurnResult Session::continue_reply(std::string_view suffix, const PieceCallback& on_piece) {
    if (history_.empty() || history_.back().role != model_role())
        throw std::invalid_argument("nothing to continue: the last message is not the model's");
    const std::vector<Message> saved = history_;
    history_.back().text += suffix;
    const size_t first = history_[0].role == Role::System ? 1 : 0;
    try {
        return generate_turn(/*fresh=*/false, std::min<size_t>(2, history_.size() - first), suffix, on_piece);
    } catch (...) {
        history_ = saved;
        throw;
    }
}

void Session::add_message(Role role, std::string text) {
    if (role == Role::System) return set_system(std::move(text));
    history_.push_back({role, std::move(text)});
}

void Session::restart() {
    const bool has_system = !history_.empty() && history_[0].role == Role::System;
    history_.resize(has_system ? 1 : 0);
    // The cache keeps its tokens: the next turn reuses whatever prefix (the system prompt) still matches.
}

void Session::set_system(std::string text) {
    opts_.system_prompt = text;
    const bool has_system = !history_.empty() && history_[0].role == Role::System;
    if (text.empty()) {
        if (has_system) history_.erase(history_.begin());
    } else if (has_system) {
        history_[0].text = std::move(text);
    } else {
        history_.insert(history_.begin(), Message{Role::System, std::move(text)});
    }
}

void Session::enable_speculation(Plan draft, const SpeculativeOptions& so) {
    if (so.draft_max < 1) throw std::invalid_argument("--draft-max must be at least 1");
    ForwardOptions fo = fopts_;
    fo.n_ctx = fwd_.n_ctx();
    draft_ = std::make_unique<Forward>(fwd_.model_ptr(), std::move(draft), fo);
    spec_opts_ = so;
    draft_cached_ = 0;
}

double Session::probe_plain_decode() {
    constexpr int kProbes = 3;
    const int pos = static_cast<int>(cached_.size());
    if (cached_.empty() || pos + kProbes > fwd_.n_ctx()) return 0;
    // One plain decoding step each: evaluate a token, sample the next (on a copy of the sampler). Positions
    // [pos, pos + kProbes) are past what the cache holds: the next turn overwrites them.
    std::vector<double> seconds;
    for (int i = 0; i < kProbes; ++i) {
        Sampler probe = sampler_;
        const auto t0 = std::chrono::steady_clock::now();
        probe.sample(fwd_.eval(std::span<const int32_t>(&cached_.back(), 1), pos + i));
        seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(seconds.begin(), seconds.end());
    return seconds[kProbes / 2] > 0 ? 1 / seconds[kProbes / 2] : 0;
}

SessionStats Session::stats() const {
    SessionStats s;
    s.n_ctx = fwd_.n_ctx();
    s.context_tokens = static_cast<int>(cached_.size());
    s.messages = static_cast<int>(history_.size());
    s.turns = turns_;
    s.last = last_;
    if (draft_) {
        s.speculative = true;
        s.draft_spec = draft_->plan().spec;
        s.draft_steps = draft_->plan().n_steps();
        s.spec_total = spec_total_;
        s.spec_speedup = spec_seconds_ > 0 ? plain_seconds_ / spec_seconds_ : 0;
    }
    return s;
}

}  // namespace strata
