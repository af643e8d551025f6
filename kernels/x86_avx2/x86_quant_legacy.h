// Matmul of the 32-element block formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) against Q8_0 / Q8_1 activations.
//
// Shape of the computation, for rows [r0, r1) and B activation rows ("tokens"):
//   1. Token prep, once per call per chunk of tokens: each activation row's int8 quants laid out contiguously
//      (aligned vector loads), its block scales as floats, its per-block integer correction -offset * sum(q)
//      (for weights stored with an offset: Q4_0 stores q+8, Q5_0 q+16, Q8_0 under VNNI w+128), and for Q8_1 its s.
//   2. Row panel, once per RM weight rows per token chunk: the rows' quants unpacked to one byte per element
//      (0..15 / 0..31 / w+128, or for AVX2's Q8_0 the signed bytes and their absolute values) and scales as floats.
//   3. Register tiles of RM rows x RN tokens walk the blocks: per (row, token, group of blocks) one integer dot
//      (vpmaddubsw+vpmaddwd, or vpdpbusd), started from the token's correction so each block's int32 sum is the
//      exact sum of the reference, then converted and accumulated in float with the product of the two scales.
//      Each unpacked weight vector is used by RN tokens, each activation vector by RM rows.
//   Q4_1/Q5_1's offset term m * s is a separate float dot over blocks (nb / 8 FMAs per row x token).
// Integer block sums equal the scalar reference's exactly; only the float accumulation order differs.
#pragma once
#include "kernels/x86_avx2/x86_vec.h"

namespace strata::STRATA_X86_NS {
namespace {

enum class Legacy { Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 };

// Whether Q8_0 weights take the signed (AVX2 sign-trick) path, or the biased-by-128 path (VNNI).
constexpr bool kSignedQ8 = !STRATA_X86_VNNI;

template <Legacy L>
struct LegacyFmt;

STRATA_INLINE __m256i nibbles_32(const uint8_t* qs) {  // 16 bytes -> low nibbles (elements 0..15), high (16..31)
    const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    const __m128i m = _mm_set1_epi8(0x0F);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(t, 4), m), _mm_and_si128(t, m));
}
// Bit e of the 32-bit word -> 0x10 in byte e.
STRATA_INLINE __m256i high_bits_32(const uint8_t* qh4) {
    uint32_t qh;
    std::memcpy(&qh, qh4, 4);
    const __m256i shuf = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3,
                                          3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ULL));
    const __m256i b = _mm256_and_si256(_mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(qh)), shuf), bit);
    return _mm256_and_si256(_mm256_cmpeq_epi8(b, bit), _mm256_set1_epi8(0x10));
}

// Straight from the weight blocks (the direct path): the quants of KB consecutive blocks as one vector, and their
// f16 scales (d, or m) as a per-block-lanes float vector.
template <class VV, class Fm>
STRATA_INLINE typename VV::I direct_quants(const typename Fm::Block* b);
template <class VV>
STRATA_INLINE typename VV::F direct_scale(const f16_t* h, size_t stride_bytes);

template <>
struct LegacyFmt<Legacy::Q4_0> {
    using Block = block_q4_0;
    using ABlock = block_q8_0;
    static constexpr int kOffset = 8;
    static constexpr bool kMin = false, kSigned = false;
    static STRATA_INLINE __m256i quants(const Block& b) { return nibbles_32(b.qs); }
};
template <>
struct LegacyFmt<Legacy::Q4_1> {
    using Block = block_q4_1;
    using ABlock = block_q8_1;
    static constexpr int kOffset = 0;
    static constexpr bool kMin = true, kSigned = false;
    static STRATA_INLINE __m256i quants(const Block& b) { return nibbles_32(b.qs); }
};
template <>
struct LegacyFmt<Legacy::Q5_0> {
    using Block = block_q5_0;
    using ABlock = block_q8_0;
    static constexpr int kOffset = 16;
    static constexpr bool kMin = false, kSigned = false;
    static STRATA_INLINE __m256i quants(const Block& b) {
        return _mm256_or_si256(nibbles_32(b.qs), high_bits_32(b.qh));
    }
};
template <>
struct LegacyFmt<Legacy::Q5_1> {
    using Block = block_q5_1;
    using ABlock = block_q8_1;
    static constexpr int kOffset = 0;
    static constexpr bool kMin = true, kSigned = false;
    static STRATA_INLINE __m256i quants(const Block& b) {
        return _mm256_or_si256(nibbles_32(b.qs), high_bits_32(b.qh));
    }
};
template <>
struct LegacyFmt<Legacy::Q8_0> {
    using Block = block_q8_0;
    using ABlock = block_q8_0;
    static constexpr int kOffset = kSignedQ8 ? 0 : 128;
    static constexpr bool kMin = false, kSigned = kSignedQ8;
    static STRATA_INLINE __m256i quants(const Block& b) {
        const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs));
        if constexpr (kSigned) return q;
        return _mm256_xor_si256(q, _mm256_set1_epi8(static_cast<char>(0x80)));
    }
};

template <>
STRATA_INLINE __m256i direct_quants<V256, LegacyFmt<Legacy::Q4_0>>(const block_q4_0* b) { return nibbles_32(b->qs); }
template <>
STRATA_INLINE __m256i direct_quants<V256, LegacyFmt<Legacy::Q4_1>>(const block_q4_1* b) { return nibbles_32(b->qs); }
template <>
STRATA_INLINE __m256i direct_quants<V256, LegacyFmt<Legacy::Q5_0>>(const block_q5_0* b) {
    return LegacyFmt<Legacy::Q5_0>::quants(*b);
}
template <>
STRATA_INLINE __m256i direct_quants<V256, LegacyFmt<Legacy::Q5_1>>(const block_q5_1* b) {
    return LegacyFmt<Legacy::Q5_1>::quants(*b);
}
template <>
STRATA_INLINE __m256i direct_quants<V256, LegacyFmt<Legacy::Q8_0>>(const block_q8_0* b) {
    return LegacyFmt<Legacy::Q8_0>::quants(*b);
}
template <>
STRATA_INLINE __m256 direct_scale<V256>(const f16_t* h, size_t) {
    return _mm256_cvtph_ps(_mm_set1_epi16(static_cast<short>(*h)));
}

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
// Two Q4 blocks: [lo nibbles 0 | hi nibbles 0 | lo 1 | hi 1], from two 16-byte broadcasts.
STRATA_INLINE __m512i nibbles_64(const uint8_t* qs0, const uint8_t* qs1) {
    __m512i v = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs0)));
    v = _mm512_mask_broadcast_i32x4(v, 0xFF00, _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs1)));
    v = _mm512_mask_srli_epi16(v, 0xFF00FF00u, v, 4);
    return _mm512_and_si512(v, _mm512_set1_epi8(0x0F));
}
STRATA_INLINE __m512i high_bits_64(const uint8_t* qh0, const uint8_t* qh1) {
    uint32_t a, b;
    std::memcpy(&a, qh0, 4);
    std::memcpy(&b, qh1, 4);
    return _mm512_maskz_mov_epi8(_cvtu64_mask64(static_cast<uint64_t>(b) << 32 | a), _mm512_set1_epi8(0x10));
}
template <>
STRATA_INLINE __m512i direct_quants<V512, LegacyFmt<Legacy::Q4_0>>(const block_q4_0* b) {
    return nibbles_64(b[0].qs, b[1].qs);
}
template <>
STRATA_INLINE __m512i direct_quants<V512, LegacyFmt<Legacy::Q4_1>>(const block_q4_1* b) {
    return nibbles_64(b[0].qs, b[1].qs);
}
template <>
STRATA_INLINE __m512i direct_quants<V512, LegacyFmt<Legacy::Q5_0>>(const block_q5_0* b) {
    return _mm512_or_si512(nibbles_64(b[0].qs, b[1].qs), high_bits_64(b[0].qh, b[1].qh));
}
template <>
STRATA_INLINE __m512i direct_quants<V512, LegacyFmt<Legacy::Q5_1>>(const block_q5_1* b) {
    return _mm512_or_si512(nibbles_64(b[0].qs, b[1].qs), high_bits_64(b[0].qh, b[1].qh));
}
template <>
STRATA_INLINE __m512i direct_quants<V512, LegacyFmt<Legacy::Q8_0>>(const block_q8_0* b) {
    const __m512i v = _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[0].qs))),
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[1].qs)), 1);
    return _mm512_xor_si512(v, _mm512_set1_epi8(static_cast<char>(0x80)));
}
template <>
STRATA_INLINE __m512 direct_scale<V512>(const f16_t* h, size_t stride_bytes) {
    const f16_t h1 = *reinterpret_cast<const f16_t*>(reinterpret_cast<const uint8_t*>(h) + stride_bytes);
    const __m128 two = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(static_cast<uint32_t>(h1) << 16 | *h)));
    return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1),
                                 _mm512_castps128_ps512(two));
}
#endif

// ---- layouts of the token chunk and the row panel -------------------------------------------------------------
struct LegacyLayout {
    int64_t n, nb;
    size_t q_bytes, f_bytes;  // aligned sizes of n bytes and of nb floats
    size_t tok_bytes;         // per token: q | d | corr | s
    size_t row_bytes;         // per panel row: q | (abs q) | d | m
    LegacyLayout(int64_t n_, bool is_signed)
        : n(n_), nb(n_ / 32), q_bytes(align64(static_cast<size_t>(n_))), f_bytes(align64(static_cast<size_t>(nb) * 4)),
          tok_bytes(q_bytes + 3 * f_bytes), row_bytes(q_bytes * (is_signed ? 2 : 1) + 2 * f_bytes) {}
};

struct TokView {
    const uint8_t* base;
    size_t stride, q_bytes, f_bytes;
    STRATA_INLINE const int8_t* q(int j) const { return reinterpret_cast<const int8_t*>(base + j * stride); }
    STRATA_INLINE const float* d(int j) const { return reinterpret_cast<const float*>(base + j * stride + q_bytes); }
    STRATA_INLINE const int32_t* corr(int j) const {
        return reinterpret_cast<const int32_t*>(base + j * stride + q_bytes + f_bytes);
    }
    STRATA_INLINE const float* s(int j) const {
        return reinterpret_cast<const float*>(base + j * stride + q_bytes + 2 * f_bytes);
    }
};
struct PanelView {
    const uint8_t* base;
    size_t stride, q_bytes, f_bytes;
    int nq;  // quant arrays per row: 1, or 2 (signed + abs)
    STRATA_INLINE const uint8_t* q(int r) const { return base + r * stride; }
    STRATA_INLINE const uint8_t* qabs(int r) const { return base + r * stride + q_bytes; }
    STRATA_INLINE const float* d(int r) const { return reinterpret_cast<const float*>(base + r * stride + nq * q_bytes); }
    STRATA_INLINE const float* m(int r) const {
        return reinterpret_cast<const float*>(base + r * stride + nq * q_bytes + f_bytes);
    }
};

template <class Fm>
void legacy_prep_token(const typename Fm::ABlock* x, uint8_t* dst, const LegacyLayout& L) {
    auto* q = reinterpret_cast<int8_t*>(dst);
    auto* d = reinterpret_cast<float*>(dst + L.q_bytes);
    auto* corr = reinterpret_cast<int32_t*>(dst + L.q_bytes + L.f_bytes);
    auto* s = reinterpret_cast<float*>(dst + L.q_bytes + 2 * L.f_bytes);
    const __m256i bias = _mm256_set1_epi8(static_cast<char>(0x80));
    for (int64_t k = 0; k < L.nb; ++k) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[k].qs));
        _mm256_store_si256(reinterpret_cast<__m256i*>(q + 32 * k), v);
        d[k] = x86_h2f(x[k].d);
        if constexpr (Fm::kOffset != 0) {
            // sum(q) = sum(q + 128) - 32 * 128, the biased bytes summed exactly by vpsadbw
            const __m256i sad = _mm256_sad_epu8(_mm256_xor_si256(v, bias), _mm256_setzero_si256());
            const __m128i s2 = _mm_add_epi64(_mm256_castsi256_si128(sad), _mm256_extracti128_si256(sad, 1));
            const int64_t total = _mm_cvtsi128_si64(s2) + _mm_extract_epi64(s2, 1);
            corr[k] = -Fm::kOffset * static_cast<int32_t>(total - 32 * 128);
        }
        if constexpr (Fm::kMin) s[k] = x86_h2f(x[k].s);
    }
}

// prefetch_ahead: bytes from a block to the same block of the rows the next panel will hold.
template <class Fm>
void legacy_prep_row(const typename Fm::Block* w, uint8_t* dst, const LegacyLayout& L, size_t prefetch_ahead) {
    constexpr int nq = Fm::kSigned ? 2 : 1;
    uint8_t* q = dst;
    auto* d = reinterpret_cast<float*>(dst + nq * L.q_bytes);
    auto* m = reinterpret_cast<float*>(dst + nq * L.q_bytes + L.f_bytes);
    for (int64_t k = 0; k < L.nb; ++k) {
        _mm_prefetch(reinterpret_cast<const char*>(w + k) + prefetch_ahead, _MM_HINT_T0);
        const __m256i v = Fm::quants(w[k]);
        _mm256_store_si256(reinterpret_cast<__m256i*>(q + 32 * k), v);
        if constexpr (Fm::kSigned) _mm256_store_si256(reinterpret_cast<__m256i*>(q + L.q_bytes + 32 * k), _mm256_abs_epi8(v));
        d[k] = x86_h2f(w[k].d);
        if constexpr (Fm::kMin) m[k] = x86_h2f(w[k].m);
    }
}

// Accumulate blocks [k0, k1) (a whole number of VV groups) of an RM x RN tile into acc.
template <class VV, class Fm, int RM, int RN>
STRATA_INLINE void legacy_accumulate(const PanelView& P, const TokView& T, int64_t k0, int64_t k1,
                                     typename VV::F (&acc)[RM][RN]) {
    using I = typename VV::I;
    using F = typename VV::F;
    for (int64_t k = k0; k < k1; k += VV::KB) {
        I w[RM];
        [[maybe_unused]] I wabs[RM];
        [[maybe_unused]] F dw[RM];
        STRATA_UNROLL for (int r = 0; r < RM; ++r) {
            w[r] = VV::load_i(P.q(r) + 32 * k);
            if constexpr (Fm::kSigned) wabs[r] = VV::load_i(P.qabs(r) + 32 * k);
            if constexpr (VV::kHoistScale) dw[r] = VV::scale(P.d(r) + k);
        }
        STRATA_UNROLL for (int j = 0; j < RN; ++j) {
            const I a = VV::load_i(T.q(j) + 32 * k);
            const F da = VV::scale(T.d(j) + k);
            I c = VV::zero_i();
            if constexpr (Fm::kOffset != 0) c = VV::corr(T.corr(j) + k);
            STRATA_UNROLL for (int r = 0; r < RM; ++r) {
                I s;
                if constexpr (Fm::kSigned)
                    s = VV::dot_signed(c, wabs[r], w[r], a);
                else
                    s = VV::dot(c, w[r], a);
                F scale;
                if constexpr (VV::kHoistScale)
                    scale = VV::mul(da, dw[r]);
                else
                    scale = VV::mul(da, VV::scale(P.d(r) + k));
                acc[r][j] = VV::fmadd(VV::cvt(s), scale, acc[r][j]);
            }
        }
    }
}

// sum + m * s with one rounding, spelled out (not left to the compiler's contraction choices) since two code paths
// must give the same bits.
STRATA_INLINE float min_term_fma(float m, float s, float sum) {
    return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(m), _mm_set_ss(s), _mm_set_ss(sum)));
}

// Q4_1 / Q5_1: sum over blocks of m_w * s_a for RM rows (m as floats, row r at m + r * m_stride) x RN tokens.
// The panel path computes it with this function, the direct path (legacy_direct_tile) with the same operations in
// the same lanes and order, so a (row, token) result never depends on the batch around it.
template <int RM, int RN>
STRATA_INLINE void legacy_min_sums(const float* m, size_t m_stride, const TokView& T, int64_t nb,
                                   float (&minsum)[RM][RN]) {
    __m256 ms[RM][RN];
    STRATA_UNROLL for (int r = 0; r < RM; ++r)
        STRATA_UNROLL for (int j = 0; j < RN; ++j) ms[r][j] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 8 <= nb; k += 8)
        STRATA_UNROLL for (int r = 0; r < RM; ++r) {
            const __m256 mw = _mm256_loadu_ps(m + r * m_stride + k);
            STRATA_UNROLL for (int j = 0; j < RN; ++j) ms[r][j] = _mm256_fmadd_ps(mw, _mm256_loadu_ps(T.s(j) + k), ms[r][j]);
        }
    STRATA_UNROLL for (int r = 0; r < RM; ++r)
        STRATA_UNROLL for (int j = 0; j < RN; ++j) {
            float sum = hsum(ms[r][j]);
            for (int64_t kk = k; kk < nb; ++kk) sum = min_term_fma(m[r * m_stride + kk], T.s(j)[kk], sum);
            minsum[r][j] = sum;
        }
}

// One RM x RN tile over all nb blocks: y[j * ldy + r] for the panel's rows r and the chunk's tokens j.
template <class V, class Fm, int RM, int RN>
void legacy_tile(const PanelView& P, const TokView& T, int64_t nb, float* y, int64_t ldy) {
    float minsum[RM][RN] = {};
    if constexpr (Fm::kMin) legacy_min_sums<RM, RN>(P.m(0), P.stride / 4, T, nb, minsum);
    typename V::F acc[RM][RN];
    STRATA_UNROLL for (int r = 0; r < RM; ++r)
        STRATA_UNROLL for (int j = 0; j < RN; ++j) acc[r][j] = V::zero_f();
    const int64_t nfull = nb / V::KB * V::KB;
    legacy_accumulate<V, Fm, RM, RN>(P, T, 0, nfull, acc);
    float tail[RM][RN] = {};
    if constexpr (V::KB > 1) {
        if (nfull < nb) {
            __m256 acc2[RM][RN];
            STRATA_UNROLL for (int r = 0; r < RM; ++r)
                STRATA_UNROLL for (int j = 0; j < RN; ++j) acc2[r][j] = _mm256_setzero_ps();
            legacy_accumulate<V256, Fm, RM, RN>(P, T, nfull, nb, acc2);
            STRATA_UNROLL for (int r = 0; r < RM; ++r)
                STRATA_UNROLL for (int j = 0; j < RN; ++j) tail[r][j] = hsum(acc2[r][j]);
        }
    }
    STRATA_UNROLL for (int r = 0; r < RM; ++r)
        STRATA_UNROLL for (int j = 0; j < RN; ++j) y[j * ldy + r] = V::sum(acc[r][j]) + tail[r][j] + minsum[r][j];
}

// The direct path, for few tokens (decode): RM rows x RN tokens read straight from the weight blocks, unpacked in
// registers; the loads stream while the dots run, so the weights are read once at close to memory speed.
template <class VV, class Fm, int RM, int RN>
STRATA_INLINE void legacy_direct_accumulate(const uint8_t* w, size_t w_row_bytes, const TokView& T, int64_t k0,
                                            int64_t k1, typename VV::F (&acc)[RM][RN]) {
    using I = typename VV::I;
    using F = typename VV::F;
    using Block = typename Fm::Block;
    constexpr size_t bb = sizeof(Block);
    for (int64_t k = k0; k < k1; k += VV::KB) {
        I wq[RM];
        F dw[RM];
        [[maybe_unused]] I wabs[RM];
        STRATA_UNROLL for (int r = 0; r < RM; ++r) {
            const Block* b = reinterpret_cast<const Block*>(w + r * w_row_bytes) + k;
            // The same place RM rows further on: the next tile's rows are on their way while this one computes.
            _mm_prefetch(reinterpret_cast<const char*>(b) + RM * w_row_bytes, _MM_HINT_T0);
            wq[r] = direct_quants<VV, Fm>(b);
            if constexpr (Fm::kSigned) wabs[r] = _mm256_abs_epi8(wq[r]);
            dw[r] = direct_scale<VV>(&b->d, bb);
        }
        STRATA_UNROLL for (int j = 0; j < RN; ++j) {
            const I a = VV::load_i(T.q(j) + 32 * k);
            const F da = VV::scale(T.d(j) + k);
            I c = VV::zero_i();
            if constexpr (Fm::kOffset != 0) c = VV::corr(T.corr(j) + k);
            STRATA_UNROLL for (int r = 0; r < RM; ++r) {
                I s;
                if constexpr (Fm::kSigned)
                    s = VV::dot_signed(c, wabs[r], wq[r], a);
                else
                    s = VV::dot(c, wq[r], a);
                acc[r][j] = VV::fmadd(VV::cvt(s), VV::mul(da, dw[r]), acc[r][j]);
            }
        }
    }
}

// The m of blocks k..k+7 of a Q4_1 / Q5_1 row, as floats.
template <class Block>
STRATA_INLINE __m256 min_vector8(const Block* b) {
    __m128i h = _mm_cvtsi32_si128(b[0].m);
    h = _mm_insert_epi16(h, b[1].m, 1);
    h = _mm_insert_epi16(h, b[2].m, 2);
    h = _mm_insert_epi16(h, b[3].m, 3);
    h = _mm_insert_epi16(h, b[4].m, 4);
    h = _mm_insert_epi16(h, b[5].m, 5);
    h = _mm_insert_epi16(h, b[6].m, 6);
    h = _mm_insert_epi16(h, b[7].m, 7);
    return _mm256_cvtph_ps(h);
}

template <class V, class Fm, int RM, int RN>
void legacy_direct_tile(const uint8_t* w, size_t w_row_bytes, const TokView& T, int64_t nb, float* y, int64_t ldy) {
    using Block = typename Fm::Block;
    typename V::F acc[RM][RN];
    STRATA_UNROLL for (int r = 0; r < RM; ++r)
        STRATA_UNROLL for (int j = 0; j < RN; ++j) acc[r][j] = V::zero_f();
    const int64_t nfull = nb / V::KB * V::KB;
    int64_t k = 0;
    float minsum[RM][RN] = {};
    if constexpr (Fm::kMin) {
        // Eight blocks at a time: the dots, then m * s in legacy_min_sums' lanes (lane l <- block k + l).
        __m256 ms[RM][RN];
        STRATA_UNROLL for (int r = 0; r < RM; ++r)
            STRATA_UNROLL for (int j = 0; j < RN; ++j) ms[r][j] = _mm256_setzero_ps();
        for (; k + 8 <= nb; k += 8) {
            legacy_direct_accumulate<V, Fm, RM, RN>(w, w_row_bytes, T, k, k + 8, acc);
            STRATA_UNROLL for (int r = 0; r < RM; ++r) {
                const __m256 mw = min_vector8(reinterpret_cast<const Block*>(w + r * w_row_bytes) + k);
                STRATA_UNROLL for (int j = 0; j < RN; ++j)
                    ms[r][j] = _mm256_fmadd_ps(mw, _mm256_loadu_ps(T.s(j) + k), ms[r][j]);
            }
        }
        STRATA_UNROLL for (int r = 0; r < RM; ++r) {
            const auto* b = reinterpret_cast<const Block*>(w + r * w_row_bytes);
            STRATA_UNROLL for (int j = 0; j < RN; ++j) {
                float sum = hsum(ms[r][j]);
                for (int64_t kk = k; kk < nb; ++kk) sum = min_term_fma(x86_h2f(b[kk].m), T.s(j)[kk], sum);
                minsum[r][j] = sum;
            }
        }
    }
    legacy_direct_accumulate<V, Fm, RM, RN>(w, w_row_bytes, T, k, nfull, acc);
    float tail[RM][RN] = {};
    if constexpr (V::KB > 1) {
        if (nfull < nb) {
            __m256 acc2[RM][RN];
            STRATA_UNROLL for (int r = 0; r < RM; ++r)
                STRATA_UNROLL for (int j = 0; j < RN; ++j) acc2[r][j] = _mm256_setzero_ps();
            legacy_direct_accumulate<V256, Fm, RM, RN>(w, w_row_bytes, T, nfull, nb, acc2);
            STRATA_UNROLL for (int r = 0; r < RM; ++r)
                STRATA_UNROLL for (int j = 0; j < RN; ++j) tail[r][j] = hsum(acc2[r][j]);
        }
    }
    STRATA_UNROLL for (int r = 0; r < RM; ++r)
        STRATA_UNROLL for (int j = 0; j < RN; ++j)
            y[j * ldy + r] = V::sum(acc[r][j]) + tail[r][j] + minsum[r][j];
}

using LegacyDirectFn = void (*)(const uint8_t*, size_t, const TokView&, int64_t, float*, int64_t);

template <class V, class Fm, int MaxM, int MaxN, int M = 1, int N = 1>
LegacyDirectFn legacy_pick_direct(int rm, int rn) {
    if constexpr (M > MaxM) {
        return nullptr;
    } else if constexpr (N > MaxN) {
        return legacy_pick_direct<V, Fm, MaxM, MaxN, M + 1, 1>(rm, rn);
    } else {
        if (rm == M && rn == N) return &legacy_direct_tile<V, Fm, M, N>;
        return legacy_pick_direct<V, Fm, MaxM, MaxN, M, N + 1>(rm, rn);
    }
}

using LegacyTileFn = void (*)(const PanelView&, const TokView&, int64_t, float*, int64_t);

template <class V, class Fm, int MaxM, int MaxN, int M = 1, int N = 1>
LegacyTileFn legacy_pick(int rm, int rn) {
    if constexpr (M > MaxM) {
        return nullptr;
    } else if constexpr (N > MaxN) {
        return legacy_pick<V, Fm, MaxM, MaxN, M + 1, 1>(rm, rn);
    } else {
        if (rm == M && rn == N) return &legacy_tile<V, Fm, M, N>;
        return legacy_pick<V, Fm, MaxM, MaxN, M, N + 1>(rm, rn);
    }
}

// Rows per direct tile, and the most tokens the direct path takes (more go through the panel).
constexpr int kDirectRows = 4, kDirectMaxTokens = 2;

template <class V, Legacy Lg, int RM, int RN>
void matmul_legacy(const void* w, size_t w_row_bytes, int64_t n, int64_t r0, int64_t r1, const void* x,
                   size_t x_row_bytes, int64_t B, float* y, int64_t ldy) {
    using Fm = LegacyFmt<Lg>;
    if (r1 <= r0 || B <= 0) return;
    const LegacyLayout L(n, Fm::kSigned);
    if (B <= kDirectMaxTokens) {
        auto* tok = static_cast<uint8_t*>(scratch_tokens().get(static_cast<size_t>(B) * L.tok_bytes));
        for (int64_t j = 0; j < B; ++j)
            legacy_prep_token<Fm>(
                reinterpret_cast<const typename Fm::ABlock*>(static_cast<const uint8_t*>(x) + j * x_row_bytes),
                tok + j * L.tok_bytes, L);
        const TokView T{tok, L.tok_bytes, L.q_bytes, L.f_bytes};
        const int rn = static_cast<int>(B);
        const LegacyDirectFn full = legacy_pick_direct<V, Fm, kDirectRows, kDirectMaxTokens>(kDirectRows, rn);
        const auto* wb = static_cast<const uint8_t*>(w);
        for (int64_t r = r0; r < r1; r += kDirectRows) {
            const int rm = static_cast<int>(r1 - r < kDirectRows ? r1 - r : kDirectRows);
            const LegacyDirectFn fn =
                rm == kDirectRows ? full : legacy_pick_direct<V, Fm, kDirectRows, kDirectMaxTokens>(rm, rn);
            fn(wb + r * w_row_bytes, w_row_bytes, T, L.nb, y + r, ldy);
        }
        return;
    }
    int64_t TB = static_cast<int64_t>(kTokenChunkBytes / L.tok_bytes);
    TB = TB < RN ? RN : TB / RN * RN;
    if (TB > B) TB = B;
    auto* tok = static_cast<uint8_t*>(scratch_tokens().get(static_cast<size_t>(TB) * L.tok_bytes));
    auto* panel = static_cast<uint8_t*>(scratch_panel().get(RM * L.row_bytes));
    const TokView T0{tok, L.tok_bytes, L.q_bytes, L.f_bytes};
    const auto* wb = static_cast<const uint8_t*>(w);
    const auto* xb = static_cast<const uint8_t*>(x);
    for (int64_t t0 = 0; t0 < B; t0 += TB) {
        const int64_t nt = B - t0 < TB ? B - t0 : TB;
        for (int64_t j = 0; j < nt; ++j)
            legacy_prep_token<Fm>(reinterpret_cast<const typename Fm::ABlock*>(xb + (t0 + j) * x_row_bytes),
                                  tok + j * L.tok_bytes, L);
        for (int64_t r = r0; r < r1; r += RM) {
            const int rm = static_cast<int>(r1 - r < RM ? r1 - r : RM);
            for (int i = 0; i < rm; ++i)
                legacy_prep_row<Fm>(reinterpret_cast<const typename Fm::Block*>(wb + (r + i) * w_row_bytes),
                                    panel + i * L.row_bytes, L, RM * w_row_bytes);
            const PanelView P{panel, L.row_bytes, L.q_bytes, L.f_bytes, Fm::kSigned ? 2 : 1};
            const LegacyTileFn full = legacy_pick<V, Fm, RM, RN>(rm, RN);
            for (int64_t j = 0; j < nt; j += RN) {
                const int rn = static_cast<int>(nt - j < RN ? nt - j : RN);
                const TokView T{T0.base + j * L.tok_bytes, L.tok_bytes, L.q_bytes, L.f_bytes};
                const LegacyTileFn fn = rn == RN ? full : legacy_pick<V, Fm, RM, RN>(rm, rn);
                fn(P, T, L.nb, y + (t0 + j) * ldy + r, ldy);
            }
        }
    }
}

// vec_dot through the matmul: one row, one token.
template <class V, Legacy Lg>
float vec_dot_legacy(int64_t n, const void* w, const void* x) {
    float out = 0.0f;
    matmul_legacy<V, Lg, 1, 1>(w, 0, n, 0, 1, x, 0, 1, &out, 1);
    return out;
}

}  // namespace
}  // namespace strata::STRATA_X86_NS
