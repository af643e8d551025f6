// Vector-width policies for the quantized matmuls: V256 (AVX2, or AVX-512VL+VNNI where the includer has it) and
// V512 (AVX-512 with VNNI). A "group" is the KB 32-element blocks one integer vector holds.
#pragma once
#include "kernels/x86_avx2/x86_common.h"

namespace strata::STRATA_X86_NS {
namespace {

struct V256 {
    using I = __m256i;
    using F = __m256;
    static constexpr int KB = 1;              // 32-element blocks per vector
    static constexpr bool kHoistScale = false;  // a broadcast load is free: re-load the row scale per pair
    static STRATA_INLINE I load_i(const void* p) { return _mm256_load_si256(static_cast<const __m256i*>(p)); }
    static STRATA_INLINE I zero_i() { return _mm256_setzero_si256(); }
    static STRATA_INLINE F zero_f() { return _mm256_setzero_ps(); }
    // KB floats, each broadcast over its block's lanes.
    static STRATA_INLINE F scale(const float* p) { return _mm256_broadcast_ss(p); }
    // KB int32, each in the first lane of its block's lanes (only the lane sum of a block matters).
    static STRATA_INLINE I corr(const int32_t* p) { return _mm256_zextsi128_si256(_mm_cvtsi32_si128(*p)); }
    static STRATA_INLINE I dot(I acc, I u, I s) { return dot_u8s8(acc, u, s); }
    // Signed weights without VNNI: |w| * (a with w's sign).
    static STRATA_INLINE I dot_signed(I acc, I wabs, I w, I a) { return dot_u8s8(acc, wabs, _mm256_sign_epi8(a, w)); }
    static STRATA_INLINE F cvt(I v) { return _mm256_cvtepi32_ps(v); }
    static STRATA_INLINE F mul(F a, F b) { return _mm256_mul_ps(a, b); }
    static STRATA_INLINE F fmadd(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
    static STRATA_INLINE float sum(F v) { return hsum(v); }
};

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
struct V512 {
    using I = __m512i;
    using F = __m512;
    static constexpr int KB = 2;
    static constexpr bool kHoistScale = true;  // building the two-block scale costs a permute: once per row
    static STRATA_INLINE I load_i(const void* p) { return _mm512_load_si512(p); }
    static STRATA_INLINE I zero_i() { return _mm512_setzero_si512(); }
    static STRATA_INLINE F zero_f() { return _mm512_setzero_ps(); }
    static STRATA_INLINE F scale(const float* p) {
        const __m512 two = _mm512_castps128_ps512(_mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(p))));
        return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1), two);
    }
    static STRATA_INLINE I corr(const int32_t* p) { return _mm512_maskz_expandloadu_epi32(0x0101, p); }
    static STRATA_INLINE I dot(I acc, I u, I s) { return _mm512_dpbusd_epi32(acc, u, s); }
    static STRATA_INLINE F cvt(I v) { return _mm512_cvtepi32_ps(v); }
    static STRATA_INLINE F mul(F a, F b) { return _mm512_mul_ps(a, b); }
    static STRATA_INLINE F fmadd(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
    static STRATA_INLINE float sum(F v) { return _mm512_reduce_add_ps(v); }
};
#endif

}  // namespace
}  // namespace strata::STRATA_X86_NS
