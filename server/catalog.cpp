#include "server/catalog.h"

#include <stdexcept>

#include "core/engine/plan.h"
#include "core/run/session.h"
#include "core/text/tokenizer.h"

namespace strata::server {

Catalog::Catalog(const std::vector<ModelSource>& sources, const CatalogOptions& opts) : opts_(opts) {
    if (sources.empty()) throw std::invalid_argument("no model to serve (give -m FILE)");
    if (!opts_.chat_template.empty())
        (void)ChatTemplate::from_name(opts_.chat_template);  // names the choices
    auto add = [&](ServedModel s) {
        if (s.id.empty()) throw std::invalid_argument("a model or variant name is empty");
        for (const ServedModel& o : served_)
            if (o.id == s.id)
                throw std::invalid_argument("the name '" + s.id +
                                            "' is given twice (--alias, --variant NAME=...)");
        served_.push_back(std::move(s));
    };
    for (const ModelSource& src : sources) {
        std::shared_ptr<const Model> model;
        try {
            model = registry_.open(src.path);
        } catch (const std::exception& e) {
            throw std::runtime_error("cannot load model " + src.name + " (" + src.path + "): " + e.what());
        }
        File f{model, std::nullopt, ""};
        try {
            f.chat_template =
                ChatTemplate::for_model(model->file().meta, model->tokenizer(), opts_.chat_template);
        } catch (const std::exception& e) {
            f.template_error = e.what();  // completions still work; chat requests get this message
        }
        Plan base = make_plan(*model);
        add({src.name, src.name, "", base.n_steps(), forward_for(model, std::move(base))});
        for (const auto& [name, spec] : src.variants) {
            Plan p;
            try {
                p = make_plan(*model, spec);
            } catch (const std::exception& e) {
                throw std::invalid_argument("--variant " + name + "=" + spec + ": " + e.what());
            }
            p.spec = spec;
            const int steps = p.n_steps();
            add({name, src.name, spec, steps, forward_for(model, std::move(p))});
        }
        files_.emplace(src.name, std::move(f));
    }
}

int Catalog::n_ctx() const {
    return served_.front().forward->n_ctx();
}

std::shared_ptr<Forward> Catalog::forward_for(const std::shared_ptr<const Model>& model, Plan plan) const {
    const auto key = std::make_pair(model.get(), plan.layers());
    std::lock_guard<std::mutex> lock(mu_);
    std::erase_if(forwards_, [](const auto& kv) { return kv.second.expired(); });
    if (auto it = forwards_.find(key); it != forwards_.end())
        if (std::shared_ptr<Forward> f = it->second.lock()) return f;
    ForwardOptions fo;
    fo.n_ctx = opts_.n_ctx;
    fo.n_threads = opts_.n_threads;
    fo.max_batch = opts_.max_batch;
    fo.own_cache = false;  // every request brings its own (Scheduler)
    auto f = std::make_shared<Forward>(model, std::move(plan), fo);
    forwards_[key] = f;
    return f;
}

std::vector<int32_t> Catalog::chat_prompt(const GenerationRequest& r, const File& f,
                                          std::string& reply_prefix) const {
    if (!f.chat_template)
        throw ApiError(400, "no chat for this model: " + f.template_error +
                                " (for strata serve: --chat-template NAME)" +
                                "; /v1/completions takes plain text");
    std::vector<Message> h = r.messages;
    if (h.back().role != Role::Assistant) {  // a new reply, opened with the ai-prefix
        h.push_back({Role::Assistant, r.ai_prefix});
        reply_prefix = r.ai_prefix;
    }  // else the last assistant message is continued: the reply is what follows its text
    std::string text;
    try {
        text = chat_prompt_text(*f.chat_template, h);
    } catch (const std::exception& e) {  // a conversation the template has no place for
        throw ApiError(400, std::string("the chat template cannot render these messages: ") + e.what(),
                       "invalid_request_error", "messages");
    }
    return tokenize_chat_prompt(f.model->tokenizer(), text);
}

std::vector<int32_t> Catalog::completion_prompt(const GenerationRequest& r, const Model& m,
                                                std::string& reply_prefix) const {
    const Tokenizer& tok = m.tokenizer();
    std::vector<int32_t> prompt = r.prompt_tokens;
    if (r.prompt_is_tokens) {
        for (int32_t t : prompt)
            if (t >= tok.n_vocab())
                throw ApiError(400,
                               "token id " + std::to_string(t) + " is outside the vocabulary of " +
                                   std::to_string(tok.n_vocab()),
                               "invalid_request_error", "prompt");
        if (r.echo) reply_prefix = tok.decode(prompt);
    } else {
        prompt = tok.encode(r.prompt, /*add_special=*/true, /*parse_special=*/true);  // as `strata run` does
        if (r.echo) reply_prefix = r.prompt;
    }
    if (prompt.empty()) {
        if (tok.bos_id() < 0) throw ApiError(400, "the prompt is empty", "invalid_request_error", "prompt");
        prompt.push_back(tok.bos_id());  // nothing to condition on: start from BOS, as `strata run` does
    }
    return prompt;
}

PreparedRequest Catalog::prepare(const GenerationRequest& r) const {
    const ServedModel* served = r.model.empty() ? &served_.front() : nullptr;
    for (const ServedModel& s : served_)
        if (s.id == r.model) served = &s;
    if (!served)
        throw ApiError(404, "the model '" + r.model + "' does not exist (GET /v1/models lists the names)",
                       "invalid_request_error", "model", "model_not_found");
    const File& file = files_.at(served->parent);
    PreparedRequest p;
    p.model_id = served->id;
    p.forward = served->forward;
    if (!r.layer_spec.empty()) {
        const Model& m = *file.model;
        Plan plan;
        try {
            plan = make_plan(m, r.layer_spec);
        } catch (const std::exception& e) {
            throw ApiError(400, std::string("invalid layer_spec: ") + e.what(), "invalid_request_error",
                           "layer_spec");
        }
        const int limit = kMaxStepsPerLayer * m.config().n_layers;
        if (plan.n_steps() > limit)
            throw ApiError(400,
                           "layer_spec '" + r.layer_spec + "' runs " + std::to_string(plan.n_steps()) +
                               " steps; a request may run at most " + std::to_string(limit) + " (" +
                               std::to_string(kMaxStepsPerLayer) + " per file layer)",
                           "invalid_request_error", "layer_spec");
        plan.spec = r.layer_spec;
        p.forward = forward_for(file.model, std::move(plan));
    }
    p.prompt = r.endpoint == Endpoint::Chat ? chat_prompt(r, file, p.reply_prefix)
                                            : completion_prompt(r, *file.model, p.reply_prefix);
    const int n_ctx = p.forward->n_ctx();
    if (static_cast<int64_t>(p.prompt.size()) >= n_ctx)
        throw ApiError(400,
                       "the prompt is " + std::to_string(p.prompt.size()) + " tokens and the context holds " +
                           std::to_string(n_ctx) +
                           " per request, which leaves no room for a reply (the server's -c)",
                       "invalid_request_error", r.endpoint == Endpoint::Chat ? "messages" : "prompt",
                       "context_length_exceeded");
    p.max_new_tokens = r.max_tokens.value_or(-1);
    p.stop_at_eog = !r.ignore_eos;
    p.stop = r.stop;
    p.sampling.temperature = static_cast<float>(r.temperature);
    p.sampling.top_p = static_cast<float>(r.top_p);
    p.sampling.top_k = r.top_k;
    p.sampling.min_p = static_cast<float>(r.min_p);
    p.sampling.repeat_penalty = 1.0f;
    p.sampling.seed = r.seed ? *r.seed : kRandomSeed;  // the Sampler draws one
    return p;
}

}  // namespace strata::server
