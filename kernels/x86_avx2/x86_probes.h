// The probes of KernelTable (read_stream, int8_dot_peak) for the x86 tables, included by avx2.cpp (256-bit loads;
// vpmaddubsw + vpmaddwd, or vpdpbusd where the file has VNNI) and avx512.cpp (512-bit loads, vpdpbusd): the
// widest loads and the int8 dot instruction that table's kernels use.
#pragma once
#include "kernels/x86_avx2/x86_common.h"

namespace strata::STRATA_X86_NS {
namespace {

#if defined(__AVX512F__)
using ProbeVec = __m512i;
STRATA_INLINE ProbeVec probe_load(const void* p) { return _mm512_load_si512(p); }
STRATA_INLINE ProbeVec probe_add(ProbeVec a, ProbeVec b) { return _mm512_add_epi64(a, b); }
STRATA_INLINE ProbeVec probe_set1(int32_t v) { return _mm512_set1_epi32(v); }
STRATA_INLINE ProbeVec probe_dot(ProbeVec acc, ProbeVec u, ProbeVec s) { return _mm512_dpbusd_epi32(acc, u, s); }
#else
using ProbeVec = __m256i;
STRATA_INLINE ProbeVec probe_load(const void* p) { return _mm256_load_si256(static_cast<const __m256i*>(p)); }
STRATA_INLINE ProbeVec probe_add(ProbeVec a, ProbeVec b) { return _mm256_add_epi64(a, b); }
STRATA_INLINE ProbeVec probe_set1(int32_t v) { return _mm256_set1_epi32(v); }
STRATA_INLINE ProbeVec probe_dot(ProbeVec acc, ProbeVec u, ProbeVec s) { return dot_u8s8(acc, u, s); }
#endif

// The lanes summed as unsigned (wrapping) 64-bit numbers, for either width: a checksum of random bytes overflows,
// which _mm512_reduce_add_epi64's signed adds make undefined (UBSan reported it).
STRATA_INLINE uint64_t probe_total(ProbeVec a) {
    uint64_t v[sizeof(ProbeVec) / sizeof(uint64_t)];
    std::memcpy(v, &a, sizeof(v));
    uint64_t sum = 0;
    for (uint64_t x : v) sum += x;
    return sum;
}

// 512 bytes per iteration into 8 accumulators: the loads, nothing else.
uint64_t probe_read_stream(const void* p, size_t bytes) {
    constexpr size_t W = sizeof(ProbeVec), kStep = 512;
    const auto* b = static_cast<const uint8_t*>(p);
    ProbeVec a[8];
    STRATA_UNROLL for (int k = 0; k < 8; ++k) a[k] = probe_set1(0);
    for (size_t i = 0; i < bytes; i += kStep)
        STRATA_UNROLL for (size_t k = 0; k < kStep / W; ++k) a[k % 8] = probe_add(a[k % 8], probe_load(b + i + k * W));
    STRATA_UNROLL for (int k = 1; k < 8; ++k) a[0] = probe_add(a[0], a[k]);
    return probe_total(a[0]);
}

// 8 independent accumulator chains (enough to cover the dot's latency at full throughput).
int64_t probe_int8_dot_peak(int64_t rounds, int32_t* sink) {
    constexpr int kChains = 8;
    const ProbeVec u = probe_set1(0x01020304 ^ *sink), s = probe_set1(0x05060708 + *sink);
    ProbeVec acc[kChains];
    STRATA_UNROLL for (int k = 0; k < kChains; ++k) acc[k] = probe_set1(k);
    for (int64_t r = 0; r < rounds; ++r)
        STRATA_UNROLL for (int k = 0; k < kChains; ++k) acc[k] = probe_dot(acc[k], u, s);
    STRATA_UNROLL for (int k = 1; k < kChains; ++k) acc[0] = probe_add(acc[0], acc[k]);
    *sink = static_cast<int32_t>(probe_total(acc[0]));
    return rounds * kChains * static_cast<int64_t>(sizeof(ProbeVec));
}

STRATA_INLINE void fill_probes(KernelTable& t) {
    t.read_stream = probe_read_stream;
    t.int8_dot_peak = probe_int8_dot_peak;
}

}  // namespace
}  // namespace strata::STRATA_X86_NS
