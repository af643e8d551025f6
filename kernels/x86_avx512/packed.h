// What the packed (row-interleaved) AVX-512 kernels share: avx512.cpp (Q4_0, Q5_0, Q8_0) and packed_k.cpp
// (Q4_K, Q5_K, Q6_K). A group holds kPackRows weight rows, one per 32-bit lane of a 512-bit vector.
#pragma once
#include <cstring>

#include "kernels/x86_avx2/x86_common.h"

namespace strata::avx512 {
namespace {

constexpr int kPackRows = 16;  // rows per group: one per int32 lane

// Tokens per prefill chunk of the packed kernels, a multiple of `tile`: kTokenChunkBytes of activations, but at
// least kPackedMinTokens. Each chunk unpacks every row group once more, so small chunks (42 tokens for an
// 8192-wide FFN down matrix) spend a good part of the time unpacking; 128 tokens of that width (1.2 MB) still sit
// in a 2 MB L2 beside the unpacked group. (Chunks of 1.25 MiB for every width measured the same.)
constexpr int64_t kPackedMinTokens = 128;
STRATA_INLINE int64_t packed_token_chunk(size_t tok_bytes, int64_t tile) {
    int64_t tb = static_cast<int64_t>(kTokenChunkBytes / tok_bytes);
    if (tb < kPackedMinTokens) tb = kPackedMinTokens;
    return tb / tile * tile;
}

// Four bytes (four activations, or two int16 sums) broadcast to every lane.
STRATA_INLINE __m512i bcast4(const void* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

}  // namespace
}  // namespace strata::avx512
