// strata's CUDA kernels. Every kernel has a CPU reference in kernels/generic and a test against it
// (tests/test_cuda.cpp through cuda::check). Included by engine.cu only.
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cfloat>
#include <cstdint>

#include "cuda/packed.h"

namespace strata::cuda {

constexpr int kWarp = 32;

// One weight matrix on the device: packed regions for quantized types, plain rows for F32/F16/BF16.
struct DevMat {
    int dtype = 0;  // DType
    int rows = 0, cols = 0;
    const uint8_t* qs = nullptr;
    const uint8_t* qh = nullptr;
    const uint8_t* sc = nullptr;
    const uint8_t* sb = nullptr;
    const void* f = nullptr;  // float types: rows x cols elements
};

// Quantized activations: B rows of n int8 values, a scale d and a scaled sum s per 32.
struct Act {
    int8_t* q = nullptr;
    float* d = nullptr;
    float* s = nullptr;
    int n = 0;
};

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ double warp_sum_d(double v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Programmatic dependent launch (Hopper): a kernel launched with it may start while the previous kernel
// finishes; it waits here until that kernel's writes are visible, and lets the next kernel start launching.
// Without the launch attribute (or before sm_90) both are no-ops.
__device__ __forceinline__ void pdl_wait_and_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;" :::);
#endif
}

__device__ __forceinline__ float silu(float x) { return x / (1.0f + expf(-x)); }
__device__ __forceinline__ float gelu_tanh(float x) {
    constexpr float kSqrt2OverPi = 0.79788456080286535588f, kCoef = 0.044715f;
    return x / (1.0f + expf(-2.0f * (kSqrt2OverPi * x * (1.0f + kCoef * x * x))));  // = 0.5 x (1 + tanh(u)), as the CPU
}

// ---- activation quantization (as kernels/generic quantize_q8_0 / q8_1 / q8_K) ---------------------------
// One warp quantizes the 256 elements x[0..n_valid) (n_valid a multiple of 32); lane l holds elements
// 8l..8l+7, so a chunk of 32 is 4 lanes.
__device__ __forceinline__ void quantize_256(const float* x, int n_valid, int mode, int8_t* q, float* d, float* s) {
    const int lane = threadIdx.x & 31;
    const bool on = lane * 8 < n_valid;
    float v[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = on ? x[lane * 8 + i] : 0.f;
    int qi[8];
    float dl = 0.f, sl = 0.f;
    if (mode != static_cast<int>(ActMode::Q8_K)) {
        float amax = 0.f;
#pragma unroll
        for (int i = 0; i < 8; ++i) amax = fmaxf(amax, fabsf(v[i]));
        amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 1));
        amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 2));
        const float dd = amax / 127.0f;
        const float id = dd != 0.0f ? 1.0f / dd : 0.0f;
        int sum = 0;
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            qi[i] = static_cast<int>(roundf(v[i] * id));
            sum += qi[i];
        }
        sum += __shfl_xor_sync(0xffffffffu, sum, 1);
        sum += __shfl_xor_sync(0xffffffffu, sum, 2);
        dl = __half2float(__float2half_rn(dd));
        sl = mode == static_cast<int>(ActMode::Q8_1) ? __half2float(__float2half_rn(static_cast<float>(sum) * dd)) : 0.f;
    } else {
        // The first element of largest magnitude, signed (ggml's choice), over the whole 256.
        float amax = 0.f, mx = 0.f;
        int idx = 1 << 30;
#pragma unroll
        for (int i = 0; i < 8; ++i)
            if (fabsf(v[i]) > amax) {
                amax = fabsf(v[i]);
                mx = v[i];
                idx = lane * 8 + i;
            }
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
            const float a2 = __shfl_xor_sync(0xffffffffu, amax, o);
            const float m2 = __shfl_xor_sync(0xffffffffu, mx, o);
            const int i2 = __shfl_xor_sync(0xffffffffu, idx, o);
            if (a2 > amax || (a2 == amax && i2 < idx)) {
                amax = a2;
                mx = m2;
                idx = i2;
            }
        }
        if (amax == 0.f) {
#pragma unroll
            for (int i = 0; i < 8; ++i) qi[i] = 0;
            dl = 0.f;
            sl = 0.f;
        } else {
            const float iscale = -127.0f / mx;
            int sum = 0;
#pragma unroll
            for (int i = 0; i < 8; ++i) {
                qi[i] = min(127, __float2int_rn(iscale * v[i]));
                sum += qi[i];
            }
            sum += __shfl_xor_sync(0xffffffffu, sum, 1);
            sum += __shfl_xor_sync(0xffffffffu, sum, 2);
            dl = 1.0f / iscale;
            sl = dl * static_cast<float>(sum);
        }
    }
    if (on) {
        uint32_t w0 = 0, w1 = 0;
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            w0 |= (static_cast<uint32_t>(qi[i]) & 0xFFu) << (8 * i);
            w1 |= (static_cast<uint32_t>(qi[4 + i]) & 0xFFu) << (8 * i);
        }
        reinterpret_cast<uint2*>(q)[lane] = make_uint2(w0, w1);
        if ((lane & 3) == 0) {
            d[lane / 4] = dl;
            s[lane / 4] = sl;
        }
    }
}

// Quantizes `rows` rows of n floats (row stride ld) into a: grid (ceil(n / 2048), rows), 256 threads.
__global__ void quantize_kernel(const float* __restrict__ x, int ld, int n, int mode, Act a) {
    pdl_wait_and_trigger();
    const int row = blockIdx.y;
    const int base = (blockIdx.x * 8 + (threadIdx.x >> 5)) * 256;
    if (base >= n) return;
    const float* xr = x + static_cast<size_t>(row) * ld;
    quantize_256(xr + base, min(256, n - base), mode, a.q + static_cast<size_t>(row) * a.n + base,
                 a.d + static_cast<size_t>(row) * (a.n / 32) + base / 32,
                 a.s + static_cast<size_t>(row) * (a.n / 32) + base / 32);
}

// Quantizes 32 values, one per lane, as quantize_256 quantizes a chunk (Q8_0 / Q8_1 modes only): the same
// max, rounding and integer sum, so the bytes are identical.
__device__ __forceinline__ void quantize_32(float v, int mode, int8_t* q, float* d, float* s) {
    const int lane = threadIdx.x & 31;
    const float amax = warp_max(fabsf(v));
    const float dd = amax / 127.0f;
    const float id = dd != 0.0f ? 1.0f / dd : 0.0f;
    const int qi = static_cast<int>(roundf(v * id));
    int sum = qi;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    q[lane] = static_cast<int8_t>(qi);
    if (lane == 0) {
        *d = __half2float(__float2half_rn(dd));
        *s = mode == static_cast<int>(ActMode::Q8_1) ? __half2float(__float2half_rn(static_cast<float>(sum) * dd)) : 0.f;
    }
}

// ---- quantized matrix x activations -------------------------------------------------------------------
// Up to three matrices of one type over the same activations (Q, K and V in one launch), one after another
// in row space; or, with kGlu, y = act(W0.x) * (W1.x) (SwiGLU / GeGLU) for a gate and an up matrix.
// Each warp owns R consecutive rows and walks their chunks together (R independent 128-bit loads in flight
// per lane); a block is 8 warps. Blocks along y take NT tokens each.
struct MatArgs {
    const DevMat* w0;
    const DevMat* w1;
    const DevMat* w2;
    float* y0;
    float* y1;
    float* y2;
    int rows0, rows1;  // rows of w0 and w1 when several matrices share the launch
    int nseg;          // 1..3 (kGlu: 1, with w1 the up matrix and y0 the output)
    Act a;             // the activations, quantized for this type
    int B;
    int gelu;
    Act qout;          // kGlu, B == 1, 8R == 32: the outputs quantized here too (mode qmode), for the next matmul
    int qmode;         // -1: no
};

template <int kType, int R, int NT, bool kGlu>
__global__ void __launch_bounds__(256) matmul_q_kernel(const MatArgs A) {
    pdl_wait_and_trigger();
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int r = (blockIdx.x * 8 + warp) * R;
    const DevMat* W = A.w0;
    float* y = A.y0;
    if (!kGlu && A.nseg > 1 && r >= A.rows0) {
        r -= A.rows0;
        W = A.w1, y = A.y1;
        if (A.nseg > 2 && r >= A.rows1) {
            r -= A.rows1;
            W = A.w2, y = A.y2;
        }
    }
    const PackedView p{W->qs, W->qh, W->sc, W->sb, W->rows, W->cols};
    PackedView pu{};
    if constexpr (kGlu) pu = PackedView{A.w1->qs, A.w1->qh, A.w1->sc, A.w1->sb, A.w1->rows, A.w1->cols};
    const int rows = W->rows;
    const int t0 = blockIdx.y * NT;
    const int nt = min(NT, A.B - t0);
    const int nch = p.cols / 32;
    float acc[R][NT], accu[R][NT];
#pragma unroll
    for (int i = 0; i < R; ++i)
#pragma unroll
        for (int t = 0; t < NT; ++t) acc[i][t] = accu[i][t] = 0.f;
    if (r < rows) {
        for (int c = lane; c < nch; c += kWarp) {
            Chunk k[R], ku[R];
#pragma unroll
            for (int i = 0; i < R; ++i) {
                const int64_t row = min(r + i, rows - 1);  // a partial last group re-reads a valid row
                load_chunk<kType>(p, row, c, k[i]);
                if constexpr (kGlu) load_chunk<kType>(pu, row, c, ku[i]);
            }
#pragma unroll
            for (int t = 0; t < NT; ++t) {
                if (t < nt) {
                    const size_t tok = static_cast<size_t>(t0 + t);
                    const uint4* xp = reinterpret_cast<const uint4*>(A.a.q + tok * A.a.n + static_cast<size_t>(c) * 32);
                    const uint4 x0 = __ldg(xp), x1 = __ldg(xp + 1);
                    const uint32_t xw[8] = {x0.x, x0.y, x0.z, x0.w, x1.x, x1.y, x1.z, x1.w};
                    const float dx = __ldg(A.a.d + tok * nch + c), sx = __ldg(A.a.s + tok * nch + c);
#pragma unroll
                    for (int i = 0; i < R; ++i) {
                        acc[i][t] += chunk_dot(k[i], xw, dx, sx);
                        if constexpr (kGlu) accu[i][t] += chunk_dot(ku[i], xw, dx, sx);
                    }
                }
            }
        }
    }
    float out[R][NT];
#pragma unroll
    for (int i = 0; i < R; ++i)
#pragma unroll
        for (int t = 0; t < NT; ++t) {
            const float v = warp_sum(acc[i][t]);
            if constexpr (kGlu) {
                const float u = warp_sum(accu[i][t]);
                out[i][t] = (A.gelu ? gelu_tanh(v) : silu(v)) * u;
            } else {
                out[i][t] = v;
            }
        }
    if (lane == 0)
#pragma unroll
        for (int i = 0; i < R; ++i)
#pragma unroll
            for (int t = 0; t < NT; ++t)
                if (t < nt && r + i < rows) y[static_cast<size_t>(t0 + t) * rows + r + i] = out[i][t];
    if constexpr (kGlu && NT == 1 && R == 4) {
        if (A.qmode >= 0) {  // the block's 32 outputs are one chunk of the next matmul's activations
            __shared__ float so[32];
            if (lane == 0)
#pragma unroll
                for (int i = 0; i < R; ++i) so[warp * R + i] = out[i][0];
            __syncthreads();
            if (warp == 0) {
                const int base = blockIdx.x * 32;
                if (base < rows)
                    quantize_32(so[lane], A.qmode, A.qout.q + base, A.qout.d + base / 32, A.qout.s + base / 32);
            }
        }
    }
}

// ---- float weights (F32 / F16 / BF16) x float activations ------------------------------------------------
template <int kType>
__device__ __forceinline__ float load_weight(const void* w, size_t i) {
    if constexpr (kType == static_cast<int>(DType::F32)) return __ldg(static_cast<const float*>(w) + i);
    if constexpr (kType == static_cast<int>(DType::F16))
        return __half2float(__ushort_as_half(__ldg(static_cast<const unsigned short*>(w) + i)));
    const unsigned int u = static_cast<unsigned int>(__ldg(static_cast<const unsigned short*>(w) + i)) << 16;
    return __uint_as_float(u);
}

template <int kType, int NT>
__global__ void __launch_bounds__(256) matmul_f_kernel(const DevMat* __restrict__ W, const float* __restrict__ x,
                                                       int ldx, int B, float* __restrict__ y, int ldy) {
    pdl_wait_and_trigger();
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int row = blockIdx.x * 8 + warp;
    const int rows = W->rows, cols = W->cols;
    if (row >= rows) return;
    const void* wp = W->f;
    const int t0 = blockIdx.y * NT;
    const int nt = min(NT, B - t0);
    float acc[NT];
#pragma unroll
    for (int t = 0; t < NT; ++t) acc[t] = 0.f;
    for (int i = lane; i < cols; i += kWarp) {
        const float w = load_weight<kType>(wp, static_cast<size_t>(row) * cols + i);
#pragma unroll
        for (int t = 0; t < NT; ++t)
            if (t < nt) acc[t] += w * __ldg(x + static_cast<size_t>(t0 + t) * ldx + i);
    }
#pragma unroll
    for (int t = 0; t < NT; ++t) {
        const float v = warp_sum(acc[t]);
        if (lane == 0 && t < nt) y[static_cast<size_t>(t0 + t) * ldy + row] = v;
    }
}

// ---- RMSNorm, fused with the residual add and the next matmul's activation quantization ---------------
// One block per token row. x += (post ? rmsnorm(y) * post : y) when y is given; then, when w is given,
// out = rmsnorm(x) * w, written as floats (out_f) and/or quantized (mode >= 0) into a.
__device__ __forceinline__ double block_sum_d(double v, double* red) {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = blockDim.x >> 5;
    v = warp_sum_d(v);
    __syncthreads();
    if (lane == 0) red[warp] = v;
    __syncthreads();
    double t = 0.0;
    for (int i = 0; i < nw; ++i) t += red[i];
    return t;
}

__global__ void norm_kernel(float* __restrict__ x, const float* __restrict__ y, const float* __restrict__ post,
                            const float* __restrict__ w, int n, float eps, float* __restrict__ out_f, int mode, Act a) {
    pdl_wait_and_trigger();
    extern __shared__ float row[];  // n floats
    __shared__ double red[32];
    float* xr = x + static_cast<size_t>(blockIdx.x) * n;
    if (y) {
        const float* yr = y + static_cast<size_t>(blockIdx.x) * n;
        if (post) {
            double ss = 0.0;
            for (int i = threadIdx.x; i < n; i += blockDim.x) ss += static_cast<double>(yr[i]) * yr[i];
            ss = block_sum_d(ss, red);
            const float scale = 1.0f / sqrtf(static_cast<float>(ss / n) + eps);
            for (int i = threadIdx.x; i < n; i += blockDim.x) xr[i] += yr[i] * scale * post[i];
        } else {
            for (int i = threadIdx.x; i < n; i += blockDim.x) xr[i] += yr[i];
        }
    }
    if (!w) return;
    double ss = 0.0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) ss += static_cast<double>(xr[i]) * xr[i];
    ss = block_sum_d(ss, red);
    const float scale = 1.0f / sqrtf(static_cast<float>(ss / n) + eps);
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        const float v = xr[i] * scale * w[i];
        row[i] = v;
        if (out_f) out_f[static_cast<size_t>(blockIdx.x) * n + i] = v;
    }
    if (mode < 0) return;
    __syncthreads();
    const int warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    for (int base = warp * 256; base < n; base += nw * 256)
        quantize_256(row + base, min(256, n - base), mode, a.q + static_cast<size_t>(blockIdx.x) * a.n + base,
                     a.d + static_cast<size_t>(blockIdx.x) * (a.n / 32) + base / 32,
                     a.s + static_cast<size_t>(blockIdx.x) * (a.n / 32) + base / 32);
}

// ---- biases, Q/K norms, RoPE, and the K/V cache write: one block per token ------------------------------
struct RopeArgs {
    int n_heads, n_kv_heads, head_dim, rot_dim;
    float theta_scale;  // theta_base^(-2/rot_dim), computed on the host as the CPU computes it
    float freq_scale;
    const float* factors;  // (rot_dim/2) or null
    bool neox;
    float eps;
};

__device__ __forceinline__ void rope_heads(float* v, int nh, const RopeArgs& r, int pos) {
    const int half = r.rot_dim / 2;
    for (int j = threadIdx.x; j < nh * half; j += blockDim.x) {
        const int h = j / half, i = j % half;
        float theta = static_cast<float>(pos);
        for (int k = 0; k < i; ++k) theta *= r.theta_scale;  // as ggml builds it: repeated multiplication
        const float ff = r.factors ? r.factors[i] : 1.0f;
        const float angle = r.freq_scale * (theta / ff);
        float s, c;
        sincosf(angle, &s, &c);
        float* xh = v + h * r.head_dim;
        const int ia = r.neox ? i : 2 * i, ib = r.neox ? i + half : 2 * i + 1;
        const float x0 = xh[ia], x1 = xh[ib];
        xh[ia] = x0 * c - x1 * s;
        xh[ib] = x0 * s + x1 * c;
    }
}

__device__ __forceinline__ void head_norms(float* v, int nh, int hd, const float* w, float eps) {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = blockDim.x >> 5;
    for (int h = warp; h < nh; h += nw) {
        float* xh = v + h * hd;
        double ss = 0.0;
        for (int i = lane; i < hd; i += kWarp) ss += static_cast<double>(xh[i]) * xh[i];
        ss = warp_sum_d(ss);
        const float scale = 1.0f / sqrtf(static_cast<float>(ss / hd) + eps);
        for (int i = lane; i < hd; i += kWarp) xh[i] = xh[i] * scale * w[i];
    }
}

// q (B, q_dim), k, v (B, kv_dim) in place; k and v then copied to the caches at positions pos0 + b.
__global__ void qkv_post_kernel(float* q, float* k, float* v, const float* bq, const float* bk, const float* bv,
                                const float* q_norm, const float* k_norm, RopeArgs r, const int* d_pos,
                                float* k_cache, float* v_cache) {
    pdl_wait_and_trigger();
    const int b = blockIdx.x;
    const int pos = *d_pos + b;
    const int q_dim = r.n_heads * r.head_dim, kv_dim = r.n_kv_heads * r.head_dim;
    float* qb = q + static_cast<size_t>(b) * q_dim;
    float* kb = k + static_cast<size_t>(b) * kv_dim;
    float* vb = v + static_cast<size_t>(b) * kv_dim;
    for (int i = threadIdx.x; i < q_dim; i += blockDim.x)
        if (bq) qb[i] += bq[i];
    for (int i = threadIdx.x; i < kv_dim; i += blockDim.x) {
        if (bk) kb[i] += bk[i];
        if (bv) vb[i] += bv[i];
    }
    __syncthreads();
    if (q_norm) head_norms(qb, r.n_heads, r.head_dim, q_norm, r.eps);
    if (k_norm) head_norms(kb, r.n_kv_heads, r.head_dim, k_norm, r.eps);
    __syncthreads();
    rope_heads(qb, r.n_heads, r, pos);
    rope_heads(kb, r.n_kv_heads, r, pos);
    __syncthreads();
    float* kc = k_cache + static_cast<size_t>(pos) * kv_dim;
    float* vc = v_cache + static_cast<size_t>(pos) * kv_dim;
    for (int i = threadIdx.x; i < kv_dim; i += blockDim.x) {
        kc[i] = kb[i];
        vc[i] = vb[i];
    }
}

// ---- attention: online softmax, the KV range split over blocks (flash-decoding) and over warps -----------
// grid (n_heads, B, n_split), 128 threads. Lane l holds dims l, l+32, ... of its head (NPL per lane).
// n_split == 1 writes out (B, n_heads*hd); otherwise partial (m, l, acc[hd]) per split into part.
struct AttnArgs {
    int n_heads, group, head_dim, kv_dim, window, n_split;
    float scale;
};

template <int NPL>
__global__ void __launch_bounds__(128) attention_kernel(const float* __restrict__ q, const float* __restrict__ kc,
                                                        const float* __restrict__ vc, const int* d_pos, AttnArgs A,
                                                        float* __restrict__ out, float* __restrict__ part) {
    pdl_wait_and_trigger();
    const int h = blockIdx.x, b = blockIdx.y, sp = blockIdx.z;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int hd = A.head_dim;
    const int p = *d_pos + b;
    const int t0 = A.window > 0 ? max(0, p - A.window + 1) : 0;
    const int n_kv = p - t0 + 1;
    const int per = (n_kv + A.n_split - 1) / A.n_split;
    const int kb = t0 + sp * per, ke = min(t0 + n_kv, kb + per);
    const int kvh = h / A.group;
    const int q_dim = A.n_heads * hd;
    float qv[NPL], acc[NPL];
#pragma unroll
    for (int i = 0; i < NPL; ++i) {
        const int d = lane + 32 * i;
        qv[i] = d < hd ? q[static_cast<size_t>(b) * q_dim + h * hd + d] : 0.f;
        acc[i] = 0.f;
    }
    float m = -INFINITY, l = 0.f;
    for (int t = kb + warp; t < ke; t += 4) {
        const float* kr = kc + static_cast<size_t>(t) * A.kv_dim + kvh * hd;
        const float* vr = vc + static_cast<size_t>(t) * A.kv_dim + kvh * hd;
        float dot = 0.f;
#pragma unroll
        for (int i = 0; i < NPL; ++i) {
            const int d = lane + 32 * i;
            if (d < hd) dot += qv[i] * __ldg(kr + d);
        }
        const float s = warp_sum(dot) * A.scale;
        const float m_new = fmaxf(m, s);
        const float corr = expf(m - m_new);
        const float pe = expf(s - m_new);
        l = l * corr + pe;
#pragma unroll
        for (int i = 0; i < NPL; ++i) {
            const int d = lane + 32 * i;
            acc[i] = acc[i] * corr + (d < hd ? pe * __ldg(vr + d) : 0.f);
        }
        m = m_new;
    }
    // Combine the 4 warps.
    __shared__ float sm[4], sl[4];
    __shared__ float sacc[4][NPL * 32];
    if (lane == 0) {
        sm[warp] = m;
        sl[warp] = l;
    }
#pragma unroll
    for (int i = 0; i < NPL; ++i) sacc[warp][lane + 32 * i] = acc[i];
    __syncthreads();
    if (warp != 0) return;
    float M = -INFINITY;
    for (int w = 0; w < 4; ++w) M = fmaxf(M, sm[w]);
    float L = 0.f, f[4];
    for (int w = 0; w < 4; ++w) {
        f[w] = sm[w] == -INFINITY ? 0.f : expf(sm[w] - M);
        L += sl[w] * f[w];
    }
    if (A.n_split == 1) {
        const float inv = L > 0.f ? 1.0f / L : 0.f;
        for (int i = 0; i < NPL; ++i) {
            const int d = lane + 32 * i;
            if (d < hd) {
                float v = 0.f;
                for (int w = 0; w < 4; ++w) v += sacc[w][d] * f[w];
                out[static_cast<size_t>(b) * q_dim + h * hd + d] = v * inv;
            }
        }
    } else {
        float* pp = part + (static_cast<size_t>(b * A.n_heads + h) * A.n_split + sp) * (hd + 2);
        if (lane == 0) {
            pp[0] = M;
            pp[1] = L;
        }
        for (int i = 0; i < NPL; ++i) {
            const int d = lane + 32 * i;
            if (d < hd) {
                float v = 0.f;
                for (int w = 0; w < 4; ++w) v += sacc[w][d] * f[w];
                pp[2 + d] = v;
            }
        }
    }
}

// grid (n_heads, B), 128 threads: merges the n_split partial results of each (token, head). With qmode >= 0
// (Q8_0 / Q8_1, head_dim a multiple of 32) it also quantizes the head's output for the output projection.
__global__ void attention_combine_kernel(const float* __restrict__ part, AttnArgs A, float* __restrict__ out, int qmode,
                                         Act qa) {
    pdl_wait_and_trigger();
    __shared__ float so[256];
    const int h = blockIdx.x, b = blockIdx.y, hd = A.head_dim;
    const float* pp = part + static_cast<size_t>(b * A.n_heads + h) * A.n_split * (hd + 2);
    float M = -INFINITY;
    for (int s = 0; s < A.n_split; ++s)
        if (pp[s * (hd + 2) + 1] > 0.f) M = fmaxf(M, pp[s * (hd + 2)]);
    float L = 0.f;
    for (int s = 0; s < A.n_split; ++s) {
        const float* ps = pp + s * (hd + 2);
        if (ps[1] > 0.f) L += ps[1] * expf(ps[0] - M);
    }
    const float inv = L > 0.f ? 1.0f / L : 0.f;
    const size_t o = static_cast<size_t>(b) * A.n_heads * hd + static_cast<size_t>(h) * hd;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float v = 0.f;
        for (int s = 0; s < A.n_split; ++s) {
            const float* ps = pp + s * (hd + 2);
            if (ps[1] > 0.f) v += ps[2 + d] * expf(ps[0] - M);
        }
        out[o + d] = v * inv;
        so[d] = v * inv;
    }
    if (qmode < 0) return;
    __syncthreads();
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    for (int c = warp; c < hd / 32; c += blockDim.x / 32)
        quantize_32(so[c * 32 + lane], qmode, qa.q + o + c * 32, qa.d + (o / 32) + c, qa.s + (o / 32) + c);
}

// hb[i] = act(hb[i]) * hb2[i]
__global__ void glu_kernel(float* __restrict__ a, const float* __restrict__ b, int64_t n, int gelu) {
    pdl_wait_and_trigger();
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) a[i] = (gelu ? gelu_tanh(a[i]) : silu(a[i])) * b[i];
}

__global__ void copy_kernel(float4* __restrict__ dst, const float4* __restrict__ src, size_t n) {
    for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
         i += static_cast<size_t>(gridDim.x) * blockDim.x)
        dst[i] = src[i];
}

}  // namespace strata::cuda
