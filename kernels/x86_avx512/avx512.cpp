// AVX-512 kernel table (this directory's files are compiled with -mavx512f/bw/dq/vl/vnni). The table starts as a
// copy of the AVX2 one; this file overrides the kernels that gain from 512-bit vectors and VNNI (vpdpbusd,
// vpdpwssd): every matmul, and attention.cpp adds grouped-query attention. Quantizers and the other float ops
// stay AVX2's. The dispatcher (kernels.cpp) only picks this table
// on a CPU with AVX512-VNNI (Ice Lake / Zen 4 and later); AVX-512 CPUs without it (Skylake-SP) get the AVX2 table.
#define STRATA_X86_NS avx512
#include "kernels/x86_avx2/x86_float.h"
#include "kernels/x86_avx2/x86_probes.h"
#include "kernels/x86_avx2/x86_quant_k.h"
#include "kernels/x86_avx2/x86_quant_legacy.h"
#include "kernels/x86_avx512/packed.h"

namespace strata::avx512 {

void fill_attention(KernelTable& t);  // attention.cpp
void fill_packed_k(KernelTable& t);   // packed_k.cpp: packed Q4_K, Q5_K and Q6_K
size_t packed_k_size(DType t, int64_t rows, int64_t n);
void fill_packed_float(KernelTable& t);  // packed_float.cpp: packed F16 and BF16
size_t packed_float_size(int64_t rows, int64_t n);

namespace {

template <Legacy Lg>
void set_legacy(KernelTable& t, DType d) {
    // 4 rows x 4 tokens: 16 accumulators + 4 weight vectors + 4 row scales within AVX-512's 32 registers.
    t.matmul[static_cast<uint32_t>(d)] = &matmul_legacy<V512, Lg, 4, 4>;
    t.vec_dot[static_cast<uint32_t>(d)] = &vec_dot_legacy<V512, Lg>;
}

template <KQuant Kq>
void set_k(KernelTable& t, DType d) {
    t.matmul[static_cast<uint32_t>(d)] = &matmul_k<VK512, Kq, 4, 4>;
    t.vec_dot[static_cast<uint32_t>(d)] = &vec_dot_k<VK512, Kq>;
}

// ---- packed Q4_0 / Q4_1 / Q5_0 / Q5_1 / Q8_0: 16 rows per group, one row per lane ---------------------------
// Per group: for each 32-element block, NG 64-byte vectors (NG = 4 for the 4- and 5-bit types: bytes
// qs[4g..4g+3] of the 16 rows, whose low nibbles are elements 4g..4g+3 and high nibbles 16+4g..; NG = 8 for
// Q8_0: elements 4g..4g+3, stored +128 so vpdpbusd takes them unsigned); for Q5_0 / Q5_1 one more vector with
// the fifth bits, byte 4r+i of it holding in bit g the fifth bit of element 4g+i and in bit 4+g that of
// element 16+4g+i (so the block keeps its 22 / 24 bytes per row). Blocks go in pairs: the 16 rows' f16 scales
// d of blocks 2i and 2i+1 (64 bytes), for Q4_1 / Q5_1 then their f16 mins m (64 bytes), then block 2i's
// vectors, then block 2i+1's (where nb is odd, the last pair's second halves of d and m are zero and its
// second block is missing). So a group is one sequential stream, in the order decode reads it (with all the
// scales after the blocks, as an earlier layout had, decode read two streams per group, and Q4_0 decode
// reached 18 GB/s on one Zen 4 thread, the read probe 26).
// Each (row, token) is one lane through the same operations in the same order for any batch or row range: per
// block an exact int32 sum (started from the token's offset correction), then one FMA with d_w * d_a (and for
// Q4_1 / Q5_1 one more with m_w * s_a).
template <Legacy Lg>
struct PackedFmt {
    static constexpr bool kQ8 = Lg == Legacy::Q8_0, kQ5 = Lg == Legacy::Q5_0 || Lg == Legacy::Q5_1;
    static constexpr bool kMin = Lg == Legacy::Q4_1 || Lg == Legacy::Q5_1;
    static constexpr int NG = kQ8 ? 8 : 4;
    static constexpr size_t kQsBlock = (NG + (kQ5 ? 1 : 0)) * 64;  // quant bytes per block per group
    using Fm = LegacyFmt<Lg>;
    static constexpr size_t kHead = kMin ? 128 : 64;       // a pair's d (and m)
    static constexpr size_t kPair = kHead + 2 * kQsBlock;  // two blocks and their scales
    // Every group (and so every vector load) stays aligned: blocks and scales are multiples of 64 bytes.
    static size_t group_bytes(int64_t nb) {
        return static_cast<size_t>(nb / 2) * kPair + (nb % 2 ? kHead + kQsBlock : 0);
    }
    static size_t quants(int64_t k) { return static_cast<size_t>(k / 2) * kPair + kHead + (k % 2) * kQsBlock; }
    static size_t scales(int64_t k) { return static_cast<size_t>(k / 2) * kPair + (k % 2) * 32; }
    static size_t mins(int64_t k) { return scales(k) + 64; }
    // A block unpacked for prefill (extract_group): 8 vectors, the 16 rows' d (and m) as floats.
    static constexpr size_t kXBlock = (kMin ? 10 : 9) * 64;
};

template <Legacy Lg>
void repack_rows(const void* w, size_t w_row_bytes, int64_t rows, int64_t n, void* dst) {
    using P = PackedFmt<Lg>;
    using Block = typename P::Fm::Block;
    const int64_t nb = n / 32;
    for (int64_t g0 = 0; g0 < rows; g0 += kPackRows) {
        uint8_t* grp = static_cast<uint8_t*>(dst) + (g0 / kPackRows) * P::group_bytes(nb);
        if (nb % 2) {  // the missing block's scales
            std::memset(grp + P::scales(nb), 0, 32);
            if constexpr (P::kMin) std::memset(grp + P::mins(nb), 0, 32);
        }
        for (int r = 0; r < kPackRows; ++r) {
            const auto* src = reinterpret_cast<const Block*>(static_cast<const uint8_t*>(w) + (g0 + r) * w_row_bytes);
            for (int64_t k = 0; k < nb; ++k) {
                uint8_t* b = grp + P::quants(k);
                const Block& q = src[k];
                if constexpr (P::kQ8) {
                    for (int g = 0; g < 8; ++g)
                        for (int i = 0; i < 4; ++i) b[g * 64 + r * 4 + i] = static_cast<uint8_t>(q.qs[4 * g + i]) ^ 0x80;
                } else {
                    for (int g = 0; g < 4; ++g) std::memcpy(b + g * 64 + r * 4, q.qs + 4 * g, 4);
                }
                if constexpr (P::kQ5) {
                    uint32_t qh;
                    std::memcpy(&qh, q.qh, 4);
                    for (int i = 0; i < 4; ++i) {
                        uint8_t h = 0;
                        for (int g = 0; g < 4; ++g)
                            h |= static_cast<uint8_t>(((qh >> (4 * g + i)) & 1) << g | ((qh >> (16 + 4 * g + i)) & 1) << (4 + g));
                        b[4 * 64 + r * 4 + i] = h;
                    }
                }
                std::memcpy(grp + P::scales(k) + r * 2, &q.d, 2);
                if constexpr (P::kMin) std::memcpy(grp + P::mins(k) + r * 2, &q.m, 2);
            }
        }
    }
}

// The 4- and 5-bit blocks of a group unpacked once for prefill (extract_group), so that the tiles of 8 tokens do
// not each redo the nibble and fifth-bit work: per block the lo and hi vectors of each g (elements 4g.. and
// 16+4g.., 0..15 or 0..31 per byte), then the 16 rows' scales (and mins) as floats (PackedFmt::kXBlock).

// The quants of vector g of block b (packed bytes) as unsigned bytes: elements 4g + t (lo), 16 + 4g + t (hi).
template <Legacy Lg>
STRATA_INLINE void legacy_quants(const uint8_t* b, int g, __m512i& lo, __m512i& hi) {
    using P = PackedFmt<Lg>;
    const __m512i m4 = _mm512_set1_epi8(0x0F), bit4 = _mm512_set1_epi8(0x10);
    const __m512i v = _mm512_load_si512(reinterpret_cast<const __m512i*>(b + 64 * g));
    lo = _mm512_and_si512(v, m4);
    hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
    if constexpr (P::kQ5) {  // bit g -> bit 4 (a 16-bit shift: bit 4 of each byte comes from that byte)
        const __m512i h = _mm512_load_si512(reinterpret_cast<const __m512i*>(b + 64 * P::NG));
        lo = _mm512_or_si512(lo, _mm512_and_si512(_mm512_slli_epi16(h, 4 - g), bit4));
        hi = _mm512_or_si512(hi, _mm512_and_si512(_mm512_srli_epi16(h, g), bit4));
    }
}

STRATA_INLINE __m512 f16x16(const uint8_t* p) {  // 16 f16 (32 aligned bytes) as floats
    return _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(p)));
}

template <Legacy Lg>
void extract_group(const uint8_t* grp, int64_t nb, uint8_t* x) {
    using P = PackedFmt<Lg>;
    for (int64_t k = 0; k < nb; ++k) {
        uint8_t* o = x + k * P::kXBlock;
        STRATA_UNROLL for (int g = 0; g < 4; ++g) {
            __m512i lo, hi;
            legacy_quants<Lg>(grp + P::quants(k), g, lo, hi);
            _mm512_store_si512(reinterpret_cast<__m512i*>(o + 128 * g), lo);
            _mm512_store_si512(reinterpret_cast<__m512i*>(o + 128 * g + 64), hi);
        }
        _mm512_store_ps(reinterpret_cast<float*>(o + 512), f16x16(grp + P::scales(k)));
        if constexpr (P::kMin) _mm512_store_ps(reinterpret_cast<float*>(o + 576), f16x16(grp + P::mins(k)));
    }
}

// 16 rows x RN tokens over all blocks; y[j * ldy + i] for row i of the group, token j. X: grp is the group as
// extract_group left it (the 4- and 5-bit types), with the same vectors and so the same bits.
template <Legacy Lg, int RN, bool X = false>
void packed_tile(const uint8_t* grp, int64_t nb, const TokView& T, float* y, int64_t ldy) {
    using P = PackedFmt<Lg>;
    static_assert(!X || !P::kQ8);
    // Decode (RN <= 2): each block's dot in two independent chains (even and odd vectors), added at the end. The
    // int32 sums are exact, so the bits are those of one chain; one chain's 8 dependent vpdpbusd per block left
    // the core waiting on their latency, well under the memory's bandwidth (Zen 4: 78% of the read probe).
    constexpr int NC = RN <= 2 ? 2 : 1;
    __m512 facc[RN];
    STRATA_UNROLL for (int j = 0; j < RN; ++j) facc[j] = _mm512_setzero_ps();
    for (int64_t k = 0; k < nb; ++k) {
        const uint8_t* b = X ? grp + k * P::kXBlock : grp + P::quants(k);
        __m512i acc[NC][RN];
        STRATA_UNROLL for (int j = 0; j < RN; ++j) {
            acc[0][j] = P::Fm::kOffset != 0 ? _mm512_set1_epi32(T.corr(j)[k]) : _mm512_setzero_si512();
            if constexpr (NC == 2) acc[1][j] = _mm512_setzero_si512();
        }
        STRATA_UNROLL for (int g = 0; g < P::NG; ++g) {
            __m512i(&a)[RN] = acc[g % NC];
            if constexpr (P::kQ8) {
                const __m512i v = _mm512_load_si512(reinterpret_cast<const __m512i*>(b + 64 * g));
                STRATA_UNROLL for (int j = 0; j < RN; ++j)
                    a[j] = _mm512_dpbusd_epi32(a[j], v, bcast4(T.q(j) + 32 * k + 4 * g));
            } else {
                __m512i lo, hi;
                if constexpr (X) {
                    lo = _mm512_load_si512(reinterpret_cast<const __m512i*>(b + 128 * g));
                    hi = _mm512_load_si512(reinterpret_cast<const __m512i*>(b + 128 * g + 64));
                } else {
                    legacy_quants<Lg>(b, g, lo, hi);
                }
                STRATA_UNROLL for (int j = 0; j < RN; ++j) {
                    a[j] = _mm512_dpbusd_epi32(a[j], lo, bcast4(T.q(j) + 32 * k + 4 * g));
                    a[j] = _mm512_dpbusd_epi32(a[j], hi, bcast4(T.q(j) + 32 * k + 16 + 4 * g));
                }
            }
        }
        if constexpr (NC == 2)
            STRATA_UNROLL for (int j = 0; j < RN; ++j) acc[0][j] = _mm512_add_epi32(acc[0][j], acc[1][j]);
        const __m512 dw =
            X ? _mm512_load_ps(reinterpret_cast<const float*>(b + 512)) : f16x16(grp + P::scales(k));
        STRATA_UNROLL for (int j = 0; j < RN; ++j)
            facc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[0][j]), _mm512_mul_ps(dw, _mm512_set1_ps(T.d(j)[k])), facc[j]);
        if constexpr (P::kMin) {  // + m_w * s_a
            const __m512 mw =
                X ? _mm512_load_ps(reinterpret_cast<const float*>(b + 576)) : f16x16(grp + P::mins(k));
            STRATA_UNROLL for (int j = 0; j < RN; ++j)
                facc[j] = _mm512_fmadd_ps(mw, _mm512_set1_ps(T.s(j)[k]), facc[j]);
        }
    }
    STRATA_UNROLL for (int j = 0; j < RN; ++j) _mm512_storeu_ps(y + j * ldy, facc[j]);
}

using PackedTileFn = void (*)(const uint8_t*, int64_t, const TokView&, float*, int64_t);

template <Legacy Lg, bool X = false>
PackedTileFn packed_tile_for(int rn) {
    static constexpr PackedTileFn fns[8] = {packed_tile<Lg, 1, X>, packed_tile<Lg, 2, X>, packed_tile<Lg, 3, X>,
                                            packed_tile<Lg, 4, X>, packed_tile<Lg, 5, X>, packed_tile<Lg, 6, X>,
                                            packed_tile<Lg, 7, X>, packed_tile<Lg, 8, X>};
    return fns[rn - 1];
}

template <Legacy Lg>
void matmul_packed(const void* packed, int64_t n, int64_t r0, int64_t r1, const void* x, size_t x_row_bytes,
                   int64_t B, float* y, int64_t ldy) {
    using P = PackedFmt<Lg>;
    using Fm = typename P::Fm;
    if (r1 <= r0 || B <= 0) return;
    constexpr int RN = 8;
    const LegacyLayout L(n, false);
    int64_t TB = packed_token_chunk(L.tok_bytes, RN);
    if (TB > B) TB = B;
    auto* tok = static_cast<uint8_t*>(scratch_tokens().get(static_cast<size_t>(TB) * L.tok_bytes));
    uint8_t* xg = P::kQ8 || B <= RN ? nullptr : static_cast<uint8_t*>(scratch_panel().get(L.nb * P::kXBlock));
    const auto* xb = static_cast<const uint8_t*>(x);
    const size_t gbytes = P::group_bytes(L.nb);
    for (int64_t t0 = 0; t0 < B; t0 += TB) {
        const int64_t nt = B - t0 < TB ? B - t0 : TB;
        for (int64_t j = 0; j < nt; ++j)
            legacy_prep_token<Fm>(reinterpret_cast<const typename Fm::ABlock*>(xb + (t0 + j) * x_row_bytes),
                                  tok + j * L.tok_bytes, L);
        // More than one tile of tokens: unpack each 4- or 5-bit group once for all of them.
        const bool x = !P::kQ8 && nt > RN;
        for (int64_t r = r0; r < r1; r += kPackRows) {
            const uint8_t* grp = static_cast<const uint8_t*>(packed) + (r / kPackRows) * gbytes;
            if constexpr (!P::kQ8)
                if (x) extract_group<Lg>(grp, L.nb, xg);
            for (int64_t j = 0; j < nt; j += RN) {
                const int rn = static_cast<int>(nt - j < RN ? nt - j : RN);
                const TokView T{tok + j * L.tok_bytes, L.tok_bytes, L.q_bytes, L.f_bytes};
                if (x)
                    packed_tile_for<Lg, !P::kQ8>(rn)(xg, L.nb, T, y + (t0 + j) * ldy + r, ldy);
                else
                    packed_tile_for<Lg>(rn)(grp, L.nb, T, y + (t0 + j) * ldy + r, ldy);
            }
        }
    }
}

size_t packed_size(DType t, int64_t rows, int64_t n) {
    if (t == DType::Q4_K || t == DType::Q5_K || t == DType::Q6_K) return packed_k_size(t, rows, n);
    if (t == DType::F16 || t == DType::BF16) return packed_float_size(rows, n);
    const int64_t nb = n / 32;
    size_t g = 0;
    switch (t) {
        case DType::Q4_0: g = PackedFmt<Legacy::Q4_0>::group_bytes(nb); break;
        case DType::Q4_1: g = PackedFmt<Legacy::Q4_1>::group_bytes(nb); break;
        case DType::Q5_0: g = PackedFmt<Legacy::Q5_0>::group_bytes(nb); break;
        case DType::Q5_1: g = PackedFmt<Legacy::Q5_1>::group_bytes(nb); break;
        case DType::Q8_0: g = PackedFmt<Legacy::Q8_0>::group_bytes(nb); break;
        default: return 0;
    }
    return static_cast<size_t>(rows / kPackRows) * g;
}

template <Legacy Lg>
void set_packed(KernelTable& t, DType d) {
    t.repack[static_cast<uint32_t>(d)] = &repack_rows<Lg>;
    t.matmul_packed[static_cast<uint32_t>(d)] = &matmul_packed<Lg>;
}

template <FloatW W>
void set_float(KernelTable& t, DType d) {
    t.matmul[static_cast<uint32_t>(d)] = &matmul_float<VF512, W, 4, 6>;
    t.vec_dot[static_cast<uint32_t>(d)] = &vec_dot_float<VF512, W>;
}

}  // namespace

bool fill_table(KernelTable& t) {
    t.isa = "avx512";
    set_float<FloatW::F32>(t, DType::F32);
    set_float<FloatW::F16>(t, DType::F16);
    set_float<FloatW::BF16>(t, DType::BF16);
    set_legacy<Legacy::Q4_0>(t, DType::Q4_0);
    set_legacy<Legacy::Q4_1>(t, DType::Q4_1);
    set_legacy<Legacy::Q5_0>(t, DType::Q5_0);
    set_legacy<Legacy::Q5_1>(t, DType::Q5_1);
    set_legacy<Legacy::Q8_0>(t, DType::Q8_0);
    set_k<KQuant::Q4_K>(t, DType::Q4_K);
    set_k<KQuant::Q5_K>(t, DType::Q5_K);
    set_k<KQuant::Q6_K>(t, DType::Q6_K);
    fill_attention(t);
    t.pack_rows = kPackRows;
    t.packed_size = &packed_size;
    set_packed<Legacy::Q4_0>(t, DType::Q4_0);
    set_packed<Legacy::Q4_1>(t, DType::Q4_1);
    set_packed<Legacy::Q5_0>(t, DType::Q5_0);
    set_packed<Legacy::Q5_1>(t, DType::Q5_1);
    set_packed<Legacy::Q8_0>(t, DType::Q8_0);
    fill_packed_k(t);
    fill_packed_float(t);
    fill_probes(t);
    return true;
}

}  // namespace strata::avx512
