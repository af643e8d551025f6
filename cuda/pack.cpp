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

// The 32-element formats: each block's quants (16 or 32 bytes), high bits (4 bytes, Q5_*) and scale d (with min m,
// Q*_1) go to their own regions, the bytes unchanged.
template <class Block>
void pack_legacy(const uint8_t* row, int64_t nchunk, uint8_t* oqs, uint8_t* oqh, uint8_t* osc) {
    constexpr size_t nq = sizeof(Block::qs);
    constexpr bool has_min = requires(const Block& b) { b.m; };
    for (int64_t c = 0; c < nchunk; ++c) {
        const auto* b = reinterpret_cast<const Block*>(row) + c;
        std::memcpy(oqs + c * nq, b->qs, nq);
        if constexpr (requires { b->qh; }) std::memcpy(oqh + c * 4, b->qh, 4);
        put_u16(osc + c * (has_min ? 4 : 2), b->d);
        if constexpr (has_min) put_u16(osc + c * 4 + 2, b->m);
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
    for (int64_t r = 0; r < rows; ++r) {
        const uint8_t* row = static_cast<const uint8_t*>(src) + static_cast<size_t>(r) * src_row_bytes;
        uint8_t* oqs = qs + static_cast<size_t>(r) * nchunk * L.qs_bytes;
        uint8_t* oqh = qh ? qh + static_cast<size_t>(r) * nchunk * L.qh_bytes : nullptr;
        uint8_t* osc = sc + static_cast<size_t>(r) * nchunk * L.sc_bytes;
        uint8_t* osb = sb ? sb + static_cast<size_t>(r) * (cols / 256) * L.sb_bytes : nullptr;
        switch (t) {
            case DType::Q4_0: pack_legacy<block_q4_0>(row, nchunk, oqs, oqh, osc); break;
            case DType::Q4_1: pack_legacy<block_q4_1>(row, nchunk, oqs, oqh, osc); break;
            case DType::Q5_0: pack_legacy<block_q5_0>(row, nchunk, oqs, oqh, osc); break;
            case DType::Q5_1: pack_legacy<block_q5_1>(row, nchunk, oqs, oqh, osc); break;
            case DType::Q8_0: pack_legacy<block_q8_0>(row, nchunk, oqs, oqh, osc); break;
            case DType::Q4_K:
            case DType::Q5_K:
                for (int64_t i = 0; i < cols / 256; ++i) {
                    const bool q5 = t == DType::Q5_K;
                    const uint8_t *q4, *scales, *hbits = nullptr;
                    uint16_t d, dmin;
                    if (q5) {
                        const auto* b = reinterpret_cast<const block_q5_K*>(row) + i;
                        q4 = b->qs, scales = b->scales, hbits = b->qh, d = b->d, dmin = b->dmin;
                    } else {
                        const auto* b = reinterpret_cast<const block_q4_K*>(row) + i;
                        q4 = b->qs, scales = b->scales, d = b->d, dmin = b->dmin;
                    }
                    put_u16(osb + i * 4, d);
                    put_u16(osb + i * 4 + 2, dmin);
                    for (int j = 0; j < 8; ++j) {  // sub-block j: nibble half j % 2 of bytes 32 (j / 2) ..
                        const int64_t c = i * 8 + j;
                        uint8_t v[32];
                        uint32_t h = 0;
                        for (int l = 0; l < 32; ++l) {
                            const uint8_t byte = q4[32 * (j / 2) + l];
                            v[l] = j % 2 ? byte >> 4 : byte & 0xF;
                            if (hbits) h |= static_cast<uint32_t>((hbits[l] >> j) & 1) << l;
                        }
                        put_nibbles(v, oqs + c * 16);
                        if (q5) std::memcpy(oqh + c * 4, &h, 4);
                        scale_min_k4(j, scales, osc + c * 2, osc + c * 2 + 1);
                    }
                }
                break;
            case DType::Q6_K:
                for (int64_t i = 0; i < cols / 256; ++i) {
                    const auto* b = reinterpret_cast<const block_q6_K*>(row) + i;
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
                break;
            default:
                break;
        }
    }
}

}  // namespace strata::cuda
