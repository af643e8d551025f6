// What the kernel tests share (every CPU kernel table, the packed layouts, the CUDA kernels): the weight and
// activation types, the scalar reference table, random data, quantized rows and the scalar reference matmul.
// Kernels only: the NEON cross build (tests/kernels_only.cmake) has nothing else.
#pragma once
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kernels/dtype.h"
#include "kernels/kernels.h"

namespace strata::test {

inline uint32_t idx(DType t) { return static_cast<uint32_t>(t); }
inline std::string nm(DType t) { return dtype_name(t); }

inline constexpr DType kWeightTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q4_0, DType::Q4_1, DType::Q5_0,
                                         DType::Q5_1, DType::Q8_0, DType::Q4_K, DType::Q5_K, DType::Q6_K};
inline constexpr DType kActTypes[] = {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q8_1, DType::Q8_K};

// The scalar kernels: the reference every SIMD table and the GPU are checked against.
inline const KernelTable& scalar_table() { return *kernels_for(Isa::Scalar); }

// n floats ~ normal(0, scale) from an Engine seeded with seed; with outliers, 1% of them 20 times larger, as
// real activations have.
template <class Engine = std::mt19937>
std::vector<float> random_floats(size_t n, uint64_t seed, float scale = 1.0f, bool outliers = true) {
    Engine rng(static_cast<typename Engine::result_type>(seed));
    std::normal_distribution<float> nd(0.0f, scale);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    std::vector<float> v(n);
    for (auto& x : v) {
        x = nd(rng);
        if (outliers && u(rng) < 0.01f) x *= 20.0f;
    }
    return v;
}

// rows rows of n floats, x (rows, n), stored as type t by K's quantizer: (rows, dtype_row_bytes(t, n)) bytes.
inline std::vector<uint8_t> quantize_rows(const KernelTable& K, DType t, const float* x, int64_t rows, int64_t n) {
    const size_t rb = dtype_row_bytes(t, n);
    std::vector<uint8_t> out(rb * static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) K.quantize_row[idx(t)](x + r * n, out.data() + r * rb, n);
    return out;
}

// y (B, rows) = W x by the scalar reference, W (rows, n) of type t: each row of x (B, n) quantized into t's
// vec_dot_type, then the scalar vec_dot of every (row, token) pair.
inline std::vector<float> scalar_matmul(DType t, const uint8_t* w, size_t w_row_bytes, int64_t rows, int64_t n,
                                        const float* x, int64_t B) {
    const KernelTable& S = scalar_table();
    const DType vdt = dtype_traits(t).vec_dot_type;
    const size_t xrb = dtype_row_bytes(vdt, n);
    const std::vector<uint8_t> xq = quantize_rows(S, vdt, x, B, n);
    std::vector<float> y(static_cast<size_t>(B * rows));
    for (int64_t b = 0; b < B; ++b)
        for (int64_t r = 0; r < rows; ++r) y[b * rows + r] = S.vec_dot[idx(t)](n, w + r * w_row_bytes, xq.data() + b * xrb);
    return y;
}

}  // namespace strata::test
