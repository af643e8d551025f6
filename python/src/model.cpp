#include "python/src/model.h"

#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <algorithm>
#include <span>

#include "core/api/model_info.h"
#include "core/run/generate.h"
#include "core/text/tokenizer.h"

namespace strata::python {

ModelHandle::ModelHandle(const std::string& path, const std::string& tokenizer_path,
                         const std::string& layer_spec, const ForwardOptions& fopts)
    : fopts_(fopts) {
    // Loading maps and binds the file (and packs weights): seconds for big ones, without the GIL.
    nb::gil_scoped_release nogil;
    model_ = open_model(path, tokenizer_path);
    Plan plan;
    try {
        plan = make_plan(*model_, layer_spec);
    } catch (const std::invalid_argument& e) {
        throw SpecError(e.what());
    }
    fwd_ = std::make_unique<Forward>(model_, std::move(plan), fopts_);
}

std::vector<int32_t> ModelHandle::prompt_tokens(const std::string& text) const {
    const Tokenizer& tok = model_->tokenizer();
    std::vector<int32_t> t = tok.encode(text, /*add_special=*/true, /*parse_special=*/true);
    if (t.empty() && tok.bos_id() >= 0) t.push_back(tok.bos_id());
    return t;
}

void ModelHandle::check_tokens(const std::vector<int32_t>& tokens, size_t pos) const {
    const int vocab = model_->config().vocab_size;
    for (int32_t t : tokens)
        if (t < 0 || t >= vocab)
            throw std::invalid_argument("token id " + std::to_string(t) + " is outside the vocabulary (0.." +
                                        std::to_string(vocab - 1) + ")");
    if (pos + tokens.size() > static_cast<size_t>(fwd_->n_ctx()))
        throw ContextOverflow("context overflow: " + std::to_string(pos + tokens.size()) +
                              " tokens do not fit the context of " + std::to_string(fwd_->n_ctx()) +
                              " (raise n_ctx, or reset() the model)");
}

void ModelHandle::eval(const std::vector<int32_t>& tokens) {
    if (tokens.empty()) throw std::invalid_argument("eval: no tokens");
    // The same batches Forward::eval would make of the whole list, so the numbers are the same.
    const size_t batch = static_cast<size_t>(std::max(1, fwd_->max_batch()));
    for (size_t done = 0; done < tokens.size(); done += batch) {
        const auto part =
            std::span<const int32_t>(tokens).subspan(done, std::min(batch, tokens.size() - done));
        {
            nb::gil_scoped_release nogil;
            std::lock_guard<std::mutex> lock(mu_);
            if (done == 0) check_tokens(tokens, cached_.size());
            logits_ = nullptr;
            const std::span<const float> l = fwd_->eval(part, static_cast<int>(cached_.size()));
            cached_.insert(cached_.end(), part.begin(), part.end());
            logits_ = l.data();
        }
        check_signals();  // Ctrl-C between batches: the cache keeps what was evaluated
    }
}

nb::dict ModelHandle::generate(const std::vector<int32_t>& prompt, const SamplerParams& sp, int max_tokens,
                               bool ignore_eos, nb::object on_piece) {
    if (prompt.empty()) throw std::invalid_argument("generate: empty prompt (nothing to condition on)");
    GenerationStats st;
    std::vector<int32_t> out;
    size_t common = 0;
    uint64_t seed = 0;
    {
        nb::gil_scoped_release nogil;
        std::lock_guard<std::mutex> lock(mu_);
        check_tokens(prompt, 0);
        abort_.store(false, std::memory_order_relaxed);
        logits_ = nullptr;
        // Reuse the longest common prefix with the cache; at least one token is evaluated, for its logits.
        // The sampler sees the reused tokens too, so a repetition penalty counts them as a fresh run would.
        while (common < cached_.size() && common < prompt.size() && cached_[common] == prompt[common])
            ++common;
        if (common == prompt.size()) --common;
        cached_.resize(common);
        Sampler sampler(sp);
        seed = sampler.params().seed;
        for (size_t i = 0; i < common; ++i) sampler.accept(prompt[i]);

        StreamDecoder decoder(model_->tokenizer());
        const auto emit = [&](const std::string& piece) {
            if (piece.empty() || on_piece.is_none()) return;
            nb::gil_scoped_acquire gil;
            on_piece(utf8_str(piece));
        };
        // The cache holds prompt + generated tokens up to pos (the last sampled token is not evaluated).
        const auto remember = [&](const std::vector<int32_t>& generated, int pos) {
            cached_ = prompt;
            cached_.insert(cached_.end(), generated.begin(), generated.end());
            cached_.resize(static_cast<size_t>(pos));
        };
        GenerateOptions go;
        go.max_new_tokens = max_tokens;
        go.stop_at_eog = !ignore_eos;
        go.abort = &abort_;
        std::vector<int32_t> sampled;  // for the bookkeeping when a callback throws
        int pos = static_cast<int>(common);
        try {
            out = ::strata::generate(
                *fwd_, sampler, std::span<const int32_t>(prompt).subspan(common), pos, go,
                [&](int32_t t) {
                    sampled.push_back(t);
                    emit(decoder.feed(t));
                    return true;
                },
                &st);
        } catch (...) {
            remember(sampled, pos);
            throw;
        }
        remember(out, pos);
        emit(decoder.flush());
    }
    const bool hit_max = max_tokens >= 0 && static_cast<int>(out.size()) >= max_tokens;
    nb::dict d;
    d["prompt_tokens"] = prompt.size();
    d["reused_tokens"] = common;
    d["evaluated_prompt_tokens"] = st.prompt_tokens;
    d["generated_tokens"] = st.generated_tokens;
    d["tokens"] = out;
    d["prompt_seconds"] = st.prompt_seconds;
    d["generate_seconds"] = st.generate_seconds;
    d["prompt_tps"] = st.prompt_tps();
    d["generate_tps"] = st.generate_tps();
    d["seed"] = seed;
    d["finish_reason"] = st.aborted          ? "interrupted"
                         : st.stopped_by_eog ? "eos"
                         : hit_max           ? "length"
                                             : "context";
    return d;
}

void ModelHandle::reset() {
    nb::gil_scoped_release nogil;
    std::lock_guard<std::mutex> lock(mu_);
    cached_.clear();
    logits_ = nullptr;
}

std::vector<int32_t> ModelHandle::tokens() const {
    nb::gil_scoped_release nogil;
    std::lock_guard<std::mutex> lock(mu_);
    return cached_;
}

namespace {

using Logits = nb::ndarray<nb::numpy, const float, nb::ndim<1>, nb::c_contig>;

// A read-only NumPy view of the Forward's logits buffer, owned by the Python Model (kept alive by the array).
nb::object logits_view(ModelHandle& h) {
    const float* p = h.logits_data();
    if (!p) return nb::none();
    const size_t shape[1] = {static_cast<size_t>(h.model()->config().vocab_size)};
    return nb::cast(Logits(p, 1, shape, nb::find(&h)), nb::rv_policy::reference);
}

void check_ids(const Model& m, const std::vector<int32_t>& ids) {
    for (int32_t t : ids)
        if (t < 0 || t >= m.tokenizer().n_vocab())
            throw std::invalid_argument("token id " + std::to_string(t) + " is outside the vocabulary (0.." +
                                        std::to_string(m.tokenizer().n_vocab() - 1) + ")");
}

nb::bytes as_bytes(const std::string& s) {
    return nb::bytes(s.data(), s.size());
}

nb::dict info_dict(const ModelHandle& h) {
    const ModelInfo i = model_info(*h.model());
    nb::dict d;
    d["path"] = i.path;
    d["format"] = i.format;
    d["arch"] = i.arch;
    d["name"] = i.name;
    d["n_layers"] = i.n_layers;
    d["dim"] = i.dim;
    d["hidden_dim"] = i.hidden_dim;
    d["n_heads"] = i.n_heads;
    d["n_kv_heads"] = i.n_kv_heads;
    d["head_dim"] = i.head_dim;
    d["vocab_size"] = i.vocab_size;
    d["n_ctx_train"] = i.n_ctx_train;
    d["sliding_window"] = i.sliding_window;
    d["n_params"] = i.n_params;
    d["file_bytes"] = i.file_bytes;
    d["chat_template"] = i.chat_template;
    return d;
}

nb::dict plan_info(const ModelHandle& h) {
    const Model& m = *h.model();
    const Plan& p = h.plan();
    const PlanCost cost = plan_cost(m, p);
    nb::list kinds;
    for (const Step& s : p.steps)
        kinds.append(s.kind == LayerKind::SlidingWindow ? "sliding_window" : "global");
    nb::dict d;
    d["spec"] = p.spec;
    d["layers"] = p.layers();
    d["n_steps"] = p.n_steps();
    d["n_layers"] = m.config().n_layers;
    d["repeated"] = cost.repeated;
    d["dropped"] = cost.dropped;
    d["kinds"] = kinds;
    d["virtual_params"] = cost.virtual_params;
    d["unique_params"] = cost.unique_params;
    d["unique_weight_bytes"] = cost.unique_weight_bytes;
    d["kv_bytes"] = h.kv_bytes();
    d["kv_bytes_per_token"] = h.kv_bytes() / static_cast<size_t>(h.n_ctx());
    d["n_ctx"] = h.n_ctx();
    return d;
}

}  // namespace

void bind_model(nb::module_& m) {
    nb::class_<ModelHandle>(m, "Model")
        .def(
            "__init__",
            [](ModelHandle* self, const std::string& path, const std::string& tokenizer_path,
               const std::string& layer_spec, nb::handle n_ctx, nb::handle n_threads, nb::handle n_batch,
               const std::string& device, int n_gpu_layers) {
                SessionSettings s;
                apply_setting(s, "ctx-size", "n_ctx", n_ctx);
                apply_setting(s, "threads", "n_threads", n_threads);
                apply_setting(s, "batch-size", "n_batch", n_batch);
                if (device != "cpu" && device != "cuda")
                    throw std::invalid_argument("device must be 'cpu' or 'cuda', not '" + device + "'");
                if (n_gpu_layers < -1) throw std::invalid_argument("n_gpu_layers must be >= 0");
                s.forward.device = n_gpu_layers > 0 ? "cuda" : device;  // as the CLI's -ngl N (N > 0)
                s.forward.n_gpu_steps = n_gpu_layers;
                new (self) ModelHandle(path, tokenizer_path, layer_spec, s.forward);
            },
            nb::arg("path"), nb::arg("tokenizer_path"), nb::arg("layer_spec"), nb::arg("n_ctx").none(),
            nb::arg("n_threads").none(), nb::arg("n_batch").none(), nb::arg("device"),
            nb::arg("n_gpu_layers"))
        .def_prop_ro("info", &info_dict)
        .def_prop_ro("plan", &plan_info)
        .def_prop_ro("n_ctx", &ModelHandle::n_ctx)
        .def_prop_ro("n_threads", &ModelHandle::n_threads)
        .def_prop_ro("n_vocab", [](const ModelHandle& h) { return h.model()->tokenizer().n_vocab(); })
        .def_prop_ro("token_bos", [](const ModelHandle& h) { return h.model()->tokenizer().bos_id(); })
        .def_prop_ro("token_eos", [](const ModelHandle& h) { return h.model()->tokenizer().eos_id(); })
        .def("is_eog", [](const ModelHandle& h, int32_t t) { return h.model()->tokenizer().is_eog(t); })
        .def(
            "tokenize",
            [](const ModelHandle& h, nb::bytes text, bool add_special, bool parse_special) {
                const std::string_view s(text.c_str(), text.size());
                return h.model()->tokenizer().encode(s, add_special, parse_special);
            },
            nb::arg("text"), nb::arg("add_special"), nb::arg("parse_special"))
        .def("prompt_tokens", &ModelHandle::prompt_tokens, nb::arg("text"))
        .def(
            "detokenize",
            [](const ModelHandle& h, const std::vector<int32_t>& ids, bool special) {
                check_ids(*h.model(), ids);
                return as_bytes(h.model()->tokenizer().decode(ids, special));
            },
            nb::arg("tokens"), nb::arg("special"))
        .def(
            "token_to_piece",
            [](const ModelHandle& h, int32_t id, bool special) {
                check_ids(*h.model(), {id});
                return as_bytes(h.model()->tokenizer().token_to_piece(id, special));
            },
            nb::arg("token"), nb::arg("special"))
        .def("eval", &ModelHandle::eval, nb::arg("tokens"))
        .def_prop_ro("logits", &logits_view)
        .def(
            "generate",
            [](ModelHandle& h, const std::vector<int32_t>& prompt, const SamplerParams& sp,
               nb::handle max_tokens, bool ignore_eos, nb::object on_piece) {
                SessionSettings s;
                s.session.max_new_tokens = -1;  // None: until end of text or a full context
                apply_setting(s, "max-new-tokens", "max_tokens", max_tokens);
                return h.generate(prompt, sp, s.session.max_new_tokens, ignore_eos, std::move(on_piece));
            },
            nb::arg("prompt"), nb::arg("sampler"), nb::arg("max_tokens").none(), nb::arg("ignore_eos"),
            nb::arg("on_piece").none())
        .def("abort", &ModelHandle::abort)
        .def("reset", &ModelHandle::reset)
        .def_prop_ro("tokens", &ModelHandle::tokens);
}

}  // namespace strata::python
