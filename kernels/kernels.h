// The kernel table: every numeric routine the forward pass calls, chosen once per process from cpuid.
// Kernels know dtypes, spans and row ranges, never a Model or a Plan; threading sits outside them (core/).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/dtype.h"

namespace strata {

// Convert n floats (a whole number of blocks) into an activation format: Q8_0, Q8_1, Q8_K, F16, BF16, F32.
using QuantizeRowFn = void (*)(const float* x, void* y, int64_t n);
// Expand n elements of a weight row into floats.
using DequantizeRowFn = void (*)(const void* w, float* y, int64_t n);
// Dot of one weight row (n elements of the weight type) with one activation row (its vec_dot_type).
using VecDotFn = float (*)(int64_t n, const void* w, const void* x);
// y[b*ldy + r] = dot(W row r, X row b) for r in [r0, r1), b in [0, B).
//   w: rows of w_row_bytes each, n elements per row;  x: B rows of x_row_bytes (vec_dot_type of W)
using MatmulFn = void (*)(const void* w, size_t w_row_bytes, int64_t n, int64_t r0, int64_t r1, const void* x,
                          size_t x_row_bytes, int64_t B, float* y, int64_t ldy);

// Row-interleaved weights, made once at load (per *file* tensor, never per plan step): groups of pack_rows
// rows stored so one vector load holds a few elements of every row of the group, and the products land one
// row per lane (no horizontal sums, the per-block float work shared by a whole group). rows % pack_rows == 0;
// the packed tensor takes packed_size() bytes (within 3% of rows * w_row_bytes), 64-byte aligned.
using RepackFn = void (*)(const void* w, size_t w_row_bytes, int64_t rows, int64_t n, void* dst);
// As MatmulFn, over packed weights; r0 and r1 multiples of pack_rows. Activations in the weight's vec_dot_type.
using MatmulPackedFn = void (*)(const void* packed, int64_t n, int64_t r0, int64_t r1, const void* x,
                                size_t x_row_bytes, int64_t B, float* y, int64_t ldy);

// The element type of a KV cache: F32, or F16 (llama.cpp's default: half the bytes a decode step reads from the
// cache, which at a depth of thousands of tokens rivals the weights). The attention kernels come in both.
enum class KvType { F32 = 0, F16 = 1 };
inline constexpr int kNumKvTypes = 2;
inline size_t kv_type_bytes(KvType t) { return t == KvType::F16 ? 2 : 4; }
// One query head against n_kv cached positions: out = softmax(q.K^T * scale) V, online softmax.
//   q: (head_dim) floats;  k, v: n_kv rows of the cache's type, row stride k_stride / v_stride elements;
//   out: (head_dim)
using AttentionFn = void (*)(const float* q, const void* k, size_t k_stride, const void* v, size_t v_stride, int n_kv,
                             int head_dim, float scale, float* out);
// nq query heads (rows q + i * q_stride) that share one KV head, against the same n_kv cached positions; out rows
// out + i * out_stride. A query's result is the same bits whatever nq and its place in the group.
using AttentionGroupFn = void (*)(const float* q, size_t q_stride, int nq, const void* k, size_t k_stride,
                                  const void* v, size_t v_stride, int n_kv, int head_dim, float scale, float* out,
                                  size_t out_stride);

struct KernelTable {
    const char* isa = "scalar";
    QuantizeRowFn quantize_row[kNumDTypes] = {};      // by activation dtype
    DequantizeRowFn dequantize_row[kNumDTypes] = {};  // by weight dtype
    VecDotFn vec_dot[kNumDTypes] = {};                // by weight dtype
    MatmulFn matmul[kNumDTypes] = {};                 // by weight dtype
    int pack_rows = 0;                                // 0: this table has no packed layouts
    RepackFn repack[kNumDTypes] = {};                 // by weight dtype, where a packed layout pays
    size_t (*packed_size)(DType t, int64_t rows, int64_t n) = nullptr;
    MatmulPackedFn matmul_packed[kNumDTypes] = {};

    // out[i] = x[i] / rms(x) * w[i]   (out may alias x)
    void (*rmsnorm)(float* out, const float* x, const float* w, int64_t n, float eps) = nullptr;
    // Rotate pairs of x (n_heads heads of head_dim floats; the first rot_dim of each head) to position pos.
    //   Pair i turns by freq_scale * pos * theta_base^(-2i/rot_dim) / freq_factors[i] (freq_factors may be
    //   null), the angle built by repeated multiplication as ggml builds it.
    //   neox=false rotates pairs (2i, 2i+1) (GGUF llama); neox=true pairs (i, i + rot_dim/2) (Gemma, Qwen).
    void (*rope)(float* x, int n_heads, int head_dim, int rot_dim, int pos, float theta_base, float freq_scale,
                 const float* freq_factors, bool neox) = nullptr;
    // Attention over a cache of each KvType (indexed by it). attention_group, where set and head_dim %
    // attention_group_dims == 0, is what the forward pass calls instead of attention() (for every token, so
    // results stay batch-invariant); nullptr: attention() per head. An F16 cache's result is the F32 kernel's
    // on the same values (each element widened to float as it is loaded).
    AttentionFn attention[kNumKvTypes] = {};
    AttentionGroupFn attention_group[kNumKvTypes] = {};
    int attention_group_dims = 0;
    // hb[i] = silu(hb[i]) * hb2[i]
    void (*swiglu)(float* hb, const float* hb2, int64_t n) = nullptr;
    // hb[i] = gelu_tanh(hb[i]) * hb2[i]   (Gemma's gated FFN)
    void (*geglu)(float* hb, const float* hb2, int64_t n) = nullptr;
    // x[i] += y[i]
    void (*add)(float* x, const float* y, int64_t n) = nullptr;

    // Probes of the limits a benchmark reads its speed against (strata bench runs them on every thread, in the
    // same run): decode streams its weights once per token, prefill is bound by the integer dots.
    //   read_stream: reads `bytes` (a multiple of 512, p 64-byte aligned) with this table's widest loads, the
    //     simplest loop that keeps the loads in flight; returns a checksum so the reads cannot be dropped.
    //   int8_dot_peak: `rounds` rounds of independent int8 dot-product instructions (the ones this table's
    //     quantized matmuls use: vpdpbusd, vpmaddubsw + vpmaddwd, sdot, ...), from registers; returns the int8
    //     multiply-adds done (with *sink set from the results so they cannot be dropped).
    uint64_t (*read_stream)(const void* p, size_t bytes) = nullptr;
    int64_t (*int8_dot_peak)(int64_t rounds, int32_t* sink) = nullptr;
};

enum class Isa { Scalar, Avx2, Avx512, Neon };
const char* isa_name(Isa isa);

// The best table this CPU runs. STRATA_ISA=scalar|avx2|avx512|neon in the environment caps the choice
// (so the AVX2 and scalar paths can be tested on an AVX-512 machine). Built once, immutable after.
const KernelTable& kernels();
// A specific table, or nullptr where this build or this CPU cannot run it (for tests and benchmarks).
const KernelTable* kernels_for(Isa isa);
// Every ISA this build and CPU can run, scalar first.
std::vector<Isa> available_isas();

}  // namespace strata
