// Packed (row-interleaved) F16 and BF16 for AVX-512: 16 rows per group, one row per float lane. Per group,
// for each element k of a row, one 32-byte vector of that element of the 16 rows (n x 32 bytes, in k order):
// decode reads a group as one sequential stream, where the unpacked kernel (x86_float.h) reads four rows side
// by side (four streams, which left one Zen 4 thread at 19 GB/s against the read probe's 26-29).
//
// A (row, token) is one lane: its products go to four float accumulators by k mod 4 (four independent FMA
// chains), each summed in k order and added ((0 + 1) + (2 + 3)) at the end, whatever the batch or the row
// range, so a result is batch-invariant. Activations come in the weight's vec_dot_type (F16 / BF16) and are
// widened to float once per call.
#define STRATA_X86_NS avx512
#include "kernels/x86_avx2/x86_common.h"
#include "kernels/x86_avx512/packed.h"

namespace strata::avx512 {
namespace {

constexpr size_t kVec = 2 * kPackRows;  // bytes of one element of a group's 16 rows

template <DType T>
STRATA_INLINE __m512 widen16(const uint8_t* p) {  // 16 f16 / bf16 -> floats
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    if constexpr (T == DType::F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

template <DType T>
STRATA_INLINE float widen1(const uint8_t* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    if constexpr (T == DType::F16) return x86_h2f(h);
    const uint32_t u = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

void repack_float(const void* w, size_t w_row_bytes, int64_t rows, int64_t n, void* dst) {
    for (int64_t g0 = 0; g0 < rows; g0 += kPackRows) {
        uint8_t* grp = static_cast<uint8_t*>(dst) + (g0 / kPackRows) * n * kVec;
        const uint8_t* src = static_cast<const uint8_t*>(w) + g0 * w_row_bytes;
        for (int64_t k = 0; k < n; ++k)
            for (int r = 0; r < kPackRows; ++r)
                std::memcpy(grp + k * kVec + 2 * r, src + r * w_row_bytes + 2 * k, 2);
    }
}

// 16 rows (one group) x RN tokens; x: RN rows of n floats (x_stride apart); y[j * ldy + i]: row i, token j.
template <DType T, int RN>
void float_group(const uint8_t* grp, int64_t n, const float* x, size_t x_stride, float* y, int64_t ldy) {
    __m512 acc[4][RN];
    STRATA_UNROLL for (int c = 0; c < 4; ++c) STRATA_UNROLL for (int j = 0; j < RN; ++j) acc[c][j] =
        _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 4 <= n; k += 4) {
        STRATA_UNROLL for (int c = 0; c < 4; ++c) {
            const __m512 w = widen16<T>(grp + (k + c) * kVec);
            STRATA_UNROLL for (int j = 0; j < RN; ++j) acc[c][j] =
                _mm512_fmadd_ps(w, _mm512_set1_ps(x[j * x_stride + k + c]), acc[c][j]);
        }
    }
    STRATA_UNROLL for (int c = 0; c < 3; ++c) {  // the tail (up to 3 elements), each into its chain as above
        if (k + c >= n) break;
        const __m512 w = widen16<T>(grp + (k + c) * kVec);
        STRATA_UNROLL for (int j = 0; j < RN; ++j) acc[c][j] =
            _mm512_fmadd_ps(w, _mm512_set1_ps(x[j * x_stride + k + c]), acc[c][j]);
    }
    STRATA_UNROLL for (int j = 0; j < RN; ++j) _mm512_storeu_ps(
        y + j * ldy, _mm512_add_ps(_mm512_add_ps(acc[0][j], acc[1][j]), _mm512_add_ps(acc[2][j], acc[3][j])));
}

using FloatGroupFn = void (*)(const uint8_t*, int64_t, const float*, size_t, float*, int64_t);
constexpr int kTokens = 4;  // tokens per tile

template <DType T>
void matmul_packed_float(const void* packed, int64_t n, int64_t r0, int64_t r1, const void* x,
                         size_t x_row_bytes, int64_t B, float* y, int64_t ldy) {
    static constexpr FloatGroupFn tiles[kTokens] = {&float_group<T, 1>, &float_group<T, 2>,
                                                    &float_group<T, 3>, &float_group<T, 4>};
    if (r1 <= r0 || B <= 0) return;
    // Tokens per chunk: their widened activations (TB x n floats) stay in L2 beside a group.
    int64_t TB = static_cast<int64_t>(kTokenChunkBytes / (static_cast<size_t>(n) * 4)) / kTokens * kTokens;
    if (TB < kTokens) TB = kTokens;
    if (TB > B) TB = B;
    auto* xf = static_cast<float*>(scratch_tokens().get(static_cast<size_t>(TB) * n * 4));  // (TB, n)
    const size_t gbytes = static_cast<size_t>(n) * kVec;
    for (int64_t t0 = 0; t0 < B; t0 += TB) {
        const int64_t nt = B - t0 < TB ? B - t0 : TB;
        for (int64_t j = 0; j < nt; ++j) {
            const uint8_t* src = static_cast<const uint8_t*>(x) + (t0 + j) * x_row_bytes;
            float* dst = xf + j * n;
            int64_t i = 0;
            for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, widen16<T>(src + 2 * i));
            for (; i < n; ++i) dst[i] = widen1<T>(src + 2 * i);
        }
        for (int64_t r = r0; r < r1; r += kPackRows) {
            const uint8_t* grp = static_cast<const uint8_t*>(packed) + (r / kPackRows) * gbytes;
            for (int64_t j = 0; j < nt; j += kTokens) {
                const int rn = static_cast<int>(nt - j < kTokens ? nt - j : kTokens);
                tiles[rn - 1](grp, n, xf + j * n, static_cast<size_t>(n), y + (t0 + j) * ldy + r, ldy);
            }
        }
    }
}

}  // namespace

size_t packed_float_size(int64_t rows, int64_t n) {
    return static_cast<size_t>(rows / kPackRows) * static_cast<size_t>(n) * kVec;
}

void fill_packed_float(KernelTable& t) {
    t.repack[static_cast<int>(DType::F16)] = &repack_float;
    t.repack[static_cast<int>(DType::BF16)] = &repack_float;
    t.matmul_packed[static_cast<int>(DType::F16)] = &matmul_packed_float<DType::F16>;
    t.matmul_packed[static_cast<int>(DType::BF16)] = &matmul_packed_float<DType::BF16>;
}

}  // namespace strata::avx512
