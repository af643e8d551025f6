// Matmul of F32 / F16 / BF16 weights against activations of the same type (converted once per call to f32).
//
// Loop order as the K-quants': for each group of RM rows, for each chunk of KC elements, every tile of RN tokens
// loads its float-vector accumulators from memory, runs the chunk with one FMA per (row, token, vector), and stores
// them back; the chunk of activations (B x KC floats) stays in cache across the row groups' tiles, and the weights
// stream row group by row group with the next group prefetched. Sums are lane-wise partial sums in float (the
// scalar reference sums in double): the difference is bounded by (n / lanes + c) u sum |w x|.
#pragma once
#include "kernels/x86_avx2/x86_common.h"

namespace strata::STRATA_X86_NS {
namespace {

enum class FloatW { F32, F16, BF16 };

struct VF256 {
    using F = __m256;
    static constexpr int N = 8;
    static STRATA_INLINE F zero() { return _mm256_setzero_ps(); }
    static STRATA_INLINE F load(const float* p) { return _mm256_loadu_ps(p); }
    static STRATA_INLINE void store(float* p, F v) { _mm256_storeu_ps(p, v); }
    static STRATA_INLINE F fmadd(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
    static STRATA_INLINE float sum(F v) { return hsum(v); }
    template <FloatW W>
    static STRATA_INLINE F load_w(const void* p) {
        if constexpr (W == FloatW::F32) return _mm256_loadu_ps(static_cast<const float*>(p));
        const __m128i h = _mm_loadu_si128(static_cast<const __m128i*>(p));
        if constexpr (W == FloatW::F16) return _mm256_cvtph_ps(h);
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
};

#if defined(__AVX512F__)
struct VF512 {
    using F = __m512;
    static constexpr int N = 16;
    static STRATA_INLINE F zero() { return _mm512_setzero_ps(); }
    static STRATA_INLINE F load(const float* p) { return _mm512_loadu_ps(p); }
    static STRATA_INLINE void store(float* p, F v) { _mm512_storeu_ps(p, v); }
    static STRATA_INLINE F fmadd(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
    static STRATA_INLINE float sum(F v) { return _mm512_reduce_add_ps(v); }
    template <FloatW W>
    static STRATA_INLINE F load_w(const void* p) {
        if constexpr (W == FloatW::F32) return _mm512_loadu_ps(static_cast<const float*>(p));
        const __m256i h = _mm256_loadu_si256(static_cast<const __m256i*>(p));
        if constexpr (W == FloatW::F16) return _mm512_cvtph_ps(h);
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
};
#endif

template <FloatW W>
constexpr size_t float_w_bytes() {
    return W == FloatW::F32 ? 4 : 2;
}

template <FloatW W>
STRATA_INLINE float float_w_scalar(const void* p, int64_t i) {
    if constexpr (W == FloatW::F32) return static_cast<const float*>(p)[i];
    if constexpr (W == FloatW::F16) return x86_h2f(static_cast<const f16_t*>(p)[i]);
    // (not dtype.h's inline bf16_to_f32: an inline function compiled here with AVX-512 flags must not be
    // what the linker keeps for every translation unit)
    const uint32_t u = static_cast<uint32_t>(static_cast<const bf16_t*>(p)[i]) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

// One chunk [k0, k1) (whole vectors) of an RM x RN tile; accumulators in memory (acc_row_stride floats per row,
// VF::N per token).
template <class VF, FloatW W, int RM, int RN>
void float_tile(const uint8_t* w, size_t w_row_bytes, const float* x, size_t x_stride, int64_t k0, int64_t k1,
                float* acc, size_t acc_row_stride) {
    using F = typename VF::F;
    F c[RM][RN];
    STRATA_UNROLL for (int r = 0; r < RM; ++r)
        STRATA_UNROLL for (int j = 0; j < RN; ++j) c[r][j] = VF::load(acc + r * acc_row_stride + j * VF::N);
    for (int64_t k = k0; k < k1; k += VF::N) {
        F wv[RM];
        STRATA_UNROLL for (int r = 0; r < RM; ++r)
            wv[r] = VF::template load_w<W>(w + r * w_row_bytes + static_cast<size_t>(k) * float_w_bytes<W>());
        STRATA_UNROLL for (int j = 0; j < RN; ++j) {
            const F xv = VF::load(x + j * x_stride + k);
            STRATA_UNROLL for (int r = 0; r < RM; ++r) c[r][j] = VF::fmadd(wv[r], xv, c[r][j]);
        }
    }
    STRATA_UNROLL for (int r = 0; r < RM; ++r)
        STRATA_UNROLL for (int j = 0; j < RN; ++j) VF::store(acc + r * acc_row_stride + j * VF::N, c[r][j]);
}

using FloatTileFn = void (*)(const uint8_t*, size_t, const float*, size_t, int64_t, int64_t, float*, size_t);

template <class VF, FloatW W, int MaxM, int MaxN, int M = 1, int N = 1>
FloatTileFn float_pick(int rm, int rn) {
    if constexpr (M > MaxM) {
        return nullptr;
    } else if constexpr (N > MaxN) {
        return float_pick<VF, W, MaxM, MaxN, M + 1, 1>(rm, rn);
    } else {
        if (rm == M && rn == N) return &float_tile<VF, W, M, N>;
        return float_pick<VF, W, MaxM, MaxN, M, N + 1>(rm, rn);
    }
}

constexpr int64_t kFloatChunk = 512;  // elements per chunk (B x 2 KiB of activations)

constexpr size_t kFloatTokenBytes = 1 << 20;  // converted activations per token chunk

template <class VF, FloatW W, int RM, int RN>
void matmul_float(const void* w, size_t w_row_bytes, int64_t n, int64_t r0, int64_t r1, const void* x,
                  size_t x_row_bytes, int64_t B, float* y, int64_t ldy) {
    if (r1 <= r0 || B <= 0) return;
    const int64_t nv = n / VF::N * VF::N;  // the vector part; the rest is a scalar tail per (row, token)
    // Tokens per chunk: F16 / BF16 activations are converted to f32 a chunk at a time (F32 rows are used in place).
    int64_t TB = B;
    if constexpr (W != FloatW::F32) {
        TB = static_cast<int64_t>(kFloatTokenBytes / (static_cast<size_t>(n) * 4));
        TB = TB < RN ? RN : TB / RN * RN;
        if (TB > B) TB = B;
    }
    const size_t acc_row_stride = static_cast<size_t>(TB) * VF::N;
    float* acc = static_cast<float*>(scratch_panel().get(RM * acc_row_stride * 4));
    const auto* wb = static_cast<const uint8_t*>(w);
    for (int64_t t0 = 0; t0 < B; t0 += TB) {
        const int64_t nt = B - t0 < TB ? B - t0 : TB;
        const uint8_t* xt = static_cast<const uint8_t*>(x) + t0 * x_row_bytes;
        const float* xf;
        size_t x_stride;
        if constexpr (W == FloatW::F32) {
            xf = reinterpret_cast<const float*>(xt);
            x_stride = x_row_bytes / 4;
        } else {
            x_stride = static_cast<size_t>(n);
            auto* conv = static_cast<float*>(scratch_tokens().get(static_cast<size_t>(nt) * x_stride * 4));
            for (int64_t b = 0; b < nt; ++b) {
                const auto* src = reinterpret_cast<const uint16_t*>(xt + b * x_row_bytes);
                float* dst = conv + b * x_stride;
                int64_t i = 0;
                for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, VF256::load_w<W>(src + i));
                for (; i < n; ++i) dst[i] = float_w_scalar<W>(src, i);
            }
            xf = conv;
        }
        for (int64_t r = r0; r < r1; r += RM) {
            const int rm = static_cast<int>(r1 - r < RM ? r1 - r : RM);
            std::memset(acc, 0, RM * acc_row_stride * 4);
            const FloatTileFn full = float_pick<VF, W, RM, RN>(rm, RN);
            const uint8_t* wr = wb + r * w_row_bytes;
            for (int64_t k0 = 0; k0 < nv; k0 += kFloatChunk) {
                const int64_t k1 = nv - k0 < kFloatChunk ? nv : k0 + kFloatChunk;
                // This chunk of the next row group, on its way while this one computes; not in decode (one
                // or two tokens), where the hardware prefetcher alone read more (Zen 4, one thread: F16 and
                // BF16 at 13 GB/s with the prefetches, 18-19 without; the read probe 24-27).
                for (int rr = 0; rr < (nt > 2 ? rm : 0); ++rr) {
                    const char* p =
                        reinterpret_cast<const char*>(wr + (rr + RM) * w_row_bytes) + k0 * float_w_bytes<W>();
                    for (int64_t off = 0; off < (k1 - k0) * static_cast<int64_t>(float_w_bytes<W>()); off += 64)
                        _mm_prefetch(p + off, _MM_HINT_T0);
                }
                for (int64_t j = 0; j < nt; j += RN) {
                    const int rn = static_cast<int>(nt - j < RN ? nt - j : RN);
                    const FloatTileFn fn = rn == RN ? full : float_pick<VF, W, RM, RN>(rm, rn);
                    fn(wr, w_row_bytes, xf + j * x_stride, x_stride, k0, k1, acc + j * VF::N, acc_row_stride);
                }
            }
            for (int rr = 0; rr < rm; ++rr) {
                const uint8_t* wrow = wr + rr * w_row_bytes;
                for (int64_t j = 0; j < nt; ++j) {
                    float s = VF::sum(VF::load(acc + rr * acc_row_stride + j * VF::N));
                    const float* xr = xf + j * x_stride;
                    for (int64_t i = nv; i < n; ++i) s += float_w_scalar<W>(wrow, i) * xr[i];
                    y[(t0 + j) * ldy + r + rr] = s;
                }
            }
        }
    }
}

template <class VF, FloatW W>
float vec_dot_float(int64_t n, const void* w, const void* x) {
    float out = 0.0f;
    matmul_float<VF, W, 1, 1>(w, 0, n, 0, 1, x, static_cast<size_t>(n) * float_w_bytes<W>(), 1, &out, 1);
    return out;
}

}  // namespace
}  // namespace strata::STRATA_X86_NS
