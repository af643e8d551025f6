// Quantized matmuls on NEON: the 32-element block formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 against Q8_0 / Q8_1) and
// the K-quants (Q4_K, Q5_K, Q6_K against Q8_K), read straight from the weight and activation blocks.
//
// Included twice: by quant.cpp (namespace neon, base Armv8-A: int8 products by vmull_s8 + vpadalq_s16) and by
// quant_dotprod.cpp (namespace neon_dotprod, +dotprod: vdotq_s32). The integer sum of every block (sub-block for
// the K-quants) is exact and equals the scalar reference's on both paths; each is reduced to its own lane or scalar
// before any float operation, so the two tables give the same bits, and the float part of a (row, token) pair is
// the same sequence of operations whatever the tile, batch or row range.
//
// Legacy formats, per group of 4 blocks and (row, token) pair: the 4 block sums in the 4 lanes of one int32x4
// (reduce4), converted, times d_w * d_a lane by lane, added into a float32x4 accumulator (one fused multiply-add);
// Q4_1 / Q5_1 add m_w * s_a the same way. The last group of a row with nb % 4 blocks has its missing lanes zero.
// K-quants, per super-block and pair: sumi = sum_sub scale_sub * dot_sub as one int32 (exact), the min term
// summ = sum_sub min_sub * (bsums pair) likewise, then acc += d*da*sumi - dmin*da*summ in float.
#pragma once
#include "kernels/arm_neon/neon_common.h"

namespace strata::STRATA_NEON_NS {
namespace {

// ================================ legacy 32-element blocks =========================================================

enum class Legacy { Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 };

struct Q32 {  // the 32 quants of one block as signed bytes: elements 0..15 and 16..31
    int8x16_t lo, hi;
};

// Low nibbles (elements 0..15) and high nibbles (16..31) of 16 bytes, minus offset.
STRATA_INLINE Q32 nibbles(const uint8_t* qs, int8_t offset) {
    const uint8x16_t v = vld1q_u8(qs);
    const int8x16_t off = vdupq_n_s8(offset);
    return {vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x0F))), off),
            vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), off)};
}

alignas(16) constexpr uint8_t kBitOfByte[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
alignas(16) constexpr uint8_t kByteIdxLo[16] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1};
alignas(16) constexpr uint8_t kByteIdxHi[16] = {2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3};

// Q5's fifth bits: bit e of the 32-bit qh -> 0x10 in byte e, OR-ed into the nibbles, minus offset.
STRATA_INLINE Q32 nibbles_5bit(const uint8_t* qs, const uint8_t* qh4, int8_t offset) {
    uint32_t qh;
    std::memcpy(&qh, qh4, 4);
    const uint8x16_t bytes = vreinterpretq_u8_u32(vdupq_n_u32(qh));
    const uint8x16_t bit = vld1q_u8(kBitOfByte), x10 = vdupq_n_u8(0x10);
    const uint8x16_t h_lo = vandq_u8(vtstq_u8(vqtbl1q_u8(bytes, vld1q_u8(kByteIdxLo)), bit), x10);
    const uint8x16_t h_hi = vandq_u8(vtstq_u8(vqtbl1q_u8(bytes, vld1q_u8(kByteIdxHi)), bit), x10);
    const uint8x16_t v = vld1q_u8(qs);
    const int8x16_t off = vdupq_n_s8(offset);
    return {vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vandq_u8(v, vdupq_n_u8(0x0F)), h_lo)), off),
            vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(v, 4), h_hi)), off)};
}

template <Legacy L>
struct LegacyFmt;
template <>
struct LegacyFmt<Legacy::Q4_0> {
    using Block = block_q4_0;
    using ABlock = block_q8_0;
    static constexpr bool kMin = false;
    static STRATA_INLINE Q32 quants(const Block& b) { return nibbles(b.qs, 8); }
};
template <>
struct LegacyFmt<Legacy::Q4_1> {
    using Block = block_q4_1;
    using ABlock = block_q8_1;
    static constexpr bool kMin = true;
    static STRATA_INLINE Q32 quants(const Block& b) { return nibbles(b.qs, 0); }
};
template <>
struct LegacyFmt<Legacy::Q5_0> {
    using Block = block_q5_0;
    using ABlock = block_q8_0;
    static constexpr bool kMin = false;
    static STRATA_INLINE Q32 quants(const Block& b) { return nibbles_5bit(b.qs, b.qh, 16); }
};
template <>
struct LegacyFmt<Legacy::Q5_1> {
    using Block = block_q5_1;
    using ABlock = block_q8_1;
    static constexpr bool kMin = true;
    static STRATA_INLINE Q32 quants(const Block& b) { return nibbles_5bit(b.qs, b.qh, 0); }
};
template <>
struct LegacyFmt<Legacy::Q8_0> {
    using Block = block_q8_0;
    using ABlock = block_q8_0;
    static constexpr bool kMin = false;
    static STRATA_INLINE Q32 quants(const Block& b) { return {vld1q_s8(b.qs), vld1q_s8(b.qs + 16)}; }
};

// Halves of `count` (< 4) blocks `stride` bytes apart, as floats; the other lanes 0.
STRATA_INLINE float32x4_t h2f_partial(const f16_t* h, size_t stride, int count) {
    const auto* p = reinterpret_cast<const uint8_t*>(h);
    uint16_t v[4] = {0, 0, 0, 0};
    for (int i = 0; i < count; ++i) std::memcpy(&v[i], p + i * stride, 2);
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(v)));
}

// Blocks [k, k + count) (count = 4 when kFull) of an RM x RN tile, added into acc.
template <Legacy Lg, int RM, int RN, bool kFull>
STRATA_INLINE void legacy_group(const uint8_t* w, size_t w_row_bytes, const uint8_t* x, size_t x_row_bytes, int64_t k,
                                int count, float32x4_t (&acc)[RM][RN]) {
    using Fm = LegacyFmt<Lg>;
    using WB = typename Fm::Block;
    using AB = typename Fm::ABlock;
    auto wblk = [&](int r) { return reinterpret_cast<const WB*>(w + r * w_row_bytes) + k; };
    auto xblk = [&](int j) { return reinterpret_cast<const AB*>(x + j * x_row_bytes) + k; };
    // Pairwise-reduced dots: even[r][j] holds block 2i's lanes until block 2i+1's arrive; half[i] their vpaddq.
    int32x4_t even[RM][RN], half[2][RM][RN];
    STRATA_UNROLL for (int b = 0; b < 4; ++b) {
        int32x4_t p[RM][RN];
        if (!kFull && b >= count) {
            STRATA_UNROLL for (int r = 0; r < RM; ++r)
                STRATA_UNROLL for (int j = 0; j < RN; ++j) p[r][j] = vdupq_n_s32(0);
        } else {
            Q32 wq[RM];
            STRATA_UNROLL for (int r = 0; r < RM; ++r) wq[r] = Fm::quants(wblk(r)[b]);
            STRATA_UNROLL for (int j = 0; j < RN; ++j) {
                const int8x16_t a_lo = vld1q_s8(xblk(j)[b].qs), a_hi = vld1q_s8(xblk(j)[b].qs + 16);
                STRATA_UNROLL for (int r = 0; r < RM; ++r)
                    p[r][j] = dot_s8(dot_s8(vdupq_n_s32(0), wq[r].lo, a_lo), wq[r].hi, a_hi);
            }
        }
        STRATA_UNROLL for (int r = 0; r < RM; ++r)
            STRATA_UNROLL for (int j = 0; j < RN; ++j) {
                if (b % 2 == 0)
                    even[r][j] = p[r][j];
                else
                    half[b / 2][r][j] = vpaddq_s32(even[r][j], p[r][j]);
            }
    }
    float32x4_t dw[RM], da[RN];
    [[maybe_unused]] float32x4_t mw[RM], sa[RN];
    STRATA_UNROLL for (int r = 0; r < RM; ++r) {
        dw[r] = kFull ? h2f_x4(&wblk(r)->d, sizeof(WB)) : h2f_partial(&wblk(r)->d, sizeof(WB), count);
        if constexpr (Fm::kMin) mw[r] = kFull ? h2f_x4(&wblk(r)->m, sizeof(WB)) : h2f_partial(&wblk(r)->m, sizeof(WB), count);
    }
    STRATA_UNROLL for (int j = 0; j < RN; ++j) {
        da[j] = kFull ? h2f_x4(&xblk(j)->d, sizeof(AB)) : h2f_partial(&xblk(j)->d, sizeof(AB), count);
        if constexpr (Fm::kMin) sa[j] = kFull ? h2f_x4(&xblk(j)->s, sizeof(AB)) : h2f_partial(&xblk(j)->s, sizeof(AB), count);
    }
    STRATA_UNROLL for (int r = 0; r < RM; ++r)
        STRATA_UNROLL for (int j = 0; j < RN; ++j) {
            const int32x4_t sums = vpaddq_s32(half[0][r][j], half[1][r][j]);  // lane b: block k + b's exact sum
            acc[r][j] = vfmaq_f32(acc[r][j], vcvtq_f32_s32(sums), vmulq_f32(dw[r], da[j]));
            if constexpr (Fm::kMin) acc[r][j] = vfmaq_f32(acc[r][j], mw[r], sa[j]);
        }
}

template <Legacy Lg>
struct LegacyTiles {
    template <int RM, int RN>
    static void tile(const uint8_t* w, size_t w_row_bytes, const uint8_t* x, size_t x_row_bytes, int64_t n, float* y,
                     int64_t ldy) {
        const int64_t nb = n / 32;
        float32x4_t acc[RM][RN];
        STRATA_UNROLL for (int r = 0; r < RM; ++r)
            STRATA_UNROLL for (int j = 0; j < RN; ++j) acc[r][j] = vdupq_n_f32(0.0f);
        int64_t k = 0;
        for (; k + 4 <= nb; k += 4) legacy_group<Lg, RM, RN, true>(w, w_row_bytes, x, x_row_bytes, k, 4, acc);
        if (k < nb) legacy_group<Lg, RM, RN, false>(w, w_row_bytes, x, x_row_bytes, k, static_cast<int>(nb - k), acc);
        STRATA_UNROLL for (int r = 0; r < RM; ++r)
            STRATA_UNROLL for (int j = 0; j < RN; ++j) y[j * ldy + r] = vaddvq_f32(acc[r][j]);
    }
};

// ================================ K-quants =========================================================================

enum class KQuant { Q4_K, Q5_K, Q6_K };

// The per-super-block header of one row, unpacked: int32 scales of the sub-blocks (Q4_K/Q5_K: 8 of 32 elements in
// sc[0..1]; Q6_K: 16 of 16 elements in sc[0..3]), Q4_K/Q5_K's mins as int16, d and dmin.
struct KHeader {
    int32x4_t sc[4];
    int16x8_t mins;
    float d, dmin;
};

// Q4_K / Q5_K 6-bit scales and mins (12 bytes): bytes 0-3 the low 6 bits of scales 0-3 with the high 2 bits of
// scales 4-7 on top; bytes 4-7 the same for the mins; bytes 8-11 the low nibbles of scales 4-7 and mins 4-7.
STRATA_INLINE void k4_header(const uint8_t* scales, f16_t d, f16_t dmin, KHeader& h) {
    uint32_t a[3];
    std::memcpy(a, scales, 12);
    const uint32_t sc03 = a[0] & 0x3f3f3f3fu, mn03 = a[1] & 0x3f3f3f3fu;
    const uint32_t sc47 = (a[2] & 0x0f0f0f0fu) | ((a[0] >> 6) & 0x03030303u) << 4;
    const uint32_t mn47 = ((a[2] >> 4) & 0x0f0f0f0fu) | ((a[1] >> 6) & 0x03030303u) << 4;
    const uint16x8_t sc = vmovl_u8(vcreate_u8(uint64_t(sc47) << 32 | sc03));
    h.sc[0] = vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(sc)));
    h.sc[1] = vreinterpretq_s32_u32(vmovl_high_u16(sc));
    h.mins = vreinterpretq_s16_u16(vmovl_u8(vcreate_u8(uint64_t(mn47) << 32 | mn03)));
    h.d = neon_h2f(d);
    h.dmin = neon_h2f(dmin);
}

template <KQuant Kq>
struct KFmt;

template <>
struct KFmt<KQuant::Q4_K> {
    using Block = block_q4_K;
    static constexpr int kSubBlocks = 8, kSubElems = 32;
    static STRATA_INLINE void header(const Block& b, KHeader& h) { k4_header(b.scales, b.d, b.dmin, h); }
    // Sub-block s: elements 32s..32s+31, the low (s even) or high (s odd) nibbles of qs[32 (s/2) ...].
    static STRATA_INLINE Q32 quants(const Block& b, int s) {
        const uint8x16_t v0 = vld1q_u8(b.qs + 32 * (s / 2)), v1 = vld1q_u8(b.qs + 32 * (s / 2) + 16);
        if (s % 2 == 0) {
            const uint8x16_t m4 = vdupq_n_u8(0x0F);
            return {vreinterpretq_s8_u8(vandq_u8(v0, m4)), vreinterpretq_s8_u8(vandq_u8(v1, m4))};
        }
        return {vreinterpretq_s8_u8(vshrq_n_u8(v0, 4)), vreinterpretq_s8_u8(vshrq_n_u8(v1, 4))};
    }
};

template <>
struct KFmt<KQuant::Q5_K> {
    using Block = block_q5_K;
    static constexpr int kSubBlocks = 8, kSubElems = 32;
    static STRATA_INLINE void header(const Block& b, KHeader& h) { k4_header(b.scales, b.d, b.dmin, h); }
    // As Q4_K, plus bit s of qh[l] as 16 for element 32s + l.
    static STRATA_INLINE Q32 quants(const Block& b, int s) {
        const uint8x16_t v0 = vld1q_u8(b.qs + 32 * (s / 2)), v1 = vld1q_u8(b.qs + 32 * (s / 2) + 16);
        const uint8x16_t m4 = vdupq_n_u8(0x0F), bit = vdupq_n_u8(static_cast<uint8_t>(1u << s)), x10 = vdupq_n_u8(0x10);
        const uint8x16_t h0 = vandq_u8(vtstq_u8(vld1q_u8(b.qh), bit), x10);
        const uint8x16_t h1 = vandq_u8(vtstq_u8(vld1q_u8(b.qh + 16), bit), x10);
        const uint8x16_t l0 = s % 2 == 0 ? vandq_u8(v0, m4) : vshrq_n_u8(v0, 4);
        const uint8x16_t l1 = s % 2 == 0 ? vandq_u8(v1, m4) : vshrq_n_u8(v1, 4);
        return {vreinterpretq_s8_u8(vorrq_u8(l0, h0)), vreinterpretq_s8_u8(vorrq_u8(l1, h1))};
    }
};

template <>
struct KFmt<KQuant::Q6_K> {
    using Block = block_q6_K;
    static constexpr int kSubBlocks = 16, kSubElems = 16;
    static STRATA_INLINE void header(const Block& b, KHeader& h) {
        const int8x16_t s8 = vld1q_s8(b.scales);
        const int16x8_t lo = vmovl_s8(vget_low_s8(s8)), hi = vmovl_high_s8(s8);
        h.sc[0] = vmovl_s16(vget_low_s16(lo));
        h.sc[1] = vmovl_high_s16(lo);
        h.sc[2] = vmovl_s16(vget_low_s16(hi));
        h.sc[3] = vmovl_high_s16(hi);
        h.d = neon_h2f(b.d);
        h.dmin = 0.0f;
    }
    // Sub-block s: elements 16s..16s+15, in half h = s / 8, quarter q = (s / 2) % 4, bytes l0 = 16 (s % 2) on:
    // 4 low bits from ql[64h + 32 (q % 2) + l0 ...] (low nibble for q < 2, high for q >= 2), 2 high bits from bits
    // 2q, 2q+1 of qh[32h + l0 ...]; stored + 32.
    static STRATA_INLINE int8x16_t quants(const Block& b, int s) {
        const int h = s / 8, q = (s / 2) % 4, l0 = 16 * (s % 2);
        const uint8x16_t ql = vld1q_u8(b.ql + 64 * h + 32 * (q % 2) + l0);
        const uint8x16_t qh = vld1q_u8(b.qh + 32 * h + l0);
        const uint8x16_t lo4 = q < 2 ? vandq_u8(ql, vdupq_n_u8(0x0F)) : vshrq_n_u8(ql, 4);
        const uint8x16_t hi2 = vandq_u8(vshlq_u8(qh, vdupq_n_s8(static_cast<int8_t>(4 - 2 * q))), vdupq_n_u8(0x30));
        return vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(lo4, hi2)), vdupq_n_s8(32));
    }
};

template <KQuant Kq>
struct KTiles {
    using Fm = KFmt<Kq>;
    using Block = typename Fm::Block;

    template <int RM, int RN>
    static void tile(const uint8_t* w, size_t w_row_bytes, const uint8_t* x, size_t x_row_bytes, int64_t n, float* y,
                     int64_t ldy) {
        const int64_t nsb = n / QK_K;
        float acc[RM][RN] = {};
        for (int64_t i = 0; i < nsb; ++i) {
            const Block* wb[RM];
            const block_q8_K* xb[RN];
            KHeader hd[RM];
            STRATA_UNROLL for (int r = 0; r < RM; ++r) {
                wb[r] = reinterpret_cast<const Block*>(w + r * w_row_bytes) + i;
                Fm::header(*wb[r], hd[r]);
            }
            STRATA_UNROLL for (int j = 0; j < RN; ++j) xb[j] = reinterpret_cast<const block_q8_K*>(x + j * x_row_bytes) + i;
            // isum[r][j] = sum_s scale_s * dot_s, in 4 lanes; sub-blocks in groups of 4, their exact sums in the
            // lanes of one vector (as legacy_group), times the 4 scales.
            int32x4_t isum[RM][RN];
            STRATA_UNROLL for (int r = 0; r < RM; ++r)
                STRATA_UNROLL for (int j = 0; j < RN; ++j) isum[r][j] = vdupq_n_s32(0);
            STRATA_UNROLL for (int g = 0; g < Fm::kSubBlocks / 4; ++g) {
                int32x4_t even[RM][RN], half[2][RM][RN];
                STRATA_UNROLL for (int b = 0; b < 4; ++b) {
                    const int s = 4 * g + b;
                    int32x4_t p[RM][RN];
                    if constexpr (Fm::kSubElems == 32) {
                        Q32 q[RM];
                        STRATA_UNROLL for (int r = 0; r < RM; ++r) q[r] = Fm::quants(*wb[r], s);
                        STRATA_UNROLL for (int j = 0; j < RN; ++j) {
                            const int8x16_t a0 = vld1q_s8(xb[j]->qs + 32 * s), a1 = vld1q_s8(xb[j]->qs + 32 * s + 16);
                            STRATA_UNROLL for (int r = 0; r < RM; ++r)
                                p[r][j] = dot_s8(dot_s8(vdupq_n_s32(0), q[r].lo, a0), q[r].hi, a1);
                        }
                    } else {
                        int8x16_t q[RM];
                        STRATA_UNROLL for (int r = 0; r < RM; ++r) q[r] = Fm::quants(*wb[r], s);
                        STRATA_UNROLL for (int j = 0; j < RN; ++j) {
                            const int8x16_t a = vld1q_s8(xb[j]->qs + 16 * s);
                            STRATA_UNROLL for (int r = 0; r < RM; ++r) p[r][j] = dot_s8(vdupq_n_s32(0), q[r], a);
                        }
                    }
                    STRATA_UNROLL for (int r = 0; r < RM; ++r)
                        STRATA_UNROLL for (int j = 0; j < RN; ++j) {
                            if (b % 2 == 0)
                                even[r][j] = p[r][j];
                            else
                                half[b / 2][r][j] = vpaddq_s32(even[r][j], p[r][j]);
                        }
                }
                STRATA_UNROLL for (int r = 0; r < RM; ++r)
                    STRATA_UNROLL for (int j = 0; j < RN; ++j)
                        isum[r][j] = vmlaq_s32(isum[r][j], vpaddq_s32(half[0][r][j], half[1][r][j]), hd[r].sc[g]);
            }
            STRATA_UNROLL for (int j = 0; j < RN; ++j) {
                const float da = xb[j]->d;
                [[maybe_unused]] int16x8_t bs;  // sums of the 8 sub-blocks of 32 activations
                if constexpr (Kq != KQuant::Q6_K) bs = vpaddq_s16(vld1q_s16(xb[j]->bsums), vld1q_s16(xb[j]->bsums + 8));
                STRATA_UNROLL for (int r = 0; r < RM; ++r) {
                    const float sumi = static_cast<float>(vaddvq_s32(isum[r][j]));  // exact in int32 (|sumi| < 2^28)
                    if constexpr (Kq == KQuant::Q6_K) {
                        acc[r][j] += hd[r].d * da * sumi;
                    } else {
                        const int32_t summ = vaddvq_s32(vmlal_high_s16(
                            vmull_s16(vget_low_s16(bs), vget_low_s16(hd[r].mins)), bs, hd[r].mins));
                        acc[r][j] += hd[r].d * da * sumi - hd[r].dmin * da * static_cast<float>(summ);
                    }
                }
            }
        }
        STRATA_UNROLL for (int r = 0; r < RM; ++r)
            STRATA_UNROLL for (int j = 0; j < RN; ++j) y[j * ldy + r] = acc[r][j];
    }
};

// ================================ the table entries ================================================================

// Tile shapes: 4 rows x 1 token for decode; 2 x 2 for a batch (each unpacked weight vector used twice, each
// activation vector twice, with the pairwise dots in flight within the 32 vector registers).
template <class Family>
void matmul_q(const void* w, size_t w_row_bytes, int64_t n, int64_t r0, int64_t r1, const void* x, size_t x_row_bytes,
              int64_t B, float* y, int64_t ldy) {
    run_tiles<Family, 4, 2, 2>(static_cast<const uint8_t*>(w), w_row_bytes, n, r0, r1,
                               static_cast<const uint8_t*>(x), x_row_bytes, B, y, ldy);
}

template <class Family>
float vec_dot_q(int64_t n, const void* w, const void* x) {
    float out = 0.0f;
    Family::template tile<1, 1>(static_cast<const uint8_t*>(w), 0, static_cast<const uint8_t*>(x), 0, n, &out, 1);
    return out;
}

template <class Family>
void set_q(KernelTable& t, DType d) {
    t.matmul[static_cast<uint32_t>(d)] = &matmul_q<Family>;
    t.vec_dot[static_cast<uint32_t>(d)] = &vec_dot_q<Family>;
}

// The probes (KernelTable::read_stream, int8_dot_peak) with this build's loads and int8 dot (sdot, or vmull +
// vpadal): 128-bit loads into 8 accumulators; 8 independent dot chains from registers.
uint64_t probe_read_stream(const void* p, size_t bytes) {
    const auto* b = static_cast<const uint64_t*>(p);
    uint64x2_t a[8];
    for (int k = 0; k < 8; ++k) a[k] = vdupq_n_u64(0);
    for (size_t i = 0; i < bytes / 8; i += 16)
        for (int k = 0; k < 8; ++k) a[k] = vaddq_u64(a[k], vld1q_u64(b + i + 2 * k));
    for (int k = 1; k < 8; ++k) a[0] = vaddq_u64(a[0], a[k]);
    return vgetq_lane_u64(a[0], 0) + vgetq_lane_u64(a[0], 1);
}

int64_t probe_int8_dot_peak(int64_t rounds, int32_t* sink) {
    const int8x16_t w = vdupq_n_s8(static_cast<int8_t>(3 + *sink)), x = vdupq_n_s8(static_cast<int8_t>(5 - *sink));
    int32x4_t acc[8];
    for (int k = 0; k < 8; ++k) acc[k] = vdupq_n_s32(k);
    for (int64_t r = 0; r < rounds; ++r)
        for (int k = 0; k < 8; ++k) acc[k] = dot_s8(acc[k], w, x);
    for (int k = 1; k < 8; ++k) acc[0] = vaddq_s32(acc[0], acc[k]);
    *sink = vaddvq_s32(acc[0]);
    return rounds * 8 * 16;
}

STRATA_INLINE void fill_quant_matmuls_here(KernelTable& t) {
    t.read_stream = probe_read_stream;
    t.int8_dot_peak = probe_int8_dot_peak;
    set_q<LegacyTiles<Legacy::Q4_0>>(t, DType::Q4_0);
    set_q<LegacyTiles<Legacy::Q4_1>>(t, DType::Q4_1);
    set_q<LegacyTiles<Legacy::Q5_0>>(t, DType::Q5_0);
    set_q<LegacyTiles<Legacy::Q5_1>>(t, DType::Q5_1);
    set_q<LegacyTiles<Legacy::Q8_0>>(t, DType::Q8_0);
    set_q<KTiles<KQuant::Q4_K>>(t, DType::Q4_K);
    set_q<KTiles<KQuant::Q5_K>>(t, DType::Q5_K);
    set_q<KTiles<KQuant::Q6_K>>(t, DType::Q6_K);
}

}  // namespace
}  // namespace strata::STRATA_NEON_NS
