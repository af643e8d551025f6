// The CUDA backend's C++ face: plain host types only (no CUDA headers), so core/ and the tests include it
// whether or not this build has CUDA. Without CUDA (cuda/none.cpp) `available()` says why and constructing
// an Engine throws that reason.
//
// The backend knows dtypes, tensors and a list of file layers per step, never a Model or a Plan: core/
// translates (core/engine/forward.cpp). Weights go to the GPU once per *file* tensor, shared by every step and every
// Engine in the process that uses them (a duplicated layer, or a draft plan over the same mapping, costs no
// extra GPU weight memory); each step owns its own KV slot.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/dtype.h"

namespace strata::cuda {

struct DeviceInfo {
    std::string name;
    int cc_major = 0, cc_minor = 0;
    int sm_count = 0;
    size_t mem_total = 0, mem_free = 0;
    size_t l2_bytes = 0;
};

// True when this build has the CUDA backend and a usable device; otherwise false and *why says why.
bool available(std::string* why = nullptr);
DeviceInfo device_info();

// A host view of one weight tensor as the file stores it: rows of row_bytes, cols elements each.
struct Tensor {
    const void* data = nullptr;  // null: the model has no such tensor
    DType dtype = DType::F32;
    int64_t rows = 0, cols = 0;
    size_t row_bytes = 0;
    explicit operator bool() const { return data != nullptr; }
};

struct LayerDesc {
    Tensor attn_norm, wq, wk, wv, wo, bq, bk, bv, q_norm, k_norm, post_attn_norm;
    Tensor ffn_norm, w_gate, w_up, w_down, post_ffn_norm;
    float rope_theta = 10000.f, rope_freq_scale = 1.f;
    bool sliding = false;  // sliding-window attention (window = ModelDesc::sliding_window)
};

struct ModelDesc {
    int dim = 0, hidden_dim = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0, vocab_size = 0, rope_dim = 0;
    float rms_eps = 1e-5f;
    bool rope_neox = false;
    int sliding_window = 0;
    float attn_scale = 0.f;  // 0: 1/sqrt(head_dim)
    bool ffn_gelu = false;
    std::vector<float> rope_factors;  // (rope_dim/2) Llama 3 frequency factors, or empty
    std::vector<LayerDesc> layers;    // per file layer
    Tensor output_norm, output;
};

struct EngineOptions {
    int n_ctx = 0;
    int max_batch = 1;
    bool with_output = true;   // the final norm and the logits run on the GPU (all steps offloaded)
    bool use_graph = true;     // capture single-token decode into a CUDA graph
};

class Engine {
public:
    // step_layers[i]: the file layer run by step i. Uploads (or reuses) the weights those layers need.
    Engine(const ModelDesc& m, const std::vector<int>& step_layers, const EngineOptions& o);
    ~Engine();
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    // Runs every step over B tokens at positions pos.. whose embeddings x (B, dim) are on the host.
    // With with_output: returns the logits of the last n_out tokens (n_out, vocab) in pinned host memory,
    // valid until the next call. Without: writes the residual stream after the last step to x_out (B, dim)
    // and returns nullptr.
    const float* eval(const float* x, int B, int pos, int n_out, float* x_out);

    size_t weight_bytes() const;  // GPU bytes of the weights this engine uses, each file tensor once
    size_t kv_bytes() const;
    int n_steps() const;
    // Device address of a step's packed attention query weights (tests: repeated layers share them).
    const void* step_weight_address(int step) const;

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

// GPU memory bandwidth as a device-to-device copy moves it (bytes read + written per second), measured now.
double measure_copy_bandwidth(size_t bytes = size_t{1} << 30, int reps = 10);

// ---- single kernels on host data, for the tests against the CPU reference (kernels/generic) ----------
namespace check {
// y (B, rows) = W (rows, cols; GGUF bytes of dtype) . x (B, cols), activations quantized on the GPU as the
// CPU quantizes them (the dtype's vec_dot_type).
//   rows_per_warp (1, 2 or 4; one token only) picks the decode kernel's row grouping.
void matmul(const Tensor& w, const float* x, int B, float* y, int rows_per_warp = 1);
// Several matrices of one quantized type over the same activations in one launch (Q, K and V).
void matmul_multi(const std::vector<Tensor>& ws, const float* x, int B, const std::vector<float*>& ys,
                  int rows_per_warp = 1);
// y = act(gate . x) * (up . x) for one token in one launch; with q, d, s given (Q8_0/Q8_1 activations of
// a next matmul's type `next`), the launch also quantizes y into them (gate rows a multiple of 32).
void glu_matmul(const Tensor& gate, const Tensor& up, const float* x, bool gelu, float* y, DType next = DType::F32,
                int8_t* q = nullptr, float* d = nullptr, float* s = nullptr);
// The int8 activation blocks the GPU makes from x (n floats) for weights of type wtype: q (n), d and s (n/32).
void quantize(DType wtype, const float* x, int n, int8_t* q, float* d, float* s);
void rmsnorm(const float* x, const float* w, int B, int n, float eps, float* out);
// x += post ? rmsnorm(y) * post : y; out = rmsnorm(x) * w.   x updated in place.
void residual_rmsnorm(float* x, const float* y, const float* post, const float* w, int B, int n, float eps,
                      float* out);
void rope(float* x, int B, int n_heads, int head_dim, int rot_dim, int pos, float theta, float freq_scale,
          const float* factors, bool neox);
// q (B, n_heads*hd) at positions pos..pos+B-1 against k, v caches (pos+B, n_kv_heads*hd); causal, window.
//   with qq/qd/qs given (and n_split > 1), the combine step also quantizes out for weights of type `next`.
void attention(const float* q, const float* k, const float* v, int B, int pos, int n_heads, int n_kv_heads,
               int head_dim, int window, float scale, int n_split, float* out, DType next = DType::F32,
               int8_t* qq = nullptr, float* qd = nullptr, float* qs = nullptr);
void glu(float* a, const float* b, int64_t n, bool gelu);
}  // namespace check

}  // namespace strata::cuda
