// strata_llm._strata.Chat: a conversation (core/run/session.h) over a Model's file and plan, with its own KV
// cache and sampler. strata_llm.Chat (python/strata_llm/chat.py) is the Python face over it.
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <mutex>
#include <optional>

#include "core/run/session.h"
#include "python/src/model.h"

namespace strata::python {

namespace {

class ChatHandle {
  public:
    ChatHandle(const ModelHandle& model, const SessionOptions& so, const SamplerParams& sp) {
        const Model& m = *model.model();
        try {
            ChatTemplate::for_model(m.file().meta, m.tokenizer(), so.chat_template);
        } catch (const std::runtime_error& e) {  // no chat template, or one strata does not recognise
            throw std::invalid_argument(e.what());
        }
        nb::gil_scoped_release nogil;
        session_ = std::make_unique<Session>(model.model(), model.plan(), model.forward_options(), sp, so);
    }

    // One model turn, with on_piece(str) called (GIL held) for each piece as it comes.
    nb::dict turn(bool fresh, const std::string& text, nb::object on_piece) {
        TurnResult r;
        {
            nb::gil_scoped_release nogil;
            std::lock_guard<std::mutex> lock(mu_);
            PieceCallback cb;
            if (!on_piece.is_none())
                cb = [&](std::string_view piece) {
                    nb::gil_scoped_acquire gil;
                    on_piece(utf8_str(piece));
                };
            r = fresh ? session_->send(text, cb) : session_->continue_reply(text, cb);
        }
        nb::dict d;
        d["text"] = utf8_str(r.text);
        d["generated"] = utf8_str(r.generated);
        d["tokens"] = r.tokens;
        d["interrupted"] = r.interrupted;
        d["stopped_by_eog"] = r.stopped_by_eog;
        d["context_full"] = r.context_full;
        d["prompt_tokens"] = r.prompt_tokens;
        d["reused_tokens"] = r.reused_tokens;
        d["dropped_messages"] = r.dropped_messages;
        d["evaluated_prompt_tokens"] = r.stats.prompt_tokens;
        d["generated_tokens"] = r.stats.generated_tokens;
        d["prompt_tps"] = r.stats.prompt_tps();
        d["generate_tps"] = r.stats.generate_tps();
        return d;
    }

    void abort() noexcept { session_->abort(); }  // no lock: Session::abort is thread- and signal-safe

    // The rest reads or edits the conversation between turns; the lock waits for a turn in progress.
    template <class Fn>
    auto locked(Fn&& fn) {
        nb::gil_scoped_release nogil;
        std::lock_guard<std::mutex> lock(mu_);
        return fn(*session_);
    }

    nb::list history() {
        const std::vector<Message> h = locked([](Session& s) { return s.history(); });
        nb::list out;
        for (const Message& m : h) {
            nb::dict d;
            d["role"] = role_name(m.role);
            d["content"] = utf8_str(m.text);
            if (m.interrupted) d["interrupted"] = true;
            if (m.truncated) d["truncated"] = true;
            out.append(d);
        }
        return out;
    }

    nb::dict stats() {
        const SessionStats st = locked([](Session& s) { return s.stats(); });
        nb::dict d;
        d["n_ctx"] = st.n_ctx;
        d["context_tokens"] = st.context_tokens;
        d["messages"] = st.messages;
        d["turns"] = st.turns;
        d["last_prompt_tokens"] = st.last.prompt_tokens;
        d["last_reused_tokens"] = st.last.reused_tokens;
        d["last_generated_tokens"] = st.last.stats.generated_tokens;
        d["last_prompt_tps"] = st.last.stats.prompt_tps();
        d["last_generate_tps"] = st.last.stats.generate_tps();
        d["kv_bytes"] = locked([](Session& s) { return s.forward().kv_cache().bytes(); });
        d["seed"] = locked([](Session& s) { return s.sampler_params().seed; });  // the one drawn for -1
        return d;
    }

  private:
    std::unique_ptr<Session> session_;
    std::mutex mu_;  // taken only with the GIL released (see ModelHandle)
};

}  // namespace

void bind_chat(nb::module_& m) {
    nb::class_<ChatHandle>(m, "Chat")
        .def(
            "__init__",
            [](ChatHandle* self, const ModelHandle& model, const std::string& system,
               const std::string& chat_template, const std::string& ai_prefix, bool reversed_role,
               nb::handle max_tokens, nb::handle overflow, const SamplerParams& sp) {
                SessionSettings s;
                s.session.system_prompt = system;
                s.session.chat_template = chat_template;
                s.session.ai_prefix = ai_prefix;
                s.session.reversed_role = reversed_role;
                s.session.max_new_tokens = -1;  // None: until end of turn or a full context
                apply_setting(s, "max-new-tokens", "max_tokens", max_tokens);
                apply_setting(s, "ctx-overflow", "overflow", overflow);
                new (self) ChatHandle(model, s.session, sp);
            },
            nb::arg("model"), nb::arg("system"), nb::arg("template"), nb::arg("ai_prefix"),
            nb::arg("reversed_role"), nb::arg("max_tokens").none(), nb::arg("overflow"), nb::arg("sampler"))
        .def(
            "send",
            [](ChatHandle& c, const std::string& text, nb::object on_piece) {
                return c.turn(true, text, std::move(on_piece));
            },
            nb::arg("text"), nb::arg("on_piece").none())
        .def(
            "continue_",
            [](ChatHandle& c, const std::string& suffix, nb::object on_piece) {
                return c.turn(false, suffix, std::move(on_piece));
            },
            nb::arg("suffix"), nb::arg("on_piece").none())
        .def("abort", &ChatHandle::abort)
        .def(
            "restart",
            [](ChatHandle& c, std::optional<std::string> system) {
                c.locked([&](Session& s) {
                    s.restart();
                    if (system) s.set_system(*system);
                    return 0;
                });
            },
            nb::arg("system").none())
        .def(
            "add_message",
            [](ChatHandle& c, const std::string& role, const std::string& text) {
                const Role r = parse_role(role);
                c.locked([&](Session& s) {
                    s.add_message(r, text);
                    return 0;
                });
            },
            nb::arg("role"), nb::arg("content"))
        .def_prop_rw(
            "ai_prefix", [](ChatHandle& c) { return c.locked([](Session& s) { return s.ai_prefix(); }); },
            [](ChatHandle& c, const std::string& p) {
                c.locked([&](Session& s) {
                    s.set_ai_prefix(p);
                    return 0;
                });
            })
        .def_prop_rw(
            "system",
            [](ChatHandle& c) { return c.locked([](Session& s) { return s.options().system_prompt; }); },
            [](ChatHandle& c, const std::string& text) {
                c.locked([&](Session& s) {
                    s.set_system(text);
                    return 0;
                });
            })
        .def_prop_rw(
            "max_tokens",
            [](ChatHandle& c) { return c.locked([](Session& s) { return s.options().max_new_tokens; }); },
            [](ChatHandle& c, nb::handle n) {
                SessionSettings checked;
                checked.session.max_new_tokens = -1;
                apply_setting(checked, "max-new-tokens", "max_tokens", n);
                c.locked([&](Session& s) {
                    s.set_max_new_tokens(checked.session.max_new_tokens);
                    return 0;
                });
            })
        .def_prop_ro(
            "reversed_role",
            [](ChatHandle& c) { return c.locked([](Session& s) { return s.options().reversed_role; }); })
        .def_prop_ro(
            "template",
            [](ChatHandle& c) { return c.locked([](Session& s) { return s.chat_template().name(); }); })
        .def_prop_ro(
            "next_prompt",
            [](ChatHandle& c) { return utf8_str(c.locked([](Session& s) { return s.next_prompt(); })); })
        .def("history", &ChatHandle::history)
        .def("stats", &ChatHandle::stats);
}

}  // namespace strata::python
