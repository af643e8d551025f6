// What a server serves: model files, each mapped once (core/api/registry.h), and the names requests use for
// them -- each file's base plan and its variants (layer specs over the same weights). A plan runs in one
// Forward, shared by every request on the same layers, so their decode steps batch together; a request's own
// layer_spec gets the Forward of that layer list (an existing one where a variant has the same layers).
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/api/registry.h"
#include "core/engine/forward.h"
#include "core/engine/sampler.h"
#include "core/text/chat_template.h"
#include "server/request.h"

namespace strata::server {

// One -m: a file, the name it is served under, and its variants (name, layer spec).
struct ModelSource {
    std::string name;
    std::string path;
    std::vector<std::pair<std::string, std::string>> variants;
};

struct CatalogOptions {
    int n_ctx = kDefaultContext;  // context of each request (each slot's KV cache); see context_size()
    int n_threads = 0;    // 0: all cores
    int max_batch = 256;  // tokens per batched pass
    std::string chat_template;  // a --chat-template name for every model; "": each model's own
};

// A name that requests can ask for: a model's base plan or one of its variants.
struct ServedModel {
    std::string id;          // listed by /v1/models; the request's "model"
    std::string parent;      // the base model's id (== id for a base)
    std::string layer_spec;  // "" for the base plan
    int steps = 0;           // steps of its plan
    std::shared_ptr<Forward> forward;
};

// A request checked against its model and ready for the engine.
struct PreparedRequest {
    std::string model_id;
    std::shared_ptr<Forward> forward;  // the plan it runs on
    std::vector<int32_t> prompt;       // tokens to evaluate
    std::string reply_prefix;          // text the reply starts with that is not generated (ai_prefix, echo)
    int max_new_tokens = -1;           // < 0: until end of generation or a full context
    bool stop_at_eog = true;
    std::vector<std::string> stop;
    SamplerParams sampling;
};

class Catalog {
  public:
    // Opens every file (once each, however often it is named) and builds every variant's plan; a bad file,
    // a bad spec or a name used twice throws with a message naming it.
    Catalog(const std::vector<ModelSource>& sources, const CatalogOptions& opts);

    // The model the request names (404 for an unknown one), its plan (a layer_spec is parsed as the CLI does:
    // 400 with the parser's message), its prompt rendered and tokenized (400 when it does not leave room for
    // one generated token in the context).
    PreparedRequest prepare(const GenerationRequest& r) const;

    const std::vector<ServedModel>& models() const { return served_; }
    int n_ctx() const;  // the context each request has
    const ModelRegistry& registry() const { return registry_; }
    // A per-request layer spec may run at most this many steps (its KV cache grows with them).
    static constexpr int kMaxStepsPerLayer = 4;

  private:
    struct File {
        std::shared_ptr<const Model> model;
        std::optional<ChatTemplate> chat_template;
        std::string template_error;  // why there is none
    };
    std::shared_ptr<Forward> forward_for(const std::shared_ptr<const Model>& model, Plan plan) const;
    std::vector<int32_t> chat_prompt(const GenerationRequest& r, const File& f,
                                     std::string& reply_prefix) const;
    std::vector<int32_t> completion_prompt(const GenerationRequest& r, const Model& m,
                                           std::string& reply_prefix) const;

    CatalogOptions opts_;
    ModelRegistry registry_;
    std::vector<ServedModel> served_;
    std::map<std::string, File> files_;  // by base model id
    // Every plan's Forward, by (model, layer list): the variants' live as long as the server; a per-request
    // plan's while some request uses it.
    mutable std::mutex mu_;
    mutable std::map<std::pair<const Model*, std::vector<int>>, std::weak_ptr<Forward>> forwards_;
};

}  // namespace strata::server
