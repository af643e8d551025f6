// Shared NEON helpers. Included by the plain NEON translation units (namespace strata::neon, base Armv8-A: NEON is
// part of every AArch64 CPU) and by the dotprod one (namespace strata::neon_dotprod, compiled with
// -march=armv8.2-a+dotprod: GCC's vdotq_s32 wants the 8.2 base, which also brings LSE atomics), which define
// STRATA_NEON_NS first. As in kernels/x86_avx2/x86_common.h, everything here has internal linkage in each
// includer (`namespace strata::STRATA_NEON_NS { namespace {`), and these headers use intrinsics, plain loops and C
// library calls only: no inline function from a header shared with other translation units, whose out-of-line copy
// compiled with +dotprod could be the one the linker keeps for a CPU without it.
//
// The files are compiled with -ffp-contract=off (CMakeLists.txt): GCC's vmulq_f32 / vaddq_f32 are plain vector
// operators it may otherwise fuse, and the quantizers must do the scalar reference's roundings exactly. Wherever a
// fused multiply-add is wanted it is spelled vfmaq_f32.
#pragma once
#include <arm_neon.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "kernels/dtype.h"
#include "kernels/kernels.h"

#ifndef STRATA_NEON_NS
#error "define STRATA_NEON_NS (neon / neon_dotprod) before including the NEON kernel headers"
#endif

// sdot / udot (Armv8.2 dotprod, optional from 8.2, mandatory from 8.4): 16 int8 products summed into 4 int32 lanes.
#if defined(__ARM_FEATURE_DOTPROD)
#define STRATA_NEON_DOTPROD 1
#else
#define STRATA_NEON_DOTPROD 0
#endif

#define STRATA_INLINE inline __attribute__((always_inline))
#define STRATA_UNROLL _Pragma("GCC unroll 16")

namespace strata::STRATA_NEON_NS {
namespace {

// ---- conversions ---------------------------------------------------------------------------------------------------
// Half -> float is exact; FCVTL is base AArch64 (no +fp16 needed, that one is for half arithmetic).
STRATA_INLINE float neon_h2f(f16_t h) { return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0); }

// Four halves, each `stride` bytes apart (the d of four consecutive blocks), as floats.
STRATA_INLINE float32x4_t h2f_x4(const f16_t* h, size_t stride) {
    const auto* p = reinterpret_cast<const uint8_t*>(h);
    uint16x4_t v = vdup_n_u16(0);
    v = vld1_lane_u16(reinterpret_cast<const uint16_t*>(p), v, 0);
    v = vld1_lane_u16(reinterpret_cast<const uint16_t*>(p + stride), v, 1);
    v = vld1_lane_u16(reinterpret_cast<const uint16_t*>(p + 2 * stride), v, 2);
    v = vld1_lane_u16(reinterpret_cast<const uint16_t*>(p + 3 * stride), v, 3);
    return vcvt_f32_f16(vreinterpret_f16_u16(v));
}

// ---- integer dots ----------------------------------------------------------------------------------------------------
// acc + the 16 products w[i] * a[i], spread over the 4 lanes. Exact for any int8 inputs on both paths; the lanes
// the products land in differ (sdot: 4 consecutive bytes per lane; vmull + vpadal: pairs from both halves), so
// callers only ever use whole-vector totals (reduce4 / vaddvq), which are identical on both paths.
STRATA_INLINE int32x4_t dot_s8(int32x4_t acc, int8x16_t w, int8x16_t a) {
#if STRATA_NEON_DOTPROD
    return vdotq_s32(acc, w, a);
#else
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(w), vget_low_s8(a)));  // |w a| <= 2^14: int16 products are exact
    return vpadalq_s16(acc, vmull_high_s8(w, a));
#endif
}

// Lane i <- the total of p_i's four lanes.
STRATA_INLINE int32x4_t reduce4(int32x4_t p0, int32x4_t p1, int32x4_t p2, int32x4_t p3) {
    return vpaddq_s32(vpaddq_s32(p0, p1), vpaddq_s32(p2, p3));
}

// ---- per-thread scratch ----------------------------------------------------------------------------------------------
// Kernels run on oneTBB worker threads; each thread keeps one growing 64-byte aligned buffer.
struct Scratch {
    void* p = nullptr;
    size_t size = 0;
    ~Scratch() { std::free(p); }
    void* get(size_t bytes) {
        if (bytes > size) {
            std::free(p);
            size = (bytes + 4095) & ~size_t(4095);
            p = std::aligned_alloc(64, size);
            if (!p) std::abort();
        }
        return p;
    }
};
inline Scratch& scratch_tokens() {
    static thread_local Scratch s;
    return s;
}

// ---- register tiles ------------------------------------------------------------------------------------------------
// Every matmul here is a set of register tiles: RM weight rows x RN tokens, each (row, token) pair with its own
// accumulators that see the same operations in the same order whatever the tile's shape. A (row, token) result is
// thus bit-identical for any batch size, token position and row range (the forward pass relies on it: a prompt in
// one batch and the same prompt token by token must give the same logits).
//   w: RM rows of w_row_bytes;  x: RN activation rows of x_row_bytes;  y[j * ldy + r] for r < RM, j < RN
using TileFn = void (*)(const uint8_t* w, size_t w_row_bytes, const uint8_t* x, size_t x_row_bytes, int64_t n,
                        float* y, int64_t ldy);

// Family::tile<M, N> for the shape rm x rn (1 <= rm <= MaxM, 1 <= rn <= MaxN).
template <class Family, int MaxM, int MaxN, int M = 1, int N = 1>
TileFn pick_tile(int rm, int rn) {
    if constexpr (M > MaxM) {
        return nullptr;
    } else if constexpr (N > MaxN) {
        return pick_tile<Family, MaxM, MaxN, M + 1, 1>(rm, rn);
    } else {
        if (rm == M && rn == N) return &Family::template tile<M, N>;
        return pick_tile<Family, MaxM, MaxN, M, N + 1>(rm, rn);
    }
}

// Bytes of activations per token chunk: a chunk stays in L2 while every row tile passes over it.
constexpr size_t kTokenChunkBytes = 256 * 1024;

// Rows [r0, r1) x B tokens: tiles of kDecodeRows x 1 for one token (decode: four weight streams side by side),
// RM x RN otherwise, tokens in chunks of about kTokenChunkBytes.
template <class Family, int kDecodeRows, int RM, int RN>
void run_tiles(const uint8_t* w, size_t w_row_bytes, int64_t n, int64_t r0, int64_t r1, const uint8_t* x,
               size_t x_row_bytes, int64_t B, float* y, int64_t ldy) {
    if (r1 <= r0 || B <= 0) return;
    constexpr int kMaxM = kDecodeRows > RM ? kDecodeRows : RM;
    const int tm = B == 1 ? kDecodeRows : RM, tn = B == 1 ? 1 : RN;
    int64_t chunk = x_row_bytes ? static_cast<int64_t>(kTokenChunkBytes / x_row_bytes) / tn * tn : B;
    if (chunk < tn) chunk = tn;
    const TileFn full = pick_tile<Family, kMaxM, RN>(tm, tn);
    for (int64_t t0 = 0; t0 < B; t0 += chunk) {
        const int64_t nt = B - t0 < chunk ? B - t0 : chunk;
        for (int64_t r = r0; r < r1; r += tm) {
            const int rm = static_cast<int>(r1 - r < tm ? r1 - r : tm);
            const uint8_t* wr = w + r * w_row_bytes;
            for (int64_t j = t0; j < t0 + nt; j += tn) {
                const int rn = static_cast<int>(t0 + nt - j < tn ? t0 + nt - j : tn);
                const TileFn fn = rm == tm && rn == tn ? full : pick_tile<Family, kMaxM, RN>(rm, rn);
                fn(wr, w_row_bytes, x + j * x_row_bytes, x_row_bytes, n, y + j * ldy + r, ldy);
            }
        }
    }
}

}  // namespace
}  // namespace strata::STRATA_NEON_NS
