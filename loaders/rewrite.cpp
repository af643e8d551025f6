#include "loaders/rewrite.h"

#include <cstring>
#include <stdexcept>

namespace strata {

void rewrite_layers(GGUFWriter& w, const ModelFile& src, const std::vector<int>& layers) {
    const std::string arch(src.meta.get_string("general.architecture"));
    const int64_t n_src = src.meta.get_int(arch + ".block_count");
    for (int l : layers)
        if (l < 0 || l >= n_src) throw std::invalid_argument("rewrite: layer " + std::to_string(l) + " is outside the model");
    w.copy_metadata(src.meta, [&](const std::string& key) {
        // Per-layer arrays (one entry per file layer) are re-ordered below rather than copied.
        const MetaValue* v = src.meta.find(key);
        return !(v->type == GGUFType::ARRAY && v->elem_type != GGUFType::STRING &&
                 static_cast<int64_t>(v->count) == n_src && key.rfind(arch + ".", 0) == 0);
    });
    w.add_u32(arch + ".block_count", static_cast<uint32_t>(layers.size()));
    for (const std::string& key : src.meta.keys()) {
        const MetaValue* v = src.meta.find(key);
        if (!(v->type == GGUFType::ARRAY && v->elem_type != GGUFType::STRING &&
              static_cast<int64_t>(v->count) == n_src && key.rfind(arch + ".", 0) == 0))
            continue;
        const size_t es = gguf_scalar_size(v->elem_type);
        std::string bytes;
        for (int l : layers) bytes.append(reinterpret_cast<const char*>(v->raw) + l * es, es);
        MetaValue nv = *v;
        nv.count = layers.size();
        nv.raw = reinterpret_cast<const uint8_t*>(bytes.data());
        w.add_value(key, nv);  // encoded (copied) now, so `bytes` may go
    }
    for (const WeightView& t : src.tensors) {
        if (t.name.rfind("blk.", 0) == 0) continue;
        w.add_tensor(t.name, t.dtype, std::vector<int64_t>(t.ne, t.ne + t.n_dims), t.data, t.nbytes);
    }
    for (size_t i = 0; i < layers.size(); ++i) {
        const std::string from = "blk." + std::to_string(layers[i]) + ".";
        const std::string to = "blk." + std::to_string(i) + ".";
        for (const WeightView& t : src.tensors) {
            if (t.name.rfind(from, 0) != 0) continue;
            w.add_tensor(to + t.name.substr(from.size()), t.dtype, std::vector<int64_t>(t.ne, t.ne + t.n_dims),
                         t.data, t.nbytes);
        }
    }
}

}  // namespace strata
