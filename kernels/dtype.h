// Tensor element types, numbered as ggml/GGUF number them, and what each block looks like.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace strata {

enum class DType : uint32_t {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    BF16 = 30,
};
constexpr int kNumDTypes = 40;  // table size: every ggml type id we may meet is below this

struct DTypeTraits {
    const char* name = nullptr;  // "Q4_K"; nullptr for ids ggml never used
    int64_t block_elems = 0;     // elements per block (1 for plain types)
    size_t block_bytes = 0;      // bytes per block
    bool supported = false;      // strata can multiply by it (matmul + dequantize)
    DType vec_dot_type = DType::F32;  // format activations are quantized to before a dot with this type
};

// Traits of a raw ggml type id; ids that ggml never assigned return traits with name == nullptr.
const DTypeTraits& dtype_traits(uint32_t id);
inline const DTypeTraits& dtype_traits(DType t) { return dtype_traits(static_cast<uint32_t>(t)); }
std::string dtype_name(DType t);  // "Q4_K", or "type#N" for unknown ids

// Bytes of a row of n elements; throws std::runtime_error if n is not a whole number of blocks.
size_t dtype_row_bytes(DType t, int64_t n);

// ---- block layouts (identical to ggml's, so GGUF bytes can be read in place) ---------------------------
using f16_t = uint16_t;   // IEEE half, raw bits
using bf16_t = uint16_t;  // bfloat16, raw bits

constexpr int QK4_0 = 32, QK4_1 = 32, QK5_0 = 32, QK5_1 = 32, QK8_0 = 32, QK8_1 = 32;
constexpr int QK_K = 256, K_SCALE_SIZE = 12;

struct block_q4_0 { f16_t d; uint8_t qs[QK4_0 / 2]; };
struct block_q4_1 { f16_t d, m; uint8_t qs[QK4_1 / 2]; };
struct block_q5_0 { f16_t d; uint8_t qh[4]; uint8_t qs[QK5_0 / 2]; };
struct block_q5_1 { f16_t d, m; uint8_t qh[4]; uint8_t qs[QK5_1 / 2]; };
struct block_q8_0 { f16_t d; int8_t qs[QK8_0]; };
struct block_q8_1 { f16_t d, s; int8_t qs[QK8_1]; };  // s = d * sum(qs)
struct block_q4_K { f16_t d, dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qs[QK_K / 2]; };
struct block_q5_K { f16_t d, dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qh[QK_K / 8]; uint8_t qs[QK_K / 2]; };
struct block_q6_K { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; f16_t d; };
struct block_q8_K { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; };

static_assert(sizeof(block_q4_0) == 18 && sizeof(block_q4_1) == 20 && sizeof(block_q5_0) == 22);
static_assert(sizeof(block_q5_1) == 24 && sizeof(block_q8_0) == 34 && sizeof(block_q8_1) == 36);
static_assert(sizeof(block_q4_K) == 144 && sizeof(block_q5_K) == 176 && sizeof(block_q6_K) == 210);
static_assert(sizeof(block_q8_K) == 292);

// ---- scalar conversions ----------------------------------------------------------------------------------
float f16_to_f32(f16_t h);
f16_t f32_to_f16(float f);  // round to nearest even
inline float bf16_to_f32(bf16_t h) {
    uint32_t u = static_cast<uint32_t>(h) << 16;
    float f;
    __builtin_memcpy(&f, &u, 4);
    return f;
}
bf16_t f32_to_bf16(float f);  // round to nearest even, NaN kept quiet

}  // namespace strata
