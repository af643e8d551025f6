#include "core/api/model_info.h"

#include <exception>

#include "core/text/chat_template.h"

namespace strata {

ModelInfo model_info(const Model& m) {
    const ModelConfig& c = m.config();
    ModelInfo i;
    i.path = m.file().path;
    i.format = m.file().format;
    i.arch = c.arch_name;
    i.name = c.name;
    i.n_layers = c.n_layers;
    i.dim = c.dim;
    i.hidden_dim = c.hidden_dim;
    i.n_heads = c.n_heads;
    i.n_kv_heads = c.n_kv_heads;
    i.head_dim = c.head_dim;
    i.vocab_size = c.vocab_size;
    i.n_ctx_train = c.n_ctx_train;
    i.sliding_window = c.sliding_window;
    i.n_params = m.n_params_global();
    for (int l = 0; l < c.n_layers; ++l) i.n_params += m.n_params_layer(l);
    i.file_bytes = m.file().file_bytes;
    try {
        i.chat_template = ChatTemplate::for_model(m.file().meta, m.tokenizer()).name();
    } catch (
        const std::exception&) {  // none, or one strata does not recognise: a front end then asks for one
    }
    return i;
}

}  // namespace strata
