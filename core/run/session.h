// A chat session: one Forward (with its KV cache) over a shared Model + Plan, a Sampler, and the conversation
// history, rendered through the model's chat template. Used by `strata chat`, and later by the multi-model
// programs and the C API.
//
// Every turn renders the *whole* conversation and tokenizes it; the tokens are compared with the tokens whose
// keys and values the cache already holds, and only what follows their common prefix is evaluated. Reuse is
// therefore exact by construction: where the re-rendered text tokenizes differently from what was generated
// (a template that trims replies, a dropped turn), the cache rolls back to the common prefix and those
// positions are simply overwritten.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/engine/forward.h"
#include "core/engine/sampler.h"
#include "core/run/generate.h"
#include "core/run/speculative.h"
#include "core/text/chat_template.h"

namespace strata {

class Tokenizer;

// What to do when the conversation and the reply no longer fit the context.
enum class OverflowPolicy {
    Shift,    // drop the oldest turns (the system prompt stays), re-evaluating from where the text changed
    Restart,  // drop every earlier turn at once (the system prompt stays)
    Error,    // refuse the turn with an error
};
OverflowPolicy parse_overflow_policy(std::string_view name);  // "shift" | "restart" | "error"
const char* overflow_policy_name(OverflowPolicy p);

enum class Role { System, User, Assistant };
const char* role_name(Role r);
Role parse_role(std::string_view name);  // "system" | "user" | "assistant"; anything else: std::invalid_argument

struct Message {
    Role role = Role::User;
    std::string text;
    bool interrupted = false;  // generation was aborted; the text is what had been generated
    bool truncated = false;    // stopped by --max-new-tokens or a full context, not by end of generation
};

struct SessionOptions {
    std::string chat_template;   // a --chat-template name; "" = the model's own template
    std::string system_prompt;   // "" = none (a template's own default system prompt then applies)
    std::string ai_prefix;       // put after the opening of every model turn, as the start of its reply
    bool reversed_role = false;  // the model speaks as the user; human input becomes assistant turns
    OverflowPolicy overflow = OverflowPolicy::Shift;
    int max_new_tokens = 512;  // per reply; < 0: until end of generation or a full context
    std::string date;          // Llama 3.1+ templates' "Today Date"; "" = the template's own choice
};

// The outcome of one model turn.
struct TurnResult {
    std::string text;             // the whole message as kept in history
    std::string generated;        // the text generated in this call
    std::vector<int32_t> tokens;  // the tokens generated in this call (an end-of-generation token included)
    bool interrupted = false;
    bool stopped_by_eog = false;
    bool context_full = false;
    int prompt_tokens = 0;     // tokens of the rendered prompt
    int reused_tokens = 0;     // of which the cache already held
    int dropped_messages = 0;  // removed by the overflow policy before this turn
    GenerationStats stats;     // prompt_tokens there = the tokens evaluated this turn
    // With self-speculation (Session::enable_speculation): the draft's counts and times for this turn, and the
    // target's plain one-token decode speed probed right after it (positions past the cache, overwritten later),
    // so that stats.generate_tps() / plain_decode_tps is the net speed-up over plain decoding.
    bool speculative = false;
    SpeculativeStats spec;
    double plain_decode_tps = 0;
    double speedup() const { return plain_decode_tps > 0 ? stats.generate_tps() / plain_decode_tps : 0; }
};

struct SessionStats {
    int n_ctx = 0;
    int context_tokens = 0;  // positions of the KV cache in use
    int messages = 0;        // in history, system prompt included
    int turns = 0;           // model turns generated so far
    TurnResult last;         // the last turn's counts and timings
    // Self-speculation over every turn so far (zero without it).
    bool speculative = false;
    std::string draft_spec;
    int draft_steps = 0;
    SpeculativeStats spec_total;
    double spec_speedup = 0;  // decode time plain decoding would have taken (probed) / the time it took
};

// The prompt text for a model turn whose message, possibly partial, is h.back(): an empty assistant message
// is the template's generation prompt; a partial one (an ai-prefix, a message being continued, the model
// speaking as the user) is that message's opening and its text so far. What Session renders, for any caller.
std::string chat_prompt_text(const ChatTemplate& t, std::span<const Message> h);
// The tokens of a rendered chat prompt: the template's own BOS text (if any) is parsed as the BOS token; the
// tokenizer's BOS is added only when the vocabulary asks for one and the template did not write it.
std::vector<int32_t> tokenize_chat_prompt(const Tokenizer& tok, const std::string& text);

// Receives the reply as it grows, in UTF-8-safe pieces (a character split across tokens arrives whole).
using PieceCallback = std::function<void(std::string_view piece)>;

class Session {
  public:
    Session(std::shared_ptr<const Model> model, Plan plan, const ForwardOptions& fopts,
            const SamplerParams& sp, SessionOptions opts = {});

    // Human input, then the model's reply (streamed through on_piece, ai-prefix first). The input is stored
    // as a user message (an assistant message with reversed roles). On an error (the input alone does not fit
    // the context, or the error policy) the history is left as it was and the exception propagates.
    TurnResult send(std::string_view text, const PieceCallback& on_piece = {});
    // Appends `suffix` to the model's last message and generates more into that same message.
    TurnResult continue_reply(std::string_view suffix = "", const PieceCallback& on_piece = {});
    // Adds a message without generating (a reversed-role opening line, a restored conversation).
    void add_message(Role role, std::string text);

    // Thread- and signal-safe: stops the generation in progress before its next token (the partial reply is
    // kept, marked interrupted). A call while idle has no effect: each generation starts with the flag down.
    void abort() noexcept { abort_.store(true, std::memory_order_relaxed); }

    void restart();                     // clears the history; the system prompt stays
    void set_system(std::string text);  // replaces (or with "", removes) the system prompt
    void set_ai_prefix(std::string prefix) { opts_.ai_prefix = std::move(prefix); }
    const std::string& ai_prefix() const { return opts_.ai_prefix; }
    void set_max_new_tokens(int n) { opts_.max_new_tokens = n; }
    // Self-speculative decoding from now on: `draft` (a pruned plan of the same model, with its own KV cache of
    // the session's context) proposes tokens, the session's plan verifies them. Greedy replies stay identical.
    void enable_speculation(Plan draft, const SpeculativeOptions& so);
    const Forward* draft_forward() const { return draft_.get(); }

    const std::vector<Message>& history() const { return history_; }
    // The prompt text the next model turn would start from, and its tokens (for tests and tools).
    std::string next_prompt() const;
    std::vector<int32_t> tokenize_prompt(const std::string& text) const;
    std::span<const int32_t> cached_tokens() const { return cached_; }

    SessionStats stats() const;
    const ChatTemplate& chat_template() const { return template_; }
    const SessionOptions& options() const { return opts_; }
    const SamplerParams& sampler_params() const { return sampler_.params(); }  // seed: the one in use
    const Forward& forward() const { return fwd_; }
    const Model& model() const { return fwd_.model(); }
    Role model_role() const { return opts_.reversed_role ? Role::User : Role::Assistant; }
    Role human_role() const { return opts_.reversed_role ? Role::Assistant : Role::User; }

  private:
    // Generates into the model's message at the end of history_ (created empty, with the ai-prefix, when
    // `fresh`); `protect` trailing messages are never dropped by the overflow policy.
    TurnResult generate_turn(bool fresh, size_t protect, std::string_view lead,
                             const PieceCallback& on_piece);
    // Prompt text for a model turn whose message (possibly partial) is h.back().
    std::string prompt_text(std::span<const Message> h) const;
    // Applies the overflow policy until the prompt plus room for the reply fits; returns the dropped count.
    int fit_context(std::vector<int32_t>& tokens, size_t protect);
    int reply_reserve() const;
    // One-token decode speed of the session's plan, timed at scratch positions past the cache (0: no room).
    double probe_plain_decode();

    SessionOptions opts_;
    ForwardOptions fopts_;
    Forward fwd_;
    std::unique_ptr<Forward> draft_;  // self-speculation's draft plan, or null
    SpeculativeOptions spec_opts_;
    int draft_cached_ = 0;            // the draft's cache holds cached_[0, draft_cached_)
    SpeculativeStats spec_total_;
    double spec_seconds_ = 0, plain_seconds_ = 0;  // decode time taken / plain decoding's (probed) estimate
    Sampler sampler_;
    ChatTemplate template_;
    const Tokenizer& tok_;
    std::vector<Message> history_;
    std::vector<int32_t> cached_;  // the tokens whose keys/values the cache holds, at positions 0..size-1
    std::atomic<bool> abort_{false};
    int turns_ = 0;
    TurnResult last_;
};

}  // namespace strata
