#include "core/engine/model.h"

#include <sys/mman.h>
#include <tbb/parallel_for.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "core/text/tokenizer.h"
#include "kernels/kernels.h"
#include "loaders/rewrite.h"

namespace strata {

const char* arch_name(Arch a) {
    switch (a) {
        case Arch::Llama: return "llama";
        case Arch::Qwen2: return "qwen2";
        case Arch::Qwen3: return "qwen3";
        case Arch::Gemma3: return "gemma3";
    }
    return "?";
}

std::vector<const WeightView*> LayerWeights::all() const {
    std::vector<const WeightView*> v;
    for (const WeightView* w : {attn_norm, wq, wk, wv, wo, bq, bk, bv, q_norm, k_norm, post_attn_norm, ffn_norm,
                                w_gate, w_up, w_down, post_ffn_norm})
        if (w) v.push_back(w);
    return v;
}

namespace {

int checked_int(const Metadata& m, const std::string& key, int64_t lo, int64_t hi) {
    const int64_t v = m.get_int(key);
    if (v < lo || v > hi)
        throw std::runtime_error("metadata key '" + key + "' = " + std::to_string(v) + " is out of range [" +
                                 std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return static_cast<int>(v);
}

}  // namespace

ModelConfig config_from_metadata(const Metadata& m) {
    ModelConfig c;
    c.arch_name = std::string(m.get_string("general.architecture"));
    if (c.arch_name == "llama") c.arch = Arch::Llama;
    else if (c.arch_name == "qwen2") c.arch = Arch::Qwen2;
    else if (c.arch_name == "qwen3") c.arch = Arch::Qwen3;
    else if (c.arch_name == "gemma3") c.arch = Arch::Gemma3;
    else
        throw std::runtime_error("unsupported architecture '" + c.arch_name +
                                 "' (strata runs: llama, qwen2, qwen3, gemma3)");
    if (auto n = m.find_string("general.name")) c.name = std::string(*n);
    const std::string a = c.arch_name + ".";
    constexpr int64_t kBig = 1 << 20;
    c.n_layers = checked_int(m, a + "block_count", 1, 4096);
    c.dim = checked_int(m, a + "embedding_length", 1, kBig);
    c.hidden_dim = checked_int(m, a + "feed_forward_length", 1, 16 * kBig);
    c.n_heads = checked_int(m, a + "attention.head_count", 1, 4096);
    c.n_kv_heads = m.has(a + "attention.head_count_kv") ? checked_int(m, a + "attention.head_count_kv", 1, 4096)
                                                         : c.n_heads;
    if (c.n_heads % c.n_kv_heads != 0)
        throw std::runtime_error("attention.head_count " + std::to_string(c.n_heads) +
                                 " is not a multiple of head_count_kv " + std::to_string(c.n_kv_heads));
    if (m.has(a + "attention.key_length")) {
        c.head_dim = checked_int(m, a + "attention.key_length", 2, 4096);
        if (m.has(a + "attention.value_length") && m.get_int(a + "attention.value_length") != c.head_dim)
            throw std::runtime_error("attention.value_length differs from key_length: not supported");
    } else {
        if (c.dim % c.n_heads != 0)
            throw std::runtime_error("embedding_length is not a multiple of attention.head_count");
        c.head_dim = c.dim / c.n_heads;
    }
    c.n_ctx_train = m.has(a + "context_length") ? checked_int(m, a + "context_length", 1, 1 << 24) : 2048;
    c.rms_eps = static_cast<float>(m.find_float(a + "attention.layer_norm_rms_epsilon").value_or(1e-5));
    c.rope_theta = static_cast<float>(m.find_float(a + "rope.freq_base").value_or(10000.0));
    c.rope_dim = m.has(a + "rope.dimension_count") ? checked_int(m, a + "rope.dimension_count", 2, c.head_dim)
                                                   : c.head_dim;
    if (c.rope_dim % 2 != 0) throw std::runtime_error("rope.dimension_count must be even");
    if (auto type = m.find_string(a + "rope.scaling.type")) {
        if (*type == "linear") {
            const double f = m.get_float(a + "rope.scaling.factor");
            if (!(f > 0)) throw std::runtime_error("rope.scaling.factor must be positive");
            c.rope_freq_scale = static_cast<float>(1.0 / f);
        } else if (*type != "none") {
            throw std::runtime_error("RoPE scaling type '" + std::string(*type) +
                                     "' is not supported (strata supports none and linear)");
        }
    } else if (auto f = m.find_float(a + "rope.scale_linear")) {
        c.rope_freq_scale = static_cast<float>(1.0 / *f);
    }
    c.rope_neox = c.arch != Arch::Llama;  // llama GGUFs are converted for adjacent-pair rotation
    c.rope_theta_local = c.rope_theta;
    if (c.arch == Arch::Gemma3) {
        c.sliding_window = m.has(a + "attention.sliding_window") ? checked_int(m, a + "attention.sliding_window", 1, 1 << 24) : 512;
        c.rope_theta_local = 10000.f;  // llama.cpp's fixed base for Gemma 3's sliding-window layers
        c.embed_scale = std::sqrt(static_cast<float>(c.dim));
        c.ffn_gelu = true;
    }
    if (auto v = m.find_int(a + "vocab_size")) c.vocab_size = static_cast<int>(*v);
    else if (m.has("tokenizer.ggml.tokens")) c.vocab_size = static_cast<int>(m.get_string_array("tokenizer.ggml.tokens").size());
    return c;
}

void rewrite_model_layers(GGUFWriter& w, const Model& m, const std::vector<int>& layers) {
    rewrite_layers(w, m.file(), layers);
    if (m.config().sliding_window > 0) {
        std::vector<bool> sliding;
        for (int l : layers) sliding.push_back(m.weights().layers.at(static_cast<size_t>(l)).kind == LayerKind::SlidingWindow);
        w.add_bool_array(layer_kind_key(m.config()), sliding);
    }
}

std::string layer_kind_key(const ModelConfig& c) { return c.arch_name + ".attention.sliding_window_pattern"; }

namespace {

class Binder {
public:
    explicit Binder(const ModelFile& f) : f_(f) {}

    const WeightView* get(const std::string& name, std::initializer_list<int64_t> shape, bool matmul,
                          bool optional = false) {
        const WeightView* w = f_.find_tensor(name);
        if (!w) {
            if (optional) return nullptr;
            throw std::runtime_error(f_.path + ": tensor '" + name + "' is missing");
        }
        std::string expected = "[";
        bool ok = static_cast<size_t>(w->n_dims) == shape.size() ||
                  (shape.size() == 1 && w->rows() == 1);  // a (n) vector may be stored as (n, 1)
        int d = 0;
        for (int64_t s : shape) {
            expected += (d ? ", " : "") + std::to_string(s);
            if (w->ne[d] != s) ok = false;
            ++d;
        }
        expected += "]";
        if (!ok)
            throw std::runtime_error(f_.path + ": tensor '" + name + "' has shape " + w->shape_string() +
                                     ", expected " + expected);
        const DTypeTraits& tr = dtype_traits(w->dtype);
        if (matmul ? !tr.supported : w->dtype != DType::F32)
            throw std::runtime_error(f_.path + ": tensor '" + name + "' has type " + dtype_name(w->dtype) +
                                     (matmul ? ", which strata cannot compute with (supported: F32 F16 BF16 Q4_0 "
                                               "Q4_1 Q5_0 Q5_1 Q8_0 Q4_K Q5_K Q6_K)"
                                             : ", expected F32"));
        return w;
    }

private:
    const ModelFile& f_;
};

}  // namespace

ModelWeights bind_weights(const ModelFile& file, const ModelConfig& c) {
    Binder b(file);
    ModelWeights w;
    const int64_t dim = c.dim, q_dim = c.q_dim(), kv_dim = c.kv_dim(), hid = c.hidden_dim;
    if (c.vocab_size <= 0) throw std::runtime_error(file.path + ": the vocabulary size is unknown");
    w.tok_embd = b.get("token_embd.weight", {dim, c.vocab_size}, true);
    w.output_norm = b.get("output_norm.weight", {dim}, false);
    w.output = b.get("output.weight", {dim, c.vocab_size}, true, /*optional=*/true);
    if (!w.output) w.output = w.tok_embd;  // tied classifier
    w.rope_freqs = b.get("rope_freqs.weight", {c.rope_dim / 2}, false, true);
    // Layer kinds: from the per-layer metadata array when the file has one (rewritten files do), else the
    // architecture's rule (Gemma 3: every 6th layer global, the rest sliding-window).
    std::vector<bool> sliding(static_cast<size_t>(c.n_layers), false);
    if (c.sliding_window > 0) {
        if (const MetaValue* v = file.meta.find(layer_kind_key(c)); v && v->type == GGUFType::ARRAY) {
            const std::vector<int64_t> flags = file.meta.get_int_array(layer_kind_key(c));
            if (flags.size() != sliding.size())
                throw std::runtime_error(file.path + ": '" + layer_kind_key(c) + "' has " + std::to_string(flags.size()) +
                                         " entries for " + std::to_string(c.n_layers) + " layers");
            for (size_t l = 0; l < flags.size(); ++l) sliding[l] = flags[l] != 0;
        } else {
            const int pattern = static_cast<int>(file.meta.find_int(layer_kind_key(c)).value_or(6));
            if (pattern <= 0) throw std::runtime_error(file.path + ": invalid sliding-window pattern");
            for (int l = 0; l < c.n_layers; ++l) sliding[static_cast<size_t>(l)] = l % pattern < pattern - 1;
        }
    }
    w.layers.resize(static_cast<size_t>(c.n_layers));
    for (int l = 0; l < c.n_layers; ++l) {
        LayerWeights& L = w.layers[static_cast<size_t>(l)];
        const std::string p = "blk." + std::to_string(l) + ".";
        L.file_layer = l;
        L.kind = sliding[static_cast<size_t>(l)] ? LayerKind::SlidingWindow : LayerKind::Global;
        L.rope_theta = L.kind == LayerKind::SlidingWindow ? c.rope_theta_local : c.rope_theta;
        L.rope_freq_scale = L.kind == LayerKind::SlidingWindow ? 1.0f : c.rope_freq_scale;
        L.attn_norm = b.get(p + "attn_norm.weight", {dim}, false);
        L.wq = b.get(p + "attn_q.weight", {dim, q_dim}, true);
        L.wk = b.get(p + "attn_k.weight", {dim, kv_dim}, true);
        L.wv = b.get(p + "attn_v.weight", {dim, kv_dim}, true);
        L.wo = b.get(p + "attn_output.weight", {q_dim, dim}, true);
        L.bq = b.get(p + "attn_q.bias", {q_dim}, false, true);
        L.bk = b.get(p + "attn_k.bias", {kv_dim}, false, true);
        L.bv = b.get(p + "attn_v.bias", {kv_dim}, false, true);
        const bool qk_norm = c.arch == Arch::Qwen3 || c.arch == Arch::Gemma3;
        L.q_norm = b.get(p + "attn_q_norm.weight", {c.head_dim}, false, !qk_norm);
        L.k_norm = b.get(p + "attn_k_norm.weight", {c.head_dim}, false, !qk_norm);
        const bool gemma = c.arch == Arch::Gemma3;
        L.post_attn_norm = b.get(p + "post_attention_norm.weight", {dim}, false, !gemma);
        L.ffn_norm = b.get(p + "ffn_norm.weight", {dim}, false);
        L.w_gate = b.get(p + "ffn_gate.weight", {dim, hid}, true);
        L.w_up = b.get(p + "ffn_up.weight", {dim, hid}, true);
        L.w_down = b.get(p + "ffn_down.weight", {hid, dim}, true);
        L.post_ffn_norm = b.get(p + "post_ffw_norm.weight", {dim}, false, !gemma);
    }
    return w;
}

std::shared_ptr<const Model> Model::load(const std::string& path, const LoadOptions& opts) {
    return from_file(load_model_file(path, opts.tokenizer_path));
}

Tokenizer load_tokenizer(const std::string& path, const LoadOptions& opts) {
    return Tokenizer::from_metadata(load_model_file(path, opts.tokenizer_path).meta);
}

std::shared_ptr<const Model> Model::from_file(ModelFile file) {
    auto m = std::make_shared<Model>();
    m->file_ = std::move(file);
    m->config_ = config_from_metadata(m->file_.meta);
    if (m->config_.vocab_size <= 0) {  // no vocab_size key and no token list: take the embedding's rows
        if (const WeightView* e = m->file_.find_tensor("token_embd.weight"))
            m->config_.vocab_size = static_cast<int>(std::min<int64_t>(e->rows(), 1 << 24));
    }
    m->weights_ = bind_weights(m->file_, m->config_);
    m->pack_weights();
    m->tokenizer_ = std::make_shared<const Tokenizer>(Tokenizer::from_metadata(m->file_.meta));
    if (m->tokenizer_->n_vocab() != m->config_.vocab_size)
        throw std::runtime_error(m->file_.path + ": tokenizer has " + std::to_string(m->tokenizer_->n_vocab()) +
                                 " tokens but the embedding has " + std::to_string(m->config_.vocab_size) + " rows");
    return m;
}

// Packs every matrix the forward pass multiplies by (each file tensor once, so repeated plan steps share it),
// where the kernel table has a packed layout for its type. The file pages a packed tensor came from are handed
// back to the kernel (they are read again only if something asks, e.g. the embedding rows of a tied output),
// so packing does not double the resident memory. STRATA_NO_PACK=1 turns packing off.
void Model::pack_weights() {
    const KernelTable& K = kernels();
    if (K.pack_rows <= 0) return;
    if (const char* e = std::getenv("STRATA_NO_PACK"); e && std::string(e) == "1") return;
    std::vector<const WeightView*> todo;
    auto want = [&](const WeightView* w) {
        if (!w || !K.repack[static_cast<int>(w->dtype)]) return;
        if (w->rows() % K.pack_rows != 0) return;
        if (std::find(todo.begin(), todo.end(), w) != todo.end()) return;
        todo.push_back(w);
    };
    want(weights_.output);
    for (const LayerWeights& L : weights_.layers)
        for (const WeightView* w : {L.wq, L.wk, L.wv, L.wo, L.w_gate, L.w_up, L.w_down}) want(w);
    std::vector<void*> bufs(todo.size());
    for (size_t i = 0; i < todo.size(); ++i) {
        const size_t bytes = (K.packed_size(todo[i]->dtype, todo[i]->rows(), todo[i]->cols()) + 63) / 64 * 64;
        bufs[i] = std::aligned_alloc(64, bytes);
        if (!bufs[i]) throw std::bad_alloc();
        packed_store_.emplace_back(bufs[i]);
        packed_bytes_ += bytes;
    }
    const long page = sysconf(_SC_PAGESIZE);
    auto release = [&](const WeightView* w) {  // the file pages just packed: not needed in memory any more
        for (const auto& map : file_.mappings) {
            if (!map->is_mmap() || w->data < map->data() || w->data + w->nbytes > map->data() + map->size()) continue;
            const uintptr_t a = (reinterpret_cast<uintptr_t>(w->data) + page - 1) / page * page;
            const uintptr_t b = (reinterpret_cast<uintptr_t>(w->data) + w->nbytes) / page * page;
            if (b > a) madvise(reinterpret_cast<void*>(a), b - a, MADV_DONTNEED);
        }
    };
    tbb::parallel_for(size_t{0}, todo.size(), [&](size_t i) {
        const WeightView* w = todo[i];
        K.repack[static_cast<int>(w->dtype)](w->data, w->row_bytes, w->rows(), w->cols(), bufs[i]);
        release(w);
    });
    for (size_t i = 0; i < todo.size(); ++i) packed_[todo[i]] = bufs[i];
}

int64_t Model::n_params_global() const {
    int64_t n = weights_.tok_embd->elements() + weights_.output_norm->elements();
    if (weights_.output != weights_.tok_embd) n += weights_.output->elements();
    return n;
}
int64_t Model::n_params_layer(int l) const {
    int64_t n = 0;
    for (const WeightView* w : weights_.layers.at(static_cast<size_t>(l)).all()) n += w->elements();
    return n;
}
size_t Model::weight_bytes_global() const {
    size_t n = weights_.tok_embd->nbytes + weights_.output_norm->nbytes;
    if (weights_.output != weights_.tok_embd) n += weights_.output->nbytes;
    if (weights_.rope_freqs) n += weights_.rope_freqs->nbytes;
    return n;
}
size_t Model::weight_bytes_layer(int l) const {
    size_t n = 0;
    for (const WeightView* w : weights_.layers.at(static_cast<size_t>(l)).all()) n += w->nbytes;
    return n;
}

}  // namespace strata
