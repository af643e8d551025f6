// Matmul of F32 / F16 / BF16 weights against activations of the same type. F16 / BF16 activations are converted
// to f32 once per call, a chunk of tokens at a time; weights are converted in registers (FCVTL for halves, a shift
// for bfloat16). Each (row, token) pair keeps two float32x4 accumulators (element i in lane i mod 8), summed at the
// end, then the n mod 8 tail in scalar: eight-lane partial sums, against the scalar reference's double
// accumulator the difference is within (n / 8 + c) u sum |w x|, the bound tests/test_kernels_simd.cpp checks.
#define STRATA_NEON_NS neon
#include "kernels/arm_neon/neon_common.h"

namespace strata::neon {
namespace {

enum class FloatW { F32, F16, BF16 };

template <FloatW W>
constexpr size_t w_bytes() {
    return W == FloatW::F32 ? 4 : 2;
}

// Eight weights from p as two float vectors.
template <FloatW W>
STRATA_INLINE void load8(const void* p, float32x4_t& lo, float32x4_t& hi) {
    if constexpr (W == FloatW::F32) {
        lo = vld1q_f32(static_cast<const float*>(p));
        hi = vld1q_f32(static_cast<const float*>(p) + 4);
    } else if constexpr (W == FloatW::F16) {
        const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(static_cast<const uint16_t*>(p)));
        lo = vcvt_f32_f16(vget_low_f16(h));
        hi = vcvt_high_f32_f16(h);
    } else {
        const uint16x8_t h = vld1q_u16(static_cast<const uint16_t*>(p));
        lo = vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h), 16));
        hi = vreinterpretq_f32_u32(vshll_high_n_u16(h, 16));
    }
}

template <FloatW W>
STRATA_INLINE float load1(const void* p, int64_t i) {
    if constexpr (W == FloatW::F32) return static_cast<const float*>(p)[i];
    if constexpr (W == FloatW::F16) return neon_h2f(static_cast<const f16_t*>(p)[i]);
    const uint32_t u = static_cast<uint32_t>(static_cast<const bf16_t*>(p)[i]) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

// x: f32 activation rows (x_row_bytes apart), w: rows of W.
template <FloatW W>
struct FloatTiles {
    template <int RM, int RN>
    static void tile(const uint8_t* w, size_t w_row_bytes, const uint8_t* x, size_t x_row_bytes, int64_t n, float* y,
                     int64_t ldy) {
        float32x4_t a0[RM][RN], a1[RM][RN];
        STRATA_UNROLL for (int r = 0; r < RM; ++r)
            STRATA_UNROLL for (int j = 0; j < RN; ++j) a0[r][j] = a1[r][j] = vdupq_n_f32(0.0f);
        auto xrow = [&](int j) { return reinterpret_cast<const float*>(x + j * x_row_bytes); };
        const int64_t nv = n / 8 * 8;
        for (int64_t k = 0; k < nv; k += 8) {
            float32x4_t w0[RM], w1[RM];
            STRATA_UNROLL for (int r = 0; r < RM; ++r) load8<W>(w + r * w_row_bytes + k * w_bytes<W>(), w0[r], w1[r]);
            STRATA_UNROLL for (int j = 0; j < RN; ++j) {
                const float32x4_t x0 = vld1q_f32(xrow(j) + k), x1 = vld1q_f32(xrow(j) + k + 4);
                STRATA_UNROLL for (int r = 0; r < RM; ++r) {
                    a0[r][j] = vfmaq_f32(a0[r][j], w0[r], x0);
                    a1[r][j] = vfmaq_f32(a1[r][j], w1[r], x1);
                }
            }
        }
        STRATA_UNROLL for (int r = 0; r < RM; ++r)
            STRATA_UNROLL for (int j = 0; j < RN; ++j) {
                float s = vaddvq_f32(vaddq_f32(a0[r][j], a1[r][j]));
                for (int64_t i = nv; i < n; ++i) s += load1<W>(w + r * w_row_bytes, i) * xrow(j)[i];
                y[j * ldy + r] = s;
            }
    }
};

// F16 / BF16 activations are converted to f32 this many bytes of f32 at a time.
constexpr size_t kConvertBytes = 1 << 20;

template <FloatW W>
void matmul_float(const void* w, size_t w_row_bytes, int64_t n, int64_t r0, int64_t r1, const void* x,
                  size_t x_row_bytes, int64_t B, float* y, int64_t ldy) {
    const auto* wb = static_cast<const uint8_t*>(w);
    const auto* xb = static_cast<const uint8_t*>(x);
    // 4 rows x 1 token for decode, 4 x 2 otherwise: 16 accumulators + 8 weight vectors + 2 activation vectors.
    if constexpr (W == FloatW::F32) {
        run_tiles<FloatTiles<W>, 4, 4, 2>(wb, w_row_bytes, n, r0, r1, xb, x_row_bytes, B, y, ldy);
    } else {
        if (r1 <= r0 || B <= 0) return;
        const size_t row_f32 = static_cast<size_t>(n) * 4;
        int64_t chunk = static_cast<int64_t>(kConvertBytes / row_f32);
        if (chunk < 1) chunk = 1;
        for (int64_t t0 = 0; t0 < B; t0 += chunk) {
            const int64_t nt = B - t0 < chunk ? B - t0 : chunk;
            auto* conv = static_cast<float*>(scratch_tokens().get(static_cast<size_t>(nt) * row_f32));
            for (int64_t b = 0; b < nt; ++b) {
                const uint8_t* src = xb + (t0 + b) * x_row_bytes;
                float* dst = conv + b * n;
                int64_t i = 0;
                for (; i + 8 <= n; i += 8) {
                    float32x4_t lo, hi;
                    load8<W>(src + i * 2, lo, hi);
                    vst1q_f32(dst + i, lo);
                    vst1q_f32(dst + i + 4, hi);
                }
                for (; i < n; ++i) dst[i] = load1<W>(src, i);
            }
            run_tiles<FloatTiles<W>, 4, 4, 2>(wb, w_row_bytes, n, r0, r1, reinterpret_cast<const uint8_t*>(conv),
                                              row_f32, nt, y + t0 * ldy, ldy);
        }
    }
}

template <FloatW W>
float vec_dot_float(int64_t n, const void* w, const void* x) {
    float out = 0.0f;
    matmul_float<W>(w, 0, n, 0, 1, x, static_cast<size_t>(n) * w_bytes<W>(), 1, &out, 1);
    return out;
}

template <FloatW W>
void set_float(KernelTable& t, DType d) {
    t.matmul[static_cast<uint32_t>(d)] = &matmul_float<W>;
    t.vec_dot[static_cast<uint32_t>(d)] = &vec_dot_float<W>;
}

}  // namespace

void fill_float_matmuls(KernelTable& t) {
    set_float<FloatW::F32>(t, DType::F32);
    set_float<FloatW::F16>(t, DType::F16);
    set_float<FloatW::BF16>(t, DType::BF16);
}

}  // namespace strata::neon
