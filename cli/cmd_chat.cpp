// strata chat: an interactive conversation with a model through its chat template, streaming the replies.
// On a terminal: libedit line editing and history, colours, Ctrl-C to stop a reply. Otherwise (pipes, files,
// tests): plain lines in, the replies on stdout, everything else (banner, notices, timings) on stderr.
#include <langinfo.h>
#include <unistd.h>

#include <atomic>
#include <clocale>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/chat_io.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "core/run/session.h"
#include "core/text/tokenizer.h"

namespace strata::cli {

namespace {

struct ChatArgs {
    ModelOptions model;
    SamplerParams sampler;
    std::string prompt;
    std::string system;
    std::string ai_prefix;
    std::string chat_template;
    std::string overflow = "shift";
    std::string transcript;
    bool reversed_role = false;
    bool multiline = false;
    bool timings = false;
    bool no_color = false;
    bool verbose = false;
    int max_new_tokens = 512;
    DraftOptions draft;
};

// "speculative: 61.0% of 120 drafted tokens accepted, 1.83 per round, draft 0.41 s, verify 0.62 s, 1.21x vs plain"
std::string speculation_line(const SpeculativeStats& ss, double speedup) {
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "speculative: %.1f%% of %d drafted tokens accepted, %.2f per round (%d rounds), draft %.2f s, "
                  "verify %.2f s, ",
                  100 * ss.acceptance_rate(), ss.drafted, ss.mean_accepted(), ss.rounds, ss.draft_seconds,
                  ss.verify_seconds);
    std::string s = buf;
    if (speedup > 0) {
        std::snprintf(buf, sizeof buf, "%.2fx the speed of plain decoding", speedup);
        s += buf;
    } else {
        s += "speed-up not measured (no room in the context to time plain decoding)";
    }
    return s;
}


const char* kHelp =
    "commands:\n"
    "  /restart          clear the conversation (the system prompt stays)\n"
    "  /system TEXT      set the system prompt (/system alone removes it)\n"
    "  /prefix [TEXT]    start every reply with TEXT (C escapes such as \\n work); /prefix alone clears it\n"
    "  /continue [TEXT]  append TEXT to the last reply, verbatim, and let the model go on writing it\n"
    "  /stats            context use and the last turn's speed\n"
    "  /history          the conversation so far\n"
    "  /quit             leave (also Ctrl-D, or Ctrl-C at an empty prompt)\n"
    "  //text            send a message that starts with '/'\n"
    "Ctrl-C while the model writes stops that reply (it stays in the conversation, marked interrupted).\n"
    "A line ending in '\\' continues on the next line; with --multiline, a line holding only '.' ends a "
    "message.\n";

// The JSON Lines log of --transcript: one object per turn or command.
class Transcript {
  public:
    explicit Transcript(const std::string& path) {
        if (path.empty()) return;
        out_.open(path, std::ios::binary | std::ios::trunc);
        if (!out_) throw std::runtime_error("cannot write transcript file '" + path + "'");
    }
    void write(const nlohmann::json& j) {
        if (!out_.is_open()) return;
        out_ << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
        out_.flush();
    }

  private:
    std::ofstream out_;
};

nlohmann::json history_json(const Session& s) {
    nlohmann::json h = nlohmann::json::array();
    for (const Message& m : s.history())
        h.push_back({{"role", role_name(m.role)},
                     {"text", m.text},
                     {"interrupted", m.interrupted},
                     {"truncated", m.truncated}});
    return h;
}

class ChatUi {
  public:
    ChatUi(ChatArgs& a, Session& s, bool interactive, bool color)
        : a_(a), s_(s), interactive_(interactive), color_(color), log_(a.transcript) {}

    int run();

  private:
    void note(const std::string& text) const;
    void banner() const;
    // Runs one model turn (send or continue), streaming it; errors become notes, the conversation goes on.
    void turn(const char* kind, const std::string& input,
              const std::function<TurnResult(const PieceCallback&)>& fn);
    bool command(const std::string& line);  // false: quit
    ReadResult read_message(LineReader& reader);
    void print_stats() const;
    void print_history() const;

    ChatArgs& a_;
    Session& s_;
    bool interactive_, color_;
    Transcript log_;
};

void ChatUi::note(const std::string& text) const {
    std::fflush(stdout);
    if (color_)
        std::fprintf(stderr, "\033[2m%s\033[0m\n", text.c_str());
    else
        std::fprintf(stderr, "%s\n", text.c_str());
    std::fflush(stderr);
}

void ChatUi::banner() const {
    const Model& m = s_.model();
    const ModelConfig& c = m.config();
    const Plan& plan = s_.forward().plan();
    const PlanCost cost = plan_cost(m, plan);
    const double virt = static_cast<double>(cost.virtual_params), unique = static_cast<double>(cost.unique_params);
    std::string params;
    if (plan.spec.empty()) {
        params = human_count(virt) + " parameters";
    } else {
        params = "layer spec " + plan.spec + " (" + std::to_string(plan.n_steps()) + " steps over " +
                 std::to_string(c.n_layers) + " file layers): " + human_count(virt) +
                 " virtual parameters, " + human_count(unique) + " unique";
    }
    const ChatTemplate& ct = s_.chat_template();
    note("strata chat: " + (c.name.empty() ? std::string("(unnamed model)") : c.name) + " (" + c.arch_name +
         ", " + std::to_string(c.n_layers) + " layers) | " + params + " | context " +
         std::to_string(s_.forward().n_ctx()) + " tokens | chat template " + ct.name() +
         (ct.options().default_system ? " (with its default system prompt)" : ""));
    std::string mode;
    if (const Forward* d = s_.draft_forward())
        mode += "self-speculative decoding: draft " + d->plan().spec + " (" + std::to_string(d->plan().n_steps()) +
                " steps), up to " + std::to_string(a_.draft.draft_max) + " drafted tokens per round. ";
    if (a_.reversed_role) mode += "roles reversed: the model speaks as the user. ";
    if (!s_.ai_prefix().empty()) mode += "replies start with the ai prefix. ";
    if (interactive_)
        note(mode +
             "Type a message; /help lists the commands; Ctrl-C stops a reply, Ctrl-D or Ctrl-C at an empty "
             "prompt quits.");
    else if (!mode.empty())
        note(mode);
}

void ChatUi::turn(const char* kind, const std::string& input,
                  const std::function<TurnResult(const PieceCallback&)>& fn) {
    Interrupts::clear();
    Interrupts::generating(&s_);
    if (color_) std::fputs("\033[36m", stdout);
    TurnResult r;
    try {
        r = fn([](std::string_view piece) {
            std::fwrite(piece.data(), 1, piece.size(), stdout);
            std::fflush(stdout);
        });
    } catch (const std::exception& e) {
        Interrupts::generating(nullptr);
        if (color_) std::fputs("\033[0m", stdout);
        note(std::string("error: ") + e.what());
        log_.write({{"event", "error"}, {"kind", kind}, {"input", input}, {"message", e.what()}});
        return;
    }
    Interrupts::generating(nullptr);
    if (color_) std::fputs("\033[0m", stdout);
    std::fputs("\n", stdout);
    std::fflush(stdout);
    if (r.dropped_messages > 0)
        note("[context full: the " + std::to_string(r.dropped_messages) +
             " oldest messages were dropped (--ctx-overflow " + overflow_policy_name(s_.options().overflow) +
             ")]");
    if (r.interrupted)
        note("[interrupted: the partial reply stays in the conversation; /continue goes on]");
    else if (r.context_full)
        note("[the context is full; /restart or a larger -c]");
    else if (!r.stopped_by_eog)
        note("[stopped at -n / --n-predict tokens; /continue goes on]");
    if (a_.timings) {
        char buf[256];
        std::snprintf(buf, sizeof buf,
                      "[prompt: %d tokens evaluated (%d reused), %.1f tok/s | reply: %d tokens, %.1f tok/s | "
                      "context: %d/%d]",
                      r.stats.prompt_tokens, r.reused_tokens, r.stats.prompt_tps(), r.stats.generated_tokens,
                      r.stats.generate_tps(), s_.stats().context_tokens, s_.forward().n_ctx());
        note(r.speculative ? std::string(buf) + "\n[" + speculation_line(r.spec, r.speedup()) + "]" : buf);
    }
    log_.write({{"event", "turn"},
                {"kind", kind},
                {"input", input},
                {"reply", r.text},
                {"generated", r.generated},
                {"tokens", r.tokens},
                {"interrupted", r.interrupted},
                {"stopped_by_eog", r.stopped_by_eog},
                {"prompt_tokens", r.prompt_tokens},
                {"reused_tokens", r.reused_tokens},
                {"evaluated_tokens", r.stats.prompt_tokens},
                {"dropped_messages", r.dropped_messages},
                {"speculative", r.speculative ? nlohmann::json{{"drafted", r.spec.drafted},
                                                               {"accepted", r.spec.accepted},
                                                               {"rounds", r.spec.rounds},
                                                               {"draft_seconds", r.spec.draft_seconds},
                                                               {"verify_seconds", r.spec.verify_seconds},
                                                               {"speedup", r.speedup()}}
                                              : nlohmann::json()},
                {"history", history_json(s_)}});
}

void ChatUi::print_stats() const {
    const SessionStats st = s_.stats();
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "context: %d of %d tokens in use | %d messages, %d replies so far\n"
                  "last turn: %d prompt tokens evaluated (%d reused from the cache), %.1f tok/s | %d tokens "
                  "generated, %.1f tok/s",
                  st.context_tokens, st.n_ctx, st.messages, st.turns, st.last.stats.prompt_tokens,
                  st.last.reused_tokens, st.last.stats.prompt_tps(), st.last.stats.generated_tokens,
                  st.last.stats.generate_tps());
    note(buf);
    if (st.speculative) {
        note("draft " + st.draft_spec + " (" + std::to_string(st.draft_steps) + " steps)");
        if (st.last.speculative) note("last turn " + speculation_line(st.last.spec, st.last.speedup()));
        note("all turns " + speculation_line(st.spec_total, st.spec_speedup));
    }
}

void ChatUi::print_history() const {
    std::string text;
    for (const Message& m : s_.history()) {
        text += std::string("[") + role_name(m.role) + (m.interrupted ? ", interrupted" : "") +
                (m.truncated && !m.interrupted ? ", truncated" : "") + "] " + m.text + "\n";
    }
    note(text.empty() ? "(no messages)" : text.substr(0, text.size() - 1));
}

bool ChatUi::command(const std::string& line) {
    const size_t space = line.find(' ');
    const std::string name = line.substr(0, space);
    const std::string arg = space == std::string::npos ? "" : line.substr(space + 1);
    if (name == "/quit" || name == "/exit") return false;
    if (name == "/help") {
        note(kHelp);
    } else if (name == "/restart") {
        s_.restart();
        note("[conversation restarted; the system prompt stays]");
        log_.write({{"event", "restart"}, {"history", history_json(s_)}});
    } else if (name == "/system") {
        s_.set_system(arg);
        note(arg.empty() ? "[system prompt removed]" : "[system prompt set]");
        log_.write({{"event", "system"}, {"text", arg}, {"history", history_json(s_)}});
    } else if (name == "/prefix") {
        s_.set_ai_prefix(unescape_c(arg));
        note(arg.empty() ? "[ai prefix cleared]" : "[replies now start with: " + s_.ai_prefix() + "]");
        log_.write({{"event", "prefix"}, {"text", s_.ai_prefix()}});
    } else if (name == "/continue") {
        if (s_.history().empty() || s_.history().back().role != s_.model_role()) {
            note("[nothing to continue: the last message is not the model's]");
        } else {
            std::string suffix = unescape_c(arg);
            sanitize_utf8(suffix);
            turn("continue", suffix, [&](const PieceCallback& cb) { return s_.continue_reply(suffix, cb); });
        }
    } else if (name == "/stats") {
        print_stats();
    } else if (name == "/history") {
        print_history();
    } else {
        note("[unknown command " + name + "; /help lists them, and // starts a message with '/']");
    }
    return true;
}

ReadResult ChatUi::read_message(LineReader& reader) {
    ReadResult first = reader.read(false);
    if (first.status != ReadStatus::Line || Interrupts::raised()) return first;
    if (!first.line.empty() && first.line[0] == '/' && first.line.rfind("//", 0) != 0)
        return first;  // command
    ReadResult msg = first;
    if (a_.multiline) {
        if (first.line == ".") return msg.line.clear(), msg;
        for (;;) {
            ReadResult next = reader.read(true);
            if (next.status == ReadStatus::Interrupted || Interrupts::raised()) return next;
            if (next.status == ReadStatus::Eof || next.line == ".") break;
            msg.line += "\n" + next.line;
        }
        return msg;
    }
    while (!msg.line.empty() && msg.line.back() == '\\') {
        msg.line.back() = '\n';
        ReadResult next = reader.read(true);
        if (next.status == ReadStatus::Interrupted || Interrupts::raised()) return next;
        if (next.status == ReadStatus::Eof) break;
        msg.line += next.line;
    }
    return msg;
}

int ChatUi::run() {
    banner();
    std::unique_ptr<LineReader> reader =
        interactive_ ? make_editline_reader("strata", color_, default_history_path(), Interrupts::flag())
                     : make_plain_reader();
    if (!a_.prompt.empty()) {
        if (a_.reversed_role) {
            s_.add_message(s_.model_role(), a_.prompt);  // the model's opening line, as if it had said it
            std::printf("%s%s%s\n", color_ ? "\033[36m" : "", a_.prompt.c_str(), color_ ? "\033[0m" : "");
            std::fflush(stdout);
            log_.write({{"event", "opening"}, {"text", a_.prompt}, {"history", history_json(s_)}});
        } else {
            if (interactive_) std::printf("> %s\n", a_.prompt.c_str());
            turn("send", a_.prompt, [&](const PieceCallback& cb) { return s_.send(a_.prompt, cb); });
        }
    }
    for (;;) {
        Interrupts::on_input();
        Interrupts::clear();
        ReadResult r = read_message(*reader);
        if (r.status == ReadStatus::Interrupted || Interrupts::raised()) {
            if (interactive_) std::fputs("\n", stdout);
            // Ctrl-C at an empty prompt quits; over typed text it discards the text, as shells do.
            if (interactive_ && r.line.find_first_not_of(" \t") != std::string::npos) continue;
            break;
        }
        if (r.status == ReadStatus::Eof) {
            if (interactive_) std::fputs("\n", stdout);
            break;
        }
        std::string line = r.line;
        reader->add_history(line);
        if (line.find_first_not_of(" \t\r\n") == std::string::npos) continue;  // nothing to say
        if (line[0] == '/' && line.rfind("//", 0) != 0) {
            if (!command(line)) break;
            continue;
        }
        if (line.rfind("//", 0) == 0) line.erase(0, 1);
        if (const int bad = sanitize_utf8(line); bad > 0)
            note("[the input was not valid UTF-8: " + std::to_string(bad) +
                 " invalid byte sequence(s) replaced by U+FFFD]");
        turn("send", line, [&](const PieceCallback& cb) { return s_.send(line, cb); });
    }
    std::fflush(stdout);
    return 0;
}

// libedit needs a UTF-8 character type to edit non-ASCII text.
void use_utf8_ctype() {
    if (std::setlocale(LC_CTYPE, "") && std::strcmp(nl_langinfo(CODESET), "UTF-8") == 0) return;
    if (std::setlocale(LC_CTYPE, "C.UTF-8")) return;
    std::setlocale(LC_CTYPE, "C");
}

}  // namespace

std::function<int()> register_chat(CLI::App& app) {
    auto args = std::make_shared<ChatArgs>();
    CLI::App* sub = app.add_subcommand("chat", "talk with a model through its chat template");
    add_model_options(*sub, args->model);
    add_sampler_options(*sub, args->sampler);
    sub->add_option("-p,--prompt", args->prompt,
                    "the first message (with --reversed-role: the model's opening line)");
    sub->add_option("--system", args->system, "system prompt (default: none, or the template's own)");
    sub->add_option(
        "--ai-prefix,--ai_prefix", args->ai_prefix,
        "start every reply with this text (C escapes such as \\n are unescaped); /prefix changes it");
    sub->add_flag("--reversed-role,--reversed_role", args->reversed_role,
                  "the model speaks as the user; your messages become the assistant's");
    sub->add_option("--chat-template", args->chat_template, "override the model's chat template")
        ->check(CLI::IsMember(ChatTemplate::names()));
    sub->add_option(
           "--ctx-overflow", args->overflow,
           "when the context is full: shift (drop the oldest turns), restart (drop all turns), error")
        ->check(CLI::IsMember({"shift", "restart", "error"}));
    add_n_predict_option(*sub, args->max_new_tokens, /*also_max_new_tokens=*/true);
    sub->add_flag("--multiline", args->multiline,
                  "messages span several lines; a line holding only '.' ends one");
    sub->add_flag("--timings", args->timings, "print prompt and generation speed after every reply");
    sub->add_flag("--no-color", args->no_color, "no colours, even on a terminal");
    sub->add_flag("-v,--verbose", args->verbose, "print the seed, the context and the threads on stderr");
    sub->add_option("--transcript", args->transcript,
                    "write every turn and command as JSON Lines to this file");
    add_draft_options(*sub, args->draft);
    return [args]() -> int {
        ChatArgs& a = *args;
        LoadedModel lm = load_model(a.model);
        if (show_plan_if_asked(lm, a.model)) return 0;
        SessionOptions so;
        so.chat_template = a.chat_template;
        so.system_prompt = a.system;
        so.ai_prefix = unescape_c(a.ai_prefix);
        so.reversed_role = a.reversed_role;
        so.overflow = parse_overflow_policy(a.overflow);
        so.max_new_tokens = a.max_new_tokens;
        Session session(lm.model, std::move(lm.plan), forward_options(a.model), a.sampler, so);
        if (!a.draft.spec.empty()) {
            SpeculativeOptions spo;
            spo.draft_max = a.draft.draft_max;
            spo.adaptive = !a.draft.fixed;
            session.enable_speculation(make_draft_plan(lm.model, a.draft.spec, spo.draft_max, forward_options(a.model)),
                                       spo);
        }
        if (a.verbose) print_verbose_settings(a.sampler, session.sampler_params().seed, session.forward(), a.model);
        const bool interactive = isatty(STDIN_FILENO) != 0;
        const bool color = interactive && isatty(STDOUT_FILENO) && !a.no_color && !std::getenv("NO_COLOR");
        if (interactive) use_utf8_ctype();
        ChatUi ui(a, session, interactive, color);
        const int rc = ui.run();
        Interrupts::restore();
        return rc;
    };
}

}  // namespace strata::cli
