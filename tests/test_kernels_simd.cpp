// Every SIMD kernel table (AVX2, AVX-512, NEON: whatever this build and CPU run) against the scalar table, on
// random data with odd sizes: matmul over several block counts, row ranges not starting at 0 and B = 1, 2, 3, 5, 8,
// 17; quantize_row bytes; the float ops. The scalar kernels themselves are checked against ggml's numbers in
// test_kernels_quant.cpp.
//
// Tolerances (u = 2^-24, the float unit roundoff):
//  * quantize_row: bytes identical. The SIMD quantizers do the reference's float operations in the same order with
//    the same rounding rules, so greedy outputs cannot change with the ISA.
//  * matmul / vec_dot: |simd - scalar| <= 2 (nb + 16) u S, S = sum_i |a_i| (|w_i - off_i| + |off_i|) in float64
//    (off_i: the weight's offset part, kept apart since scale and offset terms may cancel). Both sides compute the
//    same exact int32 sum per block; they differ only in the order of the float roundings that scale and add the
//    nb block terms (each side's error is at most (nb + c) u S, serial summation being the worst case), so this is
//    about 1e-5 S at the sizes tested. Float weights: the same with nb = n / 8 (eight-lane partial sums against the
//    scalar's double accumulator).
//  * float ops: within 1e-5 relative (of the output's natural scale: |out|, or max |v| for attention), since the
//    SIMD exp is a polynomial accurate to a few ulps and sums are reordered.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/dtype.h"
#include "kernels/kernels.h"
#include "kernel_test_util.h"

#if defined(__aarch64__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#endif

namespace strata {
#if defined(__aarch64__)
// The two builds of the NEON quantized matmuls (kernels/arm_neon/quant.cpp, quant_dotprod.cpp), side by side.
namespace neon {
void fill_quant_matmuls(KernelTable& t);
}
namespace neon_dotprod {
void fill_quant_matmuls(KernelTable& t);
}
#endif
namespace {

using namespace test;

// The SIMD tables of this build and CPU (everything available except scalar).
std::vector<Isa> simd_isas() {
    std::vector<Isa> out;
    for (Isa i : available_isas())
        if (i != Isa::Scalar) out.push_back(i);
    return out;
}

const KernelTable& scalar() { return scalar_table(); }

// Which kernels a SIMD table replaced (the rest are the scalar ones, compared trivially).
bool overrides_matmul(const KernelTable& K, DType w) { return K.matmul[idx(w)] != scalar().matmul[idx(w)]; }

// Byte range [begin, end) of a block that holds quants (everything but scales and offsets), by weight type.
std::pair<size_t, size_t> quant_bytes(DType t) {
    switch (t) {
        case DType::Q4_0: return {2, 18};
        case DType::Q4_1: return {4, 20};
        case DType::Q5_0: return {2, 22};
        case DType::Q5_1: return {4, 24};
        case DType::Q8_0: return {2, 34};
        case DType::Q4_K: return {16, 144};
        case DType::Q5_K: return {16, 176};
        case DType::Q6_K: return {0, 192};
        default: return {0, 0};
    }
}

// A weight matrix of `rows` rows: every bit of every block random (any bit pattern of quants, K-quant scales and
// high bits is a valid block, and it reaches the extremes: Q8_0's -128, Q6_K's scale -128, 6-bit scales of 63),
// except the f16 block scales, set to sane random values.
std::vector<uint8_t> random_weights(DType t, int64_t rows, int64_t n, uint32_t seed) {
    if (dtype_traits(t).block_elems == 1)  // float types: values from floats
        return quantize_rows(scalar(), t, random_floats(static_cast<size_t>(rows * n), seed).data(), rows, n);
    std::vector<uint8_t> w(dtype_row_bytes(t, n) * static_cast<size_t>(rows));
    std::mt19937 rng(seed);
    for (auto& b : w) b = static_cast<uint8_t>(rng());
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    auto h = [&](float scale) { return f32_to_f16(u(rng) * scale); };
    const size_t bb = dtype_traits(t).block_bytes;
    for (size_t off = 0; off < w.size(); off += bb) {
        uint8_t* blk = w.data() + off;
        auto put = [&](size_t at, f16_t v) { std::memcpy(blk + at, &v, 2); };
        switch (t) {
            case DType::Q4_0:
            case DType::Q5_0:
            case DType::Q8_0: put(0, h(0.02f)); break;
            case DType::Q4_1:
            case DType::Q5_1: put(0, h(0.02f)), put(2, h(0.3f)); break;
            case DType::Q4_K:
            case DType::Q5_K: put(0, h(0.002f)), put(2, h(0.002f)); break;
            case DType::Q6_K: put(208, h(0.002f)); break;
            default: break;
        }
    }
    return w;
}

// |a_i| (|w_i - off_i| + |off_i|) summed in float64: the magnitude the float error of a dot is relative to.
double term_magnitude(DType wt, const uint8_t* wrow, const uint8_t* arow, int64_t n) {
    const KernelTable& S = scalar();
    const DType at = dtype_traits(wt).vec_dot_type;
    std::vector<float> wv(n), av(n), off(n, 0.0f);
    S.dequantize_row[idx(wt)](wrow, wv.data(), n);
    S.dequantize_row[idx(at)](arow, av.data(), n);
    const auto [qb, qe] = quant_bytes(wt);
    if (qe > qb) {
        std::vector<uint8_t> z(wrow, wrow + dtype_row_bytes(wt, n));
        const size_t bb = dtype_traits(wt).block_bytes;
        for (size_t o = 0; o < z.size(); o += bb) std::memset(z.data() + o + qb, 0, qe - qb);
        S.dequantize_row[idx(wt)](z.data(), off.data(), n);
    }
    double s = 0;
    for (int64_t i = 0; i < n; ++i)
        s += std::fabs(double(av[i])) * (std::fabs(double(wv[i]) - off[i]) + std::fabs(double(off[i])));
    return s;
}

TEST(KernelsSimd, TablesAvailable) {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) {
        // Forced: the AVX2 table must be testable on an AVX-512 machine too.
        const KernelTable* t = kernels_for(Isa::Avx2);
        ASSERT_NE(t, nullptr);
        EXPECT_STREQ(t->isa, "avx2");
    }
    if (const KernelTable* t = kernels_for(Isa::Avx512)) {
        EXPECT_STREQ(t->isa, "avx512");
    }
#endif
    // The cross tests run the binary on emulated CPUs with and without optional features (tests/kernels_only.cmake)
    // and say which table the run-time dispatch must pick there.
    if (const char* want = std::getenv("STRATA_EXPECT_ISA"); want && *want) {
        EXPECT_STREQ(kernels().isa, want);
    }
    for (Isa i : simd_isas()) {
        const KernelTable& K = *kernels_for(i);
        for (DType w : kWeightTypes) {
            EXPECT_NE(K.matmul[idx(w)], nullptr) << isa_name(i) << " " << nm(w);
            EXPECT_NE(K.vec_dot[idx(w)], nullptr) << isa_name(i) << " " << nm(w);
        }
        for (DType a : kActTypes) EXPECT_NE(K.quantize_row[idx(a)], nullptr) << isa_name(i) << " " << nm(a);
    }
}

// Inputs that probe the rounding rules: exact halves (x * id lands on k + 0.5), ties of magnitude with both
// signs (Q8_K keeps the first), all-zero blocks, blocks whose scale is a subnormal half, huge and tiny values.
std::vector<float> tricky_floats(int64_t n, uint32_t seed) {
    std::vector<float> x = random_floats(static_cast<size_t>(n), seed);
    std::mt19937 rng(seed * 7 + 1);
    for (int64_t b = 0; b * 32 < n; ++b) {
        float* blk = x.data() + b * 32;
        const int64_t len = std::min<int64_t>(32, n - b * 32);
        switch (b % 8) {
            case 0:  // amax 127 -> id 1: halves are exact ties
                for (int64_t i = 0; i < len; ++i) blk[i] = static_cast<float>(static_cast<int>(rng() % 254) - 127) + 0.5f;
                blk[0] = 127.0f;
                break;
            case 1: std::fill(blk, blk + len, 0.0f); break;
            case 2:
                for (int64_t i = 0; i < len; ++i) blk[i] *= 1e-6f;  // d below the half's normal range
                break;
            case 3:
                blk[0] = -3.0f, blk[len - 1] = 3.0f;  // equal magnitudes, the negative first
                break;
            case 4:
                for (int64_t i = 0; i < len; ++i) blk[i] *= 1e4f;
                break;
            case 5:  // amax 63.5 -> id 2: every x * id that is odd/2 is a tie
                for (int64_t i = 0; i < len; ++i) blk[i] = static_cast<float>(static_cast<int>(rng() % 255) - 127) * 0.25f;
                blk[1] = -63.5f;
                break;
            default: break;
        }
    }
    return x;
}

TEST(KernelsSimd, QuantizeRowBytesIdentical) {
    const KernelTable& S = scalar();
    for (Isa isa : simd_isas()) {
        const KernelTable& K = *kernels_for(isa);
        SCOPED_TRACE(isa_name(isa));
        for (DType a : kActTypes) {
            const int64_t be = a == DType::Q8_K ? QK_K : 32;
            for (int64_t nblk : {1, 2, 3, 5, 8, 9, 17, 33}) {
                for (uint32_t seed : {1u, 2u, 3u}) {
                    const int64_t n = nblk * be + (dtype_traits(a).block_elems == 1 ? 5 : 0);  // odd tails too
                    const auto x = seed == 3 ? random_floats(n, seed, 1e-3f) : tricky_floats(n, seed);
                    const size_t nbytes = dtype_row_bytes(a, n);
                    std::vector<uint8_t> want(nbytes + 8, 0xA5), got(nbytes + 8, 0xA5);
                    S.quantize_row[idx(a)](x.data(), want.data(), n);
                    K.quantize_row[idx(a)](x.data(), got.data(), n);
                    for (size_t i = 0; i < want.size(); ++i)
                        ASSERT_EQ(got[i], want[i]) << nm(a) << " n=" << n << " seed " << seed << " byte " << i;
                }
            }
        }
    }
}

// The F16 and BF16 conversions over a sweep of the whole float range, every exponent, mantissa patterns near the
// rounding boundary, and the specials (subnormal halves included).
TEST(KernelsSimd, HalfConversionsMatchScalarEverywhere) {
    std::vector<float> x;
    for (uint32_t e = 0; e < 256; ++e)
        for (uint32_t m : {0u, 1u, 0xfffu, 0x1000u, 0x1001u, 0x2fffu, 0x3000u, 0x7fffu, 0x8000u, 0x8001u, 0x18000u,
                           0x7fe000u, 0x7fefffu, 0x7ff000u, 0x7fffffu, 0x123456u})
            for (uint32_t s : {0u, 1u}) {
                const uint32_t bits = s << 31 | e << 23 | m;
                float f;
                std::memcpy(&f, &bits, 4);
                if (!std::isnan(f)) x.push_back(f);
            }
    while (x.size() % 8) x.push_back(0.5f);
    const int64_t n = static_cast<int64_t>(x.size());
    for (Isa isa : simd_isas()) {
        const KernelTable& K = *kernels_for(isa);
        for (DType t : {DType::F16, DType::BF16}) {
            std::vector<uint16_t> want(n), got(n);
            scalar().quantize_row[idx(t)](x.data(), want.data(), n);
            K.quantize_row[idx(t)](x.data(), got.data(), n);
            for (int64_t i = 0; i < n; ++i)
                ASSERT_EQ(got[i], want[i]) << isa_name(isa) << " " << nm(t) << " x=" << x[i];
        }
    }
}

struct MatmulCase {
    int64_t rows, n;
    std::vector<std::tuple<int64_t, int64_t>> ranges;
};

void check_matmul(const KernelTable& K, DType wt, int64_t rows, int64_t n, int64_t B,
                  const std::vector<std::tuple<int64_t, int64_t>>& ranges, uint32_t seed) {
    const KernelTable& S = scalar();
    const DType at = dtype_traits(wt).vec_dot_type;
    const auto w = random_weights(wt, rows, n, seed);
    const size_t wrb = dtype_row_bytes(wt, n), xrb = dtype_row_bytes(at, n);
    const auto xf = random_floats(static_cast<size_t>(B * n), seed + 1000);
    const std::vector<uint8_t> xq = quantize_rows(S, at, xf.data(), B, n);
    const int64_t nb = n / dtype_traits(wt).block_elems;
    const double terms = dtype_traits(wt).block_elems == 1 ? static_cast<double>(n) / 8 : static_cast<double>(nb);
    std::vector<double> mag(static_cast<size_t>(rows * B));
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t b = 0; b < B; ++b)
            mag[r * B + b] = term_magnitude(wt, w.data() + r * wrb, xq.data() + b * xrb, n);
    for (auto [r0, r1] : ranges) {
        const int64_t ldy = rows + 3;
        std::vector<float> want(static_cast<size_t>(B * ldy), std::nanf("")), got = want;
        S.matmul[idx(wt)](w.data(), wrb, n, r0, r1, xq.data(), xrb, B, want.data(), ldy);
        K.matmul[idx(wt)](w.data(), wrb, n, r0, r1, xq.data(), xrb, B, got.data(), ldy);
        for (int64_t b = 0; b < B; ++b)
            for (int64_t r = 0; r < ldy; ++r) {
                const float g = got[b * ldy + r];
                if (r < r0 || r >= r1) {
                    ASSERT_TRUE(std::isnan(g)) << nm(wt) << " wrote row " << r << " outside [" << r0 << "," << r1 << ")";
                    continue;
                }
                const double tol = 2 * (terms + 16) * std::ldexp(1.0, -24) * mag[r * B + b] + 1e-30;
                ASSERT_NEAR(g, want[b * ldy + r], tol)
                    << nm(wt) << " n=" << n << " B=" << B << " rows [" << r0 << "," << r1 << ") r=" << r << " b=" << b;
            }
        if (r1 - r0 == 1 && B == 1) {  // vec_dot of the same pair
            const float vd = K.vec_dot[idx(wt)](n, w.data() + r0 * wrb, xq.data());
            const double tol = 2 * (terms + 16) * std::ldexp(1.0, -24) * mag[r0 * B] + 1e-30;
            ASSERT_NEAR(vd, want[r0], tol) << nm(wt) << " vec_dot n=" << n;
        }
    }
}

TEST(KernelsSimd, MatmulMatchesScalar) {
    for (Isa isa : simd_isas()) {
        const KernelTable& K = *kernels_for(isa);
        SCOPED_TRACE(isa_name(isa));
        for (DType wt : kWeightTypes) {
            if (!overrides_matmul(K, wt)) continue;
            const int64_t be = dtype_traits(wt).block_elems;
            std::vector<int64_t> sizes;
            if (be == 1)
                sizes = {1, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 257};
            else if (be == 32)
                sizes = {32, 64, 96, 160, 224, 256, 288, 512, 544, 1056};
            else
                sizes = {256, 512, 768, 1280};
            uint32_t seed = 1;
            for (int64_t n : sizes) {
                for (int64_t B : {1, 2, 3, 5, 8, 17}) {
                    const int64_t rows = 13;
                    check_matmul(K, wt, rows, n, B, {{0, rows}, {3, 11}, {5, 6}, {1, rows - 1}, {7, 9}}, seed++);
                    if (HasFatalFailure()) return;
                }
            }
        }
    }
}

// Packed (row-interleaved, made at load) weights: same results as the scalar reference within the usual bound,
// nothing written outside [r0, r1), and every (row, token) bit-identical whatever the batch and the row range.
TEST(KernelsSimd, PackedMatmulMatchesScalarAndIsBatchInvariant) {
    const KernelTable& S = scalar();
    bool any = false;
    for (Isa isa : simd_isas()) {
        const KernelTable& K = *kernels_for(isa);
        if (K.pack_rows <= 0) continue;
        SCOPED_TRACE(isa_name(isa));
        const int64_t P = K.pack_rows;
        for (DType wt : kWeightTypes) {
            if (!K.repack[idx(wt)]) continue;
            ASSERT_NE(K.matmul_packed[idx(wt)], nullptr);
            any = true;
            const DType at = dtype_traits(wt).vec_dot_type;
            for (int64_t blocks : {1, 3, 17, 129}) {
                const int64_t n = blocks * dtype_traits(wt).block_elems;
                // Five row groups: calls over four and three of them (below) take the K-quants' decode paths
                // with four, two and one group side by side.
                const int64_t rows = 5 * P, B = 19, ldy = rows + 5;
                const auto w = random_weights(wt, rows, n, 301);
                const size_t wrb = dtype_row_bytes(wt, n), xrb = dtype_row_bytes(at, n);
                auto* packed = static_cast<uint8_t*>(std::aligned_alloc(64, (K.packed_size(wt, rows, n) + 63) / 64 * 64));
                K.repack[idx(wt)](w.data(), wrb, rows, n, packed);
                const auto xf = random_floats(static_cast<size_t>(B * n), 302);
                const std::vector<uint8_t> xq = quantize_rows(S, at, xf.data(), B, n);
                std::vector<float> want(static_cast<size_t>(B * ldy)), full(static_cast<size_t>(B * ldy), std::nanf(""));
                S.matmul[idx(wt)](w.data(), wrb, n, 0, rows, xq.data(), xrb, B, want.data(), ldy);
                K.matmul_packed[idx(wt)](packed, n, 0, rows, xq.data(), xrb, B, full.data(), ldy);
                const double terms = static_cast<double>(blocks);
                for (int64_t b = 0; b < B; ++b)
                    for (int64_t r = 0; r < ldy; ++r) {
                        const float g = full[b * ldy + r];
                        if (r >= rows) {
                            ASSERT_TRUE(std::isnan(g)) << nm(wt) << " wrote past the rows";
                            continue;
                        }
                        const double mag = term_magnitude(wt, w.data() + r * wrb, xq.data() + b * xrb, n);
                        ASSERT_NEAR(g, want[b * ldy + r], 2 * (terms + 16) * std::ldexp(1.0, -24) * mag + 1e-30)
                            << nm(wt) << " n=" << n << " r=" << r << " b=" << b;
                    }
                // Groups [1, 5) and [2, 5): 4 and 3 groups, so every grouping the decode paths take.
                for (auto [g0, b0, nb] : std::initializer_list<std::tuple<int64_t, int64_t, int64_t>>{
                         {1, 0, 1}, {1, 5, 1}, {1, 18, 1}, {1, 3, 2}, {1, 7, 9}, {1, 1, 17}, {2, 4, 1}, {2, 6, 2}}) {
                    std::vector<float> part(static_cast<size_t>(nb * ldy), std::nanf(""));
                    K.matmul_packed[idx(wt)](packed, n, g0 * P, 5 * P, xq.data() + b0 * xrb, xrb, nb, part.data(), ldy);
                    for (int64_t b = 0; b < nb; ++b)
                        for (int64_t r = 0; r < ldy; ++r) {
                            const float g = part[b * ldy + r], f = full[(b0 + b) * ldy + r];
                            if (r < g0 * P || r >= 5 * P) {
                                ASSERT_TRUE(std::isnan(g)) << nm(wt) << " wrote row " << r << " outside its range";
                                continue;
                            }
                            ASSERT_EQ(std::memcmp(&g, &f, 4), 0) << nm(wt) << " n=" << n << " token " << b0 + b << " row " << r;
                        }
                }
                std::free(packed);
            }
        }
    }
    if (!any) GTEST_SKIP() << "no kernel table here has packed layouts";
}

// A (row, token) result is bit-identical whatever else is in the call: B, the token's place in the batch, the row
// range. The forward pass relies on it: a prompt evaluated in one batch and the same prompt fed token by token
// (a chat session reusing its KV cache) must give the same logits, or greedy outputs drift.
TEST(KernelsSimd, MatmulIsBatchInvariant) {
    for (Isa isa : available_isas()) {
        const KernelTable& K = *kernels_for(isa);
        SCOPED_TRACE(isa_name(isa));
        for (DType wt : kWeightTypes) {
            const DType at = dtype_traits(wt).vec_dot_type;
            const int64_t be = dtype_traits(wt).block_elems;
            for (int64_t n : be == 1 ? std::vector<int64_t>{33, 520} : be == 32 ? std::vector<int64_t>{288, 4128}
                                                                           : std::vector<int64_t>{768, 1280}) {
                const int64_t rows = 11, B = 17;
                const auto w = random_weights(wt, rows, n, 91);
                const size_t wrb = dtype_row_bytes(wt, n), xrb = dtype_row_bytes(at, n);
                const auto xf = random_floats(static_cast<size_t>(B * n), 92);
                const std::vector<uint8_t> xq = quantize_rows(K, at, xf.data(), B, n);
                std::vector<float> full(static_cast<size_t>(B * rows));
                K.matmul[idx(wt)](w.data(), wrb, n, 0, rows, xq.data(), xrb, B, full.data(), rows);
                for (auto [b0, nb] : {std::pair<int64_t, int64_t>{0, 1}, {5, 1}, {16, 1}, {3, 2}, {7, 3}, {1, 5}, {8, 9}}) {
                    std::vector<float> part(static_cast<size_t>(nb * rows), std::nanf(""));
                    K.matmul[idx(wt)](w.data(), wrb, n, 2, 9, xq.data() + b0 * xrb, xrb, nb, part.data(), rows);
                    for (int64_t b = 0; b < nb; ++b)
                        for (int64_t r = 2; r < 9; ++r) {
                            const float g = part[b * rows + r], f = full[(b0 + b) * rows + r];
                            ASSERT_EQ(std::memcmp(&g, &f, 4), 0) << nm(wt) << " n=" << n << " token " << b0 + b
                                                                 << " of " << nb << " from " << b0 << ", row " << r
                                                                 << ": " << g << " vs " << f << " in the full batch";
                        }
                }
                const float vd = K.vec_dot[idx(wt)](n, w.data() + 4 * wrb, xq.data() + 6 * xrb);
                const float f = full[6 * rows + 4];
                ASSERT_EQ(std::memcmp(&vd, &f, 4), 0) << nm(wt) << " vec_dot n=" << n << ": " << vd << " vs " << f;
            }
        }
    }
}

#if defined(__aarch64__)
// The sdot and the vmull/vpadal matmuls give the same bits (the integer sums are exact and reduced alike before any
// float operation), so a model's output does not depend on whether the CPU has dotprod.
TEST(KernelsSimd, NeonDotprodAndPlainAgreeBitwise) {
    if (!(getauxval(AT_HWCAP) & HWCAP_ASIMDDP)) GTEST_SKIP() << "this CPU has no dotprod";
    KernelTable plain = scalar(), dot = scalar();
    neon::fill_quant_matmuls(plain);
    neon_dotprod::fill_quant_matmuls(dot);
    for (DType wt : kWeightTypes) {
        if (dtype_traits(wt).block_elems == 1) continue;
        const DType at = dtype_traits(wt).vec_dot_type;
        for (int64_t n : dtype_traits(wt).block_elems == 32 ? std::vector<int64_t>{96, 1056} : std::vector<int64_t>{256, 1280}) {
            const int64_t rows = 9, B = 5;
            const auto w = random_weights(wt, rows, n, 31);
            const size_t wrb = dtype_row_bytes(wt, n), xrb = dtype_row_bytes(at, n);
            const auto xf = random_floats(static_cast<size_t>(B * n), 32);
            const std::vector<uint8_t> xq = quantize_rows(scalar(), at, xf.data(), B, n);
            for (int64_t nb : {int64_t{1}, B}) {
                std::vector<float> a(static_cast<size_t>(nb * rows)), b(a.size());
                plain.matmul[idx(wt)](w.data(), wrb, n, 0, rows, xq.data(), xrb, nb, a.data(), rows);
                dot.matmul[idx(wt)](w.data(), wrb, n, 0, rows, xq.data(), xrb, nb, b.data(), rows);
                ASSERT_EQ(std::memcmp(a.data(), b.data(), a.size() * 4), 0) << nm(wt) << " n=" << n << " B=" << nb;
            }
        }
    }
}
#endif

// Real widths, and enough tokens that the kernels split them into chunks.
TEST(KernelsSimd, MatmulLargeShapes) {
    for (Isa isa : simd_isas()) {
        const KernelTable& K = *kernels_for(isa);
        SCOPED_TRACE(isa_name(isa));
        for (DType wt : kWeightTypes) {
            if (!overrides_matmul(K, wt)) continue;
            check_matmul(K, wt, 9, 4096, 3, {{0, 9}, {2, 7}}, 77);
            check_matmul(K, wt, 6, 8192, 75, {{1, 6}}, 78);
            if (HasFatalFailure()) return;
        }
    }
}

// ---- float ops ----------------------------------------------------------------------------------------------------

void expect_rel(const std::vector<float>& got, const std::vector<float>& want, double scale_floor,
                const std::string& what) {
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
        const double tol = 1e-5 * std::max(std::fabs(double(want[i])), scale_floor) + 1e-37;
        ASSERT_NEAR(got[i], want[i], tol) << what << " i=" << i;
    }
}

// The reference GELU (the sigmoid form of the tanh approximation, kernels/generic/ops.cpp) against the tanh form
// in double: the same function (from x = -5: below, 1 + tanh(u) cancels to nothing even in double).
TEST(KernelsSimd, ScalarGegluIsTheTanhGelu) {
    std::vector<float> h, one;
    for (int i = -500; i <= 1200; ++i) h.push_back(static_cast<float>(i) / 100.0f), one.push_back(1.0f);
    std::vector<float> got = h;
    scalar().geglu(got.data(), one.data(), static_cast<int64_t>(got.size()));
    for (size_t i = 0; i < h.size(); ++i) {
        const double x = h[i], u = 0.79788456080286535588 * x * (1.0 + 0.044715 * x * x);
        const double want = 0.5 * x * (1.0 + std::tanh(u));
        ASSERT_NEAR(got[i], want, 2e-5 * std::fabs(want) + 1e-37) << "x=" << x;
    }
}

// Grouped-query attention (tables that have it): every query of a group as the scalar attention gives it, within
// the per-head kernels' bound, and the same bits alone as in any group (the forward pass relies on it for batch
// invariance).
TEST(KernelsSimd, AttentionGroupMatchesScalarAndIsGroupInvariant) {
    const KernelTable& S = scalar();
    bool any = false;
    uint32_t seed = 900;
    for (Isa isa : simd_isas()) {
        const KernelTable& K = *kernels_for(isa);
        if (!K.attention_group) continue;
        any = true;
        SCOPED_TRACE(isa_name(isa));
        for (int hd : {16, 64, 80, 128, 256}) {
            if (hd % K.attention_group_dims != 0) continue;
            for (int n_kv : {1, 2, 5, 33, 300}) {
                const int nq = 6;
                const size_t stride = static_cast<size_t>(hd) * 2 + 16, q_stride = hd + 16;
                const auto q = random_floats(q_stride * nq, seed++, 2.0f);
                const auto k = random_floats(stride * n_kv, seed++), v = random_floats(stride * n_kv, seed++);
                const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
                float vmax = 0;
                for (float f : v) vmax = std::max(vmax, std::fabs(f));
                std::vector<float> all(q_stride * nq, std::nanf(""));
                K.attention_group(q.data(), q_stride, nq, k.data(), stride, v.data(), stride, n_kv, hd, scale, all.data(),
                                  q_stride);
                for (int i = 0; i < nq; ++i) {
                    std::vector<float> want(hd), got(all.begin() + i * q_stride, all.begin() + i * q_stride + hd);
                    S.attention(q.data() + i * q_stride, k.data(), stride, v.data(), stride, n_kv, hd, scale, want.data());
                    expect_rel(got, want, vmax, "attention_group hd=" + std::to_string(hd) + " n_kv=" + std::to_string(n_kv));
                    for (int d = hd; d < static_cast<int>(q_stride) && i + 1 < nq; ++d)
                        ASSERT_TRUE(std::isnan(all[i * q_stride + d])) << "wrote between the output rows";
                }
                for (int first = 0; first < nq; ++first)  // groups of every size at every place: the same bits
                    for (int n = 1; first + n <= nq; ++n) {
                        std::vector<float> part(q_stride * n);
                        K.attention_group(q.data() + first * q_stride, q_stride, n, k.data(), stride, v.data(), stride, n_kv,
                                          hd, scale, part.data(), q_stride);
                        for (int i = 0; i < n; ++i)
                            ASSERT_EQ(std::memcmp(&part[i * q_stride], &all[(first + i) * q_stride], hd * sizeof(float)), 0)
                                << "query " << first + i << " in a group of " << n << " hd=" << hd << " n_kv=" << n_kv;
                    }
            }
        }
    }
    if (!any) GTEST_SKIP() << "no kernel table here has grouped attention";
}

TEST(KernelsSimd, FloatOpsMatchScalar) {
    const KernelTable& S = scalar();
    for (Isa isa : simd_isas()) {
        const KernelTable& K = *kernels_for(isa);
        SCOPED_TRACE(isa_name(isa));
        uint32_t seed = 5;
        for (int64_t n : {1, 7, 8, 9, 16, 33, 64, 576, 1000, 4097}) {
            const auto x = random_floats(static_cast<size_t>(n), seed++), w = random_floats(static_cast<size_t>(n), seed++);
            {  // rmsnorm, out-of-place and in place
                std::vector<float> want(n), got(n), inplace = x;
                S.rmsnorm(want.data(), x.data(), w.data(), n, 1e-5f);
                K.rmsnorm(got.data(), x.data(), w.data(), n, 1e-5f);
                K.rmsnorm(inplace.data(), inplace.data(), w.data(), n, 1e-5f);
                expect_rel(got, want, 0, "rmsnorm n=" + std::to_string(n));
                expect_rel(inplace, want, 0, "rmsnorm in place n=" + std::to_string(n));
            }
            {  // swiglu, with the tails of the sigmoid
                std::vector<float> h = x, h2 = w;
                for (int64_t i = 0; i < n; i += 5) h[i] *= 40.0f;
                if (n > 3) h[1] = -120.0f, h[2] = 95.0f, h[3] = 0.0f;
                std::vector<float> want = h, got = h;
                S.swiglu(want.data(), h2.data(), n);
                K.swiglu(got.data(), h2.data(), n);
                expect_rel(got, want, 0, "swiglu n=" + std::to_string(n));
                std::vector<float> gwant = h, ggot = h;  // geglu over the same values and tails
                S.geglu(gwant.data(), h2.data(), n);
                K.geglu(ggot.data(), h2.data(), n);
                expect_rel(ggot, gwant, 0, "geglu n=" + std::to_string(n));
            }
            {  // add
                std::vector<float> want = x, got = x;
                S.add(want.data(), w.data(), n);
                K.add(got.data(), w.data(), n);
                expect_rel(got, want, 0, "add n=" + std::to_string(n));
            }
        }
        for (int hd : {8, 16, 64, 80, 128, 256}) {
            for (int n_kv : {1, 2, 7, 33, 300}) {
                const size_t stride = static_cast<size_t>(hd) * 3 + 8;  // rows of a wider cache (GQA layout)
                const auto q = random_floats(hd, seed++, 2.0f);
                const auto k = random_floats(stride * n_kv, seed++), v = random_floats(stride * n_kv, seed++);
                std::vector<float> want(hd), got(hd);
                const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
                S.attention(q.data(), k.data(), stride, v.data(), stride, n_kv, hd, scale, want.data());
                K.attention(q.data(), k.data(), stride, v.data(), stride, n_kv, hd, scale, got.data());
                float vmax = 0;
                for (float f : v) vmax = std::max(vmax, std::fabs(f));
                expect_rel(got, want, vmax, "attention hd=" + std::to_string(hd) + " n_kv=" + std::to_string(n_kv));
            }
        }
        // rope: whole and partial rotation (rot_dim < head_dim, pair counts that are not a multiple of the vector
        // width), with and without per-pair frequency factors, head sizes past a SIMD kernel's chunk of pairs.
        for (bool neox : {false, true}) {
            for (auto [hd, rot] : {std::pair{64, 64}, {64, 36}, {80, 80}, {256, 256}, {128, 98}}) {
                const int heads = 3;
                const auto x = random_floats(heads * hd, seed++);
                std::vector<float> ff(rot / 2);
                for (size_t i = 0; i < ff.size(); ++i) ff[i] = 1.0f + 0.37f * static_cast<float>(i % 5);
                for (const float* factors : {static_cast<const float*>(nullptr), static_cast<const float*>(ff.data())}) {
                    for (int pos : {0, 1, 17, 4000}) {
                        std::vector<float> want = x, got = x;
                        S.rope(want.data(), heads, hd, rot, pos, 10000.0f, 0.5f, factors, neox);
                        K.rope(got.data(), heads, hd, rot, pos, 10000.0f, 0.5f, factors, neox);
                        expect_rel(got, want, 1.0,
                                   "rope hd=" + std::to_string(hd) + " rot=" + std::to_string(rot) + " pos=" +
                                       std::to_string(pos) + (neox ? " neox" : "") + (factors ? " factors" : ""));
                    }
                }
            }
        }
    }
}

}  // namespace
}  // namespace strata
