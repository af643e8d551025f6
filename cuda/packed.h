// The GPU's weight layout and the per-chunk arithmetic, shared by the host (repacking, and the tests that
// check this arithmetic against the CPU reference on a machine without a GPU) and the device kernels.
//
// GGUF blocks are 18, 20, 22, 34, 144, 176 or 210 bytes: most are not 4-byte aligned, so a GPU could not use
// wide loads on them. At upload every quantized tensor is split into aligned, row-major regions, per chunk of
// 32 elements:
//   qs  the low bits: 16 bytes (4-bit and 5/6-bit types: byte k holds element k in its low nibble and element
//       k+16 in its high nibble) or 32 bytes (Q8_0: one int8 per element)
//   qh  the high bits: Q5_*: one u32 (bit l = bit 4 of element l); Q6_K: two u32 (element l's 2 bits at 2l of
//       word 0 for l < 16, at 2(l-16) of word 1 otherwise)
//   sc  the chunk's scale: Q4_0/Q5_0/Q8_0 half d; Q4_1/Q5_1 half2 (d, m); Q4_K/Q5_K u8 pair (scale, min);
//       Q6_K i8 pair (scale of elements 0-15, of 16-31)
//   sb  per 256-element super-block (K types): Q4_K/Q5_K half2 (d, dmin); Q6_K half d
// The same bytes, reordered: nothing is requantized. Every chunk's contribution to a dot product is then
//   dx * (a_lo * dot(q[0..15], x[0..15]) + a_hi * dot(q[16..31], x[16..31])) + mterm * sx
// with q the chunk's integer values (offsets already subtracted), x the activation's int8 values and dx, sx
// the activation chunk's scale and (for types with a minimum) its scaled sum, quantized as the CPU quantizes
// activations (Q8_0, Q8_1 or Q8_K by the weight's vec_dot_type).
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/dtype.h"

#if defined(__CUDACC__)
#include <cuda_fp16.h>
#define STRATA_HD __host__ __device__ __forceinline__
#else
#define STRATA_HD inline
#endif

namespace strata::cuda {

struct PackedLayout {
    int qs_bytes = 0;  // per chunk
    int qh_bytes = 0;  // per chunk
    int sc_bytes = 0;  // per chunk
    int sb_bytes = 0;  // per super-block of 256
};

inline PackedLayout packed_layout(DType t) {
    switch (t) {
        case DType::Q4_0: return {16, 0, 2, 0};
        case DType::Q4_1: return {16, 0, 4, 0};
        case DType::Q5_0: return {16, 4, 2, 0};
        case DType::Q5_1: return {16, 4, 4, 0};
        case DType::Q8_0: return {32, 0, 2, 0};
        case DType::Q4_K: return {16, 0, 2, 4};
        case DType::Q5_K: return {16, 4, 2, 4};
        case DType::Q6_K: return {16, 8, 2, 2};
        default: return {};
    }
}
inline bool packed_supported(DType t) { return packed_layout(t).qs_bytes != 0; }

// Pointers to one packed tensor (host or device memory).
struct PackedView {
    const uint8_t* qs = nullptr;
    const uint8_t* qh = nullptr;
    const uint8_t* sc = nullptr;
    const uint8_t* sb = nullptr;
    int64_t rows = 0;
    int cols = 0;  // a multiple of 32 (of 256 for K types)
    STRATA_HD int nchunk() const { return cols / 32; }
};

// Bytes of each region of a packed tensor of rows x cols.
struct PackedSizes {
    size_t qs = 0, qh = 0, sc = 0, sb = 0;
    size_t total() const { return qs + qh + sc + sb; }
};
inline PackedSizes packed_sizes(DType t, int64_t rows, int64_t cols) {
    const PackedLayout L = packed_layout(t);
    const size_t chunks = static_cast<size_t>(rows) * static_cast<size_t>(cols / 32);
    return {chunks * L.qs_bytes, chunks * L.qh_bytes, chunks * L.sc_bytes,
            static_cast<size_t>(rows) * static_cast<size_t>(cols / 256) * L.sb_bytes};
}

// Splits rows [0, rows) of a GGUF tensor into the packed regions (each sized by packed_sizes).
void pack_rows(DType t, const void* src, size_t src_row_bytes, int64_t rows, int64_t cols, uint8_t* qs, uint8_t* qh,
               uint8_t* sc, uint8_t* sb);

// ---- arithmetic shared by host and device ----------------------------------------------------------------

STRATA_HD float half_to_float(uint16_t h) {
#if defined(__CUDA_ARCH__)
    return __half2float(__ushort_as_half(h));
#else
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1F, man = h & 0x3FF, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else {  // subnormal: normalise
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) {
                man <<= 1;
                --exp;
            }
            bits = sign | (exp << 23) | ((man & 0x3FF) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7F800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    __builtin_memcpy(&f, &bits, 4);
    return f;
#endif
}

// Sum of the four signed byte products of a and b, plus c.
STRATA_HD int dp4a(int a, int b, int c) {
#if defined(__CUDA_ARCH__)
    return __dp4a(a, b, c);
#else
    for (int i = 0; i < 4; ++i)
        c += static_cast<int>(static_cast<int8_t>(a >> (8 * i))) * static_cast<int>(static_cast<int8_t>(b >> (8 * i)));
    return c;
#endif
}

// Per-byte a - b (wrapping), e.g. nibbles 0..15 minus 8 as signed bytes.
STRATA_HD uint32_t sub_bytes(uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__)
    return __vsub4(a, b);
#else
    uint32_t r = 0;
    for (int i = 0; i < 4; ++i) r |= static_cast<uint32_t>(static_cast<uint8_t>((a >> (8 * i)) - (b >> (8 * i)))) << (8 * i);
    return r;
#endif
}

// Bits 0..3 of h spread to bit 4 of bytes 0..3.
STRATA_HD uint32_t spread_bit4(uint32_t h) {
    return ((h & 1u) << 4) | ((h & 2u) << 11) | ((h & 4u) << 18) | ((h & 8u) << 25);
}
// Bits 0..7 of h (four 2-bit fields) spread to bits 4-5 of bytes 0..3.
STRATA_HD uint32_t spread_2bits(uint32_t h) {
    return ((h & 0x03u) << 4) | ((h & 0x0Cu) << 10) | ((h & 0x30u) << 16) | ((h & 0xC0u) << 22);
}

// One weight chunk decoded: q[0..3] hold elements 0..15, q[4..7] elements 16..31 (4 signed bytes per word).
struct Chunk {
    uint32_t q[8];
    float a_lo, a_hi, mterm;
};

template <int kType>
STRATA_HD void load_chunk(const PackedView& p, int64_t row, int c, Chunk& k) {
    constexpr DType T = static_cast<DType>(kType);
    const int64_t ci = row * p.nchunk() + c;
    if constexpr (T == DType::Q8_0) {
#if defined(__CUDA_ARCH__)
        const uint4 w0 = __ldg(reinterpret_cast<const uint4*>(p.qs + ci * 32));  // one 128-bit load per half
        const uint4 w1 = __ldg(reinterpret_cast<const uint4*>(p.qs + ci * 32) + 1);
        const uint32_t w[8] = {w0.x, w0.y, w0.z, w0.w, w1.x, w1.y, w1.z, w1.w};
#else
        const uint32_t* w = reinterpret_cast<const uint32_t*>(p.qs + ci * 32);
#endif
        for (int i = 0; i < 8; ++i) k.q[i] = w[i];
        const float d = half_to_float(reinterpret_cast<const uint16_t*>(p.sc)[ci]);
        k.a_lo = k.a_hi = d;
        k.mterm = 0.f;
    } else {
#if defined(__CUDA_ARCH__)
        const uint4 wv = __ldg(reinterpret_cast<const uint4*>(p.qs + ci * 16));  // one 128-bit load
        const uint32_t w[4] = {wv.x, wv.y, wv.z, wv.w};
#else
        const uint32_t* w = reinterpret_cast<const uint32_t*>(p.qs + ci * 16);
#endif
        uint32_t lo[4], hi[4];
        for (int i = 0; i < 4; ++i) {
            lo[i] = w[i] & 0x0F0F0F0Fu;
            hi[i] = (w[i] >> 4) & 0x0F0F0F0Fu;
        }
        if constexpr (T == DType::Q5_0 || T == DType::Q5_1 || T == DType::Q5_K) {
            const uint32_t h = reinterpret_cast<const uint32_t*>(p.qh)[ci];
            for (int i = 0; i < 4; ++i) {
                lo[i] |= spread_bit4(h >> (4 * i));
                hi[i] |= spread_bit4(h >> (16 + 4 * i));
            }
        }
        if constexpr (T == DType::Q6_K) {
            const uint32_t* h = reinterpret_cast<const uint32_t*>(p.qh + ci * 8);
            for (int i = 0; i < 4; ++i) {
                lo[i] |= spread_2bits(h[0] >> (8 * i));
                hi[i] |= spread_2bits(h[1] >> (8 * i));
            }
        }
        constexpr uint32_t off = T == DType::Q4_0 ? 0x08080808u
                                 : T == DType::Q5_0 ? 0x10101010u
                                 : T == DType::Q6_K ? 0x20202020u
                                                    : 0u;
        for (int i = 0; i < 4; ++i) {
            k.q[i] = off ? sub_bytes(lo[i], off) : lo[i];
            k.q[4 + i] = off ? sub_bytes(hi[i], off) : hi[i];
        }
        if constexpr (T == DType::Q4_0 || T == DType::Q5_0) {
            k.a_lo = k.a_hi = half_to_float(reinterpret_cast<const uint16_t*>(p.sc)[ci]);
            k.mterm = 0.f;
        } else if constexpr (T == DType::Q4_1 || T == DType::Q5_1) {
            const uint16_t* dm = reinterpret_cast<const uint16_t*>(p.sc) + 2 * ci;
            k.a_lo = k.a_hi = half_to_float(dm[0]);
            k.mterm = half_to_float(dm[1]);
        } else if constexpr (T == DType::Q4_K || T == DType::Q5_K) {
            const uint8_t* sm = p.sc + 2 * ci;
            const uint16_t* dd = reinterpret_cast<const uint16_t*>(p.sb) + 2 * (ci / 8);
            const float d = half_to_float(dd[0]), dmin = half_to_float(dd[1]);
            k.a_lo = k.a_hi = d * static_cast<float>(sm[0]);
            k.mterm = -dmin * static_cast<float>(sm[1]);
        } else {  // Q6_K
            const int8_t* s = reinterpret_cast<const int8_t*>(p.sc) + 2 * ci;
            const float d = half_to_float(reinterpret_cast<const uint16_t*>(p.sb)[ci / 8]);
            k.a_lo = d * static_cast<float>(s[0]);
            k.a_hi = d * static_cast<float>(s[1]);
            k.mterm = 0.f;
        }
    }
}

// The chunk's contribution against activation words x[0..7] with scale dx and scaled sum sx.
STRATA_HD float chunk_dot(const Chunk& k, const uint32_t* x, float dx, float sx) {
    int lo = 0, hi = 0;
    for (int i = 0; i < 4; ++i) {
        lo = dp4a(static_cast<int>(k.q[i]), static_cast<int>(x[i]), lo);
        hi = dp4a(static_cast<int>(k.q[4 + i]), static_cast<int>(x[4 + i]), hi);
    }
    return dx * (k.a_lo * static_cast<float>(lo) + k.a_hi * static_cast<float>(hi)) + k.mterm * sx;
}

// Activation quantization mode for a weight type (its vec_dot_type).
enum class ActMode : int { Q8_0 = 0, Q8_1 = 1, Q8_K = 2 };
inline ActMode act_mode(DType weight) {
    switch (dtype_traits(weight).vec_dot_type) {
        case DType::Q8_1: return ActMode::Q8_1;
        case DType::Q8_K: return ActMode::Q8_K;
        default: return ActMode::Q8_0;
    }
}

}  // namespace strata::cuda
