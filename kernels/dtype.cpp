#include "kernels/dtype.h"

#include <array>
#include <cmath>
#include <cstring>
#include <stdexcept>

namespace strata {

namespace {
std::array<DTypeTraits, kNumDTypes> make_traits() {
    std::array<DTypeTraits, kNumDTypes> t{};
    auto set = [&](DType d, const char* name, int64_t be, size_t bb, bool sup, DType vdt) {
        t[static_cast<uint32_t>(d)] = DTypeTraits{name, be, bb, sup, vdt};
    };
    set(DType::F32, "F32", 1, 4, true, DType::F32);
    set(DType::F16, "F16", 1, 2, true, DType::F16);
    set(DType::BF16, "BF16", 1, 2, true, DType::BF16);
    set(DType::Q4_0, "Q4_0", QK4_0, sizeof(block_q4_0), true, DType::Q8_0);
    set(DType::Q4_1, "Q4_1", QK4_1, sizeof(block_q4_1), true, DType::Q8_1);
    set(DType::Q5_0, "Q5_0", QK5_0, sizeof(block_q5_0), true, DType::Q8_0);
    set(DType::Q5_1, "Q5_1", QK5_1, sizeof(block_q5_1), true, DType::Q8_1);
    set(DType::Q8_0, "Q8_0", QK8_0, sizeof(block_q8_0), true, DType::Q8_0);
    set(DType::Q8_1, "Q8_1", QK8_1, sizeof(block_q8_1), false, DType::Q8_1);
    set(DType::Q2_K, "Q2_K", QK_K, 84, false, DType::Q8_K);
    set(DType::Q3_K, "Q3_K", QK_K, 110, false, DType::Q8_K);
    set(DType::Q4_K, "Q4_K", QK_K, sizeof(block_q4_K), true, DType::Q8_K);
    set(DType::Q5_K, "Q5_K", QK_K, sizeof(block_q5_K), true, DType::Q8_K);
    set(DType::Q6_K, "Q6_K", QK_K, sizeof(block_q6_K), true, DType::Q8_K);
    set(DType::Q8_K, "Q8_K", QK_K, sizeof(block_q8_K), false, DType::Q8_K);
    // Types ggml defines that strata does not compute with: known (so errors can name them), unsupported.
    set(static_cast<DType>(16), "IQ2_XXS", QK_K, 66, false, DType::Q8_K);
    set(static_cast<DType>(17), "IQ2_XS", QK_K, 74, false, DType::Q8_K);
    set(static_cast<DType>(18), "IQ3_XXS", QK_K, 98, false, DType::Q8_K);
    set(static_cast<DType>(19), "IQ1_S", QK_K, 50, false, DType::Q8_K);
    set(static_cast<DType>(20), "IQ4_NL", 32, 18, false, DType::Q8_0);
    set(static_cast<DType>(21), "IQ3_S", QK_K, 110, false, DType::Q8_K);
    set(static_cast<DType>(22), "IQ2_S", QK_K, 82, false, DType::Q8_K);
    set(static_cast<DType>(23), "IQ4_XS", QK_K, 136, false, DType::Q8_K);
    set(DType::I8, "I8", 1, 1, false, DType::I8);
    set(DType::I16, "I16", 1, 2, false, DType::I16);
    set(DType::I32, "I32", 1, 4, false, DType::I32);
    set(DType::I64, "I64", 1, 8, false, DType::I64);
    set(DType::F64, "F64", 1, 8, false, DType::F64);
    set(static_cast<DType>(29), "IQ1_M", QK_K, 56, false, DType::Q8_K);
    set(static_cast<DType>(34), "TQ1_0", QK_K, 54, false, DType::Q8_K);
    set(static_cast<DType>(35), "TQ2_0", QK_K, 66, false, DType::Q8_K);
    set(static_cast<DType>(39), "MXFP4", 32, 17, false, DType::Q8_0);
    return t;
}
}  // namespace

const DTypeTraits& dtype_traits(uint32_t id) {
    static const std::array<DTypeTraits, kNumDTypes> traits = make_traits();
    static const DTypeTraits unknown{};
    return id < kNumDTypes ? traits[id] : unknown;
}

std::string dtype_name(DType t) {
    const auto& tr = dtype_traits(t);
    return tr.name ? std::string(tr.name) : "type#" + std::to_string(static_cast<uint32_t>(t));
}

size_t dtype_row_bytes(DType t, int64_t n) {
    const auto& tr = dtype_traits(t);
    if (!tr.name || tr.block_elems <= 0) throw std::runtime_error("unknown tensor type " + dtype_name(t));
    if (n < 0 || n % tr.block_elems != 0)
        throw std::runtime_error("row of " + std::to_string(n) + " elements is not a whole number of " +
                                 dtype_name(t) + " blocks of " + std::to_string(tr.block_elems));
    return static_cast<size_t>(n / tr.block_elems) * tr.block_bytes;
}

float f16_to_f32(f16_t h) {
    const uint32_t sign = (h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else {  // subnormal: normalise
            int e = -1;
            do {
                mant <<= 1;
                ++e;
            } while (!(mant & 0x400));
            mant &= 0x3ff;
            bits = sign | static_cast<uint32_t>(127 - 15 - e) << 23 | mant << 13;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | mant << 13;
    } else {
        bits = sign | (exp + 127 - 15) << 23 | mant << 13;
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

f16_t f32_to_f16(float f) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    const uint32_t sign = (x >> 16) & 0x8000u;
    const uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) return static_cast<f16_t>(sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0));
    if (absx >= 0x477ff000u) return static_cast<f16_t>(sign | 0x7c00u);  // overflow -> inf
    if (absx < 0x38800000u) {                                            // subnormal or zero in half
        if (absx < 0x33000000u) return static_cast<f16_t>(sign);
        const uint32_t e = absx >> 23;
        const uint32_t m = (absx & 0x7fffffu) | 0x800000u;
        const uint32_t shift = 126 - e;  // 14..24
        uint32_t half = m >> shift;
        const uint32_t rem = m & ((1u << shift) - 1);
        const uint32_t halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (half & 1))) ++half;
        return static_cast<f16_t>(sign | half);
    }
    uint32_t half = ((absx - 0x38000000u) >> 13);
    const uint32_t rem = absx & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (half & 1))) ++half;
    return static_cast<f16_t>(sign | half);
}

bf16_t f32_to_bf16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<bf16_t>((u >> 16) | 64);  // quiet NaN
    return static_cast<bf16_t>((u + (0x7fffu + ((u >> 16) & 1))) >> 16);
}

}  // namespace strata
