// The CUDA backend against the CPU: the packed layout's arithmetic (runs everywhere, no GPU needed), every
// CUDA kernel against its scalar reference, and whole models greedy on both paths. Tests that need a GPU skip
// with a visible message where none is found (or the build has no CUDA).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/engine/forward.h"
#include "core/engine/model.h"
#include "core/engine/plan.h"
#include "core/text/tokenizer.h"
#include "cuda/backend.h"
#include "cuda/packed.h"
#include "kernels/kernels.h"
#include "kernel_test_util.h"
#include "test_util.h"

namespace strata {
namespace {

using test::cached_model;
using test::shared_model;

using test::quantize_rows;
using test::scalar_matmul;
const KernelTable& scalar() { return test::scalar_table(); }

// The CUDA tests' data: normal values without outliers, from a 64-bit engine.
std::vector<float> randn(size_t n, uint64_t seed, float scale = 1.f) {
    return test::random_floats<std::mt19937_64>(n, seed, scale, /*outliers=*/false);
}

// A rows x cols matrix of random values stored as `t` by the CPU's quantizer.
struct QMatrix {
    DType t;
    int64_t rows, cols;
    size_t row_bytes;
    std::vector<uint8_t> bytes;
    cuda::Tensor tensor() const { return {bytes.data(), t, rows, cols, row_bytes}; }
};
QMatrix make_matrix(DType t, int64_t rows, int64_t cols, uint64_t seed) {
    const auto f = randn(static_cast<size_t>(rows * cols), seed, 0.5f);
    return {t, rows, cols, dtype_row_bytes(t, cols), quantize_rows(scalar(), t, f.data(), rows, cols)};
}

// y (B, rows) by the CPU's scalar reference: activations quantized into the vec_dot_type, then vec_dot.
std::vector<float> cpu_matmul(const QMatrix& w, const std::vector<float>& x, int B) {
    return scalar_matmul(w.t, w.bytes.data(), w.row_bytes, w.rows, w.cols, x.data(), B);
}

const DType kPacked[] = {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0,
                         DType::Q4_K, DType::Q5_K, DType::Q6_K};

#define REQUIRE_GPU()                                                            \
    do {                                                                         \
        std::string why_;                                                        \
        if (!cuda::available(&why_)) GTEST_SKIP() << "CUDA test skipped: " << why_; \
    } while (0)

// ---- the packed layout, on the CPU ------------------------------------------------------------------------

// pack_rows + load_chunk + chunk_dot (the code the GPU runs per chunk) against the scalar vec_dot, with the
// activation blocks the CPU makes. Needs no GPU: the same functions compile for host and device.
TEST(CudaPacked, ChunkArithmeticMatchesCpuVecDot) {
    for (DType t : kPacked) {
        SCOPED_TRACE(dtype_name(t));
        const int64_t rows = 5, cols = 768;
        const QMatrix w = make_matrix(t, rows, cols, 7);
        const cuda::PackedSizes sz = cuda::packed_sizes(t, rows, cols);
        std::vector<uint8_t> qs(sz.qs), qh(sz.qh + 1), sc(sz.sc), sb(sz.sb + 1);
        cuda::pack_rows(t, w.bytes.data(), w.row_bytes, rows, cols, qs.data(), qh.data(), sc.data(), sb.data());
        const cuda::PackedView p{qs.data(), qh.data(), sc.data(), sb.data(), rows, static_cast<int>(cols)};

        const auto x = randn(cols, 11);
        const DType vdt = dtype_traits(t).vec_dot_type;
        const std::vector<uint8_t> xb = quantize_rows(scalar(), vdt, x.data(), 1, cols);
        // The activation as the GPU holds it: int8 values, a scale and a scaled sum per chunk of 32.
        std::vector<int8_t> xq(cols);
        std::vector<float> dx(cols / 32), sx(cols / 32);
        for (int c = 0; c < cols / 32; ++c) {
            if (vdt == DType::Q8_K) {
                const auto* b = reinterpret_cast<const block_q8_K*>(xb.data()) + c / 8;
                std::memcpy(&xq[c * 32], b->qs + (c % 8) * 32, 32);
                dx[c] = b->d;
                sx[c] = b->d * static_cast<float>(b->bsums[2 * (c % 8)] + b->bsums[2 * (c % 8) + 1]);
            } else if (vdt == DType::Q8_1) {
                const auto* b = reinterpret_cast<const block_q8_1*>(xb.data()) + c;
                std::memcpy(&xq[c * 32], b->qs, 32);
                dx[c] = f16_to_f32(b->d);
                sx[c] = f16_to_f32(b->s);
            } else {
                const auto* b = reinterpret_cast<const block_q8_0*>(xb.data()) + c;
                std::memcpy(&xq[c * 32], b->qs, 32);
                dx[c] = f16_to_f32(b->d);
                sx[c] = 0.f;
            }
        }
        for (int64_t r = 0; r < rows; ++r) {
            float got = 0.f;
            for (int c = 0; c < cols / 32; ++c) {
                cuda::Chunk k;
                switch (t) {
                    case DType::Q4_0: cuda::load_chunk<static_cast<int>(DType::Q4_0)>(p, r, c, k); break;
                    case DType::Q4_1: cuda::load_chunk<static_cast<int>(DType::Q4_1)>(p, r, c, k); break;
                    case DType::Q5_0: cuda::load_chunk<static_cast<int>(DType::Q5_0)>(p, r, c, k); break;
                    case DType::Q5_1: cuda::load_chunk<static_cast<int>(DType::Q5_1)>(p, r, c, k); break;
                    case DType::Q8_0: cuda::load_chunk<static_cast<int>(DType::Q8_0)>(p, r, c, k); break;
                    case DType::Q4_K: cuda::load_chunk<static_cast<int>(DType::Q4_K)>(p, r, c, k); break;
                    case DType::Q5_K: cuda::load_chunk<static_cast<int>(DType::Q5_K)>(p, r, c, k); break;
                    default: cuda::load_chunk<static_cast<int>(DType::Q6_K)>(p, r, c, k); break;
                }
                uint32_t xw[8];
                std::memcpy(xw, &xq[c * 32], 32);
                got += cuda::chunk_dot(k, xw, dx[c], sx[c]);
            }
            const float want = scalar().vec_dot[static_cast<int>(t)](cols, w.bytes.data() + r * w.row_bytes, xb.data());
            EXPECT_NEAR(got, want, 1e-5f * (1.f + std::fabs(want))) << "row " << r;
        }
    }
}

TEST(CudaPacked, RejectsUnsupportedShapesAndTypes) {
    std::vector<uint8_t> buf(1024);
    EXPECT_THROW(cuda::pack_rows(DType::Q4_K, buf.data(), 144, 1, 224, buf.data(), nullptr, buf.data(), buf.data()),
                 std::invalid_argument);
    EXPECT_THROW(cuda::pack_rows(DType::F32, buf.data(), 128, 1, 32, buf.data(), nullptr, buf.data(), nullptr),
                 std::invalid_argument);
}

// ---- single kernels on the GPU vs the scalar reference -------------------------------------------------

TEST(CudaKernels, QuantizeActivationsExactlyAsTheCpu) {
    REQUIRE_GPU();
    for (DType wt : {DType::Q4_0, DType::Q4_1, DType::Q4_K}) {
        SCOPED_TRACE(dtype_name(wt));
        const int n = 1280;
        auto x = randn(n, 3);
        x[5] = 0.f;
        std::fill(x.begin() + 256, x.begin() + 512, 0.f);  // an all-zero block
        std::vector<int8_t> q(n);
        std::vector<float> d(n / 32), s(n / 32);
        cuda::check::quantize(wt, x.data(), n, q.data(), d.data(), s.data());
        const DType vdt = dtype_traits(wt).vec_dot_type;
        const std::vector<uint8_t> xb = quantize_rows(scalar(), vdt, x.data(), 1, n);
        for (int c = 0; c < n / 32; ++c) {
            const int8_t* want_q;
            float want_d, want_s = 0.f;
            if (vdt == DType::Q8_K) {
                const auto* b = reinterpret_cast<const block_q8_K*>(xb.data()) + c / 8;
                want_q = b->qs + (c % 8) * 32;
                want_d = b->d;
                want_s = b->d * static_cast<float>(b->bsums[2 * (c % 8)] + b->bsums[2 * (c % 8) + 1]);
            } else if (vdt == DType::Q8_1) {
                const auto* b = reinterpret_cast<const block_q8_1*>(xb.data()) + c;
                want_q = b->qs, want_d = f16_to_f32(b->d), want_s = f16_to_f32(b->s);
            } else {
                const auto* b = reinterpret_cast<const block_q8_0*>(xb.data()) + c;
                want_q = b->qs, want_d = f16_to_f32(b->d);
            }
            ASSERT_EQ(0, std::memcmp(want_q, &q[c * 32], 32)) << "chunk " << c;
            EXPECT_EQ(want_d, d[c]) << "chunk " << c;
            EXPECT_EQ(want_s, s[c]) << "chunk " << c;
        }
    }
}

TEST(CudaKernels, MatmulEveryTypeMatchesScalarReference) {
    REQUIRE_GPU();
    // Odd row counts (a partial block of 8 rows), token counts for each kernel shape (1, <= 8, > 16).
    for (DType t : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q4_K, DType::Q5_K,
                    DType::Q6_K, DType::F32, DType::F16, DType::BF16}) {
        for (int B : {1, 5, 19}) {
            SCOPED_TRACE(dtype_name(t) + " B=" + std::to_string(B));
            const int64_t rows = 77, cols = t == DType::F32 ? 172 : 512;
            const QMatrix w = make_matrix(t, rows, cols, 100 + B);
            const auto x = randn(static_cast<size_t>(B) * cols, 200 + B);
            const auto want = cpu_matmul(w, x, B);
            std::vector<float> got(want.size());
            cuda::check::matmul(w.tensor(), x.data(), B, got.data());
            float scale = 0.f;
            for (float v : want) scale = std::max(scale, std::fabs(v));
            for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], 2e-5f * (1.f + scale)) << "at " << i;
        }
    }
}

float max_abs(const std::vector<float>& v) {
    float m = 0.f;
    for (float x : v) m = std::max(m, std::fabs(x));
    return m;
}

// The int8 activations the CPU makes from y for weights of type next, laid out as the GPU holds them.
void expect_quantized_like_cpu(const std::vector<float>& y, DType next, const std::vector<int8_t>& q,
                               const std::vector<float>& d, const std::vector<float>& s) {
    const DType vdt = dtype_traits(next).vec_dot_type;
    ASSERT_TRUE(vdt == DType::Q8_0 || vdt == DType::Q8_1);
    const int n = static_cast<int>(y.size());
    const std::vector<uint8_t> xb = quantize_rows(scalar(), vdt, y.data(), 1, n);
    for (int c = 0; c < n / 32; ++c) {
        if (vdt == DType::Q8_1) {
            const auto* b = reinterpret_cast<const block_q8_1*>(xb.data()) + c;
            ASSERT_EQ(0, std::memcmp(b->qs, &q[c * 32], 32)) << "chunk " << c;
            EXPECT_EQ(f16_to_f32(b->d), d[c]);
            EXPECT_EQ(f16_to_f32(b->s), s[c]);
        } else {
            const auto* b = reinterpret_cast<const block_q8_0*>(xb.data()) + c;
            ASSERT_EQ(0, std::memcmp(b->qs, &q[c * 32], 32)) << "chunk " << c;
            EXPECT_EQ(f16_to_f32(b->d), d[c]);
        }
    }
}

TEST(CudaKernels, DecodeRowGroupsAndFusedQkvMatchScalarReference) {
    REQUIRE_GPU();
    for (DType t : {DType::Q4_0, DType::Q4_1, DType::Q5_K, DType::Q6_K, DType::Q8_0}) {
        const auto x = randn(512, 5);
        for (int R : {2, 4}) {
            SCOPED_TRACE(dtype_name(t) + " R=" + std::to_string(R));
            const QMatrix w = make_matrix(t, 77, 512, 31);  // 77 rows: a partial last group
            const auto want = cpu_matmul(w, x, 1);
            std::vector<float> got(want.size());
            cuda::check::matmul(w.tensor(), x.data(), 1, got.data(), R);
            const float scale = max_abs(want);
            for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], 2e-5f * (1.f + scale)) << "at " << i;
        }
        for (int B : {1, 3}) {
            SCOPED_TRACE(dtype_name(t) + " Q/K/V in one launch, B=" + std::to_string(B));
            const QMatrix wq = make_matrix(t, 64, 512, 41), wk = make_matrix(t, 32, 512, 42), wv = make_matrix(t, 45, 512, 43);
            const auto xb = randn(static_cast<size_t>(B) * 512, 6);
            std::vector<float> yq(B * 64), yk(B * 32), yv(B * 45);
            cuda::check::matmul_multi({wq.tensor(), wk.tensor(), wv.tensor()}, xb.data(), B, {yq.data(), yk.data(), yv.data()}, 4);
            for (auto [w, y] : {std::pair{&wq, &yq}, std::pair{&wk, &yk}, std::pair{&wv, &yv}}) {
                const auto want = cpu_matmul(*w, xb, B);
                const float scale = max_abs(want);
                for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR((*y)[i], want[i], 2e-5f * (1.f + scale)) << "at " << i;
            }
        }
    }
}

TEST(CudaKernels, GluMatmulAndItsFusedQuantizationMatchTheCpu) {
    REQUIRE_GPU();
    for (DType t : {DType::Q4_0, DType::Q4_K})
        for (bool gelu : {false, true})
            for (DType next : {DType::F32, DType::Q4_0, DType::Q4_1}) {
                SCOPED_TRACE(dtype_name(t) + (gelu ? " gelu" : " silu") + " next " + dtype_name(next));
                const int rows = 96, cols = 512;
                const QMatrix g = make_matrix(t, rows, cols, 51), u = make_matrix(t, rows, cols, 52);
                const auto x = randn(cols, 7);
                auto want = cpu_matmul(g, x, 1);
                const auto wu = cpu_matmul(u, x, 1);
                (gelu ? scalar().geglu : scalar().swiglu)(want.data(), wu.data(), rows);
                std::vector<float> y(rows), d(rows / 32), s(rows / 32);
                std::vector<int8_t> q(rows);
                const bool fuse = next != DType::F32;
                cuda::check::glu_matmul(g.tensor(), u.tensor(), x.data(), gelu, y.data(), next, fuse ? q.data() : nullptr,
                                        d.data(), s.data());
                const float scale = max_abs(want);
                for (int i = 0; i < rows; ++i) ASSERT_NEAR(y[i], want[i], 1e-4f * (1.f + scale)) << "at " << i;
                if (fuse) expect_quantized_like_cpu(y, next, q, d, s);
            }
}

TEST(CudaKernels, AttentionCombineQuantizesLikeTheCpu) {
    REQUIRE_GPU();
    const int B = 1, pos = 200, heads = 4, kv_heads = 2, hd = 64, q_dim = heads * hd, kv_dim = kv_heads * hd;
    const auto q = randn(q_dim, 1), k = randn(static_cast<size_t>(pos + B) * kv_dim, 2), v = randn(static_cast<size_t>(pos + B) * kv_dim, 3);
    for (DType next : {DType::Q4_0, DType::Q4_1}) {
        std::vector<float> out(q_dim), plain(q_dim), d(q_dim / 32), s(q_dim / 32);
        std::vector<int8_t> qq(q_dim);
        cuda::check::attention(q.data(), k.data(), v.data(), B, pos, heads, kv_heads, hd, 0, 0.125f, 4, out.data(), next,
                               qq.data(), d.data(), s.data());
        cuda::check::attention(q.data(), k.data(), v.data(), B, pos, heads, kv_heads, hd, 0, 0.125f, 4, plain.data());
        EXPECT_EQ(out, plain);
        expect_quantized_like_cpu(out, next, qq, d, s);
    }
}

TEST(CudaKernels, RmsNormAndResidualMatchScalarReference) {
    REQUIRE_GPU();
    const int B = 3, n = 576;
    const auto x = randn(B * n, 1), y = randn(B * n, 2), w = randn(n, 3), post = randn(n, 4);
    const float eps = 1e-5f;
    std::vector<float> got(B * n), want(B * n);
    cuda::check::rmsnorm(x.data(), w.data(), B, n, eps, got.data());
    for (int b = 0; b < B; ++b) scalar().rmsnorm(&want[b * n], &x[b * n], w.data(), n, eps);
    for (int i = 0; i < B * n; ++i) ASSERT_NEAR(got[i], want[i], 1e-5f * (1.f + std::fabs(want[i])));
    for (bool with_post : {false, true}) {
        std::vector<float> xg = x, xw = x, yw = y;
        cuda::check::residual_rmsnorm(xg.data(), y.data(), with_post ? post.data() : nullptr, w.data(), B, n, eps, got.data());
        for (int b = 0; b < B; ++b) {
            if (with_post) scalar().rmsnorm(&yw[b * n], &yw[b * n], post.data(), n, eps);
            scalar().add(&xw[b * n], &yw[b * n], n);
            scalar().rmsnorm(&want[b * n], &xw[b * n], w.data(), n, eps);
        }
        for (int i = 0; i < B * n; ++i) {
            ASSERT_NEAR(xg[i], xw[i], 1e-5f * (1.f + std::fabs(xw[i])));
            ASSERT_NEAR(got[i], want[i], 1e-5f * (1.f + std::fabs(want[i])));
        }
    }
}

TEST(CudaKernels, RopeMatchesScalarReference) {
    REQUIRE_GPU();
    const int B = 2, heads = 4, hd = 64;
    const auto factors = [] {
        std::vector<float> f(16);
        for (int i = 0; i < 16; ++i) f[i] = 1.f + 0.25f * i;
        return f;
    }();
    for (bool neox : {false, true})
        for (int pos : {0, 1234})
            for (int rot : {64, 32})
                for (bool ff : {false, true}) {
                    if (ff && rot != 32) continue;
                    SCOPED_TRACE("neox=" + std::to_string(neox) + " pos=" + std::to_string(pos) + " rot=" + std::to_string(rot));
                    auto x = randn(B * heads * hd, 9);
                    auto want = x;
                    cuda::check::rope(x.data(), B, heads, hd, rot, pos, 10000.f, 0.5f, ff ? factors.data() : nullptr, neox);
                    for (int b = 0; b < B; ++b)
                        scalar().rope(&want[b * heads * hd], heads, hd, rot, pos + b, 10000.f, 0.5f,
                                      ff ? factors.data() : nullptr, neox);
                    for (size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(x[i], want[i], 2e-4f) << "at " << i;
                }
}

TEST(CudaKernels, AttentionMatchesScalarReference) {
    REQUIRE_GPU();
    struct Case {
        int B, pos, heads, kv_heads, hd, window, split;
    };
    for (const Case& c : {Case{1, 0, 4, 4, 64, 0, 1}, Case{1, 300, 8, 2, 128, 0, 7}, Case{7, 40, 8, 2, 64, 0, 1},
                          Case{5, 700, 4, 1, 256, 512, 3}, Case{3, 20, 9, 3, 64, 8, 2}, Case{2, 10, 2, 2, 80, 0, 4}}) {
        SCOPED_TRACE("B=" + std::to_string(c.B) + " pos=" + std::to_string(c.pos) + " hd=" + std::to_string(c.hd) +
                     " window=" + std::to_string(c.window) + " split=" + std::to_string(c.split));
        const int kv_dim = c.kv_heads * c.hd, q_dim = c.heads * c.hd, n = c.pos + c.B;
        const auto q = randn(c.B * q_dim, 1), k = randn(static_cast<size_t>(n) * kv_dim, 2), v = randn(static_cast<size_t>(n) * kv_dim, 3);
        const float scale = 1.f / std::sqrt(static_cast<float>(c.hd));
        std::vector<float> got(c.B * q_dim), want(c.B * q_dim);
        cuda::check::attention(q.data(), k.data(), v.data(), c.B, c.pos, c.heads, c.kv_heads, c.hd, c.window, scale,
                               c.split, got.data());
        for (int b = 0; b < c.B; ++b)
            for (int h = 0; h < c.heads; ++h) {
                const int p = c.pos + b, t0 = c.window > 0 ? std::max(0, p - c.window + 1) : 0;
                const int kvh = h / (c.heads / c.kv_heads);
                scalar().attention(&q[b * q_dim + h * c.hd], &k[static_cast<size_t>(t0) * kv_dim + kvh * c.hd], kv_dim,
                                   &v[static_cast<size_t>(t0) * kv_dim + kvh * c.hd], kv_dim, p - t0 + 1, c.hd, scale,
                                   &want[b * q_dim + h * c.hd]);
            }
        for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], 2e-5f * (1.f + std::fabs(want[i]))) << "at " << i;
    }
}

TEST(CudaKernels, GluMatchesScalarReference) {
    REQUIRE_GPU();
    for (bool gelu : {false, true}) {
        auto a = randn(1000, 1, 3.f);
        const auto b = randn(1000, 2);
        auto want = a;
        (gelu ? scalar().geglu : scalar().swiglu)(want.data(), b.data(), 1000);
        cuda::check::glu(a.data(), b.data(), 1000, gelu);
        for (int i = 0; i < 1000; ++i) ASSERT_NEAR(a[i], want[i], 1e-5f * (1.f + std::fabs(want[i])));
    }
}

// ---- whole models: the GPU path against the CPU path --------------------------------------------------

struct Greedy {
    std::vector<int32_t> tokens;
    std::vector<float> margins;  // top1 - top2 of the logits each token was picked from
};

Greedy greedy(Forward& f, const std::vector<int32_t>& prompt, int n) {
    Greedy g;
    int pos = 0;
    auto logits = f.eval(prompt, pos);
    pos += static_cast<int>(prompt.size());
    for (int i = 0; i < n; ++i) {
        int best = 0;
        for (int j = 1; j < static_cast<int>(logits.size()); ++j)
            if (logits[j] > logits[best]) best = j;
        float second = -INFINITY;
        for (int j = 0; j < static_cast<int>(logits.size()); ++j)
            if (j != best) second = std::max(second, logits[j]);
        g.tokens.push_back(best);
        g.margins.push_back(logits[best] - second);
        const int32_t t = best;
        logits = f.eval(std::span<const int32_t>(&t, 1), pos++);
    }
    return g;
}

ForwardOptions device_opts(const char* device, int n_gpu_steps = -1) {
    ForwardOptions o;
    o.n_ctx = 256;
    o.n_threads = 2;
    o.max_batch = 32;  // prompts longer than this exercise several batches
    o.device = device;
    o.n_gpu_steps = n_gpu_steps;
    return o;
}

// Greedy on the GPU equals greedy on the CPU. A parting is allowed only at a near-tie of the CPU's logits
// (top1 - top2 below tie_margin): summation order alone moves logits by ~1e-5 there. Reports what it saw.
void expect_same_greedy(const std::shared_ptr<const Model>& m, const std::string& spec,
                        const std::vector<std::string>& prompts, int n, int n_gpu_steps, float tie_margin) {
    const Plan plan = make_plan(*m, spec);
    Forward cpu(m, plan, device_opts("cpu"));
    Forward gpu(m, plan, device_opts("cuda", n_gpu_steps));
    for (const std::string& text : prompts) {
        SCOPED_TRACE("spec '" + spec + "' ngl " + std::to_string(n_gpu_steps) + " prompt '" + text + "'");
        const auto prompt = m->tokenizer().encode(text, true, false);
        // Teacher-forced logits over the prompt agree closely.
        auto lc = cpu.eval(prompt, 0, true);
        const std::vector<float> lcv(lc.begin(), lc.end());
        auto lg = gpu.eval(prompt, 0, true);
        ASSERT_EQ(lcv.size(), lg.size());
        float maxd = 0.f;
        for (size_t i = 0; i < lcv.size(); ++i) maxd = std::max(maxd, std::fabs(lcv[i] - lg[i]));
        EXPECT_LT(maxd, 2e-2f) << "prompt logits differ";
        const Greedy a = greedy(cpu, prompt, n), b = greedy(gpu, prompt, n);
        size_t same = 0;
        while (same < a.tokens.size() && a.tokens[same] == b.tokens[same]) ++same;
        std::printf("[cuda] spec '%s' ngl %d: prompt logits max |diff| %.2e; greedy %zu/%d tokens identical%s\n",
                    spec.c_str(), n_gpu_steps, maxd, same, n,
                    same < a.tokens.size() ? (", parting at a CPU margin of " + std::to_string(a.margins[same])).c_str() : "");
        if (same < a.tokens.size()) {
            EXPECT_LT(a.margins[same], tie_margin) << "greedy parted at token " << same << " without a near-tie";
        }
    }
}

TEST(CudaModel, Stories260KGreedyEqualsCpu) {
    REQUIRE_GPU();
    const std::string path = shared_model("stories260K.gguf");
    STRATA_REQUIRE_FILE(path);
    auto m = Model::load(path);
    const std::vector<std::string> prompts = {"Once upon a time", "The little dog was sad because", "Lily and Tom"};
    expect_same_greedy(m, "", prompts, 100, -1, 1e-3f);
    expect_same_greedy(m, "0:4,1:5", prompts, 100, -1, 1e-3f);  // duplicating
    expect_same_greedy(m, "", prompts, 100, 2, 1e-3f);          // -ngl 2: two steps on the GPU, three on the CPU
}

TEST(CudaModel, SmolLM2GreedyEqualsCpu) {
    REQUIRE_GPU();
    STRATA_REQUIRE_FILE(test::smollm2_path());
    auto m = Model::load(test::smollm2_path());
    const std::vector<std::string> prompts = {"The capital of France is", "def fibonacci(n):",
                                              "Write a haiku about the sea.", "Once upon a time, in a small village,"};
    expect_same_greedy(m, "", prompts, 64, -1, 2e-2f);
    expect_same_greedy(m, "0:20,10:30", prompts, 64, -1, 2e-2f);  // a 40-step self-merge
    expect_same_greedy(m, "", {prompts[0]}, 32, 12, 2e-2f);        // -ngl 12
}

// Duplicated layers and a second engine over the same model use the same GPU weights.
TEST(CudaModel, RepeatedLayersShareGpuWeights) {
    REQUIRE_GPU();
    const std::string path = shared_model("stories260K.gguf");
    STRATA_REQUIRE_FILE(path);
    auto m = Model::load(path);
    Forward plain(m, make_plan(*m, ""), device_opts("cuda"));
    Forward merged(m, make_plan(*m, "0:5,1:4,2:3"), device_opts("cuda"));
    ASSERT_NE(plain.gpu(), nullptr);
    ASSERT_NE(merged.gpu(), nullptr);
    EXPECT_EQ(merged.gpu()->n_steps(), 9);
    EXPECT_EQ(merged.gpu()->weight_bytes(), plain.gpu()->weight_bytes());  // same file layers: same bytes
    EXPECT_EQ(merged.gpu()->kv_bytes(), plain.gpu()->kv_bytes() * 9 / 5);  // but a KV slot per step
    const std::vector<int> layers = merged.plan().layers();
    for (int i = 0; i < 9; ++i) EXPECT_EQ(merged.gpu()->step_weight_address(i), plain.gpu()->step_weight_address(layers[i]));
}

TEST(CudaModel, WithoutGpuTheErrorIsClear) {
    std::string why;
    if (cuda::available(&why)) GTEST_SKIP() << "a GPU is present";
    const std::string path = shared_model("stories260K.gguf");
    STRATA_REQUIRE_FILE(path);
    auto m = Model::load(path);
    try {
        Forward f(m, make_plan(*m, ""), device_opts("cuda"));
        FAIL() << "expected an error";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("--device cuda"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace strata
