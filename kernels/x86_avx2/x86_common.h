// Shared x86 SIMD helpers, included by the AVX2 and the AVX-512 translation units (each compiled with its own
// ISA flags). Everything here gets internal linkage in each includer: the includer defines STRATA_X86_NS (avx2 or
// avx512) and these headers open `namespace strata::STRATA_X86_NS { namespace {`, so no inline function compiled
// with AVX-512 flags can ever be picked by the linker for the AVX2 table (the ODR trap of per-file ISA flags).
//
// Rules for these headers and the ISA files: no std:: templates or inline functions from headers shared with other
// translation units (containers, algorithms, <cmath>'s overloads, dtype.h's inline helpers), only intrinsics, plain
// loops and C library calls. Such a function gets an out-of-line copy in each file where it is not inlined (always,
// in a -O0 build), and the linker keeps one of them: possibly this file's, with AVX-512 instructions in it, then
// called by the scalar code on a CPU without AVX-512.
#pragma once
#include <immintrin.h>

// GCC 12's AVX-512 intrinsic headers (_mm512_cast*128*512, _mm512_reduce_*) trip -Wuninitialized on their own
// deliberately undefined upper lanes; nothing of ours is uninitialized there.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "kernels/dtype.h"
#include "kernels/kernels.h"

#ifndef STRATA_X86_NS
#error "define STRATA_X86_NS (avx2 / avx512) before including the x86 kernel headers"
#endif
#if !defined(__AVX2__) || !defined(__FMA__) || !defined(__F16C__)
#error "x86 kernels need -mavx2 -mfma -mf16c on this file"
#endif

// VNNI (vpdpbusd / vpdpwssd) on 256-bit vectors: AVX512-VNNI + VL (the AVX-512 table).
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define STRATA_X86_VNNI 1
#else
#define STRATA_X86_VNNI 0
#endif

#define STRATA_INLINE inline __attribute__((always_inline))
// Fully unroll the small register-tile loops early: unrolled late (as -O3 does by itself), GCC keeps the
// accumulator arrays in memory and stores every accumulator on every iteration.
#define STRATA_UNROLL _Pragma("GCC unroll 16")

namespace strata::STRATA_X86_NS {
namespace {

// ---- scalar helpers ----------------------------------------------------------------------------------------
STRATA_INLINE float x86_h2f(f16_t h) { return _cvtsh_ss(h); }

// ---- horizontal sums -----------------------------------------------------------------------------------------
STRATA_INLINE float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
STRATA_INLINE int32_t hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}
STRATA_INLINE float hmax(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// ---- integer dots on 256 bits ----------------------------------------------------------------------------------
// acc + sum over groups of 4 of u8 * s8 (exact: the pair sums of maddubs cannot saturate for the ranges used here,
// u <= 63 or |u| <= 128 with |s| <= 127: 2 * 128 * 127 = 32512 < 32767).
STRATA_INLINE __m256i dot_u8s8(__m256i acc, __m256i u, __m256i s) {
#if STRATA_X86_VNNI
    return _mm256_dpbusd_epi32(acc, u, s);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}
// acc + pairwise int16 products summed into int32 (madd + add; one vpdpwssd with VNNI).
STRATA_INLINE __m256i dot_i16(__m256i acc, __m256i a, __m256i b) {
#if STRATA_X86_VNNI
    return _mm256_dpwssd_epi32(acc, a, b);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
#endif
}

// Bytes of activations (a chunk of tokens) one pass over the weight rows works on: small enough to stay in L2
// next to the row panel. The legacy-quant panels and the AVX-512 packed kernels chunk their tokens by it.
constexpr size_t kTokenChunkBytes = 384 * 1024;

// ---- per-thread scratch ----------------------------------------------------------------------------------------
// Kernels run on oneTBB worker threads; each thread keeps one growing 64-byte aligned buffer per purpose.
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
inline Scratch& scratch_panel() {
    static thread_local Scratch s;
    return s;
}

STRATA_INLINE size_t align64(size_t x) { return (x + 63) & ~size_t(63); }

}  // namespace
}  // namespace strata::STRATA_X86_NS
