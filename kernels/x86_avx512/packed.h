// What the packed (row-interleaved) AVX-512 kernels share: avx512.cpp (Q4_0, Q5_0, Q8_0) and packed_k.cpp
// (Q4_K, Q5_K, Q6_K). A group holds kPackRows weight rows, one per 32-bit lane of a 512-bit vector.
#pragma once
#include <cstring>

#include "kernels/x86_avx2/x86_common.h"

namespace strata::avx512 {
namespace {

constexpr int kPackRows = 16;  // rows per group: one per int32 lane

// Four bytes (four activations, or two int16 sums) broadcast to every lane.
STRATA_INLINE __m512i bcast4(const void* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

}  // namespace
}  // namespace strata::avx512
