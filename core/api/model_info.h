// What a front end shows about a loaded model: its file, architecture, dimensions, parameter count and chat
// template. The C API writes it as JSON (strata_model_info_json), the Python module as a dict (Model.info).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/engine/model.h"

namespace strata {

struct ModelInfo {
    std::string path, format, arch, name;
    int n_layers = 0, dim = 0, hidden_dim = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0;
    int vocab_size = 0, n_ctx_train = 0, sliding_window = 0;
    int64_t n_params = 0;  // every file layer once, plus embeddings, final norm and output
    size_t file_bytes = 0;
    std::string chat_template;  // the recognised template's name; "" when the model has none strata knows
};

ModelInfo model_info(const Model& m);

}  // namespace strata
