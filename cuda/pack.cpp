// GGUF blocks -> the GPU's aligned regions (cuda/packed.h). Plain C++: runs at upload, and in the tests.
#include <cstring>
#include <stdexcept>

#include "cuda/packed.h"

namespace strata::cuda {

namespace {

// The 6-bit scale and min of sub-block j of a Q4_K/Q5_K super-block (12 packed bytes).
void scale_min_k4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

// 32 element values (nibbles, 0..15) -> 16 bytes: byte k = element k | element k+16 << 4.
void put_nibbles(const uint8_t v[32], uint8_t* out) {
    for (int k = 0; k < 16; ++k) out[k] = static_cast<uint8_t>((v[k] & 0xF) | ((v[k + 16] & 0xF) << 4));
}

void put_u16(uint8_t* out, uint16_t v) { std::memcpy(out, &v, 2); }

// One row of blocks of type Block -> its regions (cuda/packed.h), over the block's fields:
// - the 32-element formats (Q4_0 ... Q8_0): each block's quants (16 or 32 bytes), high bits (4 bytes, Q5_*) and
//   scale d (with min m, Q*_1) go to their own regions, the bytes unchanged;
// - Q4_K and Q5_K: per super-block d and dmin; per 32-element sub-block its nibbles, high bits (Q5_K) and the 6-bit
//   scale and min unpacked to bytes;
// - Q6_K: per super-block d; per sub-block its low nibbles, 2-bit highs (8 bytes) and two int8 scales.
template <class Block>
void pack_row(const uint8_t* row, int64_t cols, uint8_t* oqs, uint8_t* oqh, uint8_t* osc, uint8_t* osb) {
    const auto* blocks = reinterpret_cast<const Block*>(row);
    constexpr bool q6_k = requires(const Block& b) { b.ql; };
    constexpr bool k4 = requires(const Block& b) { b.dmin; };  // Q4_K, Q5_K
    constexpr bool has_qh = requires(const Block& b) { b.qh; };
    if constexpr (!q6_k && !k4) {
        constexpr size_t nq = sizeof(Block::qs);
        constexpr bool has_min = requires(const Block& b) { b.m; };
        for (int64_t c = 0; c < cols / 32; ++c) {
            const Block* b = blocks + c;
            std::memcpy(oqs + c * nq, b->qs, nq);
            if constexpr (has_qh) std::memcpy(oqh + c * 4, b->qh, 4);
            put_u16(osc + c * (has_min ? 4 : 2), b->d);
            if constexpr (has_min) put_u16(osc + c * 4 + 2, b->m);
        }
    } else if constexpr (k4) {
        for (int64_t i = 0; i < cols / 256; ++i) {
            const Block* b = blocks + i;
            put_u16(osb + i * 4, b->d);
            put_u16(osb + i * 4 + 2, b->dmin);
            for (int j = 0; j < 8; ++j) {  // sub-block j: nibble half j % 2 of bytes 32 (j / 2) ..
                const int64_t c = i * 8 + j;
                uint8_t v[32];
                uint32_t h = 0;
                for (int l = 0; l < 32; ++l) {
                    const uint8_t byte = b->qs[32 * (j / 2) + l];
                    v[l] = j % 2 ? byte >> 4 : byte & 0xF;
                    if constexpr (has_qh) h |= static_cast<uint32_t>((b->qh[l] >> j) & 1) << l;
                }
                put_nibbles(v, oqs + c * 16);
                if constexpr (has_qh) std::memcpy(oqh + c * 4, &h, 4);
                scale_min_k4(j, b->scales, osc + c * 2, osc + c * 2 + 1);
            }
        }
    } else {
        for (int64_t i = 0; i < cols / 256; ++i) {
            const Block* b = blocks + i;
            put_u16(osb + i * 2, b->d);
            for (int j = 0; j < 8; ++j) {  // half j / 4, quarter j % 4 of ggml's dequantization loop
                const int64_t c = i * 8 + j;
                const uint8_t* ql = b->ql + 64 * (j / 4);
                const uint8_t* qhb = b->qh + 32 * (j / 4);
                const int sub = j % 4;
                uint8_t v[32];
                uint32_t h[2] = {0, 0};
                for (int l = 0; l < 32; ++l) {
                    const uint8_t byte = ql[l + (sub & 1 ? 32 : 0)];
                    v[l] = sub >= 2 ? byte >> 4 : byte & 0xF;
                    h[l / 16] |= static_cast<uint32_t>((qhb[l] >> (2 * sub)) & 3) << (2 * (l % 16));
                }
                put_nibbles(v, oqs + c * 16);
                std::memcpy(oqh + c * 8, h, 8);
                osc[c * 2] = static_cast<uint8_t>(b->scales[2 * j]);
                osc[c * 2 + 1] = static_cast<uint8_t>(b->scales[2 * j + 1]);
            }
        }
    }
}

// Calls pack.template operator()<Block>() with t's block type.
template <class F>
void with_block_type(DType t, F&& pack) {
    switch (t) {
        case DType::Q4_0: return pack.template operator()<block_q4_0>();
        case DType::Q4_1: return pack.template operator()<block_q4_1>();
        case DType::Q5_0: return pack.template operator()<block_q5_0>();
        case DType::Q5_1: return pack.template operator()<block_q5_1>();
        case DType::Q8_0: return pack.template operator()<block_q8_0>();
        case DType::Q4_K: return pack.template operator()<block_q4_K>();
        case DType::Q5_K: return pack.template operator()<block_q5_K>();
        case DType::Q6_K: return pack.template operator()<block_q6_K>();
        default: throw std::invalid_argument("the CUDA backend has no packed layout for " + dtype_name(t));
    }
}

}  // namespace

void pack_rows(DType t, const void* src, size_t src_row_bytes, int64_t rows, int64_t cols, uint8_t* qs, uint8_t* qh,
               uint8_t* sc, uint8_t* sb) {
    if (!packed_supported(t)) throw std::invalid_argument("the CUDA backend has no packed layout for " + dtype_name(t));
    const int64_t nchunk = cols / 32;
    if (cols % 32 != 0 || ((t == DType::Q4_K || t == DType::Q5_K || t == DType::Q6_K) && cols % 256 != 0))
        throw std::invalid_argument("row of " + std::to_string(cols) + " elements is not whole blocks of " + dtype_name(t));
    const PackedLayout L = packed_layout(t);
    with_block_type(t, [&]<class Block>() {
        for (int64_t r = 0; r < rows; ++r) {
            const uint8_t* row = static_cast<const uint8_t*>(src) + static_cast<size_t>(r) * src_row_bytes;
            uint8_t* oqs = qs + static_cast<size_t>(r) * nchunk * L.qs_bytes;
            uint8_t* oqh = qh ? qh + static_cast<size_t>(r) * nchunk * L.qh_bytes : nullptr;
            uint8_t* osc = sc + static_cast<size_t>(r) * nchunk * L.sc_bytes;
            uint8_t* osb = sb ? sb + static_cast<size_t>(r) * (cols / 256) * L.sb_bytes : nullptr;
            pack_row<Block>(row, cols, oqs, oqh, osc, osb);
        }
    });
}

}  // namespace strata::cuda
