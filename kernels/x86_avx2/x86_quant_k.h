// Matmul of the K-quants (Q4_K, Q5_K, Q6_K) against Q8_K activations (used in place: no token prep).
//
// Loop order: for each group of RM weight rows, for each 256-element super-block, the RM rows' super-blocks are
// unpacked once into an L1 buffer (one byte per quant, 0..15 / 0..31 / 0..63; int16 sub-block scales laid out per
// element pair; the offset/min terms as int16 against Q8_K's bsums; d and dmin as floats), then every tile of RN
// tokens adds that super-block to per-(row, token) float vector accumulators kept in memory. Each super-block is
// thus unpacked once per matmul whatever B is. For B <= 2 (decode) a direct path unpacks each super-block in
// registers instead, four rows side by side, with the next four rows prefetched.
//
// Integer part per (row, token, super-block), exact as the reference's:
//   sumi = sum_sub scale_sub * sum(q * a)   (vpmaddubsw, then vpmaddwd or vpdpwssd with the scales)
//   corr = sum_j bsums_j * c_j              (Q4_K/Q5_K: c_j = min_{j/2}; Q6_K: c_j = -32 * scale_j, so sumi + corr)
// Float part: acc += d * da * sumi - dmin * da * corr (Q4_K/Q5_K), acc += d * da * (sumi + corr) (Q6_K).
#pragma once
#include "kernels/x86_avx2/x86_vec.h"

namespace strata::STRATA_X86_NS {
namespace {

enum class KQuant { Q4_K, Q5_K, Q6_K };

// One unpacked super-block of one row.
struct alignas(64) KUnpacked {
    uint8_t q[QK_K];        // quants, element order
    int16_t sc[QK_K / 2];   // scale of each element pair (lane p of a vpmaddubsw result)
    int16_t corr[QK_K / 16];  // against bsums[j]
    float d, dmin;
};

// One super-block of one row in registers: quants (32 per vector, element order), the int16 scale of each element
// pair for each 32-element step, the int16 corrections against bsums, and the float scales.
struct KRegs {
    __m256i q[8];
    __m256i sc[8];
    __m256i corr;
    float d, dmin;
};

// Q4_K / Q5_K 6-bit scales and mins (12 bytes): bytes 0-3 hold the low 6 bits of scales 0-3 and, on top, the high 2
// bits of scales 4-7; bytes 4-7 the same for the mins; bytes 8-11 the low nibbles of scales 4-7 and mins 4-7.
STRATA_INLINE void k4_scales_mins(const uint8_t* p, KRegs& k) {
    uint32_t a[3];
    std::memcpy(a, p, 12);
    const uint32_t sc03 = a[0] & 0x3f3f3f3fu, mn03 = a[1] & 0x3f3f3f3fu;
    const uint32_t sc47 = (a[2] & 0x0f0f0f0fu) | ((a[0] >> 6) & 0x03030303u) << 4;
    const uint32_t mn47 = ((a[2] >> 4) & 0x0f0f0f0fu) | ((a[1] >> 6) & 0x03030303u) << 4;
    const __m128i sc = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<int64_t>(uint64_t(sc47) << 32 | sc03)));
    const __m128i mn = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<int64_t>(uint64_t(mn47) << 32 | mn03)));
    const __m256i sc2 = _mm256_broadcastsi128_si256(sc);
    STRATA_UNROLL for (int s = 0; s < 8; ++s)  // every lane <- int16 lane s
        k.sc[s] = _mm256_shuffle_epi8(sc2, _mm256_set1_epi16(static_cast<short>(0x0100 + 0x0202 * s)));
    k.corr = _mm256_set_m128i(_mm_unpackhi_epi16(mn, mn), _mm_unpacklo_epi16(mn, mn));  // bsums j <-> min j/2
}

template <KQuant Kq>
STRATA_INLINE void k_load(const uint8_t* blk, KRegs& k);

template <>
STRATA_INLINE void k_load<KQuant::Q4_K>(const uint8_t* blk, KRegs& k) {
    const auto& b = *reinterpret_cast<const block_q4_K*>(blk);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int j = 0; j < 4; ++j) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * j));
        k.q[2 * j] = _mm256_and_si256(v, m4);
        k.q[2 * j + 1] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
    }
    k4_scales_mins(b.scales, k);
    k.d = x86_h2f(b.d);
    k.dmin = x86_h2f(b.dmin);
}

template <>
STRATA_INLINE void k_load<KQuant::Q5_K>(const uint8_t* blk, KRegs& k) {
    const auto& b = *reinterpret_cast<const block_q5_K*>(blk);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh));
    for (int j = 0; j < 4; ++j) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * j));
        // Bit 2j of qh[l] is the fifth bit of element 64j + l, bit 2j+1 that of element 64j + 32 + l.
        const __m256i b0 = _mm256_set1_epi8(static_cast<char>(1 << (2 * j)));
        const __m256i b1 = _mm256_set1_epi8(static_cast<char>(1 << (2 * j + 1)));
        const __m256i h0 = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(h, b0), b0), _mm256_set1_epi8(0x10));
        const __m256i h1 = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(h, b1), b1), _mm256_set1_epi8(0x10));
        k.q[2 * j] = _mm256_or_si256(_mm256_and_si256(v, m4), h0);
        k.q[2 * j + 1] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4), h1);
    }
    k4_scales_mins(b.scales, k);
    k.d = x86_h2f(b.d);
    k.dmin = x86_h2f(b.dmin);
}

template <>
STRATA_INLINE void k_load<KQuant::Q6_K>(const uint8_t* blk, KRegs& k) {
    const auto& b = *reinterpret_cast<const block_q6_K*>(blk);
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3);
    for (int half = 0; half < 2; ++half) {
        const uint8_t* ql = b.ql + 64 * half;
        const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
        const __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
        const __m256i hb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh + 32 * half));
        const __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(hb, m2), 4);
        const __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), m2), 4);
        const __m256i h2 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), m2), 4);
        const __m256i h3 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), m2), 4);
        k.q[4 * half + 0] = _mm256_or_si256(_mm256_and_si256(l0, m4), h0);
        k.q[4 * half + 1] = _mm256_or_si256(_mm256_and_si256(l1, m4), h1);
        k.q[4 * half + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), h2);
        k.q[4 * half + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), h3);
    }
    // 16 int8 scales, one per 16 elements: step s takes scale 2s in its low half and 2s+1 in its high half.
    const __m256i s16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales)));
    const __m256i lo = _mm256_permute2x128_si256(s16, s16, 0x00), hi = _mm256_permute2x128_si256(s16, s16, 0x11);
    STRATA_UNROLL for (int s = 0; s < 8; ++s) {
        const int l = 2 * (s & 3);  // int16 lanes l and l+1 of the half that holds scales 2s, 2s+1
        const __m256i ctrl = _mm256_setr_epi16(
            static_cast<short>(0x0100 + 0x0202 * l), static_cast<short>(0x0100 + 0x0202 * l),
            static_cast<short>(0x0100 + 0x0202 * l), static_cast<short>(0x0100 + 0x0202 * l),
            static_cast<short>(0x0100 + 0x0202 * l), static_cast<short>(0x0100 + 0x0202 * l),
            static_cast<short>(0x0100 + 0x0202 * l), static_cast<short>(0x0100 + 0x0202 * l),
            static_cast<short>(0x0100 + 0x0202 * (l + 1)), static_cast<short>(0x0100 + 0x0202 * (l + 1)),
            static_cast<short>(0x0100 + 0x0202 * (l + 1)), static_cast<short>(0x0100 + 0x0202 * (l + 1)),
            static_cast<short>(0x0100 + 0x0202 * (l + 1)), static_cast<short>(0x0100 + 0x0202 * (l + 1)),
            static_cast<short>(0x0100 + 0x0202 * (l + 1)), static_cast<short>(0x0100 + 0x0202 * (l + 1)));
        k.sc[s] = _mm256_shuffle_epi8(s < 4 ? lo : hi, ctrl);
    }
    k.corr = _mm256_sub_epi16(_mm256_setzero_si256(), _mm256_slli_epi16(s16, 5));  // -32 * scale_j
    k.d = x86_h2f(b.d);
    k.dmin = 0.0f;
}

// The panel form: the same values stored for the tile kernels.
template <KQuant Kq>
STRATA_INLINE void k_unpack(const uint8_t* blk, KUnpacked& u) {
    KRegs k;
    k_load<Kq>(blk, k);
    STRATA_UNROLL for (int s = 0; s < 8; ++s) {
        _mm256_store_si256(reinterpret_cast<__m256i*>(u.q + 32 * s), k.q[s]);
        _mm256_store_si256(reinterpret_cast<__m256i*>(u.sc + 16 * s), k.sc[s]);
    }
    _mm256_store_si256(reinterpret_cast<__m256i*>(u.corr), k.corr);
    u.d = k.d;
    u.dmin = k.dmin;
}

// Vector width policy of the K kernel: how many elements one integer step covers.
struct VK256 {
    using I = __m256i;
    using F = __m256;
    static constexpr int kStep = 32;
    static STRATA_INLINE I load(const void* p) { return _mm256_load_si256(static_cast<const __m256i*>(p)); }
    static STRATA_INLINE I loadu(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
    static STRATA_INLINE I zero() { return _mm256_setzero_si256(); }
    static STRATA_INLINE I maddubs(I u, I s) { return _mm256_maddubs_epi16(u, s); }
    static STRATA_INLINE I dot16(I acc, I a, I b) { return dot_i16(acc, a, b); }
    static STRATA_INLINE I widen(__m256i v) { return v; }
    static STRATA_INLINE I add(I a, I b) { return _mm256_add_epi32(a, b); }
    static constexpr int kParts = 1;  // 256-bit steps per integer step
    static STRATA_INLINE I join(const __m256i* parts) { return parts[0]; }
    static STRATA_INLINE F cvt(I v) { return _mm256_cvtepi32_ps(v); }
    static STRATA_INLINE F set1(float f) { return _mm256_set1_ps(f); }
    static STRATA_INLINE F loadf(const float* p) { return _mm256_load_ps(p); }
    static STRATA_INLINE void storef(float* p, F v) { _mm256_store_ps(p, v); }
    static STRATA_INLINE F fmadd(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
    static STRATA_INLINE F fnmadd(F a, F b, F c) { return _mm256_fnmadd_ps(a, b, c); }
    static STRATA_INLINE float sum(F v) { return hsum(v); }
    static constexpr int kFloats = 8;
};

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
struct VK512 {
    using I = __m512i;
    using F = __m512;
    static constexpr int kStep = 64;
    static STRATA_INLINE I load(const void* p) { return _mm512_load_si512(p); }
    static STRATA_INLINE I loadu(const void* p) { return _mm512_loadu_si512(p); }
    static STRATA_INLINE I zero() { return _mm512_setzero_si512(); }
    static STRATA_INLINE I maddubs(I u, I s) { return _mm512_maddubs_epi16(u, s); }
    static STRATA_INLINE I dot16(I acc, I a, I b) { return _mm512_dpwssd_epi32(acc, a, b); }
    static STRATA_INLINE I widen(__m256i v) { return _mm512_zextsi256_si512(v); }
    static STRATA_INLINE I add(I a, I b) { return _mm512_add_epi32(a, b); }
    static constexpr int kParts = 2;
    static STRATA_INLINE I join(const __m256i* parts) {
        return _mm512_inserti64x4(_mm512_castsi256_si512(parts[0]), parts[1], 1);
    }
    static STRATA_INLINE F cvt(I v) { return _mm512_cvtepi32_ps(v); }
    static STRATA_INLINE F set1(float f) { return _mm512_set1_ps(f); }
    static STRATA_INLINE F loadf(const float* p) { return _mm512_load_ps(p); }
    static STRATA_INLINE void storef(float* p, F v) { _mm512_store_ps(p, v); }
    static STRATA_INLINE F fmadd(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
    static STRATA_INLINE F fnmadd(F a, F b, F c) { return _mm512_fnmadd_ps(a, b, c); }
    static STRATA_INLINE float sum(F v) { return _mm512_reduce_add_ps(v); }
    static constexpr int kFloats = 16;
};
#endif

// The float part of one (row, token, super-block), shared by every path so that a result never depends on B.
template <class VK, KQuant Kq>
STRATA_INLINE typename VK::F k_finish(typename VK::F acc, typename VK::I sumi, __m256i corr, float d, float dmin,
                                      float da) {
    if constexpr (Kq == KQuant::Q6_K) {
        return VK::fmadd(VK::cvt(VK::add(sumi, VK::widen(corr))), VK::set1(d * da), acc);
    } else {
        acc = VK::fmadd(VK::cvt(sumi), VK::set1(d * da), acc);
        return VK::fnmadd(VK::cvt(VK::widen(corr)), VK::set1(dmin * da), acc);
    }
}

// The direct path for few tokens: RM rows side by side, super-block by super-block, each unpacked in registers and
// dotted with the RN tokens' blocks; the same super-block of the next RM rows is prefetched meanwhile. The integer
// sums are gathered in the lanes the tile kernel's VK-wide steps would give (256-bit step s into part s % kParts),
// so the float part is the tile's, operation for operation.
template <class VK, KQuant Kq, int RM, int RN>
void k_direct_rows(const uint8_t* w, size_t w_row_bytes, size_t wbb, int64_t nsb, const uint8_t* x,
                   size_t x_row_bytes, float* out, int64_t ldy) {
    typename VK::F acc[RM][RN];
    STRATA_UNROLL for (int r = 0; r < RM; ++r)
        STRATA_UNROLL for (int j = 0; j < RN; ++j) acc[r][j] = VK::set1(0.0f);
    for (int64_t i = 0; i < nsb; ++i) {
        STRATA_UNROLL for (int r = 0; r < RM; ++r) {
            const uint8_t* blk = w + r * w_row_bytes + i * wbb;
            for (size_t off = 0; off < wbb; off += 64)
                _mm_prefetch(reinterpret_cast<const char*>(blk) + RM * w_row_bytes + off, _MM_HINT_T0);
            KRegs k;
            k_load<Kq>(blk, k);
            STRATA_UNROLL for (int j = 0; j < RN; ++j) {
                const auto* xb = reinterpret_cast<const block_q8_K*>(x + j * x_row_bytes) + i;
                __m256i part[VK::kParts];
                STRATA_UNROLL for (int p = 0; p < VK::kParts; ++p) part[p] = _mm256_setzero_si256();
                STRATA_UNROLL for (int st = 0; st < 8; ++st) {
                    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb->qs + 32 * st));
                    part[st % VK::kParts] =
                        dot_i16(part[st % VK::kParts], _mm256_maddubs_epi16(k.q[st], a), k.sc[st]);
                }
                const __m256i c =
                    _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb->bsums)), k.corr);
                acc[r][j] = k_finish<VK, Kq>(acc[r][j], VK::join(part), c, k.d, k.dmin, xb->d);
            }
        }
    }
    STRATA_UNROLL for (int r = 0; r < RM; ++r)
        STRATA_UNROLL for (int j = 0; j < RN; ++j) out[j * ldy + r] = VK::sum(acc[r][j]);
}

constexpr int kKDirectMaxTokens = 2;

// One super-block of RM unpacked rows x RN tokens, added into acc (float vectors, acc_stride floats apart per token).
template <class VK, KQuant Kq, int RM, int RN>
void k_tile(const KUnpacked* u, const uint8_t* const* xblk, float* acc, size_t acc_row_stride) {
    using I = typename VK::I;
    I sumi[RM][RN];
    STRATA_UNROLL for (int r = 0; r < RM; ++r)
        STRATA_UNROLL for (int j = 0; j < RN; ++j) sumi[r][j] = VK::zero();
    STRATA_UNROLL for (int e = 0; e < QK_K; e += VK::kStep) {
        I q[RM];
        STRATA_UNROLL for (int r = 0; r < RM; ++r) q[r] = VK::load(u[r].q + e);
        STRATA_UNROLL for (int j = 0; j < RN; ++j) {
            const I a = VK::loadu(reinterpret_cast<const block_q8_K*>(xblk[j])->qs + e);
            STRATA_UNROLL for (int r = 0; r < RM; ++r)
                sumi[r][j] = VK::dot16(sumi[r][j], VK::maddubs(q[r], a), VK::load(u[r].sc + e / 2));
        }
    }
    STRATA_UNROLL for (int j = 0; j < RN; ++j) {
        const auto* xb = reinterpret_cast<const block_q8_K*>(xblk[j]);
        const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb->bsums));
        STRATA_UNROLL for (int r = 0; r < RM; ++r) {
            const __m256i c = _mm256_madd_epi16(bs, _mm256_load_si256(reinterpret_cast<const __m256i*>(u[r].corr)));
            float* a = acc + r * acc_row_stride + j * VK::kFloats;
            VK::storef(a, k_finish<VK, Kq>(VK::loadf(a), sumi[r][j], c, u[r].d, u[r].dmin, xb->d));
        }
    }
}

using KTileFn = void (*)(const KUnpacked*, const uint8_t* const*, float*, size_t);

template <class VK, KQuant Kq, int MaxM, int MaxN, int M = 1, int N = 1>
KTileFn k_pick(int rm, int rn) {
    if constexpr (M > MaxM) {
        return nullptr;
    } else if constexpr (N > MaxN) {
        return k_pick<VK, Kq, MaxM, MaxN, M + 1, 1>(rm, rn);
    } else {
        if (rm == M && rn == N) return &k_tile<VK, Kq, M, N>;
        return k_pick<VK, Kq, MaxM, MaxN, M, N + 1>(rm, rn);
    }
}

template <class VK, KQuant Kq, int RM, int RN>
void matmul_k(const void* w, size_t w_row_bytes, int64_t n, int64_t r0, int64_t r1, const void* x,
              size_t x_row_bytes, int64_t B, float* y, int64_t ldy) {
    if (r1 <= r0 || B <= 0) return;
    const int64_t nsb = n / QK_K;
    const size_t wbb = Kq == KQuant::Q4_K ? sizeof(block_q4_K) : Kq == KQuant::Q5_K ? sizeof(block_q5_K)
                                                                                     : sizeof(block_q6_K);
    if (B <= kKDirectMaxTokens) {
        constexpr int kRows = 4;  // rows side by side: four streams for the memory system
        const auto* wb = static_cast<const uint8_t*>(w);
        const auto* xb = static_cast<const uint8_t*>(x);
        int64_t r = r0;
        for (; r + kRows <= r1; r += kRows) {
            const uint8_t* rows = wb + r * w_row_bytes;
            if (B == 1)
                k_direct_rows<VK, Kq, kRows, 1>(rows, w_row_bytes, wbb, nsb, xb, x_row_bytes, y + r, ldy);
            else
                k_direct_rows<VK, Kq, kRows, 2>(rows, w_row_bytes, wbb, nsb, xb, x_row_bytes, y + r, ldy);
        }
        for (; r < r1; ++r) {
            const uint8_t* row = wb + r * w_row_bytes;
            if (B == 1)
                k_direct_rows<VK, Kq, 1, 1>(row, w_row_bytes, wbb, nsb, xb, x_row_bytes, y + r, ldy);
            else
                k_direct_rows<VK, Kq, 1, 2>(row, w_row_bytes, wbb, nsb, xb, x_row_bytes, y + r, ldy);
        }
        return;
    }
    // Scratch: RM unpacked super-blocks, then the accumulators (RM rows x B tokens of float vectors).
    const size_t acc_row_stride = static_cast<size_t>(B) * VK::kFloats;
    auto* mem = static_cast<uint8_t*>(scratch_panel().get(RM * sizeof(KUnpacked) + RM * acc_row_stride * 4));
    auto* u = reinterpret_cast<KUnpacked*>(mem);
    auto* acc = reinterpret_cast<float*>(mem + RM * sizeof(KUnpacked));
    const auto* wb = static_cast<const uint8_t*>(w);
    const auto* xb = static_cast<const uint8_t*>(x);
    for (int64_t r = r0; r < r1; r += RM) {
        const int rm = static_cast<int>(r1 - r < RM ? r1 - r : RM);
        std::memset(acc, 0, RM * acc_row_stride * 4);
        const KTileFn full = k_pick<VK, Kq, RM, RN>(rm, RN);
        for (int64_t i = 0; i < nsb; ++i) {
            for (int rr = 0; rr < rm; ++rr) {
                const uint8_t* blk = wb + (r + rr) * w_row_bytes + i * wbb;
                // This super-block of the rows RM further on, for the next row group.
                for (size_t off = 0; off < wbb; off += 64)
                    _mm_prefetch(reinterpret_cast<const char*>(blk) + RM * w_row_bytes + off, _MM_HINT_T0);
                k_unpack<Kq>(blk, u[rr]);
            }
            for (int64_t j = 0; j < B; j += RN) {
                const int rn = static_cast<int>(B - j < RN ? B - j : RN);
                const uint8_t* xblk[RN];
                for (int jj = 0; jj < rn; ++jj) xblk[jj] = xb + (j + jj) * x_row_bytes + i * sizeof(block_q8_K);
                const KTileFn fn = rn == RN ? full : k_pick<VK, Kq, RM, RN>(rm, rn);
                fn(u, xblk, acc + j * VK::kFloats, acc_row_stride);
            }
        }
        for (int rr = 0; rr < rm; ++rr)
            for (int64_t j = 0; j < B; ++j) {
                const float* a = acc + rr * acc_row_stride + j * VK::kFloats;
                y[j * ldy + r + rr] = VK::sum(VK::loadf(a));
            }
    }
}

template <class VK, KQuant Kq>
float vec_dot_k(int64_t n, const void* w, const void* x) {
    float out = 0.0f;
    matmul_k<VK, Kq, 1, 1>(w, 0, n, 0, 1, x, 0, 1, &out, 1);
    return out;
}

}  // namespace
}  // namespace strata::STRATA_X86_NS
