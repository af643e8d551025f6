// A loaded model: its file (mapping + views), hyperparameters, the weight views bound per file layer, and
// its tokenizer. Immutable after load; sessions and plans only point into it.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "loaders/model_file.h"

namespace strata {

class Tokenizer;

enum class Arch { Llama, Qwen2, Qwen3, Gemma3 };
const char* arch_name(Arch a);

// The kind of a file layer. It travels with the layer wherever a plan puts it (DESIGN.md rule 3).
enum class LayerKind { Global, SlidingWindow };

struct ModelConfig {
    Arch arch = Arch::Llama;
    std::string arch_name;  // general.architecture
    std::string name;       // general.name
    int dim = 0;            // embedding width
    int hidden_dim = 0;     // FFN width
    int n_layers = 0;       // file layers
    int n_heads = 0;
    int n_kv_heads = 0;
    int head_dim = 0;       // per head, for q and k (and v)
    int vocab_size = 0;
    int n_ctx_train = 0;
    float rms_eps = 1e-5f;
    int rope_dim = 0;            // rotated dims per head
    float rope_theta = 10000.f;  // base of global layers
    float rope_freq_scale = 1.f; // linear scaling: 1 / factor
    bool rope_neox = false;      // pair (i, i+d/2) instead of (2i, 2i+1)
    float rope_theta_local = 10000.f;  // sliding-window layers (Gemma 3)
    int sliding_window = 0;      // 0: none
    float attn_scale = 0.f;      // 0: 1/sqrt(head_dim)
    bool ffn_gelu = false;       // gated FFN activation: GELU-tanh (Gemma) instead of SiLU
    float embed_scale = 1.f;     // Gemma: sqrt(dim)

    int q_dim() const { return n_heads * head_dim; }
    int kv_dim() const { return n_kv_heads * head_dim; }
};

// Non-owning views of one file layer's tensors. Optional tensors are null when the file lacks them.
struct LayerWeights {
    int file_layer = 0;
    LayerKind kind = LayerKind::Global;
    float rope_theta = 10000.f;  // this layer's RoPE base (global or sliding-window)
    float rope_freq_scale = 1.f; // this layer's linear RoPE scaling

    const WeightView* attn_norm = nullptr;  // (dim)
    const WeightView* wq = nullptr;         // (q_dim, dim)    rows x cols
    const WeightView* wk = nullptr;         // (kv_dim, dim)
    const WeightView* wv = nullptr;         // (kv_dim, dim)
    const WeightView* wo = nullptr;         // (dim, q_dim)
    const WeightView* bq = nullptr;         // (q_dim)   Qwen2 biases
    const WeightView* bk = nullptr;         // (kv_dim)
    const WeightView* bv = nullptr;         // (kv_dim)
    const WeightView* q_norm = nullptr;     // (head_dim) Qwen3 / Gemma 3
    const WeightView* k_norm = nullptr;     // (head_dim)
    const WeightView* post_attn_norm = nullptr;  // (dim) Gemma 3
    const WeightView* ffn_norm = nullptr;   // (dim)
    const WeightView* w_gate = nullptr;     // (hidden, dim)
    const WeightView* w_up = nullptr;       // (hidden, dim)
    const WeightView* w_down = nullptr;     // (dim, hidden)
    const WeightView* post_ffn_norm = nullptr;   // (dim) Gemma 3

    // Every view of this layer, for byte and parameter counts.
    std::vector<const WeightView*> all() const;
};

struct ModelWeights {
    const WeightView* tok_embd = nullptr;     // (vocab, dim)
    const WeightView* output_norm = nullptr;  // (dim)
    const WeightView* output = nullptr;       // (vocab, dim); == tok_embd when tied
    const WeightView* rope_freqs = nullptr;   // (rope_dim/2) Llama 3 frequency factors, optional
    std::vector<LayerWeights> layers;         // one per file layer
};

struct LoadOptions {
    std::string tokenizer_path;  // llama2.c checkpoints: their tokenizer.bin
};

// The tokenizer of a model file alone (no weights bound), so a vocabulary-only GGUF works too (llama.cpp's
// ggml-vocab-*.gguf): for strata tokenize.
Tokenizer load_tokenizer(const std::string& path, const LoadOptions& opts = {});

class Model {
public:
    static std::shared_ptr<const Model> load(const std::string& path, const LoadOptions& opts = {});
    // Binds an already-read file (tests build files in memory).
    static std::shared_ptr<const Model> from_file(ModelFile file);

    const ModelFile& file() const { return file_; }
    const ModelConfig& config() const { return config_; }
    const ModelWeights& weights() const { return weights_; }
    const Tokenizer& tokenizer() const { return *tokenizer_; }

    // The matrix in the kernel table's packed layout (KernelTable::repack), made once at load for the types
    // and shapes where the table has one; nullptr otherwise. Views still point at the file's bytes (rewrites,
    // the embedding lookup and `show` read those); only the forward pass's matmuls read the packed copy.
    const void* packed(const WeightView* w) const {
        auto it = packed_.find(w);
        return it == packed_.end() ? nullptr : it->second;
    }
    size_t packed_bytes() const { return packed_bytes_; }

    int64_t n_params_global() const;          // embeddings, final norm, output (once if tied)
    int64_t n_params_layer(int file_layer) const;
    size_t weight_bytes_global() const;
    size_t weight_bytes_layer(int file_layer) const;

private:
    ModelFile file_;
    ModelConfig config_;
    ModelWeights weights_;
    std::shared_ptr<const Tokenizer> tokenizer_;
    struct FreeDeleter {
        void operator()(void* p) const { std::free(p); }
    };
    std::vector<std::unique_ptr<void, FreeDeleter>> packed_store_;
    std::unordered_map<const WeightView*, const void*> packed_;
    size_t packed_bytes_ = 0;
    void pack_weights();
};

ModelConfig config_from_metadata(const Metadata& meta);
// A physically rewritten model: m's layers copied in the given order into w (tensor bytes referenced, so
// m must outlive w's write), each new layer's kind recorded per layer in the metadata.
class GGUFWriter;
void rewrite_model_layers(GGUFWriter& w, const Model& m, const std::vector<int>& layers);
// The metadata key that records each file layer's kind: a bool array, true = sliding-window. strata
// writes it into rewritten files and reads it when present; otherwise kinds follow the architecture's rule.
std::string layer_kind_key(const ModelConfig& c);
// Binds tensors by name, checking dtype support and shapes; a mismatch names the tensor, expected and actual.
ModelWeights bind_weights(const ModelFile& file, const ModelConfig& cfg);

}  // namespace strata
