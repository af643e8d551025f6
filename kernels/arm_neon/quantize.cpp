// NEON activation quantizers: F16, BF16, Q8_0, Q8_1, Q8_K. Bit-identical to the scalar reference
// (kernels/generic/quants.cpp): the same float operations in the same order (this file is compiled with
// -ffp-contract=off) and the same rounding rules: FCVTAS (to nearest, ties away from zero) is roundf for Q8_0 /
// Q8_1, FCVTNS (ties to even) is ggml's nearest_int for Q8_K, FCVTN rounds halves to nearest even as
// f32_to_f16 does. tests/test_kernels_simd.cpp checks the bytes.
#define STRATA_NEON_NS neon
#include "kernels/arm_neon/neon_common.h"

namespace strata::neon {
namespace {

void quantize_f16(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<f16_t*>(vy);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const float16x8_t h = vcvt_high_f16_f32(vcvt_f16_f32(vld1q_f32(x + i)), vld1q_f32(x + i + 4));
        vst1q_u16(y + i, vreinterpretq_u16_f16(h));
    }
    for (; i < n; ++i) y[i] = f32_to_f16(x[i]);
}

void quantize_bf16(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<bf16_t*>(vy);
    int64_t i = 0;
    const uint32x4_t abs_mask = vdupq_n_u32(0x7fffffffu), inf = vdupq_n_u32(0x7f800000u);
    const uint32x4_t round = vdupq_n_u32(0x7fffu), one = vdupq_n_u32(1), quiet = vdupq_n_u32(64);
    for (; i + 4 <= n; i += 4) {
        const uint32x4_t u = vreinterpretq_u32_f32(vld1q_f32(x + i));
        const uint32x4_t nan = vcgtq_u32(vandq_u32(u, abs_mask), inf);
        const uint32x4_t rounded = vshrq_n_u32(vaddq_u32(u, vaddq_u32(round, vandq_u32(vshrq_n_u32(u, 16), one))), 16);
        const uint32x4_t r = vbslq_u32(nan, vorrq_u32(vshrq_n_u32(u, 16), quiet), rounded);
        vst1_u16(y + i, vmovn_u32(r));
    }
    for (; i < n; ++i) y[i] = f32_to_bf16(x[i]);
}

// One block of 32: d = amax / 127, q = roundf(x / d) (as x * (1 / d)); for Q8_1 also s = sum(q) * d.
template <bool kQ8_1>
STRATA_INLINE void quantize_q8_block(const float* x, int8_t* qs, f16_t* d_out, f16_t* s_out) {
    float32x4_t v[8];
    float32x4_t amax = vdupq_n_f32(0.0f);
    STRATA_UNROLL for (int k = 0; k < 8; ++k) {
        v[k] = vld1q_f32(x + 4 * k);
        amax = vmaxq_f32(amax, vabsq_f32(v[k]));
    }
    const float d = vmaxvq_f32(amax) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    *d_out = f32_to_f16(d);
    int32x4_t q[8];
    STRATA_UNROLL for (int k = 0; k < 8; ++k) q[k] = vcvtaq_s32_f32(vmulq_n_f32(v[k], id));
    STRATA_UNROLL for (int k = 0; k < 8; k += 4) {
        const int16x8_t a = vcombine_s16(vqmovn_s32(q[k]), vqmovn_s32(q[k + 1]));
        const int16x8_t b = vcombine_s16(vqmovn_s32(q[k + 2]), vqmovn_s32(q[k + 3]));
        vst1q_s8(qs + 4 * k, vcombine_s8(vqmovn_s16(a), vqmovn_s16(b)));
    }
    if constexpr (kQ8_1) {
        int32x4_t s = vaddq_s32(vaddq_s32(q[0], q[1]), vaddq_s32(q[2], q[3]));
        s = vaddq_s32(s, vaddq_s32(vaddq_s32(q[4], q[5]), vaddq_s32(q[6], q[7])));
        *s_out = f32_to_f16(static_cast<float>(vaddvq_s32(s)) * d);
    }
}

void quantize_q8_0(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<block_q8_0*>(vy);
    for (int64_t i = 0; i < n / QK8_0; ++i) quantize_q8_block<false>(x + i * QK8_0, y[i].qs, &y[i].d, nullptr);
}

void quantize_q8_1(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<block_q8_1*>(vy);
    for (int64_t i = 0; i < n / QK8_1; ++i) quantize_q8_block<true>(x + i * QK8_1, y[i].qs, &y[i].d, &y[i].s);
}

void quantize_q8_K(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<block_q8_K*>(vy);
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        float32x4_t amaxv = vdupq_n_f32(0.0f);
        for (int k = 0; k < QK_K; k += 4) amaxv = vmaxq_f32(amaxv, vabsq_f32(vld1q_f32(x + k)));
        const float amax = vmaxvq_f32(amaxv);
        if (amax == 0.0f) {
            std::memset(&y[i], 0, sizeof(block_q8_K));
            continue;
        }
        // The reference keeps the first element of largest magnitude, with its sign.
        int first = 0;
        while (x[first] != amax && x[first] != -amax) ++first;
        const float iscale = -127.0f / x[first];
        for (int k = 0; k < QK_K; k += 16) {
            int32x4_t q[4];
            STRATA_UNROLL for (int l = 0; l < 4; ++l)
                q[l] = vminq_s32(vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + k + 4 * l), iscale)), vdupq_n_s32(127));
            const int16x8_t a = vcombine_s16(vqmovn_s32(q[0]), vqmovn_s32(q[1]));
            const int16x8_t b = vcombine_s16(vqmovn_s32(q[2]), vqmovn_s32(q[3]));
            const int8x16_t q8 = vcombine_s8(vqmovn_s16(a), vqmovn_s16(b));
            vst1q_s8(y[i].qs + k, q8);
            y[i].bsums[k / 16] = vaddlvq_s8(q8);  // from the stored bytes, as the reference sums them
        }
        y[i].d = 1.0f / iscale;
    }
}

}  // namespace

void fill_quantize(KernelTable& t) {
    auto q = [&](DType d, QuantizeRowFn f) { t.quantize_row[static_cast<uint32_t>(d)] = f; };
    q(DType::F16, quantize_f16);
    q(DType::BF16, quantize_bf16);
    q(DType::Q8_0, quantize_q8_0);
    q(DType::Q8_1, quantize_q8_1);
    q(DType::Q8_K, quantize_q8_K);
}

}  // namespace strata::neon
