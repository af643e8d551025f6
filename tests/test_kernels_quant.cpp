// Quant kernels (quantize_row / dequantize_row / vec_dot / matmul) of every ISA table against reference values
// computed independently by the PyPI `gguf` package (ggml's Python twin) and by float64 arithmetic.
//
// Data: tests/data/quant_vectors.bin, written by tests/data/gen_quant_vectors.py (see its docstring). Format, all
// little-endian: "STQV", u32 version (1), u32 record count, then records of
//   u32 name_len, name, u64 data_len, data
// named act.src, act.<A>.{bytes,deq}, w.<W>.{bytes,deq,src,off} (float arrays are packed float32).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/dtype.h"
#include "kernels/kernels.h"
#include "kernel_test_util.h"

namespace strata {
namespace {

class QuantVectors {
public:
    explicit QuantVectors(const std::string& path) {
        std::ifstream f(path, std::ios::binary);
        if (!f) throw std::runtime_error("cannot open " + path + " (run tests/data/gen_quant_vectors.py)");
        char magic[4];
        uint32_t version = 0, count = 0;
        f.read(magic, 4);
        f.read(reinterpret_cast<char*>(&version), 4);
        f.read(reinterpret_cast<char*>(&count), 4);
        if (!f || std::memcmp(magic, "STQV", 4) != 0 || version != 1) throw std::runtime_error("bad " + path);
        for (uint32_t i = 0; i < count; ++i) {
            uint32_t name_len = 0;
            uint64_t data_len = 0;
            f.read(reinterpret_cast<char*>(&name_len), 4);
            std::string name(name_len, '\0');
            f.read(name.data(), name_len);
            f.read(reinterpret_cast<char*>(&data_len), 8);
            std::vector<uint8_t> data(data_len);
            f.read(reinterpret_cast<char*>(data.data()), static_cast<std::streamsize>(data_len));
            if (!f) throw std::runtime_error("truncated " + path);
            recs_[name] = std::move(data);
        }
    }
    bool has(const std::string& name) const { return recs_.count(name) != 0; }
    const std::vector<uint8_t>& bytes(const std::string& name) const {
        auto it = recs_.find(name);
        if (it == recs_.end()) throw std::runtime_error("no record " + name);
        return it->second;
    }
    std::vector<float> floats(const std::string& name) const {
        const auto& b = bytes(name);
        std::vector<float> v(b.size() / 4);
        std::memcpy(v.data(), b.data(), v.size() * 4);
        return v;
    }

private:
    std::map<std::string, std::vector<uint8_t>> recs_;
};

const QuantVectors& vectors() {
    static const QuantVectors v(std::string(STRATA_TEST_DATA) + "/data/quant_vectors.bin");
    return v;
}

using namespace test;

bool bits_equal(float a, float b) { return std::memcmp(&a, &b, 4) == 0; }

// One weight type's reference row and the matching activation row, both as gguf bytes and as float values.
struct Case {
    DType w, a;
    int64_t block = 1, n_full = 0;  // elements per weight block; elements in the reference row
    std::vector<uint8_t> wbytes, abytes;
    std::vector<float> wdeq, woff, adeq;  // woff: offset part of each weight value (zeros for symmetric types)

    explicit Case(DType wt) : w(wt), a(dtype_traits(wt).vec_dot_type) {
        const auto& V = vectors();
        block = dtype_traits(w).block_elems;
        wbytes = V.bytes("w." + nm(w) + ".bytes");
        wdeq = V.floats("w." + nm(w) + ".deq");
        n_full = static_cast<int64_t>(wdeq.size());
        woff = V.has("w." + nm(w) + ".off") ? V.floats("w." + nm(w) + ".off") : std::vector<float>(wdeq.size());
        abytes = V.bytes("act." + nm(a) + ".bytes");
        adeq = V.floats("act." + nm(a) + ".deq");
    }

    // Expected dot over the first n elements in float64, and the error bound a float kernel may use.
    //
    // Tolerance: every kernel computes exact integer dots per block and then does O(1) float roundings per block
    // term plus one float addition per block (ggml's order; SIMD variants add fewer in sequence). With unit
    // roundoff u = 2^-24 the float error is at most (nb + c) * u * S, where S = sum |a_i| * (|w_i - off_i| +
    // |off_i|) bounds the magnitudes of all the terms (the offset part is kept apart because scale and offset
    // terms can cancel). We allow (nb + 16) * 2u * S.
    // Q8_1 activations also carry s = f16(d * sum q), computed from the unrounded d and rounded to half, while the
    // dequantized activations use f16(d): per 32-block |s - sum a_i| <= (2^-11 + 2^-11 + 2^-24) |sum a_i| + 2^-25
    // (subnormal half). The weight's offset m multiplies s, so add 2^-9 |m| |sum a_i| + 2^-24 |m| per block.
    void expect(int64_t n, double* exact, double* tol) const {
        double dot = 0, s = 0;
        for (int64_t i = 0; i < n; ++i) {
            const double wv = wdeq[i], ov = woff[i], av = adeq[i];
            dot += wv * av;
            s += std::fabs(av) * (std::fabs(wv - ov) + std::fabs(ov));
        }
        const double nb = static_cast<double>(n / block);
        *exact = dot;
        *tol = (nb + 16) * std::ldexp(1.0, -23) * s + 1e-30;
        if (a == DType::Q8_1) {
            for (int64_t b = 0; b + QK8_1 <= n; b += QK8_1) {
                double sum_a = 0;
                for (int64_t i = b; i < b + QK8_1; ++i) sum_a += adeq[i];
                const double m = std::fabs(double(woff[b]));  // Q4_1 / Q5_1: one offset per block
                *tol += std::ldexp(1.0, -9) * m * std::fabs(sum_a) + std::ldexp(1.0, -24) * m;
            }
        }
    }
};

// Prefix lengths in blocks (and, for the float types, in elements) for the odd-size checks.
std::vector<int64_t> block_counts(const Case& c) {
    std::vector<int64_t> out = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33};
    if (c.block == 1)
        for (int64_t k : {63, 64, 65, 127, 128, 129, 255, 256, 257, 1000, 1056}) out.push_back(k);
    std::vector<int64_t> ok;
    for (int64_t k : out)
        if (k * c.block <= c.n_full) ok.push_back(k);
    return ok;
}

TEST(KernelsQuant, VectorFileIsConsistent) {
    const auto& V = vectors();
    const size_t n_act = V.floats("act.src").size();
    ASSERT_EQ(n_act % QK_K, 0u);
    for (DType a : kActTypes) {
        EXPECT_EQ(V.bytes("act." + nm(a) + ".bytes").size(), dtype_row_bytes(a, static_cast<int64_t>(n_act))) << nm(a);
        EXPECT_EQ(V.floats("act." + nm(a) + ".deq").size(), n_act) << nm(a);
    }
    for (DType w : kWeightTypes) {
        Case c(w);
        EXPECT_EQ(c.wbytes.size(), dtype_row_bytes(w, c.n_full)) << nm(w);
        EXPECT_EQ(c.woff.size(), c.wdeq.size()) << nm(w);
        EXPECT_LE(static_cast<size_t>(c.n_full), c.adeq.size()) << nm(w);
        EXPECT_GE(c.n_full / c.block, 33) << nm(w);
    }
}

TEST(KernelsQuant, ScalarTableCoversEveryType) {
    const KernelTable* t = kernels_for(Isa::Scalar);
    ASSERT_NE(t, nullptr);
    for (DType w : kWeightTypes) {
        EXPECT_NE(t->dequantize_row[idx(w)], nullptr) << nm(w);
        EXPECT_NE(t->vec_dot[idx(w)], nullptr) << nm(w);
        EXPECT_NE(t->matmul[idx(w)], nullptr) << nm(w);
        EXPECT_NE(t->quantize_row[idx(w)], nullptr) << nm(w);
        EXPECT_TRUE(dtype_traits(w).supported) << nm(w);
    }
    for (DType a : kActTypes) EXPECT_NE(t->quantize_row[idx(a)], nullptr) << nm(a);
}

// dequantize_row against gguf.dequantize of the same bytes: bit-exact for the scalar table (same float operations
// in the same order); other ISAs may fuse multiply-adds, so they get one rounding of the terms' magnitude.
TEST(KernelsQuant, DequantizeMatchesGguf) {
    for (Isa isa : available_isas()) {
        const KernelTable& K = *kernels_for(isa);
        SCOPED_TRACE(isa_name(isa));
        for (DType w : kWeightTypes) {
            Case c(w);
            ASSERT_NE(K.dequantize_row[idx(w)], nullptr) << nm(w);
            for (int64_t nblk : block_counts(c)) {
                const int64_t n = nblk * c.block;
                std::vector<float> got(n + 8, 12345.0f);
                K.dequantize_row[idx(w)](c.wbytes.data(), got.data(), n);
                int bad = 0;
                for (int64_t i = 0; i < n && bad < 5; ++i) {
                    const float e = c.wdeq[i];
                    const bool ok = isa == Isa::Scalar
                                        ? bits_equal(got[i], e)
                                        : std::fabs(double(got[i]) - e) <=
                                              std::ldexp(1.0, -22) * (std::fabs(e - c.woff[i]) + std::fabs(c.woff[i]));
                    if (!ok) {
                        ++bad;
                        ADD_FAILURE() << nm(w) << " n=" << n << " i=" << i << " got " << got[i] << " want " << e;
                    }
                }
                for (int i = 0; i < 8; ++i) EXPECT_EQ(got[n + i], 12345.0f) << nm(w) << " wrote past n=" << n;
            }
        }
        // The activation formats dequantize too (handy in tests); Q8_1 / Q8_K reference values are d * q.
        for (DType a : {DType::Q8_0, DType::Q8_1, DType::Q8_K}) {
            if (!K.dequantize_row[idx(a)]) continue;
            const auto& V = vectors();
            const auto want = V.floats("act." + nm(a) + ".deq");
            std::vector<float> got(want.size());
            K.dequantize_row[idx(a)](V.bytes("act." + nm(a) + ".bytes").data(), got.data(),
                                     static_cast<int64_t>(got.size()));
            for (size_t i = 0; i < got.size(); ++i)
                ASSERT_NEAR(got[i], want[i], std::ldexp(std::fabs(want[i]), -23)) << nm(a) << " i=" << i;
        }
    }
}

// vec_dot(weight bytes, activation bytes) against the float64 dot of gguf's dequantized values, over many
// prefix lengths (1, 3, 7, 33 blocks, ...) so SIMD tails are exercised. Tolerance: see Case::expect.
TEST(KernelsQuant, VecDotMatchesFloat64Dot) {
    for (Isa isa : available_isas()) {
        const KernelTable& K = *kernels_for(isa);
        SCOPED_TRACE(isa_name(isa));
        for (DType w : kWeightTypes) {
            Case c(w);
            ASSERT_NE(K.vec_dot[idx(w)], nullptr) << nm(w);
            for (int64_t nblk : block_counts(c)) {
                const int64_t n = nblk * c.block;
                double exact, tol;
                c.expect(n, &exact, &tol);
                const float got = K.vec_dot[idx(w)](n, c.wbytes.data(), c.abytes.data());
                EXPECT_NEAR(got, exact, tol) << nm(w) << " x " << nm(c.a) << " n=" << n;
            }
        }
    }
}

// The bound above must be tight enough to mean something: a few ulps of the terms, far below any real bug.
TEST(KernelsQuant, VecDotToleranceIsTight) {
    for (DType w : kWeightTypes) {
        Case c(w);
        double exact, tol;
        c.expect(c.n_full, &exact, &tol);
        double s = 0;
        for (int64_t i = 0; i < c.n_full; ++i) s += std::fabs(double(c.wdeq[i]) * c.adeq[i]);
        EXPECT_LT(tol, 1e-3 * s) << nm(w) << " tol " << tol << " sum|w*a| " << s;
    }
}

// matmul(r0..r1, B rows) writes exactly vec_dot of each (row, column) pair and nothing else.
// Scalar: bit-equal to the scalar vec_dot. Other ISAs may block rows differently: within the vec_dot tolerance.
TEST(KernelsQuant, MatmulEqualsVecDot) {
    for (Isa isa : available_isas()) {
        const KernelTable& K = *kernels_for(isa);
        SCOPED_TRACE(isa_name(isa));
        for (DType w : kWeightTypes) {
            Case c(w);
            const int64_t n = c.block == 1 ? 33 : 3 * c.block;  // odd row length for the float types
            const int64_t R = c.n_full / n;
            const size_t wrb = dtype_row_bytes(w, n), xrb = dtype_row_bytes(c.a, n);
            ASSERT_NE(K.matmul[idx(w)], nullptr) << nm(w);
            for (auto [r0, r1, B] : {std::tuple<int64_t, int64_t, int64_t>{0, R, 1}, {2, R - 1, 5}, {1, 2, 3}}) {
                const int64_t ldy = R + 3;
                std::vector<float> y(static_cast<size_t>(B * ldy), std::nanf(""));
                K.matmul[idx(w)](c.wbytes.data(), wrb, n, r0, r1, c.abytes.data(), xrb, B, y.data(), ldy);
                for (int64_t b = 0; b < B; ++b) {
                    for (int64_t r = 0; r < ldy; ++r) {
                        const float got = y[b * ldy + r];
                        if (r < r0 || r >= r1) {
                            EXPECT_TRUE(std::isnan(got)) << nm(w) << " wrote row " << r << " outside [" << r0 << ","
                                                         << r1 << ")";
                            continue;
                        }
                        const uint8_t* wr = c.wbytes.data() + r * wrb;
                        const uint8_t* xr = c.abytes.data() + b * xrb;
                        const float want = K.vec_dot[idx(w)](n, wr, xr);
                        if (isa == Isa::Scalar) {
                            EXPECT_TRUE(bits_equal(got, want)) << nm(w) << " r=" << r << " b=" << b << ": " << got
                                                               << " vs " << want;
                        } else {
                            // Same bound as vec_dot's, on this row and column (Case::expect on shifted rows).
                            double s = 0;
                            for (int64_t i = 0; i < n; ++i) {
                                const double wv = c.wdeq[r * n + i], ov = c.woff[r * n + i], av = c.adeq[b * n + i];
                                s += std::fabs(av) * (std::fabs(wv - ov) + std::fabs(ov));
                            }
                            // (Q8_1's rounded s is the same byte for both, so it needs no extra term here.)
                            const double tol = 2 * (n / c.block + 16) * std::ldexp(1.0, -23) * s + 1e-30;
                            EXPECT_NEAR(got, want, tol) << nm(w) << " r=" << r << " b=" << b;
                        }
                    }
                }
            }
        }
    }
}

// Levels of a block's step, for judging a non-scalar quantizer that rounds differently from the reference.
double step_of(DType t, const float* x, int64_t n) {
    double lo = 0, hi = 0, amax = 0;
    for (int64_t i = 0; i < n; ++i) {
        lo = std::min(lo, double(x[i]));
        hi = std::max(hi, double(x[i]));
        amax = std::max(amax, std::fabs(double(x[i])));
    }
    switch (t) {
        case DType::Q8_0:
        case DType::Q8_1:
        case DType::Q8_K: return amax / 127;
        case DType::Q4_0: return amax / 8;
        case DType::Q5_0: return amax / 16;
        case DType::Q4_1: return (hi - lo) / 15;
        case DType::Q5_1: return (hi - lo) / 31;
        default: return 0;  // F32 / F16 / BF16: conversions are exactly defined
    }
}

// quantize_row output bytes against gguf's quantize (ggml's reference algorithms; Q8_1 / Q8_K from the numpy port
// of ggml's *_ref in the generator), on the full rows and on odd prefixes. Scalar: byte-identical. Other ISAs:
// byte-identical for F32/F16/BF16; for the block formats each dequantized value within one step (1.01 * d) of the
// reference's, and Q8_1's s / Q8_K's bsums consistent with their own quants.
TEST(KernelsQuant, QuantizeMatchesGgufBytes) {
    const auto& V = vectors();
    struct Src {
        DType t;
        std::string prefix;
    };
    std::vector<Src> srcs;
    for (DType a : kActTypes) srcs.push_back({a, "act." + nm(a)});
    for (DType w : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::F16, DType::BF16})
        srcs.push_back({w, "w." + nm(w)});
    const KernelTable& S = *kernels_for(Isa::Scalar);
    for (Isa isa : available_isas()) {
        const KernelTable& K = *kernels_for(isa);
        SCOPED_TRACE(isa_name(isa));
        for (const Src& s : srcs) {
            const std::vector<float> x = V.floats(s.prefix == "act." + nm(s.t) ? "act.src" : s.prefix + ".src");
            const std::vector<uint8_t>& want = V.bytes(s.prefix + ".bytes");
            const int64_t be = dtype_traits(s.t).block_elems;
            ASSERT_NE(K.quantize_row[idx(s.t)], nullptr) << nm(s.t);
            std::vector<int64_t> counts = {1, 3, 7, 33};
            counts.push_back(static_cast<int64_t>(x.size()) / be);
            for (int64_t nblk : counts) {
                const int64_t n = nblk * be;
                if (n > static_cast<int64_t>(x.size())) continue;
                const size_t nbytes = dtype_row_bytes(s.t, n);
                std::vector<uint8_t> got(nbytes + 16, 0xA5);
                K.quantize_row[idx(s.t)](x.data(), got.data(), n);
                for (size_t i = nbytes; i < got.size(); ++i)
                    ASSERT_EQ(got[i], 0xA5) << s.prefix << " wrote past n=" << n;
                if (std::memcmp(got.data(), want.data(), nbytes) == 0) continue;
                if (isa == Isa::Scalar || be == 1) {
                    size_t i = 0;
                    while (got[i] == want[i]) ++i;
                    ADD_FAILURE() << s.prefix << " n=" << n << ": first differing byte " << i << " (block "
                                  << i / dtype_traits(s.t).block_bytes << "): got " << int(got[i]) << " want "
                                  << int(want[i]);
                    continue;
                }
                std::vector<float> dg(n), dw(n);
                S.dequantize_row[idx(s.t)](got.data(), dg.data(), n);
                S.dequantize_row[idx(s.t)](want.data(), dw.data(), n);
                for (int64_t b = 0; b < nblk; ++b) {
                    const double step = 1.01 * step_of(s.t, x.data() + b * be, be) + 1e-30;
                    for (int64_t i = b * be; i < (b + 1) * be; ++i)
                        ASSERT_NEAR(dg[i], dw[i], step) << s.prefix << " n=" << n << " i=" << i;
                }
                if (s.t == DType::Q8_1) {
                    const auto* blk = reinterpret_cast<const block_q8_1*>(got.data());
                    for (int64_t b = 0; b < nblk; ++b) {
                        int sum = 0;
                        for (int j = 0; j < QK8_1; ++j) sum += blk[b].qs[j];
                        const double ds = double(f16_to_f32(blk[b].d)) * sum;
                        EXPECT_NEAR(f16_to_f32(blk[b].s), ds, std::ldexp(std::fabs(ds), -9) + 1e-7) << "block " << b;
                    }
                }
                if (s.t == DType::Q8_K) {
                    const auto* blk = reinterpret_cast<const block_q8_K*>(got.data());
                    for (int64_t b = 0; b < nblk; ++b)
                        for (int j = 0; j < QK_K / 16; ++j) {
                            int sum = 0;
                            for (int k = 0; k < 16; ++k) sum += blk[b].qs[16 * j + k];
                            EXPECT_EQ(blk[b].bsums[j], sum) << "block " << b << " group " << j;
                        }
                }
            }
        }
    }
}

// The K-quant quantizers are simple min/max ones, not ggml's search: they must give valid blocks whose values
// come back close to the input. Bound per 256-element super-block, relative to its largest magnitude M: at most
// about one level of the sub-block grid plus the 6-bit scale rounding, i.e. Q4_K ~M/15, Q5_K ~M/31, Q6_K ~M/31.
TEST(KernelsQuant, KQuantizersRoundTrip) {
    const auto x = vectors().floats("act.src");
    const int64_t n = static_cast<int64_t>(x.size());
    const KernelTable& S = *kernels_for(Isa::Scalar);
    for (Isa isa : available_isas()) {
        const KernelTable& K = *kernels_for(isa);
        SCOPED_TRACE(isa_name(isa));
        for (auto [t, max_rel, rms_rel] : {std::tuple<DType, double, double>{DType::Q4_K, 0.125, 0.05},
                                           {DType::Q5_K, 0.0625, 0.025},
                                           {DType::Q6_K, 0.04, 0.012}}) {
            if (!K.quantize_row[idx(t)]) {
                EXPECT_NE(isa, Isa::Scalar) << nm(t);
                continue;
            }
            std::vector<uint8_t> q(dtype_row_bytes(t, n));
            K.quantize_row[idx(t)](x.data(), q.data(), n);
            std::vector<float> y(n);
            S.dequantize_row[idx(t)](q.data(), y.data(), n);
            for (int64_t b = 0; b < n / QK_K; ++b) {
                double m = 0, err2 = 0, maxerr = 0;
                for (int64_t i = b * QK_K; i < (b + 1) * QK_K; ++i) {
                    m = std::max(m, std::fabs(double(x[i])));
                    const double e = std::fabs(double(y[i]) - x[i]);
                    maxerr = std::max(maxerr, e);
                    err2 += e * e;
                }
                EXPECT_LE(maxerr, max_rel * m) << nm(t) << " block " << b;
                EXPECT_LE(std::sqrt(err2 / QK_K), rms_rel * m) << nm(t) << " block " << b;
                if (m == 0) {
                    EXPECT_EQ(maxerr, 0.0) << nm(t) << " zero block " << b;
                }
            }
            // And the row is a valid input for vec_dot: matches the float64 dot of its own dequantized values.
            // Offset part (-dmin*m) of each value: dequantize with the quant bits cleared (Q4_K/Q5_K only).
            std::vector<float> off(n, 0.0f);
            if (t != DType::Q6_K) {
                std::vector<uint8_t> q0 = q;
                const size_t bb = dtype_traits(t).block_bytes;
                for (int64_t b = 0; b < n / QK_K; ++b) std::memset(q0.data() + b * bb + 16, 0, bb - 16);
                S.dequantize_row[idx(t)](q0.data(), off.data(), n);
            }
            const auto& V = vectors();
            const auto a = V.floats("act.Q8_K.deq");
            double dot = 0, s = 0;
            for (int64_t i = 0; i < n; ++i) {
                dot += double(y[i]) * a[i];
                s += std::fabs(double(a[i])) * (std::fabs(double(y[i]) - off[i]) + std::fabs(double(off[i])));
            }
            const float got = K.vec_dot[idx(t)](n, q.data(), V.bytes("act.Q8_K.bytes").data());
            EXPECT_NEAR(got, dot, (n / QK_K + 16) * std::ldexp(1.0, -23) * s + 1e-30) << nm(t);
        }
    }
}

}  // namespace
}  // namespace strata
