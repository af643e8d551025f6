// AVX2 activation quantizers: F16, BF16, Q8_0, Q8_1, Q8_K. Bit-identical to the scalar reference
// (kernels/generic/quants.cpp): the same float operations in the same order, and the same rounding rules
// (roundf's half-away-from-zero for Q8_0/Q8_1, nearest-even for Q8_K, F16C's nearest-even for halves), so greedy
// outputs do not change with the ISA. tests/test_kernels_simd.cpp checks the bytes.
#define STRATA_X86_NS avx2
#include "kernels/x86_avx2/x86_common.h"

namespace strata::avx2 {
namespace {

// roundf() on 8 lanes: truncate, then step away from zero when the (exact) fraction is >= 0.5.
STRATA_INLINE __m256 round_half_away(__m256 v) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 frac = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t));
    const __m256 away = _mm256_or_ps(_mm256_and_ps(v, sign), _mm256_set1_ps(1.0f));
    const __m256 ge = _mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    return _mm256_add_ps(t, _mm256_and_ps(ge, away));
}

// Four vectors of 8 int32 (each in [-128, 127]) into 32 int8 in element order.
STRATA_INLINE __m256i pack_i32x32_to_i8(__m256i a, __m256i b, __m256i c, __m256i d) {
    const __m256i ab = _mm256_packs_epi32(a, b);  // a0-3 b0-3 | a4-7 b4-7
    const __m256i cd = _mm256_packs_epi32(c, d);
    const __m256i v = _mm256_packs_epi16(ab, cd);  // dwords: a0 b0 c0 d0 | a1 b1 c1 d1
    return _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

void quantize_f16(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<f16_t*>(vy);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; ++i) y[i] = f32_to_f16(x[i]);
}

void quantize_bf16(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<bf16_t*>(vy);
    int64_t i = 0;
    const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
    for (; i + 8 <= n; i += 8) {
        const __m256i u = _mm256_castps_si256(_mm256_loadu_ps(x + i));
        const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, abs_mask), inf);
        const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
        const __m256i rounded =
            _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), lsb)), 16);
        const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(64));
        const __m256i r = _mm256_blendv_epi8(rounded, quiet, nan);
        const __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), _mm256_castsi256_si128(p));
    }
    for (; i < n; ++i) y[i] = f32_to_bf16(x[i]);
}

template <bool kQ8_1>
STRATA_INLINE void quantize_q8_block(const float* x, int8_t* qs, f16_t* d_out, f16_t* s_out) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps();
    for (int k = 0; k < 4; ++k) {
        v[k] = _mm256_loadu_ps(x + 8 * k);
        amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[k]));
    }
    const float d = hmax(amax) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    *d_out = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
    const __m256 mul = _mm256_set1_ps(id);
    __m256i q[4];
    for (int k = 0; k < 4; ++k) q[k] = _mm256_cvttps_epi32(round_half_away(_mm256_mul_ps(v[k], mul)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(qs), pack_i32x32_to_i8(q[0], q[1], q[2], q[3]));
    if constexpr (kQ8_1) {
        const int sum = hsum_i32(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
        *s_out = _cvtss_sh(static_cast<float>(sum) * d, _MM_FROUND_TO_NEAREST_INT);
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

// Sums of 8 vectors of int32 lanes: out[j] = sum of t[j]'s lanes.
STRATA_INLINE __m256i hsum8_i32(const __m256i t[8]) {
    const __m256i c = _mm256_hadd_epi32(_mm256_hadd_epi32(t[0], t[1]), _mm256_hadd_epi32(t[2], t[3]));
    const __m256i d = _mm256_hadd_epi32(_mm256_hadd_epi32(t[4], t[5]), _mm256_hadd_epi32(t[6], t[7]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(c, d, 0x20), _mm256_permute2x128_si256(c, d, 0x31));
}

void quantize_q8_K(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<block_q8_K*>(vy);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        __m256 amaxv = _mm256_setzero_ps();
        for (int k = 0; k < QK_K; k += 8) amaxv = _mm256_max_ps(amaxv, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + k)));
        const float amax = hmax(amaxv);
        if (amax == 0.0f) {
            std::memset(&y[i], 0, sizeof(block_q8_K));
            continue;
        }
        // The reference keeps the first element of largest magnitude, with its sign.
        const __m256 target = _mm256_set1_ps(amax);
        int first = 0;
        for (int k = 0; k < QK_K; k += 8) {
            const int m = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + k)), target,
                                                           _CMP_EQ_OQ));
            if (m) {
                first = k + __builtin_ctz(static_cast<unsigned>(m));
                break;
            }
        }
        const float iscale = -127.0f / x[first];
        const __m256 mul = _mm256_set1_ps(iscale);
        __m256i t[16];  // t[j]: lanes summing to group j's 16 quants
        for (int k = 0; k < QK_K; k += 32) {
            __m256i q[4];
            // nearest-even (MXCSR default) == ggml's nearest_int for |v| < 2^22; packs saturate at 127 == min(127, .)
            for (int l = 0; l < 4; ++l) q[l] = _mm256_cvtps_epi32(_mm256_mul_ps(mul, _mm256_loadu_ps(x + k + 8 * l)));
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].qs + k), pack_i32x32_to_i8(q[0], q[1], q[2], q[3]));
            // Sums from the saturated bytes, as the reference sums its stored int8 values.
            const __m256i q8 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].qs + k));
            const __m256i lo = _mm256_cvtepi8_epi32(_mm256_castsi256_si128(q8));
            const __m256i lo2 = _mm256_cvtepi8_epi32(_mm_srli_si128(_mm256_castsi256_si128(q8), 8));
            const __m256i hi = _mm256_cvtepi8_epi32(_mm256_extracti128_si256(q8, 1));
            const __m256i hi2 = _mm256_cvtepi8_epi32(_mm_srli_si128(_mm256_extracti128_si256(q8, 1), 8));
            t[k / 16] = _mm256_add_epi32(lo, lo2);
            t[k / 16 + 1] = _mm256_add_epi32(hi, hi2);
        }
        const __m256i s0 = hsum8_i32(t), s1 = hsum8_i32(t + 8);
        const __m256i s16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(s0, s1), 0xD8);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].bsums), s16);
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

}  // namespace strata::avx2
