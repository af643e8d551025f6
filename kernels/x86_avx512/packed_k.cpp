// Packed (row-interleaved) Q4_K, Q5_K and Q6_K for AVX-512 VNNI: 16 rows per group, one row per 32-bit lane,
// as the packed legacy quants in avx512.cpp. The unpacked K kernel (x86_quant_k.h) spends most of a prefill
// on the per-(row, token) float work and the vpmaddubsw + vpdpwssd pairs; here one vpdpbusd takes four
// elements of all 16 rows, the sub-block scales multiply whole lanes (vpmulld), and the float work of a
// super-block is shared by the 16 rows.
//
// Per group and 256-element super-block (all offsets multiples of 64, so every vector load is aligned), the
// vectors in the order decode reads them, so that a group is one sequential stream (the hardware prefetcher
// follows it; two interleaved streams in a super-block, as an earlier layout had, left Q5_K and Q6_K decode
// at 40% of the memory's bandwidth on Zen 4):
// Q4_K (2368 bytes):
//   32 vectors: vector 8c + g holds in byte 4r + t the byte qs[32c + 4g + t] of row r: low nibble = element
//   64c + 4g + t (sub-block 2c), high nibble = element 64c + 32 + 4g + t (sub-block 2c + 1);
//   8 x 16 bytes: the 6-bit scale of sub-block s of each row; 8 x 16 bytes: the 6-bit mins; 16 f16 d and
//   dmin.
// Q5_K (2880 bytes): for each g, the 4 vectors of Q4_K's layout with that g (c = 0..3: qs[32c + 4g + t]),
//   then the fifth bits: qh[4g + t] (bits 2c and 2c+1: the fifth bits of the low and the high nibble of
//   vector c); then the scales, mins, d and dmin as Q4_K's.
// Q6_K (3392 bytes): 8 x 32 bytes: pair p holds the int8 scales of the 16-element sub-blocks 2p and 2p+1 of
//   row r at bytes 2r and 2r+1 (one int16 pair per lane); 16 f16 d; 32 bytes of padding; then for h = 0, 1
//   and each g: two vectors of low nibbles, c = 0, 1: byte 4r + t holds ql[64h + 32c + 4g + t] of row r (low
//   nibble: element 128h + 32c + 4g + t; high nibble: element 128h + 64 + 32c + 4g + t), then the vector of
//   high bits qh[32h + 4g + t] (bits 2q, 2q+1: element 128h + 32q + 4g + t). The scales come first because
//   decode reads them as a half of the super-block starts (with them at the end, the reads jumped back and
//   forth within each super-block and the prefetcher lost the stream: Q6_K decode at 16-17 GB/s on one Zen 4
//   thread, 23-25 with them first, the read probe 26-29).
// Q8_K activations are read in place (quants, float d, int16 bsums per 16 elements).
//
// Decode unpacks the bytes in registers as it reads them (k_decode, one group at a time); prefill unpacks
// each group's super-blocks once into per-thread scratch (extract) and runs the tiles of 4 tokens over that:
// the same vectors through the same arithmetic. Per (row, token, super-block), in one lane, the same
// operations in the same order for any batch or row range (so a result is batch-invariant):
//   Q4_K, Q5_K: sumi = sum_s scale_s * sum(q * a) (exact int32),
//               corr = sum_s min_s * (bsum_2s + bsum_2s+1) (vpdpwssd);
//               acc = fma(sumi, d * da, acc); acc = fnma(corr, dmin * da, acc)
//   Q6_K:       sumi = sum_s scale_s * sum(q * a) - 32 * sum_s scale_s * bsum_s (exact int32, the second sum
//               by vpdpwssd); acc = fma(sumi, d * da, acc)
// -- the reference's integer terms, with the float part of the unpacked kernel per super-block.
#define STRATA_X86_NS avx512
#include <cstring>

#include "kernels/kernels.h"
#include "kernels/x86_avx2/x86_common.h"
#include "kernels/x86_avx512/packed.h"

namespace strata::avx512 {
namespace {

constexpr int kTile = 4;  // tokens per tile

template <DType T>
struct KFmt;
// Byte offsets in a packed super-block: qs(c, g) the quant vector c, g of Q4_K / Q5_K, qh(g) Q5_K's fifth
// bits; ql(h, c, g) and qh(h, g) Q6_K's low nibbles and high bits.
template <>
struct KFmt<DType::Q4_K> {
    using Block = block_q4_K;
    static constexpr size_t qs(int c, int g) { return 64 * static_cast<size_t>(8 * c + g); }
    static constexpr size_t kScales = 2048, kMins = kScales + 8 * 16, kD = kMins + 8 * 16, kDmin = kD + 32;
    static constexpr size_t kBytes = kDmin + 32;  // 2368
};
template <>
struct KFmt<DType::Q5_K> {
    using Block = block_q5_K;
    static constexpr size_t qs(int c, int g) { return 64 * static_cast<size_t>(5 * g + c); }
    static constexpr size_t qh(int g) { return 64 * static_cast<size_t>(5 * g + 4); }
    static constexpr size_t kScales = 40 * 64, kMins = kScales + 8 * 16, kD = kMins + 8 * 16;
    static constexpr size_t kDmin = kD + 32, kBytes = kDmin + 32;  // 2880
};
template <>
struct KFmt<DType::Q6_K> {
    using Block = block_q6_K;
    // The scales and d first, padded to a multiple of 64, then the quant vectors.
    static constexpr size_t kScales = 0, kD = kScales + 16 * 16, kQuants = kD + 64;
    static constexpr size_t ql(int h, int c, int g) {
        return kQuants + 64 * static_cast<size_t>(24 * h + 3 * g + c);
    }
    static constexpr size_t qh(int h, int g) {
        return kQuants + 64 * static_cast<size_t>(24 * h + 3 * g + 2);
    }
    static constexpr size_t kBytes = kQuants + 48 * 64;  // 3392
};
static_assert(KFmt<DType::Q4_K>::kBytes % 64 == 0 && KFmt<DType::Q5_K>::kBytes % 64 == 0 &&
              KFmt<DType::Q6_K>::kBytes % 64 == 0);

// The 6-bit scale and min of sub-block s (ggml's get_scale_min_k4).
void q4k_scale_min(const uint8_t* q, int s, uint8_t& sc, uint8_t& mn) {
    if (s < 4) {
        sc = q[s] & 63;
        mn = q[s + 4] & 63;
    } else {
        sc = static_cast<uint8_t>((q[s + 4] & 0x0F) | ((q[s - 4] >> 6) << 4));
        mn = static_cast<uint8_t>((q[s + 4] >> 4) | ((q[s] >> 6) << 4));
    }
}

template <DType T>
void repack_k(const void* w, size_t w_row_bytes, int64_t rows, int64_t n, void* dst) {
    using F = KFmt<T>;
    using Block = typename F::Block;
    const int64_t nsb = n / QK_K;
    for (int64_t g0 = 0; g0 < rows; g0 += kPackRows) {
        uint8_t* grp = static_cast<uint8_t*>(dst) + (g0 / kPackRows) * nsb * F::kBytes;
        for (int r = 0; r < kPackRows; ++r) {
            const auto* src =
                reinterpret_cast<const Block*>(static_cast<const uint8_t*>(w) + (g0 + r) * w_row_bytes);
            for (int64_t i = 0; i < nsb; ++i) {
                uint8_t* b = grp + i * F::kBytes;
                const Block& q = src[i];
                if constexpr (T == DType::Q4_K || T == DType::Q5_K) {
                    for (int c = 0; c < 4; ++c)
                        for (int g = 0; g < 8; ++g)
                            std::memcpy(b + F::qs(c, g) + 4 * r, q.qs + 32 * c + 4 * g, 4);
                    if constexpr (T == DType::Q5_K)
                        for (int g = 0; g < 8; ++g) std::memcpy(b + F::qh(g) + 4 * r, q.qh + 4 * g, 4);
                    for (int s = 0; s < 8; ++s)
                        q4k_scale_min(q.scales, s, b[F::kScales + 16 * s + r], b[F::kMins + 16 * s + r]);
                    std::memcpy(b + F::kD + 2 * r, &q.d, 2);
                    std::memcpy(b + F::kDmin + 2 * r, &q.dmin, 2);
                } else {
                    for (int h = 0; h < 2; ++h)
                        for (int g = 0; g < 8; ++g) {
                            for (int c = 0; c < 2; ++c)
                                std::memcpy(b + F::ql(h, c, g) + 4 * r, q.ql + 64 * h + 32 * c + 4 * g, 4);
                            std::memcpy(b + F::qh(h, g) + 4 * r, q.qh + 32 * h + 4 * g, 4);
                        }
                    for (int s = 0; s < 16; ++s)
                        b[F::kScales + 32 * (s / 2) + 2 * r + s % 2] = static_cast<uint8_t>(q.scales[s]);
                    std::memcpy(b + F::kD + 2 * r, &q.d, 2);
                    if (r == 0) std::memset(b + F::kD + 32, 0, F::kQuants - F::kD - 32);
                }
            }
        }
    }
}

STRATA_INLINE __m512i load_v(const uint8_t* p) {
    return _mm512_load_si512(reinterpret_cast<const __m512i*>(p));
}
STRATA_INLINE __m512i u8_lanes(const uint8_t* p) {
    return _mm512_cvtepu8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(p)));
}
STRATA_INLINE __m512 f16_lanes(const uint8_t* p) {
    return _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(p)));
}

// Two int8 scales per row as the int16 lanes of its int32 lane (32 bytes: row r's pair at byte 2r).
STRATA_INLINE __m512i scale_pair(const uint8_t* p) {
    return _mm512_cvtepi8_epi16(_mm256_load_si256(reinterpret_cast<const __m256i*>(p)));
}
// Where a super-block's vectors come from. Packed<T, RG>: the packed bytes of RG groups, unpacked in
// registers as they are used. Extracted<T>: one group's super-block unpacked once into memory (X below) by
// extract(), for prefill, where a tile of 4 tokens would otherwise redo the unpacking for every tile. Both
// give the same vectors, so the arithmetic on them (q45k_super_block, q6k_super_block) and its bits are the
// same whichever a call uses.
//   Q4_K / Q5_K: q(g, c, v): the quants of elements 64c + 4v + t (lo, sub-block 2c) and 64c + 32 + 4v + t
//   (hi,
//     sub-block 2c + 1); sc(g, s): sub-block s's scale per lane; mn(g, s): its min as an int16 pair; d, dmin.
//   Q6_K: q(g, h, c, v): elements 128h + 32c + 4v + t (lo) and 128h + 64 + 32c + 4v + t (hi); off(g, h, c,
//   k):
//     -32 * the scales of pair 4h + c (k = 0) or 4h + 2 + c (k = 1) as int16 pairs; sc(g, h, c, gh, k): the
//     scale of sub-block 8h + 2c + gh (k = 0) or 8h + 4 + 2c + gh (k = 1) per lane; d.
template <DType T>
struct XFmt {  // the extracted super-block: 64 quant vectors, then the scales, then d (and dmin)
    static constexpr bool kQ6 = T == DType::Q6_K;
    static constexpr size_t kSc = 64 * 64, kMn = kSc + (kQ6 ? 16 : 8) * 64, kD = kMn + 8 * 64;
    static constexpr size_t kBytes = kD + (kQ6 ? 64 : 128);
};

template <DType T, int RG>
struct Packed {
    using F = KFmt<T>;
    const uint8_t* b[RG];
    const __m512i m4 = _mm512_set1_epi8(0x0F), bit4 = _mm512_set1_epi8(0x10), m30 = _mm512_set1_epi8(0x30);

    STRATA_INLINE void q(int g, int c, int v, __m512i& lo, __m512i& hi) const {
        const __m512i w = load_v(b[g] + F::qs(c, v));
        lo = _mm512_and_si512(w, m4);
        hi = _mm512_and_si512(_mm512_srli_epi16(w, 4), m4);
        if constexpr (T == DType::Q5_K) {  // bits 2c and 2c+1 of qh[4v + t]: the fifth bits of lo and hi
            const __m512i h = _mm512_srl_epi16(load_v(b[g] + F::qh(v)), _mm_cvtsi32_si128(2 * c));
            lo = _mm512_or_si512(lo, _mm512_and_si512(_mm512_slli_epi16(h, 4), bit4));
            hi = _mm512_or_si512(hi, _mm512_and_si512(_mm512_slli_epi16(h, 3), bit4));
        }
    }
    STRATA_INLINE __m512i sc(int g, int s) const { return u8_lanes(b[g] + F::kScales + 16 * s); }
    STRATA_INLINE __m512i mn(int g, int s) const {
        const __m512i m = u8_lanes(b[g] + F::kMins + 16 * s);
        return _mm512_or_si512(m, _mm512_slli_epi32(m, 16));  // (min, min) as two int16
    }
    STRATA_INLINE __m512 d(int g) const { return f16_lanes(b[g] + F::kD); }
    STRATA_INLINE __m512 dmin(int g) const { return f16_lanes(b[g] + F::kDmin); }

    STRATA_INLINE void q(int g, int h, int c, int v, __m512i& lo, __m512i& hi) const {
        const __m512i L = load_v(b[g] + F::ql(h, c, v));
        const __m512i H = load_v(b[g] + F::qh(h, v));
        // Bits 2c, 2c+1 of H: the high bits of the low nibble's element; 2c+4, 2c+5: the high one's.
        const __m512i hl = c == 0 ? _mm512_slli_epi16(H, 4) : _mm512_slli_epi16(H, 2);
        const __m512i hh = c == 0 ? H : _mm512_srli_epi16(H, 2);
        lo = _mm512_or_si512(_mm512_and_si512(L, m4), _mm512_and_si512(hl, m30));
        hi = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(L, 4), m4), _mm512_and_si512(hh, m30));
    }
    STRATA_INLINE __m512i pair(int g, int p) const { return scale_pair(b[g] + F::kScales + 32 * p); }
    STRATA_INLINE __m512i off(int g, int h, int c, int k) const {
        return _mm512_sub_epi16(_mm512_setzero_si512(), _mm512_slli_epi16(pair(g, 4 * h + 2 * k + c), 5));
    }
    STRATA_INLINE __m512i sc(int g, int h, int c, int gh,
                             int k) const {  // int16 lane gh of the pair, sign-extended
        const __m512i p = pair(g, 4 * h + 2 * k + c);
        return gh == 0 ? _mm512_srai_epi32(_mm512_slli_epi32(p, 16), 16) : _mm512_srai_epi32(p, 16);
    }
};

template <DType T>
struct Extracted {
    using X = XFmt<T>;
    const uint8_t* x;
    STRATA_INLINE void q(int, int c, int v, __m512i& lo, __m512i& hi) const {
        lo = load_v(x + 64 * (16 * c + 2 * v));
        hi = load_v(x + 64 * (16 * c + 2 * v + 1));
    }
    STRATA_INLINE __m512i sc(int, int s) const { return load_v(x + X::kSc + 64 * s); }
    STRATA_INLINE __m512i mn(int, int s) const { return load_v(x + X::kMn + 64 * s); }
    STRATA_INLINE __m512 d(int) const { return _mm512_load_ps(reinterpret_cast<const float*>(x + X::kD)); }
    STRATA_INLINE __m512 dmin(int) const {
        return _mm512_load_ps(reinterpret_cast<const float*>(x + X::kD + 64));
    }
    STRATA_INLINE void q(int, int h, int c, int v, __m512i& lo, __m512i& hi) const {
        lo = load_v(x + 64 * (32 * h + 16 * c + 2 * v));
        hi = load_v(x + 64 * (32 * h + 16 * c + 2 * v + 1));
    }
    STRATA_INLINE __m512i off(int, int h, int c, int k) const {
        return load_v(x + X::kMn + 64 * (4 * h + 2 * c + k));
    }
    STRATA_INLINE __m512i sc(int, int h, int c, int gh, int k) const {
        return load_v(x + X::kSc + 64 * (8 * h + 4 * c + 2 * gh + k));
    }
};

// Unpacks one group's super-block (packed bytes b) into X (XFmt<T>::kBytes, 64-byte aligned) in Extracted's
// order.
template <DType T>
void extract(const uint8_t* b, uint8_t* x) {
    using X = XFmt<T>;
    const Packed<T, 1> P{{b}};
    auto st = [](uint8_t* p, __m512i v) { _mm512_store_si512(reinterpret_cast<__m512i*>(p), v); };
    __m512i lo, hi;
    if constexpr (T == DType::Q6_K) {
        for (int h = 0; h < 2; ++h)
            for (int c = 0; c < 2; ++c) {
                for (int v = 0; v < 8; ++v) {
                    P.q(0, h, c, v, lo, hi);
                    st(x + 64 * (32 * h + 16 * c + 2 * v), lo);
                    st(x + 64 * (32 * h + 16 * c + 2 * v + 1), hi);
                }
                for (int k = 0; k < 2; ++k) {
                    st(x + X::kMn + 64 * (4 * h + 2 * c + k), P.off(0, h, c, k));
                    for (int gh = 0; gh < 2; ++gh)
                        st(x + X::kSc + 64 * (8 * h + 4 * c + 2 * gh + k), P.sc(0, h, c, gh, k));
                }
            }
        _mm512_store_ps(reinterpret_cast<float*>(x + X::kD), P.d(0));
    } else {
        for (int c = 0; c < 4; ++c)
            for (int v = 0; v < 8; ++v) {
                P.q(0, c, v, lo, hi);
                st(x + 64 * (16 * c + 2 * v), lo);
                st(x + 64 * (16 * c + 2 * v + 1), hi);
            }
        for (int s = 0; s < 8; ++s) {
            st(x + X::kSc + 64 * s, P.sc(0, s));
            st(x + X::kMn + 64 * s, P.mn(0, s));
        }
        _mm512_store_ps(reinterpret_cast<float*>(x + X::kD), P.d(0));
        _mm512_store_ps(reinterpret_cast<float*>(x + X::kD + 64), P.dmin(0));
    }
}

// One super-block of RG groups x RN tokens (Q4_K or Q5_K), added into facc.
template <int RG, int RN, class Src>
STRATA_INLINE void q45k_super_block(const Src& S, const block_q8_K* const (&xb)[RN], __m512 (&facc)[RG][RN]) {
    __m512i tot[RG][RN], corr[RG][RN];
    STRATA_UNROLL for (int g = 0; g < RG; ++g) {
        STRATA_UNROLL for (int j = 0; j < RN; ++j) tot[g][j] = corr[g][j] = _mm512_setzero_si512();
    }
    for (int c = 0; c < 4; ++c) {
        __m512i slo[RG][RN], shi[RG][RN];
        STRATA_UNROLL for (int g = 0; g < RG; ++g) {
            STRATA_UNROLL for (int j = 0; j < RN; ++j) slo[g][j] = shi[g][j] = _mm512_setzero_si512();
        }
        STRATA_UNROLL for (int v = 0; v < 8; ++v) {
            __m512i alo[RN], ahi[RN];
            STRATA_UNROLL for (int j = 0; j < RN; ++j) {
                alo[j] = bcast4(xb[j]->qs + 64 * c + 4 * v);
                ahi[j] = bcast4(xb[j]->qs + 64 * c + 32 + 4 * v);
            }
            STRATA_UNROLL for (int g = 0; g < RG; ++g) {
                __m512i lo, hi;
                S.q(g, c, v, lo, hi);
                STRATA_UNROLL for (int j = 0; j < RN; ++j) {
                    slo[g][j] = _mm512_dpbusd_epi32(slo[g][j], lo, alo[j]);
                    shi[g][j] = _mm512_dpbusd_epi32(shi[g][j], hi, ahi[j]);
                }
            }
        }
        __m512i bs0[RN], bs1[RN];  // bsums of the sub-blocks' 16-element halves, as int16 pairs
        STRATA_UNROLL for (int j = 0; j < RN; ++j) {
            bs0[j] = bcast4(xb[j]->bsums + 4 * c);
            bs1[j] = bcast4(xb[j]->bsums + 4 * c + 2);
        }
        STRATA_UNROLL for (int g = 0; g < RG; ++g) {
            const __m512i sc0 = S.sc(g, 2 * c), sc1 = S.sc(g, 2 * c + 1);
            const __m512i mn0 = S.mn(g, 2 * c), mn1 = S.mn(g, 2 * c + 1);
            STRATA_UNROLL for (int j = 0; j < RN; ++j) {
                tot[g][j] = _mm512_add_epi32(tot[g][j], _mm512_add_epi32(_mm512_mullo_epi32(slo[g][j], sc0),
                                                                         _mm512_mullo_epi32(shi[g][j], sc1)));
                corr[g][j] = _mm512_dpwssd_epi32(corr[g][j], mn0, bs0[j]);
                corr[g][j] = _mm512_dpwssd_epi32(corr[g][j], mn1, bs1[j]);
            }
        }
    }
    STRATA_UNROLL for (int g = 0; g < RG; ++g) {
        const __m512 dw = S.d(g), dm = S.dmin(g);
        STRATA_UNROLL for (int j = 0; j < RN; ++j) {
            const __m512 da = _mm512_set1_ps(xb[j]->d);
            facc[g][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(tot[g][j]), _mm512_mul_ps(dw, da), facc[g][j]);
            facc[g][j] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(corr[g][j]), _mm512_mul_ps(dm, da), facc[g][j]);
        }
    }
}

// The same for Q6_K: sum_s scale_s * sum(q * a), the offset -32 * scale_s * bsum_s first, by vpdpwssd.
template <int RG, int RN, class Src>
STRATA_INLINE void q6k_super_block(const Src& S, const block_q8_K* const (&xb)[RN], __m512 (&facc)[RG][RN]) {
    __m512i tot[RG][RN];
    STRATA_UNROLL for (int g = 0; g < RG; ++g) {
        STRATA_UNROLL for (int j = 0; j < RN; ++j) tot[g][j] = _mm512_setzero_si512();
    }
    for (int h = 0; h < 2; ++h) STRATA_UNROLL for (int c = 0; c < 2; ++c) {
            __m512i blo[RN],
                bhi[RN];  // bsums of the low nibbles' sub-blocks (pair 4h + c) and the high ones'
            STRATA_UNROLL for (int j = 0; j < RN; ++j) {
                blo[j] = bcast4(xb[j]->bsums + 2 * (4 * h + c));
                bhi[j] = bcast4(xb[j]->bsums + 2 * (4 * h + 2 + c));
            }
            STRATA_UNROLL for (int g = 0; g < RG; ++g) {
                const __m512i olo = S.off(g, h, c, 0), ohi = S.off(g, h, c, 1);
                STRATA_UNROLL for (int j = 0; j < RN; ++j) {
                    tot[g][j] = _mm512_dpwssd_epi32(tot[g][j], olo, blo[j]);
                    tot[g][j] = _mm512_dpwssd_epi32(tot[g][j], ohi, bhi[j]);
                }
            }
            STRATA_UNROLL for (int gh = 0; gh < 2; ++gh) {
                __m512i slo[RG][RN], shi[RG][RN];
                STRATA_UNROLL for (int g = 0; g < RG; ++g) {
                    STRATA_UNROLL for (int j = 0; j < RN; ++j) slo[g][j] = shi[g][j] = _mm512_setzero_si512();
                }
                STRATA_UNROLL for (int vv = 0; vv < 4; ++vv) {
                    const int v = 4 * gh + vv;
                    __m512i alo[RN], ahi[RN];
                    STRATA_UNROLL for (int j = 0; j < RN; ++j) {
                        alo[j] = bcast4(xb[j]->qs + 128 * h + 32 * c + 4 * v);
                        ahi[j] = bcast4(xb[j]->qs + 128 * h + 64 + 32 * c + 4 * v);
                    }
                    STRATA_UNROLL for (int g = 0; g < RG; ++g) {
                        __m512i lo, hi;
                        S.q(g, h, c, v, lo, hi);
                        STRATA_UNROLL for (int j = 0; j < RN; ++j) {
                            slo[g][j] = _mm512_dpbusd_epi32(slo[g][j], lo, alo[j]);
                            shi[g][j] = _mm512_dpbusd_epi32(shi[g][j], hi, ahi[j]);
                        }
                    }
                }
                STRATA_UNROLL for (int g = 0; g < RG; ++g) {
                    const __m512i s0 = S.sc(g, h, c, gh, 0), s1 = S.sc(g, h, c, gh, 1);
                    STRATA_UNROLL for (int j = 0; j < RN; ++j) tot[g][j] =
                        _mm512_add_epi32(tot[g][j], _mm512_add_epi32(_mm512_mullo_epi32(slo[g][j], s0),
                                                                     _mm512_mullo_epi32(shi[g][j], s1)));
                }
            }
        }
    STRATA_UNROLL for (int g = 0; g < RG; ++g) {
        const __m512 dw = S.d(g);
        STRATA_UNROLL for (int j = 0; j < RN; ++j) facc[g][j] = _mm512_fmadd_ps(
            _mm512_cvtepi32_ps(tot[g][j]), _mm512_mul_ps(dw, _mm512_set1_ps(xb[j]->d)), facc[g][j]);
    }
}

template <DType T, int RG, int RN, class Src>
STRATA_INLINE void super_block(const Src& S, const block_q8_K* const (&xb)[RN], __m512 (&facc)[RG][RN]) {
    if constexpr (T == DType::Q6_K)
        q6k_super_block<RG, RN>(S, xb, facc);
    else
        q45k_super_block<RG, RN>(S, xb, facc);
}

// Prefill: RN tokens over one group's super-blocks as extract() left them; y[j * ldy + i] for row i, token j.
template <DType T, int RN>
void k_tile(const uint8_t* xg, size_t, int64_t nsb, const uint8_t* x, size_t xrb, float* y, int64_t ldy) {
    __m512 facc[1][RN];
    STRATA_UNROLL for (int j = 0; j < RN; ++j) facc[0][j] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nsb; ++i) {
        const block_q8_K* xb[RN];
        STRATA_UNROLL for (int j = 0; j < RN; ++j) xb[j] =
            reinterpret_cast<const block_q8_K*>(x + j * xrb + i * sizeof(block_q8_K));
        super_block<T, 1, RN>(Extracted<T>{xg + i * XFmt<T>::kBytes}, xb, facc);
    }
    STRATA_UNROLL for (int j = 0; j < RN; ++j) _mm512_storeu_ps(y + j * ldy, facc[0][j]);
}

// Decode (RN = 1 or 2 tokens): one group at a time, its super-blocks read in their stored order (one
// sequential stream, no software prefetch: on Zen 4 one stream per thread reaches the read probe's bandwidth,
// where four streams side by side with prefetches half a super-block ahead reached half of it). Q5_K and Q6_K
// take each vector of high bits once, for all the quant vectors that share it (their stored order); the
// integer sums are those of q45k_super_block / q6k_super_block exactly (int32, no rounding), so the float
// work on them, the same operations in the same order, gives the prefill path's bits.
template <int RN>
STRATA_INLINE void q5k_decode_block(const uint8_t* b, const block_q8_K* const (&xb)[RN],
                                    __m512 (&facc)[1][RN]) {
    using F = KFmt<DType::Q5_K>;
    const Packed<DType::Q5_K, 1> S{{b}};
    const __m512i m4 = _mm512_set1_epi8(0x0F), bit4 = _mm512_set1_epi8(0x10);
    __m512i acc[4][2][RN];  // (c, lo / hi, token)
    STRATA_UNROLL for (int c = 0; c < 4; ++c) STRATA_UNROLL for (int j = 0; j < RN; ++j) acc[c][0][j] =
        acc[c][1][j] = _mm512_setzero_si512();
    for (int v = 0; v < 8; ++v) {
        const __m512i H = load_v(b + F::qh(v));
        STRATA_UNROLL for (int c = 0; c < 4; ++c) {
            const __m512i w = load_v(b + F::qs(c, v));
            const __m512i h = _mm512_srli_epi16(H, 2 * c);
            const __m512i lo =
                _mm512_or_si512(_mm512_and_si512(w, m4), _mm512_and_si512(_mm512_slli_epi16(h, 4), bit4));
            const __m512i hi = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(w, 4), m4),
                                               _mm512_and_si512(_mm512_slli_epi16(h, 3), bit4));
            STRATA_UNROLL for (int j = 0; j < RN; ++j) {
                acc[c][0][j] = _mm512_dpbusd_epi32(acc[c][0][j], lo, bcast4(xb[j]->qs + 64 * c + 4 * v));
                acc[c][1][j] = _mm512_dpbusd_epi32(acc[c][1][j], hi, bcast4(xb[j]->qs + 64 * c + 32 + 4 * v));
            }
        }
    }
    __m512i tot[RN], corr[RN];
    STRATA_UNROLL for (int j = 0; j < RN; ++j) tot[j] = corr[j] = _mm512_setzero_si512();
    STRATA_UNROLL for (int c = 0; c < 4; ++c) {
        const __m512i sc0 = S.sc(0, 2 * c), sc1 = S.sc(0, 2 * c + 1), mn0 = S.mn(0, 2 * c),
                      mn1 = S.mn(0, 2 * c + 1);
        STRATA_UNROLL for (int j = 0; j < RN; ++j) {
            tot[j] = _mm512_add_epi32(tot[j], _mm512_add_epi32(_mm512_mullo_epi32(acc[c][0][j], sc0),
                                                               _mm512_mullo_epi32(acc[c][1][j], sc1)));
            corr[j] = _mm512_dpwssd_epi32(corr[j], mn0, bcast4(xb[j]->bsums + 4 * c));
            corr[j] = _mm512_dpwssd_epi32(corr[j], mn1, bcast4(xb[j]->bsums + 4 * c + 2));
        }
    }
    const __m512 dw = S.d(0), dm = S.dmin(0);
    STRATA_UNROLL for (int j = 0; j < RN; ++j) {
        const __m512 da = _mm512_set1_ps(xb[j]->d);
        facc[0][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(tot[j]), _mm512_mul_ps(dw, da), facc[0][j]);
        facc[0][j] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(corr[j]), _mm512_mul_ps(dm, da), facc[0][j]);
    }
}

template <int RN>
STRATA_INLINE void q6k_decode_block(const uint8_t* b, const block_q8_K* const (&xb)[RN],
                                    __m512 (&facc)[1][RN]) {
    using F = KFmt<DType::Q6_K>;
    const Packed<DType::Q6_K, 1> S{{b}};
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    __m512i tot[RN];
    STRATA_UNROLL for (int j = 0; j < RN; ++j) tot[j] = _mm512_setzero_si512();
    for (int h = 0; h < 2; ++h) {
        STRATA_UNROLL for (int c = 0; c < 2; ++c) {  // -32 * scale * bsum, as q6k_super_block
            const __m512i olo = S.off(0, h, c, 0), ohi = S.off(0, h, c, 1);
            STRATA_UNROLL for (int j = 0; j < RN; ++j) {
                tot[j] = _mm512_dpwssd_epi32(tot[j], olo, bcast4(xb[j]->bsums + 2 * (4 * h + c)));
                tot[j] = _mm512_dpwssd_epi32(tot[j], ohi, bcast4(xb[j]->bsums + 2 * (4 * h + 2 + c)));
            }
        }
        STRATA_UNROLL for (int gh = 0; gh < 2; ++gh) {
            __m512i acc[2][2][RN];  // (c, lo / hi, token)
            STRATA_UNROLL for (int c = 0; c < 2; ++c) STRATA_UNROLL for (int j = 0; j < RN; ++j)
                acc[c][0][j] = acc[c][1][j] = _mm512_setzero_si512();
            STRATA_UNROLL for (int vv = 0; vv < 4; ++vv) {
                const int v = 4 * gh + vv;
                const __m512i H = load_v(b + F::qh(h, v));
                STRATA_UNROLL for (int c = 0; c < 2; ++c) {
                    const __m512i L = load_v(b + F::ql(h, c, v));
                    const __m512i hl = c == 0 ? _mm512_slli_epi16(H, 4) : _mm512_slli_epi16(H, 2);
                    const __m512i hh = c == 0 ? H : _mm512_srli_epi16(H, 2);
                    const __m512i lo = _mm512_or_si512(_mm512_and_si512(L, m4), _mm512_and_si512(hl, m30));
                    const __m512i hi = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(L, 4), m4),
                                                       _mm512_and_si512(hh, m30));
                    STRATA_UNROLL for (int j = 0; j < RN; ++j) {
                        acc[c][0][j] = _mm512_dpbusd_epi32(acc[c][0][j], lo,
                                                           bcast4(xb[j]->qs + 128 * h + 32 * c + 4 * v));
                        acc[c][1][j] = _mm512_dpbusd_epi32(acc[c][1][j], hi,
                                                           bcast4(xb[j]->qs + 128 * h + 64 + 32 * c + 4 * v));
                    }
                }
            }
            STRATA_UNROLL for (int c = 0; c < 2; ++c) {
                const __m512i s0 = S.sc(0, h, c, gh, 0), s1 = S.sc(0, h, c, gh, 1);
                STRATA_UNROLL for (int j = 0; j < RN; ++j) tot[j] =
                    _mm512_add_epi32(tot[j], _mm512_add_epi32(_mm512_mullo_epi32(acc[c][0][j], s0),
                                                              _mm512_mullo_epi32(acc[c][1][j], s1)));
            }
        }
    }
    const __m512 dw = S.d(0);
    STRATA_UNROLL for (int j = 0; j < RN; ++j) facc[0][j] =
        _mm512_fmadd_ps(_mm512_cvtepi32_ps(tot[j]), _mm512_mul_ps(dw, _mm512_set1_ps(xb[j]->d)), facc[0][j]);
}

template <DType T, int RN>
void k_decode(const uint8_t* grp, size_t, int64_t nsb, const uint8_t* x, size_t xrb, float* y, int64_t ldy) {
    constexpr size_t kBytes = KFmt<T>::kBytes;
    __m512 facc[1][RN];
    STRATA_UNROLL for (int j = 0; j < RN; ++j) facc[0][j] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nsb; ++i) {
        const block_q8_K* xb[RN];
        STRATA_UNROLL for (int j = 0; j < RN; ++j) xb[j] =
            reinterpret_cast<const block_q8_K*>(x + j * xrb + i * sizeof(block_q8_K));
        const uint8_t* b = grp + i * kBytes;
        if constexpr (T == DType::Q5_K) {
            q5k_decode_block<RN>(b, xb, facc);
        } else if constexpr (T == DType::Q6_K) {
            q6k_decode_block<RN>(b, xb, facc);
        } else {
            super_block<T, 1, RN>(Packed<T, 1>{{b}}, xb, facc);
        }
    }
    STRATA_UNROLL for (int j = 0; j < RN; ++j) _mm512_storeu_ps(y + j * ldy, facc[0][j]);
}

using TileFn = void (*)(const uint8_t*, size_t, int64_t, const uint8_t*, size_t, float*, int64_t);

template <DType T>
void matmul_packed_k(const void* packed, int64_t n, int64_t r0, int64_t r1, const void* x, size_t x_row_bytes,
                     int64_t B, float* y, int64_t ldy) {
    static_assert(kTile == 4);
    // Decode (one or two tokens): k_decode, group by group. Prefill: each group unpacked once (extract) into
    // per-thread scratch, then tiles of 4 tokens (and the rest) over it.
    static constexpr TileFn tiles[kTile] = {&k_tile<T, 1>, &k_tile<T, 2>, &k_tile<T, 3>, &k_tile<T, 4>};
    if (r1 <= r0 || B <= 0) return;
    const int64_t nsb = n / QK_K;
    const size_t gbytes = static_cast<size_t>(nsb) * KFmt<T>::kBytes;
    const auto* xb = static_cast<const uint8_t*>(x);
    const auto* base = static_cast<const uint8_t*>(packed);
    if (B <= 2) {
        const TileFn decode = B == 1 ? &k_decode<T, 1> : &k_decode<T, 2>;
        for (int64_t r = r0; r < r1; r += kPackRows)
            decode(base + (r / kPackRows) * gbytes, gbytes, nsb, xb, x_row_bytes, y + r, ldy);
        return;
    }
    auto* xg = static_cast<uint8_t*>(scratch_panel().get(static_cast<size_t>(nsb) * XFmt<T>::kBytes));
    const int64_t TB = packed_token_chunk(x_row_bytes, kTile);
    for (int64_t t0 = 0; t0 < B; t0 += TB) {
        const int64_t nt = B - t0 < TB ? B - t0 : TB;
        for (int64_t r = r0; r < r1; r += kPackRows) {
            const uint8_t* grp = base + (r / kPackRows) * gbytes;
            for (int64_t i = 0; i < nsb; ++i) extract<T>(grp + i * KFmt<T>::kBytes, xg + i * XFmt<T>::kBytes);
            for (int64_t j = 0; j < nt; j += kTile) {
                const int rn = static_cast<int>(nt - j < kTile ? nt - j : kTile);
                tiles[rn - 1](xg, 0, nsb, xb + (t0 + j) * x_row_bytes, x_row_bytes, y + (t0 + j) * ldy + r,
                              ldy);
            }
        }
    }
}

}  // namespace

size_t packed_k_size(DType t, int64_t rows, int64_t n) {
    const size_t per = t == DType::Q4_K   ? KFmt<DType::Q4_K>::kBytes
                       : t == DType::Q5_K ? KFmt<DType::Q5_K>::kBytes
                                          : KFmt<DType::Q6_K>::kBytes;
    return static_cast<size_t>(rows / kPackRows) * static_cast<size_t>(n / QK_K) * per;
}

void fill_packed_k(KernelTable& t) {
    t.repack[static_cast<uint32_t>(DType::Q4_K)] = &repack_k<DType::Q4_K>;
    t.matmul_packed[static_cast<uint32_t>(DType::Q4_K)] = &matmul_packed_k<DType::Q4_K>;
    t.repack[static_cast<uint32_t>(DType::Q5_K)] = &repack_k<DType::Q5_K>;
    t.matmul_packed[static_cast<uint32_t>(DType::Q5_K)] = &matmul_packed_k<DType::Q5_K>;
    t.repack[static_cast<uint32_t>(DType::Q6_K)] = &repack_k<DType::Q6_K>;
    t.matmul_packed[static_cast<uint32_t>(DType::Q6_K)] = &matmul_packed_k<DType::Q6_K>;
}

}  // namespace strata::avx512
