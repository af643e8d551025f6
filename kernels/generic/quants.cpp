// Scalar reference quant kernels: quantize / dequantize / vec_dot / matmul for every dtype strata computes with.
//
// Numerics follow ggml's reference code (ggml-quants.c `*_ref`, ggml-cpu/quants.c `*_generic`): the same rounding
// rules when quantizing and the same order of float operations in the dot products, so a scalar strata matches a
// scalar llama.cpp to the last bit or close to it. Every ISA variant is tested against these functions.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "kernels/generic/generic.h"

// Keep a*b+c as two roundings (no fused multiply-add): the reference must give the same bits on every target
// (aarch64 has FMA in its base ISA and GCC contracts by default), and ggml's Python twin (gguf) does not fuse.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace strata::generic {
namespace {

inline float h2f(f16_t h) { return f16_to_f32(h); }
inline f16_t f2h(float f) { return f32_to_f16(f); }

// ggml's nearest_int: round half to even through the float mantissa (valid for |x| < 2^22).
inline int nearest_int(float fval) {
    float val = fval + 12582912.f;
    int i;
    std::memcpy(&i, &val, sizeof(int));
    return (i & 0x007fffff) - 0x00400000;
}

// ================================ quantize_row =============================================================

void quantize_f32(const float* x, void* vy, int64_t n) { std::memcpy(vy, x, static_cast<size_t>(n) * 4); }

void quantize_f16(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<f16_t*>(vy);
    for (int64_t i = 0; i < n; ++i) y[i] = f2h(x[i]);
}

void quantize_bf16(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<bf16_t*>(vy);
    for (int64_t i = 0; i < n; ++i) y[i] = f32_to_bf16(x[i]);
}

void quantize_q8_0(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<block_q8_0*>(vy);
    const int64_t nb = n / QK8_0;
    for (int64_t i = 0; i < nb; ++i, x += QK8_0) {
        float amax = 0.0f;
        for (int j = 0; j < QK8_0; ++j) amax = std::max(amax, std::fabs(x[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = f2h(d);
        for (int j = 0; j < QK8_0; ++j) y[i].qs[j] = static_cast<int8_t>(std::roundf(x[j] * id));
    }
}

void quantize_q8_1(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<block_q8_1*>(vy);
    const int64_t nb = n / QK8_1;
    for (int64_t i = 0; i < nb; ++i, x += QK8_1) {
        float amax = 0.0f;
        for (int j = 0; j < QK8_1; ++j) amax = std::max(amax, std::fabs(x[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = f2h(d);
        int sum = 0;
        for (int j = 0; j < QK8_1; ++j) {
            y[i].qs[j] = static_cast<int8_t>(std::roundf(x[j] * id));
            sum += y[i].qs[j];
        }
        y[i].s = f2h(static_cast<float>(sum) * d);  // ggml: s = d * sum(q), the un-rounded f32 d
    }
}

void quantize_q8_K(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<block_q8_K*>(vy);
    const int64_t nb = n / QK_K;
    for (int64_t i = 0; i < nb; ++i, x += QK_K) {
        float max = 0.0f, amax = 0.0f;
        for (int j = 0; j < QK_K; ++j) {
            const float ax = std::fabs(x[j]);
            if (ax > amax) {
                amax = ax;
                max = x[j];
            }
        }
        if (amax == 0.0f) {  // ggml leaves bsums untouched here; zero them so the block is well defined
            std::memset(&y[i], 0, sizeof(block_q8_K));
            continue;
        }
        const float iscale = -127.0f / max;  // signed: the largest-magnitude value maps to -127
        for (int j = 0; j < QK_K; ++j) y[i].qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * x[j])));
        for (int j = 0; j < QK_K / 16; ++j) {
            int sum = 0;
            for (int k = 0; k < 16; ++k) sum += y[i].qs[j * 16 + k];
            y[i].bsums[j] = static_cast<int16_t>(sum);
        }
        y[i].d = 1.0f / iscale;
    }
}

// Index of the first element of largest magnitude, and its signed value (ggml's Q4_0/Q5_0 choice of scale sign).
inline float signed_absmax(const float* x, int n) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; ++j) {
        const float v = x[j];
        if (amax < std::fabs(v)) {
            amax = std::fabs(v);
            max = v;
        }
    }
    return max;
}

void quantize_q4_0(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<block_q4_0*>(vy);
    const int64_t nb = n / QK4_0;
    for (int64_t i = 0; i < nb; ++i, x += QK4_0) {
        const float d = signed_absmax(x, QK4_0) / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = f2h(d);
        for (int j = 0; j < QK4_0 / 2; ++j) {
            const int q0 = std::min(15, static_cast<int>(static_cast<int8_t>(x[j] * id + 8.5f)));
            const int q1 = std::min(15, static_cast<int>(static_cast<int8_t>(x[j + QK4_0 / 2] * id + 8.5f)));
            y[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
        }
    }
}

void quantize_q4_1(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<block_q4_1*>(vy);
    const int64_t nb = n / QK4_1;
    for (int64_t i = 0; i < nb; ++i, x += QK4_1) {
        float mn = x[0], mx = x[0];
        for (int j = 1; j < QK4_1; ++j) {
            mn = std::min(mn, x[j]);
            mx = std::max(mx, x[j]);
        }
        const float d = (mx - mn) / 15.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = f2h(d);
        y[i].m = f2h(mn);
        for (int j = 0; j < QK4_1 / 2; ++j) {
            const int q0 = std::min(15, static_cast<int>(static_cast<int8_t>((x[j] - mn) * id + 0.5f)));
            const int q1 = std::min(15, static_cast<int>(static_cast<int8_t>((x[j + QK4_1 / 2] - mn) * id + 0.5f)));
            y[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
        }
    }
}

void quantize_q5_0(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<block_q5_0*>(vy);
    const int64_t nb = n / QK5_0;
    for (int64_t i = 0; i < nb; ++i, x += QK5_0) {
        const float d = signed_absmax(x, QK5_0) / -16.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = f2h(d);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_0 / 2; ++j) {
            const int q0 = std::min(31, static_cast<int>(static_cast<int8_t>(x[j] * id + 16.5f)));
            const int q1 = std::min(31, static_cast<int>(static_cast<int8_t>(x[j + QK5_0 / 2] * id + 16.5f)));
            y[i].qs[j] = static_cast<uint8_t>((q0 & 0x0F) | ((q1 & 0x0F) << 4));
            qh |= static_cast<uint32_t>((q0 >> 4) & 1) << j;
            qh |= static_cast<uint32_t>((q1 >> 4) & 1) << (j + QK5_0 / 2);
        }
        std::memcpy(y[i].qh, &qh, 4);
    }
}

void quantize_q5_1(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<block_q5_1*>(vy);
    const int64_t nb = n / QK5_1;
    for (int64_t i = 0; i < nb; ++i, x += QK5_1) {
        float mn = x[0], mx = x[0];
        for (int j = 1; j < QK5_1; ++j) {
            mn = std::min(mn, x[j]);
            mx = std::max(mx, x[j]);
        }
        const float d = (mx - mn) / 31.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = f2h(d);
        y[i].m = f2h(mn);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_1 / 2; ++j) {
            const int q0 = std::min(31, static_cast<int>(static_cast<uint8_t>((x[j] - mn) * id + 0.5f)));
            const int q1 = std::min(31, static_cast<int>(static_cast<uint8_t>((x[j + QK5_1 / 2] - mn) * id + 0.5f)));
            y[i].qs[j] = static_cast<uint8_t>((q0 & 0x0F) | ((q1 & 0x0F) << 4));
            qh |= static_cast<uint32_t>((q0 >> 4) & 1) << j;
            qh |= static_cast<uint32_t>((q1 >> 4) & 1) << (j + QK5_1 / 2);
        }
        std::memcpy(y[i].qh, &qh, 4);
    }
}

// ---- K-quants: a simple min/max quantizer (not ggml's make_qkx2 search), valid blocks, modest error ---------

// 6-bit scale/min packing of Q4_K/Q5_K (8 sub-blocks): see get_scale_min_k4 below for the inverse.
inline void pack_scale_min_k4(const uint8_t ls[8], const uint8_t lm[8], uint8_t out[K_SCALE_SIZE]) {
    std::memset(out, 0, K_SCALE_SIZE);
    for (int j = 0; j < 8; ++j) {
        if (j < 4) {
            out[j] = ls[j];
            out[j + 4] = lm[j];
        } else {
            out[j + 4] = static_cast<uint8_t>((ls[j] & 0x0F) | ((lm[j] & 0x0F) << 4));
            out[j - 4] |= static_cast<uint8_t>((ls[j] >> 4) << 6);
            out[j] |= static_cast<uint8_t>((lm[j] >> 4) << 6);
        }
    }
}

inline void get_scale_min_k4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = static_cast<uint8_t>((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4));
        *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

// Shared by Q4_K (nmax 15) and Q5_K (nmax 31): per 32-element sub-block, x ~ d*ls*q - dmin*lm, q in [0, nmax].
//   q: QK_K levels out;  d/dmin/scales: the block header out.
void quantize_kx_block(const float* x, int nmax, uint8_t* q, f16_t* d_out, f16_t* dmin_out, uint8_t* scales) {
    float sc[8], mn[8];
    float max_sc = 0.0f, max_mn = 0.0f;
    for (int j = 0; j < 8; ++j) {
        const float* s = x + 32 * j;
        float lo = 0.0f, hi = s[0];  // the offset is subtracted, so the sub-block minimum is clamped to <= 0
        for (int l = 0; l < 32; ++l) {
            lo = std::min(lo, s[l]);
            hi = std::max(hi, s[l]);
        }
        sc[j] = std::max(0.0f, hi - lo) / static_cast<float>(nmax);
        mn[j] = -lo;
        max_sc = std::max(max_sc, sc[j]);
        max_mn = std::max(max_mn, mn[j]);
    }
    const f16_t dh = f2h(max_sc / 63.0f), mh = f2h(max_mn / 63.0f);
    const float d = h2f(dh), dmin = h2f(mh);
    uint8_t ls[8], lm[8];
    for (int j = 0; j < 8; ++j) {
        // Scales round to nearest; mins round up so the offset still covers the sub-block's minimum.
        ls[j] = d > 0.0f ? static_cast<uint8_t>(std::clamp(nearest_int(sc[j] / d), 0, 63)) : 0;
        lm[j] = dmin > 0.0f ? static_cast<uint8_t>(std::clamp(static_cast<int>(std::ceil(mn[j] / dmin)), 0, 63)) : 0;
    }
    *d_out = dh;
    *dmin_out = mh;
    pack_scale_min_k4(ls, lm, scales);
    for (int j = 0; j < 8; ++j) {
        const float s = d * ls[j], m = dmin * lm[j];
        for (int l = 0; l < 32; ++l) {
            const int v = s > 0.0f ? nearest_int((x[32 * j + l] + m) / s) : 0;
            q[32 * j + l] = static_cast<uint8_t>(std::clamp(v, 0, nmax));
        }
    }
}

void quantize_q4_K(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<block_q4_K*>(vy);
    const int64_t nb = n / QK_K;
    uint8_t q[QK_K];
    for (int64_t i = 0; i < nb; ++i, x += QK_K) {
        quantize_kx_block(x, 15, q, &y[i].d, &y[i].dmin, y[i].scales);
        for (int j = 0; j < QK_K; j += 64)
            for (int l = 0; l < 32; ++l) y[i].qs[j / 2 + l] = static_cast<uint8_t>(q[j + l] | (q[j + l + 32] << 4));
    }
}

void quantize_q5_K(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<block_q5_K*>(vy);
    const int64_t nb = n / QK_K;
    uint8_t q[QK_K];
    for (int64_t i = 0; i < nb; ++i, x += QK_K) {
        quantize_kx_block(x, 31, q, &y[i].d, &y[i].dmin, y[i].scales);
        std::memset(y[i].qh, 0, sizeof(y[i].qh));
        for (int j = 0; j < QK_K; j += 64) {
            const int bit = j / 32;  // sub-block index: its high bits live in bit `bit` of qh[l]
            for (int l = 0; l < 32; ++l) {
                const int q0 = q[j + l], q1 = q[j + l + 32];
                y[i].qs[j / 2 + l] = static_cast<uint8_t>((q0 & 0x0F) | ((q1 & 0x0F) << 4));
                y[i].qh[l] |= static_cast<uint8_t>(((q0 >> 4) << bit) | ((q1 >> 4) << (bit + 1)));
            }
        }
    }
}

void quantize_q6_K(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<block_q6_K*>(vy);
    const int64_t nb = n / QK_K;
    for (int64_t i = 0; i < nb; ++i, x += QK_K) {
        float sc[QK_K / 16], max_sc = 0.0f;
        for (int j = 0; j < QK_K / 16; ++j) {
            float amax = 0.0f;
            for (int l = 0; l < 16; ++l) amax = std::max(amax, std::fabs(x[16 * j + l]));
            sc[j] = amax / 31.0f;
            max_sc = std::max(max_sc, sc[j]);
        }
        const f16_t dh = f2h(max_sc / 127.0f);
        const float d = h2f(dh);
        int8_t q[QK_K];
        for (int j = 0; j < QK_K / 16; ++j) {
            // Round the sub-block scale up, so no value needs a level beyond +-31.
            const int ls = d > 0.0f ? std::clamp(static_cast<int>(std::ceil(sc[j] / d)), 0, 127) : 0;
            y[i].scales[j] = static_cast<int8_t>(ls);
            const float s = d * static_cast<float>(ls);
            for (int l = 0; l < 16; ++l) {
                const int v = s > 0.0f ? nearest_int(x[16 * j + l] / s) : 0;
                q[16 * j + l] = static_cast<int8_t>(std::clamp(v, -32, 31));
            }
        }
        y[i].d = dh;
        for (int nn = 0; nn < QK_K; nn += 128) {
            uint8_t* ql = y[i].ql + nn / 2;
            uint8_t* qh = y[i].qh + nn / 4;
            for (int l = 0; l < 32; ++l) {
                const int q1 = q[nn + l] + 32, q2 = q[nn + l + 32] + 32;
                const int q3 = q[nn + l + 64] + 32, q4 = q[nn + l + 96] + 32;
                ql[l] = static_cast<uint8_t>((q1 & 0x0F) | ((q3 & 0x0F) << 4));
                ql[l + 32] = static_cast<uint8_t>((q2 & 0x0F) | ((q4 & 0x0F) << 4));
                qh[l] = static_cast<uint8_t>((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
            }
        }
    }
}

// ================================ dequantize_row ===========================================================

void dequantize_f32(const void* w, float* y, int64_t n) { std::memcpy(y, w, static_cast<size_t>(n) * 4); }

void dequantize_f16(const void* w, float* y, int64_t n) {
    const auto* x = static_cast<const f16_t*>(w);
    for (int64_t i = 0; i < n; ++i) y[i] = h2f(x[i]);
}

void dequantize_bf16(const void* w, float* y, int64_t n) {
    const auto* x = static_cast<const bf16_t*>(w);
    for (int64_t i = 0; i < n; ++i) y[i] = bf16_to_f32(x[i]);
}

void dequantize_q4_0(const void* w, float* y, int64_t n) {
    const auto* x = static_cast<const block_q4_0*>(w);
    const int64_t nb = n / QK4_0;
    for (int64_t i = 0; i < nb; ++i, y += QK4_0) {
        const float d = h2f(x[i].d);
        for (int j = 0; j < QK4_0 / 2; ++j) {
            y[j] = static_cast<float>((x[i].qs[j] & 0x0F) - 8) * d;
            y[j + QK4_0 / 2] = static_cast<float>((x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

void dequantize_q4_1(const void* w, float* y, int64_t n) {
    const auto* x = static_cast<const block_q4_1*>(w);
    const int64_t nb = n / QK4_1;
    for (int64_t i = 0; i < nb; ++i, y += QK4_1) {
        const float d = h2f(x[i].d), m = h2f(x[i].m);
        for (int j = 0; j < QK4_1 / 2; ++j) {
            y[j] = static_cast<float>(x[i].qs[j] & 0x0F) * d + m;
            y[j + QK4_1 / 2] = static_cast<float>(x[i].qs[j] >> 4) * d + m;
        }
    }
}

void dequantize_q5_0(const void* w, float* y, int64_t n) {
    const auto* x = static_cast<const block_q5_0*>(w);
    const int64_t nb = n / QK5_0;
    for (int64_t i = 0; i < nb; ++i, y += QK5_0) {
        const float d = h2f(x[i].d);
        uint32_t qh;
        std::memcpy(&qh, x[i].qh, 4);
        for (int j = 0; j < QK5_0 / 2; ++j) {
            const int h0 = ((qh >> j) & 1) << 4, h1 = ((qh >> (j + 16)) & 1) << 4;
            y[j] = static_cast<float>(((x[i].qs[j] & 0x0F) | h0) - 16) * d;
            y[j + QK5_0 / 2] = static_cast<float>(((x[i].qs[j] >> 4) | h1) - 16) * d;
        }
    }
}

void dequantize_q5_1(const void* w, float* y, int64_t n) {
    const auto* x = static_cast<const block_q5_1*>(w);
    const int64_t nb = n / QK5_1;
    for (int64_t i = 0; i < nb; ++i, y += QK5_1) {
        const float d = h2f(x[i].d), m = h2f(x[i].m);
        uint32_t qh;
        std::memcpy(&qh, x[i].qh, 4);
        for (int j = 0; j < QK5_1 / 2; ++j) {
            const int h0 = ((qh >> j) & 1) << 4, h1 = ((qh >> (j + 16)) & 1) << 4;
            y[j] = static_cast<float>((x[i].qs[j] & 0x0F) | h0) * d + m;
            y[j + QK5_1 / 2] = static_cast<float>((x[i].qs[j] >> 4) | h1) * d + m;
        }
    }
}

void dequantize_q8_0(const void* w, float* y, int64_t n) {
    const auto* x = static_cast<const block_q8_0*>(w);
    const int64_t nb = n / QK8_0;
    for (int64_t i = 0; i < nb; ++i, y += QK8_0) {
        const float d = h2f(x[i].d);
        for (int j = 0; j < QK8_0; ++j) y[j] = static_cast<float>(x[i].qs[j]) * d;
    }
}

void dequantize_q8_1(const void* w, float* y, int64_t n) {
    const auto* x = static_cast<const block_q8_1*>(w);
    const int64_t nb = n / QK8_1;
    for (int64_t i = 0; i < nb; ++i, y += QK8_1) {
        const float d = h2f(x[i].d);
        for (int j = 0; j < QK8_1; ++j) y[j] = static_cast<float>(x[i].qs[j]) * d;
    }
}

void dequantize_q8_K(const void* w, float* y, int64_t n) {
    const auto* x = static_cast<const block_q8_K*>(w);
    const int64_t nb = n / QK_K;
    for (int64_t i = 0; i < nb; ++i, y += QK_K)
        for (int j = 0; j < QK_K; ++j) y[j] = x[i].d * static_cast<float>(x[i].qs[j]);
}

void dequantize_q4_K(const void* w, float* y, int64_t n) {
    const auto* x = static_cast<const block_q4_K*>(w);
    const int64_t nb = n / QK_K;
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t* q = x[i].qs;
        const float d = h2f(x[i].d), dmin = h2f(x[i].dmin);
        int is = 0;
        for (int j = 0; j < QK_K; j += 64, q += 32, is += 2) {
            uint8_t sc, m;
            get_scale_min_k4(is + 0, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = dmin * m;
            get_scale_min_k4(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = dmin * m;
            for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0x0F) - m1;
            for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
        }
    }
}

void dequantize_q5_K(const void* w, float* y, int64_t n) {
    const auto* x = static_cast<const block_q5_K*>(w);
    const int64_t nb = n / QK_K;
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t* ql = x[i].qs;
        const uint8_t* qh = x[i].qh;
        const float d = h2f(x[i].d), dmin = h2f(x[i].dmin);
        int is = 0;
        uint8_t u1 = 1, u2 = 2;
        for (int j = 0; j < QK_K; j += 64, ql += 32, is += 2, u1 <<= 2, u2 <<= 2) {
            uint8_t sc, m;
            get_scale_min_k4(is + 0, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = dmin * m;
            get_scale_min_k4(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = dmin * m;
            for (int l = 0; l < 32; ++l)
                *y++ = d1 * static_cast<float>((ql[l] & 0x0F) + (qh[l] & u1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
        }
    }
}

void dequantize_q6_K(const void* w, float* y, int64_t n) {
    const auto* x = static_cast<const block_q6_K*>(w);
    const int64_t nb = n / QK_K;
    for (int64_t i = 0; i < nb; ++i) {
        const float d = h2f(x[i].d);
        const uint8_t* ql = x[i].ql;
        const uint8_t* qh = x[i].qh;
        const int8_t* sc = x[i].scales;
        for (int nn = 0; nn < QK_K; nn += 128, y += 128, ql += 64, qh += 32, sc += 8) {
            for (int l = 0; l < 32; ++l) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l + 0] = d * static_cast<float>(sc[is + 0]) * static_cast<float>(q1);
                y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
                y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
                y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
            }
        }
    }
}

// ================================ vec_dot ==================================================================
// Each mirrors ggml's *_generic: an exact integer dot per block, then scaled and summed in float, same order.

float vec_dot_f32(int64_t n, const void* vw, const void* vx) {
    const auto* w = static_cast<const float*>(vw);
    const auto* x = static_cast<const float*>(vx);
    double sum = 0.0;  // ggml_float accumulator, as ggml's scalar path
    for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(w[i] * x[i]);
    return static_cast<float>(sum);
}

float vec_dot_f16(int64_t n, const void* vw, const void* vx) {
    const auto* w = static_cast<const f16_t*>(vw);
    const auto* x = static_cast<const f16_t*>(vx);
    double sum = 0.0;  // products of two halves are exact in float; the sum is kept in double like ggml's
    for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(h2f(w[i]) * h2f(x[i]));
    return static_cast<float>(sum);
}

float vec_dot_bf16(int64_t n, const void* vw, const void* vx) {
    const auto* w = static_cast<const bf16_t*>(vw);
    const auto* x = static_cast<const bf16_t*>(vx);
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(bf16_to_f32(w[i]) * bf16_to_f32(x[i]));
    return static_cast<float>(sum);
}

float vec_dot_q4_0_q8_0(int64_t n, const void* vw, const void* vx) {
    const auto* x = static_cast<const block_q4_0*>(vw);
    const auto* y = static_cast<const block_q8_0*>(vx);
    const int64_t nb = n / QK8_0;
    float sumf = 0.0f;
    for (int64_t ib = 0; ib < nb; ++ib) {
        int sumi0 = 0, sumi1 = 0;
        for (int j = 0; j < QK8_0 / 2; ++j) {
            const int v0 = (x[ib].qs[j] & 0x0F) - 8;
            const int v1 = (x[ib].qs[j] >> 4) - 8;
            sumi0 += v0 * y[ib].qs[j];
            sumi1 += v1 * y[ib].qs[j + QK8_0 / 2];
        }
        const int sumi = sumi0 + sumi1;
        sumf += static_cast<float>(sumi) * h2f(x[ib].d) * h2f(y[ib].d);
    }
    return sumf;
}

float vec_dot_q4_1_q8_1(int64_t n, const void* vw, const void* vx) {
    const auto* x = static_cast<const block_q4_1*>(vw);
    const auto* y = static_cast<const block_q8_1*>(vx);
    const int64_t nb = n / QK8_1;
    float sumf = 0.0f;
    for (int64_t ib = 0; ib < nb; ++ib) {
        int sumi0 = 0, sumi1 = 0;
        for (int j = 0; j < QK8_1 / 2; ++j) {
            const int v0 = x[ib].qs[j] & 0x0F;
            const int v1 = x[ib].qs[j] >> 4;
            sumi0 += v0 * y[ib].qs[j];
            sumi1 += v1 * y[ib].qs[j + QK8_1 / 2];
        }
        const int sumi = sumi0 + sumi1;
        sumf += (h2f(x[ib].d) * h2f(y[ib].d)) * static_cast<float>(sumi) + h2f(x[ib].m) * h2f(y[ib].s);
    }
    return sumf;
}

float vec_dot_q5_0_q8_0(int64_t n, const void* vw, const void* vx) {
    const auto* x = static_cast<const block_q5_0*>(vw);
    const auto* y = static_cast<const block_q8_0*>(vx);
    const int64_t nb = n / QK8_0;
    float sumf = 0.0f;
    for (int64_t ib = 0; ib < nb; ++ib) {
        uint32_t qh;
        std::memcpy(&qh, x[ib].qh, 4);
        int sumi0 = 0, sumi1 = 0;
        for (int j = 0; j < QK8_0 / 2; ++j) {
            const int h0 = ((qh >> j) & 1) << 4, h1 = ((qh >> (j + 16)) & 1) << 4;
            const int v0 = ((x[ib].qs[j] & 0x0F) | h0) - 16;
            const int v1 = ((x[ib].qs[j] >> 4) | h1) - 16;
            sumi0 += v0 * y[ib].qs[j];
            sumi1 += v1 * y[ib].qs[j + QK8_0 / 2];
        }
        const int sumi = sumi0 + sumi1;
        sumf += (h2f(x[ib].d) * h2f(y[ib].d)) * static_cast<float>(sumi);
    }
    return sumf;
}

float vec_dot_q5_1_q8_1(int64_t n, const void* vw, const void* vx) {
    const auto* x = static_cast<const block_q5_1*>(vw);
    const auto* y = static_cast<const block_q8_1*>(vx);
    const int64_t nb = n / QK8_1;
    float sumf = 0.0f;
    for (int64_t ib = 0; ib < nb; ++ib) {
        uint32_t qh;
        std::memcpy(&qh, x[ib].qh, 4);
        int sumi0 = 0, sumi1 = 0;
        for (int j = 0; j < QK8_1 / 2; ++j) {
            const int h0 = ((qh >> j) & 1) << 4, h1 = ((qh >> (j + 16)) & 1) << 4;
            const int v0 = (x[ib].qs[j] & 0x0F) | h0;
            const int v1 = (x[ib].qs[j] >> 4) | h1;
            sumi0 += v0 * y[ib].qs[j];
            sumi1 += v1 * y[ib].qs[j + QK8_1 / 2];
        }
        const int sumi = sumi0 + sumi1;
        sumf += (h2f(x[ib].d) * h2f(y[ib].d)) * static_cast<float>(sumi) + h2f(x[ib].m) * h2f(y[ib].s);
    }
    return sumf;
}

float vec_dot_q8_0_q8_0(int64_t n, const void* vw, const void* vx) {
    const auto* x = static_cast<const block_q8_0*>(vw);
    const auto* y = static_cast<const block_q8_0*>(vx);
    const int64_t nb = n / QK8_0;
    float sumf = 0.0f;
    for (int64_t ib = 0; ib < nb; ++ib) {
        int sumi = 0;
        for (int j = 0; j < QK8_0; ++j) sumi += x[ib].qs[j] * y[ib].qs[j];
        sumf += static_cast<float>(sumi) * (h2f(x[ib].d) * h2f(y[ib].d));
    }
    return sumf;
}

// Q4_K / Q5_K: 8 sub-blocks of 32 with 6-bit scale and min; the min term goes through Q8_K's bsums.
// ggml's generic keeps 8 float lane sums (sums[l], lane = element index mod 8) and adds them at the end.
inline void unpack_scales_mins_k4(const uint8_t* packed, uint8_t scales[8], uint8_t mins[8]) {
    for (int j = 0; j < 8; ++j) get_scale_min_k4(j, packed, &scales[j], &mins[j]);
}

template <bool kQ5>
float vec_dot_qk_q8_K(int64_t n, const void* vw, const void* vx) {
    using Block = std::conditional_t<kQ5, block_q5_K, block_q4_K>;
    const auto* x = static_cast<const Block*>(vw);
    const auto* y = static_cast<const block_q8_K*>(vx);
    const int64_t nb = n / QK_K;
    float sums[8] = {};
    float sumf = 0.0f;
    int8_t a[QK_K];
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t* q4 = x[i].qs;
        for (int j = 0; j < QK_K / 64; ++j, q4 += 32) {
            for (int l = 0; l < 32; ++l) {
                int lo = q4[l] & 0x0F, hi = q4[l] >> 4;
                if constexpr (kQ5) {
                    lo += (x[i].qh[l] >> (2 * j)) & 1 ? 16 : 0;
                    hi += (x[i].qh[l] >> (2 * j + 1)) & 1 ? 16 : 0;
                }
                a[64 * j + l] = static_cast<int8_t>(lo);
                a[64 * j + 32 + l] = static_cast<int8_t>(hi);
            }
        }
        uint8_t scales[8], mins[8];
        unpack_scales_mins_k4(x[i].scales, scales, mins);

        int summ = 0;
        for (int j = 0; j < QK_K / 16; ++j) summ += y[i].bsums[j] * mins[j / 2];

        int32_t aux32[8] = {};
        const int8_t* q8 = y[i].qs;
        for (int j = 0; j < QK_K / 32; ++j) {
            const int32_t scale = scales[j];
            for (int k = 0; k < 32; k += 8)
                for (int l = 0; l < 8; ++l) aux32[l] += scale * (q8[32 * j + k + l] * a[32 * j + k + l]);
        }
        const float d = h2f(x[i].d) * y[i].d;
        for (int l = 0; l < 8; ++l) sums[l] += d * static_cast<float>(aux32[l]);
        const float dmin = h2f(x[i].dmin) * y[i].d;
        sumf -= dmin * static_cast<float>(summ);
    }
    for (int l = 0; l < 8; ++l) sumf += sums[l];
    return sumf;
}

float vec_dot_q6_K_q8_K(int64_t n, const void* vw, const void* vx) {
    const auto* x = static_cast<const block_q6_K*>(vw);
    const auto* y = static_cast<const block_q8_K*>(vx);
    const int64_t nb = n / QK_K;
    float sums[8] = {};
    int8_t a[QK_K];
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t* ql = x[i].ql;
        const uint8_t* qh = x[i].qh;
        for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32) {
            for (int l = 0; l < 32; ++l) {
                a[j + l + 0] = static_cast<int8_t>(((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32);
                a[j + l + 32] = static_cast<int8_t>(((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32);
                a[j + l + 64] = static_cast<int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                a[j + l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
            }
        }
        int32_t aux32[8] = {};
        const int8_t* q8 = y[i].qs;
        for (int j = 0; j < QK_K / 16; ++j) {
            const int scale = x[i].scales[j];
            for (int k = 0; k < 16; k += 8)
                for (int l = 0; l < 8; ++l) aux32[l] += scale * (q8[16 * j + k + l] * a[16 * j + k + l]);
        }
        const float d = h2f(x[i].d) * y[i].d;
        for (int l = 0; l < 8; ++l) sums[l] += d * static_cast<float>(aux32[l]);
    }
    float sumf = 0.0f;
    for (int l = 0; l < 8; ++l) sumf += sums[l];
    return sumf;
}

// ================================ matmul ===================================================================

template <VecDotFn kDot>
void matmul_rows(const void* w, size_t w_row_bytes, int64_t n, int64_t r0, int64_t r1, const void* x,
                 size_t x_row_bytes, int64_t B, float* y, int64_t ldy) {
    const auto* wb = static_cast<const uint8_t*>(w);
    const auto* xb = static_cast<const uint8_t*>(x);
    for (int64_t r = r0; r < r1; ++r) {
        const uint8_t* wr = wb + static_cast<size_t>(r) * w_row_bytes;
        for (int64_t b = 0; b < B; ++b) y[b * ldy + r] = kDot(n, wr, xb + static_cast<size_t>(b) * x_row_bytes);
    }
}

template <VecDotFn kDot>
void set_weight(KernelTable& t, DType d, DequantizeRowFn deq) {
    const auto i = static_cast<uint32_t>(d);
    t.dequantize_row[i] = deq;
    t.vec_dot[i] = kDot;
    t.matmul[i] = &matmul_rows<kDot>;
}

}  // namespace

void fill_quant_kernels(KernelTable& t) {
    auto q = [&](DType d, QuantizeRowFn f) { t.quantize_row[static_cast<uint32_t>(d)] = f; };
    q(DType::F32, quantize_f32);
    q(DType::F16, quantize_f16);
    q(DType::BF16, quantize_bf16);
    q(DType::Q8_0, quantize_q8_0);
    q(DType::Q8_1, quantize_q8_1);
    q(DType::Q8_K, quantize_q8_K);
    q(DType::Q4_0, quantize_q4_0);
    q(DType::Q4_1, quantize_q4_1);
    q(DType::Q5_0, quantize_q5_0);
    q(DType::Q5_1, quantize_q5_1);
    q(DType::Q4_K, quantize_q4_K);
    q(DType::Q5_K, quantize_q5_K);
    q(DType::Q6_K, quantize_q6_K);

    set_weight<vec_dot_f32>(t, DType::F32, dequantize_f32);
    set_weight<vec_dot_f16>(t, DType::F16, dequantize_f16);
    set_weight<vec_dot_bf16>(t, DType::BF16, dequantize_bf16);
    set_weight<vec_dot_q4_0_q8_0>(t, DType::Q4_0, dequantize_q4_0);
    set_weight<vec_dot_q4_1_q8_1>(t, DType::Q4_1, dequantize_q4_1);
    set_weight<vec_dot_q5_0_q8_0>(t, DType::Q5_0, dequantize_q5_0);
    set_weight<vec_dot_q5_1_q8_1>(t, DType::Q5_1, dequantize_q5_1);
    set_weight<vec_dot_q8_0_q8_0>(t, DType::Q8_0, dequantize_q8_0);
    set_weight<vec_dot_qk_q8_K<false>>(t, DType::Q4_K, dequantize_q4_K);
    set_weight<vec_dot_qk_q8_K<true>>(t, DType::Q5_K, dequantize_q5_K);
    set_weight<vec_dot_q6_K_q8_K>(t, DType::Q6_K, dequantize_q6_K);
    // Activation-only formats: dequantize is handy for tests; there is no vec_dot/matmul with them as weights.
    t.dequantize_row[static_cast<uint32_t>(DType::Q8_1)] = dequantize_q8_1;
    t.dequantize_row[static_cast<uint32_t>(DType::Q8_K)] = dequantize_q8_K;
}

}  // namespace strata::generic
