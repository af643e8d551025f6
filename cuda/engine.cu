// The CUDA engine: weights uploaded once per file tensor (shared process-wide), the plan as a device-side
// table of steps (each step: its layer's weight pointers and its own KV slot), a forward pass that launches
// strata's kernels (cuda/kernels.cuh) over that table, and single-token decode captured in a CUDA graph.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cuda/backend.h"
#include "cuda/kernels.cuh"

namespace strata::cuda {

namespace {

void cuda_check(cudaError_t e, const char* what, int line) {
    if (e != cudaSuccess)
        throw std::runtime_error(std::string("CUDA error: ") + cudaGetErrorString(e) + " (" + what + ", engine.cu:" +
                                 std::to_string(line) + ")");
}
#define CK(x) cuda_check((x), #x, __LINE__)

void* dev_alloc(size_t bytes, const char* what) {
    void* p = nullptr;
    const cudaError_t e = cudaMalloc(&p, std::max<size_t>(bytes, 16));
    if (e != cudaSuccess) {
        size_t free_b = 0, total_b = 0;
        cudaGetLastError();
        cudaMemGetInfo(&free_b, &total_b);
        char msg[256];
        std::snprintf(msg, sizeof msg, "out of GPU memory: %s needs %.1f MiB, %.1f MiB free of %.1f MiB", what,
                      bytes / 1048576.0, free_b / 1048576.0, total_b / 1048576.0);
        throw std::runtime_error(msg);
    }
    return p;
}

// ---- device weights, shared by every engine in the process --------------------------------------------
struct DevTensor {
    DevMat m;             // device pointers, host-side copy
    void* mem = nullptr;  // one allocation holding every region
    size_t bytes = 0;
    ~DevTensor() {
        if (mem) cudaFree(mem);
    }
};

std::shared_ptr<DevTensor> upload(const Tensor& t) {
    auto d = std::make_shared<DevTensor>();
    d->m.dtype = static_cast<int>(t.dtype);
    d->m.rows = static_cast<int>(t.rows);
    d->m.cols = static_cast<int>(t.cols);
    if (t.dtype == DType::F32 || t.dtype == DType::F16 || t.dtype == DType::BF16) {
        d->bytes = static_cast<size_t>(t.rows) * t.row_bytes;
        d->mem = dev_alloc(d->bytes, "a weight tensor");
        CK(cudaMemcpy(d->mem, t.data, d->bytes, cudaMemcpyHostToDevice));
        d->m.f = d->mem;
        return d;
    }
    if (!packed_supported(t.dtype))
        throw std::runtime_error("the CUDA backend cannot multiply by " + dtype_name(t.dtype) + " weights");
    const PackedSizes sz = packed_sizes(t.dtype, t.rows, t.cols);
    auto align = [](size_t n) { return (n + 255) & ~size_t{255}; };
    const size_t o_qh = align(sz.qs), o_sc = o_qh + align(sz.qh), o_sb = o_sc + align(sz.sc);
    d->bytes = o_sb + align(sz.sb);
    std::vector<uint8_t> host(d->bytes);
    // Repack rows in parallel: a 4 GiB model is a few seconds single-threaded.
    const int nth = static_cast<int>(std::clamp<unsigned>(std::thread::hardware_concurrency(), 1u, 16u));
    const int64_t per = (t.rows + nth - 1) / nth;
    const PackedLayout L = packed_layout(t.dtype);
    std::vector<std::thread> th;
    for (int i = 0; i < nth; ++i) {
        const int64_t r0 = i * per, r1 = std::min<int64_t>(t.rows, r0 + per);
        if (r0 >= r1) break;
        th.emplace_back([&, r0, r1] {
            const size_t ch = static_cast<size_t>(r0) * (t.cols / 32);
            pack_rows(t.dtype, static_cast<const uint8_t*>(t.data) + static_cast<size_t>(r0) * t.row_bytes, t.row_bytes,
                      r1 - r0, t.cols, host.data() + ch * L.qs_bytes,
                      L.qh_bytes ? host.data() + o_qh + ch * L.qh_bytes : nullptr, host.data() + o_sc + ch * L.sc_bytes,
                      L.sb_bytes ? host.data() + o_sb + static_cast<size_t>(r0) * (t.cols / 256) * L.sb_bytes : nullptr);
        });
    }
    for (auto& x : th) x.join();
    d->mem = dev_alloc(d->bytes, "a weight tensor");
    CK(cudaMemcpy(d->mem, host.data(), d->bytes, cudaMemcpyHostToDevice));
    auto* base = static_cast<uint8_t*>(d->mem);
    d->m.qs = base;
    d->m.qh = L.qh_bytes ? base + o_qh : nullptr;
    d->m.sc = base + o_sc;
    d->m.sb = L.sb_bytes ? base + o_sb : nullptr;
    return d;
}

std::mutex g_cache_mutex;
std::map<std::pair<const void*, int>, std::weak_ptr<DevTensor>> g_cache;  // (host bytes, dtype) -> device copy

std::shared_ptr<DevTensor> device_tensor(const Tensor& t) {
    if (!t) return nullptr;
    std::lock_guard<std::mutex> lock(g_cache_mutex);
    auto key = std::make_pair(t.data, static_cast<int>(t.dtype));
    if (auto it = g_cache.find(key); it != g_cache.end())
        if (auto sp = it->second.lock()) return sp;
    auto sp = upload(t);
    g_cache[key] = sp;
    return sp;
}

bool is_float_type(int dt) {
    return dt == static_cast<int>(DType::F32) || dt == static_cast<int>(DType::F16) || dt == static_cast<int>(DType::BF16);
}

// ---- launching ----------------------------------------------------------------------------------------
// Kernels go out through cudaLaunchKernelEx with programmatic dependent launch on the engine's stream (so
// each kernel's launch overlaps the previous kernel's tail; every kernel waits for its inputs first). The
// tests' single launches (stream 0) and STRATA_CUDA_PDL=0 use plain launches.
bool pdl_enabled() {
    static const bool on = [] {
        const char* e = std::getenv("STRATA_CUDA_PDL");
        if (e && std::string(e) == "0") return false;
        int dev = 0, major = 0;
        if (cudaGetDevice(&dev) != cudaSuccess) return false;
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
        return major >= 9;
    }();
    return on;
}

template <typename... KArgs, typename... Args>
void launch(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t s, Args&&... args) {
    cudaLaunchConfig_t cfg{};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = s;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    if (s != nullptr && pdl_enabled()) {
        cfg.attrs = attr;
        cfg.numAttrs = 1;
    }
    CK(cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...));
}

template <int kType, int R, bool kGlu>
void launch_q_decode(const MatArgs& A, int total_rows, cudaStream_t s) {
    launch(matmul_q_kernel<kType, R, 1, kGlu>, dim3((total_rows + 8 * R - 1) / (8 * R)), dim3(256), 0, s, A);
}

template <int kType, bool kGlu>
void launch_matmul_q_t(const MatArgs& A, int total_rows, int R, cudaStream_t s) {
    if (A.B == 1) {
        if (R == 4) launch_q_decode<kType, 4, kGlu>(A, total_rows, s);
        else if (R == 2) launch_q_decode<kType, 2, kGlu>(A, total_rows, s);
        else launch_q_decode<kType, 1, kGlu>(A, total_rows, s);
    } else if (A.B <= 8) {
        launch(matmul_q_kernel<kType, 1, 8, kGlu>, dim3((total_rows + 7) / 8, 1), dim3(256), 0, s, A);
    } else {
        launch(matmul_q_kernel<kType, 1, 16, kGlu>, dim3((total_rows + 7) / 8, (A.B + 15) / 16), dim3(256), 0, s, A);
    }
}

// One launch over A's matrices (all of type dtype), total_rows rows in all, R rows per warp when B == 1.
template <bool kGlu>
void launch_matmul_q(int dtype, const MatArgs& A, int total_rows, int R, cudaStream_t s) {
    switch (static_cast<DType>(dtype)) {
#define STRATA_Q(T)                                                                   \
    case DType::T:                                                                    \
        launch_matmul_q_t<static_cast<int>(DType::T), kGlu>(A, total_rows, R, s); \
        break;
        STRATA_Q(Q4_0) STRATA_Q(Q4_1) STRATA_Q(Q5_0) STRATA_Q(Q5_1) STRATA_Q(Q8_0) STRATA_Q(Q4_K) STRATA_Q(Q5_K)
        STRATA_Q(Q6_K)
#undef STRATA_Q
        default: throw std::runtime_error("the CUDA backend cannot multiply by " + dtype_name(static_cast<DType>(dtype)));
    }
}

MatArgs single(const DevMat* W, const Act& a, int B, float* y) {
    MatArgs A{};
    A.w0 = W, A.y0 = y, A.nseg = 1, A.a = a, A.B = B, A.qmode = -1;
    return A;
}

template <int kType>
void launch_matmul_f_t(const DevMat* W, int rows, const float* x, int ldx, int B, float* y, int ldy, cudaStream_t s) {
    if (B == 1)
        launch(matmul_f_kernel<kType, 1>, dim3((rows + 7) / 8, 1), dim3(256), 0, s, W, x, ldx, B, y, ldy);
    else
        launch(matmul_f_kernel<kType, 8>, dim3((rows + 7) / 8, (B + 7) / 8), dim3(256), 0, s, W, x, ldx, B, y, ldy);
}

void launch_matmul_f(int dtype, const DevMat* W, int rows, const float* x, int ldx, int B, float* y, int ldy,
                     cudaStream_t s) {
    switch (static_cast<DType>(dtype)) {
        case DType::F32: launch_matmul_f_t<static_cast<int>(DType::F32)>(W, rows, x, ldx, B, y, ldy, s); break;
        case DType::F16: launch_matmul_f_t<static_cast<int>(DType::F16)>(W, rows, x, ldx, B, y, ldy, s); break;
        case DType::BF16: launch_matmul_f_t<static_cast<int>(DType::BF16)>(W, rows, x, ldx, B, y, ldy, s); break;
        default: throw std::runtime_error("not a float type");
    }
}

void launch_quantize(const float* x, int ld, int n, int B, ActMode mode, const Act& a, cudaStream_t s) {
    launch(quantize_kernel, dim3((n + 2047) / 2048, B), dim3(256), 0, s, x, ld, n, static_cast<int>(mode), a);
}

void launch_norm(float* x, const float* y, const float* post, const float* w, int n, float eps, int B, float* out_f,
                 int mode, const Act& a, cudaStream_t s) {
    launch(norm_kernel, dim3(B), dim3(256), static_cast<size_t>(n) * sizeof(float), s, x, y, post, w, n, eps, out_f,
           mode, a);
}

// qmode >= 0: the combine step also quantizes the output into qa (only when it runs: n_split > 1).
void launch_attention(const float* q, const float* kc, const float* vc, const int* d_pos, const AttnArgs& A, int B,
                      float* out, float* part, int qmode, const Act& qa, cudaStream_t s) {
    const dim3 grid(A.n_heads, B, A.n_split);
    const int npl = (A.head_dim + 31) / 32;
    switch (npl) {
        case 1: launch(attention_kernel<1>, grid, dim3(128), 0, s, q, kc, vc, d_pos, A, out, part); break;
        case 2: launch(attention_kernel<2>, grid, dim3(128), 0, s, q, kc, vc, d_pos, A, out, part); break;
        case 3: launch(attention_kernel<3>, grid, dim3(128), 0, s, q, kc, vc, d_pos, A, out, part); break;
        case 4: launch(attention_kernel<4>, grid, dim3(128), 0, s, q, kc, vc, d_pos, A, out, part); break;
        case 5:
        case 6: launch(attention_kernel<6>, grid, dim3(128), 0, s, q, kc, vc, d_pos, A, out, part); break;
        case 7:
        case 8: launch(attention_kernel<8>, grid, dim3(128), 0, s, q, kc, vc, d_pos, A, out, part); break;
        default: throw std::runtime_error("the CUDA backend supports head dims up to 256");
    }
    if (A.n_split > 1)
        launch(attention_combine_kernel, dim3(A.n_heads, B), dim3(128), 0, s, part, A, out, qmode, qa);
}

int g_sm_count = 0;
int sm_count() {
    if (g_sm_count == 0) {
        int dev = 0;
        CK(cudaGetDevice(&dev));
        CK(cudaDeviceGetAttribute(&g_sm_count, cudaDevAttrMultiProcessorCount, dev));
    }
    return g_sm_count;
}

// KV splits per (token, head): enough blocks to fill the GPU twice over when few tokens attend.
int attention_splits(int B, int n_heads) {
    const int sms = sm_count();
    if (B * n_heads >= sms) return 1;
    return std::clamp((2 * sms + B * n_heads - 1) / (B * n_heads), 1, 32);
}

template <typename T>
struct DevBuf {
    T* p = nullptr;
    size_t n = 0;
    void alloc(size_t count, const char* what) {
        n = count;
        p = static_cast<T*>(dev_alloc(count * sizeof(T), what));
    }
    ~DevBuf() {
        if (p) cudaFree(p);
    }
};

}  // namespace

// ---- the engine ---------------------------------------------------------------------------------------

// One step of the plan as the GPU sees it: the weights of its file layer, its own K/V slot.
struct DevStep {
    DevMat wq, wk, wv, wo, w_gate, w_up, w_down;
    const float *attn_norm, *ffn_norm, *post_attn_norm, *post_ffn_norm, *q_norm, *k_norm, *bq, *bk, *bv;
    float *k_cache, *v_cache;
    float rope_theta_scale, rope_freq_scale;
    int window;
};

struct Engine::Impl {
    ModelDesc m;
    EngineOptions o;
    int n_steps = 0;
    std::vector<std::shared_ptr<DevTensor>> held;  // every tensor this engine uses (cache-shared)
    std::vector<DevStep> h_steps;                  // host mirror of the device table
    DevBuf<DevStep> d_steps;                       // the plan, device-side: kernels read their weights here
    DevBuf<DevMat> d_out;                          // output matrix descriptor
    DevMat h_out{};
    const float* d_out_norm = nullptr;
    const float* d_factors = nullptr;
    std::shared_ptr<DevTensor> factors_t;
    DevBuf<float> kv;  // (n_steps, 2, n_ctx, kv_dim)
    size_t kv_bytes = 0;
    int max_cols = 0;

    // activations
    DevBuf<float> x, xb, xo, q, k, v, att, hb, hb2, logits, part;
    DevBuf<int8_t> aq;
    DevBuf<float> ad, as;
    DevBuf<int> d_pos;
    float* h_x = nullptr;       // pinned (max_batch, dim)
    float* h_logits = nullptr;  // pinned (max_batch, vocab)
    int* h_pos = nullptr;       // pinned
    cudaStream_t stream = nullptr;
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t graph_exec = nullptr;

    Act act_for(int n) const { return Act{aq.p, ad.p, as.p, n}; }

    // What the quantized-activation buffer holds now (host-side bookkeeping while enqueueing): the float
    // rows it was made from and the mode, so consecutive matmuls over the same input quantize it once.
    const float* act_src = nullptr;
    int act_mode_cur = -1, act_cols = 0;
    void wrote(const float* p) {
        if (p == act_src) act_src = nullptr;
    }
    static int mode_of(const DevMat& w) {
        return is_float_type(w.dtype) ? -1 : static_cast<int>(act_mode(static_cast<DType>(w.dtype)));
    }
    // Makes sure the activation buffer holds xin quantized for weights like hw.
    void ensure_act(const DevMat& hw, const float* xin, int B) {
        const int mode = mode_of(hw);
        if (act_src == xin && act_mode_cur == mode && act_cols == hw.cols) return;
        launch_quantize(xin, hw.cols, hw.cols, B, static_cast<ActMode>(mode), act_for(hw.cols), stream);
        act_src = xin, act_mode_cur = mode, act_cols = hw.cols;
    }
    // Rows per warp for a single-token launch over total_rows: as many as still give two blocks per SM.
    static int rows_per_warp(int total_rows, std::initializer_list<int> seg_rows) {
        for (int R : {4, 2}) {
            bool ok = total_rows / (8 * R) >= 2 * sm_count();
            for (int r : seg_rows) ok = ok && r % R == 0;
            if (ok) return R;
        }
        return 1;
    }
    // y (B, rows) = W . x (x as floats; quantized here unless the buffer already holds it).
    void matmul(const DevMat& hw, const DevMat* dw, const float* xin, int B, float* y) {
        if (is_float_type(hw.dtype)) {
            launch_matmul_f(hw.dtype, dw, hw.rows, xin, hw.cols, B, y, hw.rows, stream);
        } else {
            ensure_act(hw, xin, B);
            launch_matmul_q<false>(hw.dtype, single(dw, act_for(hw.cols), B, y), hw.rows,
                                   rows_per_warp(hw.rows, {hw.rows}), stream);
        }
        wrote(y);
    }
    // q, k, v = Wq.x, Wk.x, Wv.x: one launch when the three share a quantized type.
    void matmul_qkv(const DevStep& S, const DevStep* D, const float* xin, int B, float* yq, float* yk, float* yv) {
        if (is_float_type(S.wq.dtype) || S.wk.dtype != S.wq.dtype || S.wv.dtype != S.wq.dtype) {
            matmul(S.wq, &D->wq, xin, B, yq);
            matmul(S.wk, &D->wk, xin, B, yk);
            matmul(S.wv, &D->wv, xin, B, yv);
            return;
        }
        ensure_act(S.wq, xin, B);
        MatArgs A = single(&D->wq, act_for(S.wq.cols), B, yq);
        A.w1 = &D->wk, A.y1 = yk, A.w2 = &D->wv, A.y2 = yv;
        A.rows0 = S.wq.rows, A.rows1 = S.wk.rows, A.nseg = 3;
        const int total = S.wq.rows + S.wk.rows + S.wv.rows;
        launch_matmul_q<false>(S.wq.dtype, A, total, rows_per_warp(total, {S.wq.rows, S.wk.rows}), stream);
        wrote(yq), wrote(yk), wrote(yv);
    }
    // out = rmsnorm(x (+= y)) * w for B rows, as floats and quantized for the weights `next` that read it.
    void norm(float* xr, const float* y, const float* post, const float* w, int B, float* out, const DevMat* next) {
        const int mode = next ? mode_of(*next) : -1;
        launch_norm(xr, y, post, w, m.dim, m.rms_eps, B, out, mode, act_for(m.dim), stream);
        wrote(xr);
        wrote(out);
        if (mode >= 0) act_src = out, act_mode_cur = mode, act_cols = m.dim;
    }

    void enqueue(int B, int n_out);
};

Engine::Engine(const ModelDesc& m, const std::vector<int>& step_layers, const EngineOptions& o)
    : impl_(std::make_unique<Impl>()) {
    Impl& I = *impl_;
    I.m = m;
    I.o = o;
    I.o.max_batch = std::max(1, o.max_batch);
    if (const char* g = std::getenv("STRATA_CUDA_GRAPH"); g && std::string(g) == "0") I.o.use_graph = false;
    I.n_steps = static_cast<int>(step_layers.size());
    std::string why;
    if (!available(&why)) throw std::runtime_error(why);
    if (m.head_dim > 256) throw std::runtime_error("the CUDA backend supports head dims up to 256");
    const int kv_dim = m.n_kv_heads * m.head_dim, q_dim = m.n_heads * m.head_dim;
    const int B = I.o.max_batch;
    CK(cudaStreamCreateWithFlags(&I.stream, cudaStreamNonBlocking));
    (void)pdl_enabled();  // device queries happen here, not during a graph capture
    (void)sm_count();

    auto mat = [&](const Tensor& t) -> DevMat {
        if (!t) return DevMat{};
        auto d = device_tensor(t);
        I.held.push_back(d);
        I.max_cols = std::max(I.max_cols, d->m.cols);
        return d->m;
    };
    auto vec = [&](const Tensor& t) -> const float* {
        if (!t) return nullptr;
        if (t.dtype != DType::F32) throw std::runtime_error("the CUDA backend expects F32 norm weights and biases");
        auto d = device_tensor(t);
        I.held.push_back(d);
        return static_cast<const float*>(d->m.f);
    };

    // KV cache: one slot per step.
    I.kv_bytes = 2 * static_cast<size_t>(I.n_steps) * o.n_ctx * kv_dim * sizeof(float);
    if (I.n_steps > 0) I.kv.alloc(I.kv_bytes / sizeof(float), "the KV cache (lower -c / --ctx-size)");

    for (int i = 0; i < I.n_steps; ++i) {
        const int fl = step_layers[i];
        if (fl < 0 || fl >= static_cast<int>(m.layers.size())) throw std::invalid_argument("step layer out of range");
        const LayerDesc& L = m.layers[fl];
        DevStep s{};
        s.wq = mat(L.wq), s.wk = mat(L.wk), s.wv = mat(L.wv), s.wo = mat(L.wo);
        s.w_gate = mat(L.w_gate), s.w_up = mat(L.w_up), s.w_down = mat(L.w_down);
        s.attn_norm = vec(L.attn_norm), s.ffn_norm = vec(L.ffn_norm);
        s.post_attn_norm = vec(L.post_attn_norm), s.post_ffn_norm = vec(L.post_ffn_norm);
        s.q_norm = vec(L.q_norm), s.k_norm = vec(L.k_norm);
        s.bq = vec(L.bq), s.bk = vec(L.bk), s.bv = vec(L.bv);
        const size_t slot = static_cast<size_t>(o.n_ctx) * kv_dim;
        s.k_cache = I.kv.p + (2 * static_cast<size_t>(i)) * slot;
        s.v_cache = I.kv.p + (2 * static_cast<size_t>(i) + 1) * slot;
        s.rope_theta_scale = std::pow(L.rope_theta, -2.0f / static_cast<float>(m.rope_dim));
        s.rope_freq_scale = L.rope_freq_scale;
        s.window = L.sliding ? m.sliding_window : 0;
        I.h_steps.push_back(s);
    }
    I.d_steps.alloc(std::max(1, I.n_steps), "the step table");
    if (I.n_steps > 0)
        CK(cudaMemcpy(I.d_steps.p, I.h_steps.data(), sizeof(DevStep) * I.n_steps, cudaMemcpyHostToDevice));
    if (o.with_output) {
        I.h_out = mat(m.output);
        I.d_out_norm = vec(m.output_norm);
        I.d_out.alloc(1, "the output descriptor");
        CK(cudaMemcpy(I.d_out.p, &I.h_out, sizeof(DevMat), cudaMemcpyHostToDevice));
    }
    if (!m.rope_factors.empty()) {
        Tensor t{m.rope_factors.data(), DType::F32, 1, static_cast<int64_t>(m.rope_factors.size()),
                 m.rope_factors.size() * sizeof(float)};
        I.factors_t = upload(t);  // not cached: the vector is this engine's copy
        I.d_factors = static_cast<const float*>(I.factors_t->m.f);
    }
    I.max_cols = std::max({I.max_cols, m.dim, m.hidden_dim, q_dim});
    const size_t bs = static_cast<size_t>(B);
    I.x.alloc(bs * m.dim, "activations");
    I.xb.alloc(bs * m.dim, "activations");
    I.xo.alloc(bs * m.dim, "activations");
    I.q.alloc(bs * q_dim, "activations");
    I.k.alloc(bs * kv_dim, "activations");
    I.v.alloc(bs * kv_dim, "activations");
    I.att.alloc(bs * q_dim, "activations");
    I.hb.alloc(bs * m.hidden_dim, "activations");
    I.hb2.alloc(bs * m.hidden_dim, "activations");
    const int cols = (I.max_cols + 255) / 256 * 256;
    I.aq.alloc(bs * cols, "activations");
    I.ad.alloc(bs * cols / 32, "activations");
    I.as.alloc(bs * cols / 32, "activations");
    I.part.alloc(static_cast<size_t>(3 * sm_count() + m.n_heads) * (m.head_dim + 2), "attention partials");
    I.d_pos.alloc(1, "positions");
    if (o.with_output) I.logits.alloc(bs * m.vocab_size, "logits");
    CK(cudaMallocHost(&I.h_x, bs * m.dim * sizeof(float)));
    CK(cudaMallocHost(&I.h_pos, sizeof(int)));
    if (o.with_output) CK(cudaMallocHost(&I.h_logits, bs * m.vocab_size * sizeof(float)));
    if (static_cast<size_t>(cols) * sizeof(float) > 48 * 1024)
        CK(cudaFuncSetAttribute(norm_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                static_cast<int>(cols * sizeof(float))));
}

Engine::~Engine() {
    if (!impl_) return;
    Impl& I = *impl_;
    if (I.graph_exec) cudaGraphExecDestroy(I.graph_exec);
    if (I.graph) cudaGraphDestroy(I.graph);
    if (I.stream) cudaStreamSynchronize(I.stream);
    if (I.stream) cudaStreamDestroy(I.stream);
    if (I.h_x) cudaFreeHost(I.h_x);
    if (I.h_pos) cudaFreeHost(I.h_pos);
    if (I.h_logits) cudaFreeHost(I.h_logits);
}

// Everything one eval does, in stream order: copies in, every step, the output, copies out.
void Engine::Impl::enqueue(int B, int n_out) {
    const int dim = m.dim, kv_dim = m.n_kv_heads * m.head_dim;
    CK(cudaMemcpyAsync(x.p, h_x, static_cast<size_t>(B) * dim * sizeof(float), cudaMemcpyHostToDevice, stream));
    CK(cudaMemcpyAsync(d_pos.p, h_pos, sizeof(int), cudaMemcpyHostToDevice, stream));
    const int gelu = m.ffn_gelu ? 1 : 0;
    const float* pending = nullptr;       // the previous step's FFN output, not yet added to x
    const float* pending_post = nullptr;  // ... and the norm it goes through first (Gemma)
    const float scale = m.attn_scale > 0 ? m.attn_scale : 1.0f / std::sqrt(static_cast<float>(m.head_dim));
    act_src = nullptr;
    for (int i = 0; i < n_steps; ++i) {
        const DevStep& S = h_steps[i];
        const DevStep* D = d_steps.p + i;
        // x += the previous step's FFN output; xb = rmsnorm(x) * attn_norm, quantized for wq.
        norm(x.p, pending, pending_post, S.attn_norm, B, xb.p, &S.wq);
        matmul_qkv(S, D, xb.p, B, q.p, k.p, v.p);
        RopeArgs r{m.n_heads, m.n_kv_heads, m.head_dim, m.rope_dim, S.rope_theta_scale, S.rope_freq_scale, d_factors,
                   m.rope_neox, m.rms_eps};
        launch(qkv_post_kernel, dim3(B), dim3(256), 0, stream, q.p, k.p, v.p, S.bq, S.bk, S.bv, S.q_norm, S.k_norm, r,
               d_pos.p, S.k_cache, S.v_cache);
        wrote(q.p), wrote(k.p), wrote(v.p);
        AttnArgs A{m.n_heads, m.n_heads / m.n_kv_heads, m.head_dim, kv_dim, S.window, attention_splits(B, m.n_heads),
                   scale};
        // With several KV splits the combine step also quantizes the output for wo (chunk-local modes only).
        const int mo = mode_of(S.wo);
        const bool fuse_q = A.n_split > 1 && mo >= 0 && mo != static_cast<int>(ActMode::Q8_K) && m.head_dim % 32 == 0 &&
                            m.head_dim <= 256 && S.wo.cols == m.n_heads * m.head_dim;
        launch_attention(q.p, S.k_cache, S.v_cache, d_pos.p, A, B, att.p, part.p, fuse_q ? mo : -1,
                         act_for(S.wo.cols), stream);
        wrote(att.p);
        if (fuse_q) act_src = att.p, act_mode_cur = mo, act_cols = S.wo.cols;
        matmul(S.wo, &D->wo, att.p, B, xb.p);
        // x += post_attn_norm(attention output); xb = rmsnorm(x) * ffn_norm, quantized for the gate/up.
        norm(x.p, xb.p, S.post_attn_norm, S.ffn_norm, B, xb.p, &S.w_gate);
        if (S.w_gate.dtype == S.w_up.dtype && !is_float_type(S.w_gate.dtype) && S.w_gate.cols == S.w_up.cols) {
            MatArgs A2 = single(&D->w_gate, act_for(dim), B, hb.p);
            A2.w1 = &D->w_up, A2.gelu = gelu;
            // One token: the kernel also quantizes its outputs for the down projection (32 rows per block).
            const int md = mode_of(S.w_down);
            const bool fuse_q = B == 1 && md >= 0 && md != static_cast<int>(ActMode::Q8_K) && S.w_gate.rows % 32 == 0 &&
                                S.w_down.cols == S.w_gate.rows;
            if (fuse_q) A2.qmode = md, A2.qout = act_for(S.w_down.cols);
            launch_matmul_q<true>(S.w_gate.dtype, A2, S.w_gate.rows,
                                  fuse_q ? 4 : rows_per_warp(S.w_gate.rows, {S.w_gate.rows}), stream);
            wrote(hb.p);
            if (fuse_q) act_src = hb.p, act_mode_cur = md, act_cols = S.w_down.cols;
        } else {
            matmul(S.w_gate, &D->w_gate, xb.p, B, hb.p);
            matmul(S.w_up, &D->w_up, xb.p, B, hb2.p);
            const int64_t n = static_cast<int64_t>(B) * m.hidden_dim;
            launch(glu_kernel, dim3(static_cast<unsigned>((n + 255) / 256)), dim3(256), 0, stream, hb.p,
                   static_cast<const float*>(hb2.p), n, gelu);
            wrote(hb.p);
        }
        matmul(S.w_down, &D->w_down, hb.p, B, xb.p);
        pending = xb.p;
        pending_post = S.post_ffn_norm;
    }
    if (o.with_output) {
        const int first = B - n_out;
        float* xr = x.p + static_cast<size_t>(first) * dim;
        const float* pr = pending ? pending + static_cast<size_t>(first) * dim : nullptr;
        norm(xr, pr, pending_post, d_out_norm, n_out, xo.p, &h_out);
        matmul(h_out, d_out.p, xo.p, n_out, logits.p);
        CK(cudaMemcpyAsync(h_logits, logits.p, static_cast<size_t>(n_out) * m.vocab_size * sizeof(float),
                           cudaMemcpyDeviceToHost, stream));
    } else {
        if (pending) norm(x.p, pending, pending_post, nullptr, B, nullptr, nullptr);
        CK(cudaMemcpyAsync(h_x, x.p, static_cast<size_t>(B) * dim * sizeof(float), cudaMemcpyDeviceToHost, stream));
    }
    CK(cudaGetLastError());
}

const float* Engine::eval(const float* xin, int B, int pos, int n_out, float* x_out) {
    Impl& I = *impl_;
    if (B < 1 || B > I.o.max_batch) throw std::invalid_argument("CUDA eval: batch of " + std::to_string(B));
    if (pos < 0 || pos + B > I.o.n_ctx) throw std::runtime_error("CUDA eval: context overflow");
    if (I.o.with_output && (n_out < 1 || n_out > B)) throw std::invalid_argument("CUDA eval: n_out");
    std::memcpy(I.h_x, xin, static_cast<size_t>(B) * I.m.dim * sizeof(float));
    *I.h_pos = pos;
    if (B == 1 && I.o.use_graph) {
        if (!I.graph_exec) {
            CK(cudaStreamBeginCapture(I.stream, cudaStreamCaptureModeThreadLocal));
            try {
                I.enqueue(1, 1);
            } catch (...) {
                cudaGraph_t g = nullptr;
                cudaStreamEndCapture(I.stream, &g);
                if (g) cudaGraphDestroy(g);
                throw;
            }
            CK(cudaStreamEndCapture(I.stream, &I.graph));
            CK(cudaGraphInstantiate(&I.graph_exec, I.graph, 0));
        }
        CK(cudaGraphLaunch(I.graph_exec, I.stream));
    } else {
        I.enqueue(B, I.o.with_output ? n_out : 0);
    }
    CK(cudaStreamSynchronize(I.stream));
    if (I.o.with_output) return I.h_logits;
    std::memcpy(x_out, I.h_x, static_cast<size_t>(B) * I.m.dim * sizeof(float));
    return nullptr;
}

size_t Engine::weight_bytes() const {
    std::vector<const DevTensor*> seen;
    size_t total = 0;
    for (const auto& t : impl_->held)
        if (std::find(seen.begin(), seen.end(), t.get()) == seen.end()) {
            seen.push_back(t.get());
            total += t->bytes;
        }
    return total;
}
size_t Engine::kv_bytes() const { return impl_->kv_bytes; }
int Engine::n_steps() const { return impl_->n_steps; }
const void* Engine::step_weight_address(int step) const {
    const DevMat& w = impl_->h_steps.at(static_cast<size_t>(step)).wq;
    return w.qs ? static_cast<const void*>(w.qs) : w.f;
}

// ---- device facts -------------------------------------------------------------------------------------

bool available(std::string* why) {
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        if (why) {
            if (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver || n == 0)
                *why = std::string("no CUDA GPU on this machine (") + (e == cudaSuccess ? "no device" : cudaGetErrorString(e)) + ")";
            else
                *why = std::string("no usable CUDA device: ") + cudaGetErrorString(e);
        }
        cudaGetLastError();
        return false;
    }
    return true;
}

DeviceInfo device_info() {
    DeviceInfo d;
    int dev = 0;
    CK(cudaGetDevice(&dev));
    cudaDeviceProp p{};
    CK(cudaGetDeviceProperties(&p, dev));
    d.name = p.name;
    d.cc_major = p.major;
    d.cc_minor = p.minor;
    d.sm_count = p.multiProcessorCount;
    d.l2_bytes = static_cast<size_t>(p.l2CacheSize);
    CK(cudaMemGetInfo(&d.mem_free, &d.mem_total));
    return d;
}

double measure_copy_bandwidth(size_t bytes, int reps) {
    const size_t n4 = bytes / 2 / sizeof(float4);  // half the bytes read, half written
    DevBuf<float4> a, b;
    a.alloc(n4, "the bandwidth probe");
    b.alloc(n4, "the bandwidth probe");
    CK(cudaMemset(a.p, 0, n4 * sizeof(float4)));
    const int blocks = sm_count() * 8;
    copy_kernel<<<blocks, 256>>>(b.p, a.p, n4);
    CK(cudaDeviceSynchronize());
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    std::vector<float> ms;
    for (int r = 0; r < reps; ++r) {
        CK(cudaEventRecord(e0));
        copy_kernel<<<blocks, 256>>>(b.p, a.p, n4);
        CK(cudaEventRecord(e1));
        CK(cudaEventSynchronize(e1));
        float t = 0;
        CK(cudaEventElapsedTime(&t, e0, e1));
        ms.push_back(t);
    }
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    std::sort(ms.begin(), ms.end());
    const double med = ms[ms.size() / 2] / 1e3;
    return 2.0 * n4 * sizeof(float4) / med;
}

// ---- single kernels for the tests ---------------------------------------------------------------------
namespace check {

namespace {
template <typename T>
T* to_dev(const T* h, size_t n) {
    T* d = static_cast<T*>(dev_alloc(n * sizeof(T), "a test buffer"));
    CK(cudaMemcpy(d, h, n * sizeof(T), cudaMemcpyHostToDevice));
    return d;
}
template <typename T>
void to_host(T* h, const T* d, size_t n) {
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(h, d, n * sizeof(T), cudaMemcpyDeviceToHost));
}
struct Frees {
    std::vector<void*> p;
    template <typename T>
    T* operator()(T* x) {
        p.push_back(x);
        return x;
    }
    ~Frees() {
        for (void* x : p) cudaFree(x);
    }
};
}  // namespace

Act test_act(Frees& F, int B, int cols) {
    const int n32 = cols / 32;
    return Act{F(static_cast<int8_t*>(dev_alloc(static_cast<size_t>(B) * cols, "test"))),
               F(static_cast<float*>(dev_alloc(static_cast<size_t>(B) * n32 * 4, "test"))),
               F(static_cast<float*>(dev_alloc(static_cast<size_t>(B) * n32 * 4, "test"))), cols};
}

void matmul(const Tensor& w, const float* x, int B, float* y, int R) {
    matmul_multi({w}, x, B, {y}, R);
}

void matmul_multi(const std::vector<Tensor>& ws, const float* x, int B, const std::vector<float*>& ys, int R) {
    if (ws.empty() || ws.size() > 3 || ys.size() != ws.size()) throw std::invalid_argument("matmul_multi: 1 to 3 matrices");
    Frees F;
    std::vector<std::shared_ptr<DevTensor>> ts;
    std::vector<DevMat*> dms;
    std::vector<float*> dys;
    int total = 0;
    for (const Tensor& w : ws) {
        ts.push_back(upload(w));
        dms.push_back(F(to_dev(&ts.back()->m, 1)));
        dys.push_back(F(static_cast<float*>(dev_alloc(static_cast<size_t>(B) * w.rows * sizeof(float), "test"))));
        total += static_cast<int>(w.rows);
    }
    const int cols = static_cast<int>(ws[0].cols);
    float* dx = F(to_dev(x, static_cast<size_t>(B) * cols));
    if (is_float_type(ts[0]->m.dtype)) {
        for (size_t i = 0; i < ws.size(); ++i)
            launch_matmul_f(ts[i]->m.dtype, dms[i], static_cast<int>(ws[i].rows), dx, cols, B, dys[i],
                            static_cast<int>(ws[i].rows), nullptr);
    } else {
        const Act a = test_act(F, B, cols);
        launch_quantize(dx, cols, cols, B, act_mode(ws[0].dtype), a, nullptr);
        MatArgs A = single(dms[0], a, B, dys[0]);
        A.nseg = static_cast<int>(ws.size());
        if (ws.size() > 1) A.w1 = dms[1], A.y1 = dys[1], A.rows0 = static_cast<int>(ws[0].rows);
        if (ws.size() > 2) A.w2 = dms[2], A.y2 = dys[2], A.rows1 = static_cast<int>(ws[1].rows);
        launch_matmul_q<false>(ts[0]->m.dtype, A, total, B == 1 ? R : 1, nullptr);
    }
    CK(cudaGetLastError());
    for (size_t i = 0; i < ws.size(); ++i) to_host(ys[i], dys[i], static_cast<size_t>(B) * ws[i].rows);
}

void glu_matmul(const Tensor& gate, const Tensor& up, const float* x, bool gelu, float* y, DType next, int8_t* q,
                float* d, float* s) {
    Frees F;
    auto tg = upload(gate), tu = upload(up);
    DevMat* dg = F(to_dev(&tg->m, 1));
    DevMat* du = F(to_dev(&tu->m, 1));
    const int rows = static_cast<int>(gate.rows), cols = static_cast<int>(gate.cols);
    float* dx = F(to_dev(x, cols));
    float* dy = F(static_cast<float*>(dev_alloc(static_cast<size_t>(rows) * sizeof(float), "test")));
    const Act a = test_act(F, 1, cols);
    launch_quantize(dx, cols, cols, 1, act_mode(gate.dtype), a, nullptr);
    MatArgs A = single(dg, a, 1, dy);
    A.w1 = du, A.gelu = gelu ? 1 : 0;
    Act qo{};
    if (q) {
        qo = test_act(F, 1, rows);
        A.qmode = static_cast<int>(act_mode(next)), A.qout = qo;
    }
    launch_matmul_q<true>(tg->m.dtype, A, rows, q ? 4 : 1, nullptr);
    CK(cudaGetLastError());
    to_host(y, dy, rows);
    if (q) {
        to_host(q, qo.q, rows);
        to_host(d, qo.d, rows / 32);
        to_host(s, qo.s, rows / 32);
    }
}

void quantize(DType wtype, const float* x, int n, int8_t* q, float* d, float* s) {
    Frees F;
    float* dx = F(to_dev(x, n));
    Act a{F(static_cast<int8_t*>(dev_alloc(n, "test"))), F(static_cast<float*>(dev_alloc(n / 32 * 4, "test"))),
          F(static_cast<float*>(dev_alloc(n / 32 * 4, "test"))), n};
    launch_quantize(dx, n, n, 1, act_mode(wtype), a, nullptr);
    CK(cudaGetLastError());
    to_host(q, a.q, n);
    to_host(d, a.d, n / 32);
    to_host(s, a.s, n / 32);
}

void rmsnorm(const float* x, const float* w, int B, int n, float eps, float* out) {
    Frees F;
    float* dx = F(to_dev(x, static_cast<size_t>(B) * n));
    float* dw = F(to_dev(w, n));
    float* dout = F(static_cast<float*>(dev_alloc(static_cast<size_t>(B) * n * 4, "test")));
    launch_norm(dx, nullptr, nullptr, dw, n, eps, B, dout, -1, Act{}, nullptr);
    CK(cudaGetLastError());
    to_host(out, dout, static_cast<size_t>(B) * n);
}

void residual_rmsnorm(float* x, const float* y, const float* post, const float* w, int B, int n, float eps, float* out) {
    Frees F;
    const size_t bn = static_cast<size_t>(B) * n;
    float* dx = F(to_dev(x, bn));
    float* dy = F(to_dev(y, bn));
    float* dp = post ? F(to_dev(post, n)) : nullptr;
    float* dw = F(to_dev(w, n));
    float* dout = F(static_cast<float*>(dev_alloc(bn * 4, "test")));
    launch_norm(dx, dy, dp, dw, n, eps, B, dout, -1, Act{}, nullptr);
    CK(cudaGetLastError());
    to_host(out, dout, bn);
    to_host(x, dx, bn);
}

void rope(float* x, int B, int n_heads, int head_dim, int rot_dim, int pos, float theta, float freq_scale,
          const float* factors, bool neox) {
    Frees F;
    const size_t n = static_cast<size_t>(B) * n_heads * head_dim;
    float* dq = F(to_dev(x, n));
    // The k/v side of the kernel gets one dummy kv head; only q is checked.
    std::vector<float> zeros(static_cast<size_t>(B) * head_dim, 0.f);
    float* dk = F(to_dev(zeros.data(), zeros.size()));
    float* dv = F(to_dev(zeros.data(), zeros.size()));
    float* kc = F(static_cast<float*>(dev_alloc(static_cast<size_t>(pos + B) * head_dim * 4, "test")));
    float* vc = F(static_cast<float*>(dev_alloc(static_cast<size_t>(pos + B) * head_dim * 4, "test")));
    float* df = factors ? F(to_dev(factors, rot_dim / 2)) : nullptr;
    int* dpos = F(to_dev(&pos, 1));
    RopeArgs r{n_heads, 1, head_dim, rot_dim, std::pow(theta, -2.0f / static_cast<float>(rot_dim)), freq_scale, df,
               neox, 1e-6f};
    qkv_post_kernel<<<B, 256>>>(dq, dk, dv, nullptr, nullptr, nullptr, nullptr, nullptr, r, dpos, kc, vc);
    CK(cudaGetLastError());
    to_host(x, dq, n);
}

void attention(const float* q, const float* k, const float* v, int B, int pos, int n_heads, int n_kv_heads,
               int head_dim, int window, float scale, int n_split, float* out, DType next, int8_t* qq, float* qd,
               float* qs) {
    Frees F;
    const int kv_dim = n_kv_heads * head_dim, q_dim = n_heads * head_dim;
    const size_t nkv = static_cast<size_t>(pos + B) * kv_dim;
    float* dq = F(to_dev(q, static_cast<size_t>(B) * q_dim));
    float* dk = F(to_dev(k, nkv));
    float* dv = F(to_dev(v, nkv));
    float* dout = F(static_cast<float*>(dev_alloc(static_cast<size_t>(B) * q_dim * 4, "test")));
    float* part = F(static_cast<float*>(
        dev_alloc(static_cast<size_t>(B) * n_heads * std::max(1, n_split) * (head_dim + 2) * 4, "test")));
    int* dpos = F(to_dev(&pos, 1));
    AttnArgs A{n_heads, n_heads / n_kv_heads, head_dim, kv_dim, window, std::max(1, n_split), scale};
    const Act qa = qq ? test_act(F, B, q_dim) : Act{};
    launch_attention(dq, dk, dv, dpos, A, B, dout, part, qq ? static_cast<int>(act_mode(next)) : -1, qa, nullptr);
    CK(cudaGetLastError());
    to_host(out, dout, static_cast<size_t>(B) * q_dim);
    if (qq) {
        to_host(qq, qa.q, static_cast<size_t>(B) * q_dim);
        to_host(qd, qa.d, static_cast<size_t>(B) * q_dim / 32);
        to_host(qs, qa.s, static_cast<size_t>(B) * q_dim / 32);
    }
}

void glu(float* a, const float* b, int64_t n, bool gelu) {
    Frees F;
    float* da = F(to_dev(a, n));
    float* db = F(to_dev(b, n));
    glu_kernel<<<static_cast<unsigned>((n + 255) / 256), 256>>>(da, db, n, gelu ? 1 : 0);
    CK(cudaGetLastError());
    to_host(a, da, n);
}

}  // namespace check

}  // namespace strata::cuda
