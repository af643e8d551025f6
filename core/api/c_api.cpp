// libstrata: the C API (core/api/strata.h) over ModelRegistry and Session. Every entry point catches every
// exception and turns it into a status code plus a per-thread message: nothing C++ crosses the boundary.
#include "core/api/strata.h"

#include <algorithm>
#include <cstring>
#include <exception>
#include <map>
#include <new>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/analysis/lens.h"
#include "core/api/model_info.h"
#include "core/api/registry.h"
#include "core/engine/plan.h"
#include "core/run/session.h"
#include "core/run/settings.h"
#include "core/text/tokenizer.h"

using namespace strata;

struct strata_model {
    std::shared_ptr<const Model> model;
    std::string info, lens_json;
};

struct strata_session {
    std::unique_ptr<Session> session;
    std::string last_reply, stats;
};

namespace {

thread_local std::string t_last_error;

// The process-wide registry behind strata_model_open: the one piece of global state the C API needs, so that
// two opens of one file share its mapping however the caller organises its handles.
ModelRegistry& registry() {
    static ModelRegistry r;
    return r;
}

int fail(int code, const std::string& msg) {
    t_last_error = msg;
    return code;
}

// Runs fn, mapping exceptions to status codes.
template <class Fn>
int guarded(int error_code, Fn&& fn) noexcept {
    try {
        t_last_error.clear();
        return fn();
    } catch (const std::invalid_argument& e) {
        return fail(STRATA_ERR_INVALID_ARG, e.what());
    } catch (const std::out_of_range& e) {
        return fail(STRATA_ERR_INVALID_ARG, e.what());
    } catch (const std::bad_alloc&) {
        return fail(STRATA_ERR_INTERNAL, "out of memory");
    } catch (const std::exception& e) {
        return fail(error_code, e.what());
    } catch (...) {
        return fail(STRATA_ERR_INTERNAL, "unknown error");
    }
}

// argv-style options: "--KEY VALUE" for every session setting (core/run/settings.h), the short forms -c -t -b
// -s -n, and the flag --reversed-role.
SessionSettings parse_options(int argc, const char* const* argv) {
    SessionSettings o;
    if (argc < 0 || (argc > 0 && !argv)) throw std::invalid_argument("argv is null");
    static const std::map<std::string, std::string> kShort = {
        {"-c", "ctx-size"}, {"-t", "threads"}, {"-b", "batch-size"}, {"-s", "seed"}, {"-n", "n-predict"}};
    for (int i = 0; i < argc; ++i) {
        if (!argv[i]) throw std::invalid_argument("argv[" + std::to_string(i) + "] is null");
        const std::string name = argv[i];
        if (name == "--reversed-role" || name == "--reversed_role") {
            o.session.reversed_role = true;
            continue;
        }
        std::string key;
        if (auto it = kShort.find(name); it != kShort.end()) key = it->second;
        else if (name.rfind("--", 0) == 0) key = name.substr(2);
        if (key == "layer_spec" || key == "ai_prefix") key[key.find('_')] = '-';
        const auto& keys = session_setting_keys();
        const bool known = key == "n-predict" || std::find(keys.begin(), keys.end(), key) != keys.end();
        if (!known || key == "reversed-role" || key == "tokenizer")  // the model is open already
            throw std::invalid_argument("unknown session option '" + name + "'");
        if (i + 1 >= argc || !argv[i + 1]) throw std::invalid_argument("option " + name + " needs a value");
        apply_session_setting(o, key, argv[++i]);
    }
    return o;
}

struct LensArgs {
    std::string layer_spec, compare;
    LensOptions lens;
};

LensArgs parse_lens_options(int argc, const char* const* argv) {
    LensArgs o;
    if (argc < 0 || (argc > 0 && !argv)) throw std::invalid_argument("argv is null");
    SessionSettings fwd;  // -c, -t, -b: the session settings' names and ranges
    static const std::map<std::string, std::string> kForward = {
        {"-c", "ctx-size"}, {"--ctx-size", "ctx-size"}, {"-t", "threads"},
        {"--threads", "threads"}, {"-b", "batch-size"}, {"--batch-size", "batch-size"}};
    for (int i = 0; i < argc; ++i) {
        if (!argv[i]) throw std::invalid_argument("argv[" + std::to_string(i) + "] is null");
        const std::string name = argv[i];
        if (i + 1 >= argc || !argv[i + 1]) throw std::invalid_argument("option " + name + " needs a value");
        const std::string v = argv[++i];
        if (name == "--layer-spec" || name == "--layer_spec") o.layer_spec = v;
        else if (name == "--compare") o.compare = v;
        else if (name == "--top-k") {
            if (const std::string why = check_number(v, kLensTopKRule); !why.empty())
                throw std::invalid_argument("--top-k: " + why);
            o.lens.top_k = std::stoi(v);
        }
        else if (name == "--positions") {
            if (v != "last" && v != "all") throw std::invalid_argument("--positions: last or all, not '" + v + "'");
            o.lens.all_positions = v == "all";
        } else if (auto it = kForward.find(name); it != kForward.end()) {
            apply_session_setting(fwd, it->second, v);
        } else {
            throw std::invalid_argument("unknown lens option '" + name + "'");
        }
    }
    o.lens.fwd.n_ctx = fwd.forward.n_ctx;
    o.lens.fwd.n_threads = fwd.forward.n_threads;
    o.lens.fwd.max_batch = fwd.forward.max_batch;
    return o;
}

int turn(strata_session* s, strata_piece_fn on_piece, strata_end_fn on_end, void* user,
         const std::function<TurnResult(const PieceCallback&)>& fn) {
    PieceCallback cb;
    std::string piece_buf;
    if (on_piece)
        cb = [&](std::string_view piece) {
            piece_buf.assign(piece);  // NUL-terminated for the caller
            on_piece(user, piece_buf.c_str(), piece_buf.size());
        };
    const TurnResult r = fn(cb);
    s->last_reply = r.text;
    const int status = r.interrupted ? STRATA_INTERRUPTED : STRATA_OK;
    if (on_end) on_end(user, status, s->last_reply.c_str());
    return status;
}

// The model's last message in the history (where restart / add_message may have changed it), or nullptr.
const std::string* last_model_message(const strata_session* s) {
    const auto& h = s->session->history();
    for (auto it = h.rbegin(); it != h.rend(); ++it)
        if (it->role == s->session->model_role()) return &it->text;
    return nullptr;
}

}  // namespace

extern "C" {

const char* strata_version(void) { return "0.1.0"; }

const char* strata_last_error(void) { return t_last_error.c_str(); }

int strata_model_open(const char* path, const char* tokenizer_path, strata_model** out) {
    return guarded(STRATA_ERR_LOAD, [&] {
        if (!out) throw std::invalid_argument("strata_model_open: out is null");
        *out = nullptr;
        if (!path || !*path) throw std::invalid_argument("strata_model_open: no path");
        auto h = std::make_unique<strata_model>();
        h->model = registry().open(path, tokenizer_path ? tokenizer_path : "");
        *out = h.release();
        return STRATA_OK;
    });
}

void strata_model_close(strata_model* model) { delete model; }

const char* strata_model_info_json(strata_model* model) {
    if (!model) {
        fail(STRATA_ERR_INVALID_ARG, "strata_model_info_json: null model");
        return "{}";
    }
    try {
        const ModelInfo i = model_info(*model->model);
        nlohmann::json j = {{"path", i.path},
                            {"format", i.format},
                            {"arch", i.arch},
                            {"name", i.name},
                            {"n_layers", i.n_layers},
                            {"dim", i.dim},
                            {"hidden_dim", i.hidden_dim},
                            {"n_heads", i.n_heads},
                            {"n_kv_heads", i.n_kv_heads},
                            {"vocab_size", i.vocab_size},
                            {"n_ctx_train", i.n_ctx_train},
                            {"n_params", i.n_params},
                            {"file_bytes", i.file_bytes},
                            {"chat_template", i.chat_template}};
        model->info = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        return model->info.c_str();
    } catch (const std::exception& e) {
        fail(STRATA_ERR_INTERNAL, e.what());
        return "{}";
    }
}

int strata_session_new(strata_model* model, int argc, const char* const* argv, strata_session** out) {
    return guarded(STRATA_ERR_RUNTIME, [&] {
        if (!out) throw std::invalid_argument("strata_session_new: out is null");
        *out = nullptr;
        if (!model) throw std::invalid_argument("strata_session_new: null model");
        SessionSettings o = parse_options(argc, argv);
        auto h = std::make_unique<strata_session>();
        Plan plan = make_plan(*model->model, o.layer_spec);
        h->session = std::make_unique<Session>(model->model, std::move(plan), o.forward, o.sampler, o.session);
        *out = h.release();
        return STRATA_OK;
    });
}

void strata_session_free(strata_session* session) { delete session; }

int strata_session_send(strata_session* s, const char* text, strata_piece_fn on_piece, strata_end_fn on_end,
                        void* user_data) {
    return guarded(STRATA_ERR_RUNTIME, [&] {
        if (!s) throw std::invalid_argument("strata_session_send: null session");
        if (!text) throw std::invalid_argument("strata_session_send: null text");
        const std::string in = text;
        return turn(s, on_piece, on_end, user_data,
                    [&](const PieceCallback& cb) { return s->session->send(in, cb); });
    });
}

int strata_session_continue(strata_session* s, const char* suffix, strata_piece_fn on_piece,
                            strata_end_fn on_end, void* user_data) {
    return guarded(STRATA_ERR_RUNTIME, [&] {
        if (!s) throw std::invalid_argument("strata_session_continue: null session");
        const std::string sfx = suffix ? suffix : "";
        if (s->session->history().empty() || s->session->history().back().role != s->session->model_role())
            throw std::invalid_argument("nothing to continue: the last message is not the model's");
        return turn(s, on_piece, on_end, user_data,
                    [&](const PieceCallback& cb) { return s->session->continue_reply(sfx, cb); });
    });
}

int strata_session_add_message(strata_session* s, const char* role, const char* text) {
    return guarded(STRATA_ERR_RUNTIME, [&] {
        if (!s || !role || !text) throw std::invalid_argument("strata_session_add_message: null argument");
        s->session->add_message(parse_role(role), text);
        return STRATA_OK;
    });
}

void strata_session_abort(strata_session* s) {
    if (s && s->session) s->session->abort();
}

int strata_session_restart(strata_session* s, const char* system_prompt) {
    return guarded(STRATA_ERR_RUNTIME, [&] {
        if (!s) throw std::invalid_argument("strata_session_restart: null session");
        s->session->restart();
        if (system_prompt) s->session->set_system(system_prompt);
        return STRATA_OK;
    });
}

int strata_session_set_ai_prefix(strata_session* s, const char* prefix) {
    return guarded(STRATA_ERR_RUNTIME, [&] {
        if (!s) throw std::invalid_argument("strata_session_set_ai_prefix: null session");
        s->session->set_ai_prefix(prefix ? prefix : "");
        return STRATA_OK;
    });
}

int strata_session_set_max_new_tokens(strata_session* s, int n) {
    return guarded(STRATA_ERR_RUNTIME, [&] {
        if (!s) throw std::invalid_argument("strata_session_set_max_new_tokens: null session");
        s->session->set_max_new_tokens(n);
        return STRATA_OK;
    });
}

const char* strata_session_last_reply(strata_session* s) {
    if (!s) {
        fail(STRATA_ERR_INVALID_ARG, "strata_session_last_reply: null session");
        return "";
    }
    const std::string* m = last_model_message(s);
    s->last_reply = m ? *m : std::string();
    return s->last_reply.c_str();
}

size_t strata_session_last_reply_size(strata_session* s) {
    if (!s) {
        fail(STRATA_ERR_INVALID_ARG, "strata_session_last_reply_size: null session");
        return 0;
    }
    const std::string* m = last_model_message(s);  // leaves last_reply (and a pointer into it) alone
    return m ? m->size() : 0;
}

const char* strata_session_stats_json(strata_session* s) {
    if (!s) {
        fail(STRATA_ERR_INVALID_ARG, "strata_session_stats_json: null session");
        return "{}";
    }
    try {
        const SessionStats st = s->session->stats();
        const Forward& f = s->session->forward();
        nlohmann::json j = {{"n_ctx", st.n_ctx},
                            {"context_tokens", st.context_tokens},
                            {"messages", st.messages},
                            {"turns", st.turns},
                            {"steps", f.plan().n_steps()},
                            {"layer_spec", f.plan().spec},
                            {"kv_cache_bytes", f.kv_cache().bytes()},
                            {"mapped_bytes", f.model().file().file_bytes},
                            {"last_prompt_tokens", st.last.prompt_tokens},
                            {"last_reused_tokens", st.last.reused_tokens},
                            {"last_evaluated_tokens", st.last.stats.prompt_tokens},
                            {"last_generated_tokens", st.last.stats.generated_tokens},
                            {"last_prompt_tps", st.last.stats.prompt_tps()},
                            {"last_generate_tps", st.last.stats.generate_tps()},
                            {"last_interrupted", st.last.interrupted},
                            {"seed", s->session->sampler_params().seed},
                            {"n_threads", f.n_threads()}};
        s->stats = j.dump();
        return s->stats.c_str();
    } catch (const std::exception& e) {
        fail(STRATA_ERR_INTERNAL, e.what());
        return "{}";
    }
}

int strata_lens(strata_model* model, const char* prompt, int argc, const char* const* argv,
                strata_lens_fn on_row, void* user_data, const char** json_out) {
    return guarded(STRATA_ERR_RUNTIME, [&] {
        if (json_out) *json_out = "";
        if (!model) throw std::invalid_argument("strata_lens: null model");
        if (!prompt) throw std::invalid_argument("strata_lens: null prompt");
        LensArgs a = parse_lens_options(argc, argv);
        const std::shared_ptr<const Model>& m = model->model;
        const std::vector<int32_t> tokens = m->tokenizer().encode(prompt, true, /*parse_special=*/true);
        if (tokens.empty()) throw std::invalid_argument("strata_lens: the prompt gives no tokens");
        const Plan plan = make_plan(*m, a.layer_spec);
        LensReport ref;
        if (!a.compare.empty()) {
            ref = run_lens(m, make_plan(*m, a.compare == "base" ? "" : a.compare), tokens, a.lens);
            a.lens.reference_states = ref.final_states;
        }
        std::vector<int> top_ids;
        std::vector<float> top_probs;
        if (on_row)
            a.lens.on_row = [&](const LensRow& r) {
                const LensCell& c = *r.cell;
                top_ids.clear(), top_probs.clear();
                for (const LensToken& t : c.top) top_ids.push_back(t.id), top_probs.push_back(t.prob);
                const strata_lens_row row = {.step = r.step,
                                             .layer = r.layer,
                                             .position = r.position,
                                             .input_token = tokens[static_cast<size_t>(r.position)],
                                             .target = c.target,
                                             .target_rank = c.target_rank,
                                             .target_prob = c.target_prob,
                                             .entropy = c.entropy,
                                             .kl = c.kl,
                                             .kl_reference = c.kl_reference,
                                             .top_k = static_cast<int>(c.top.size()),
                                             .top_ids = top_ids.data(),
                                             .top_probs = top_probs.data(),
                                             .dim = m->config().dim,
                                             .residual = r.residual,
                                             .n_vocab = m->config().vocab_size,
                                             .logits = r.logits};
                on_row(user_data, &row);
            };
        const LensReport r = run_lens(m, plan, tokens, a.lens);
        if (json_out) {
            model->lens_json = lens_json(*m, r, a.compare.empty() ? nullptr : &ref);
            *json_out = model->lens_json.c_str();
        }
        return STRATA_OK;
    });
}

}  // extern "C"
