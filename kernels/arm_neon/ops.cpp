// NEON float ops: rmsnorm, rope, swiglu, geglu, add, attention. Tested against the scalar
// ops within 1e-5 relative in tests/test_kernels_simd.cpp; rope and add give the reference's bits (the same
// operations, lane by lane, with -ffp-contract=off on this file).
#define STRATA_NEON_NS neon
#include <math.h>  // expf / sqrtf / cosf / sinf / powf: C functions

#include "kernels/arm_neon/neon_common.h"

namespace strata::neon {
namespace {

// e^x on 4 lanes: x = k ln2 + r, |r| <= ln2/2 (ln2 split in two for an exact reduction), e^r by Cephes' degree-6
// expf polynomial (~1 ulp), scaled by 2^k through the exponent bits. +inf above 88.72 (where expf overflows), 0
// below -87.34 (expf's subnormal results there are flushed: callers add them to 1 or to a sum that holds a 1).
STRATA_INLINE float32x4_t exp4(float32x4_t x) {
    const float32x4_t hi = vdupq_n_f32(88.7228394f), lo = vdupq_n_f32(-87.3365448f);
    const float32x4_t xc = vminq_f32(vmaxq_f32(x, lo), hi);
    const float32x4_t k = vrndnq_f32(vmulq_n_f32(xc, 1.44269504088896341f));
    float32x4_t r = vfmsq_f32(xc, k, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, k, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
    p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
    p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
    p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), p, vmulq_f32(r, r));
    // 2^k for k in [-126, 127]; k = 128 only at the clamp, where the overflow select below takes over.
    const int32x4_t ki = vminq_s32(vcvtq_s32_f32(k), vdupq_n_s32(127));
    const float32x4_t scale = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(ki, vdupq_n_s32(127)), 23));
    float32x4_t res = vmulq_f32(p, scale);
    res = vbslq_f32(vcgtq_f32(x, hi), vdupq_n_f32(INFINITY), res);
    return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(res), vcltq_f32(x, lo)));
}

void rmsnorm(float* out, const float* x, const float* w, int64_t n, float eps) {
    // Sum of squares in double like the reference (products of floats are exact in double).
    float64x2_t s0 = vdupq_n_f64(0.0), s1 = vdupq_n_f64(0.0);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float32x4_t v = vld1q_f32(x + i);
        const float64x2_t a = vcvt_f64_f32(vget_low_f32(v)), b = vcvt_high_f64_f32(v);
        s0 = vfmaq_f64(s0, a, a);
        s1 = vfmaq_f64(s1, b, b);
    }
    double ss = vaddvq_f64(vaddq_f64(s0, s1));
    for (; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
    const float scale = 1.0f / sqrtf(static_cast<float>(ss / n) + eps);
    i = 0;
    for (; i + 4 <= n; i += 4)  // (x * scale) * w: the reference's two roundings
        vst1q_f32(out + i, vmulq_f32(vmulq_n_f32(vld1q_f32(x + i), scale), vld1q_f32(w + i)));
    for (; i < n; ++i) out[i] = x[i] * scale * w[i];
}

// The reference's angles (cos / sin of the same floats, theta built by the same repeated multiplication), a chunk
// of pairs at a time, then every head rotated with vectors of 4 pairs.
void rope(float* x, int n_heads, int head_dim, int rot_dim, int pos, float theta_base, float freq_scale,
          const float* freq_factors, bool neox) {
    constexpr int kChunk = 64;
    alignas(16) float cs[kChunk], sn[kChunk];
    const int half = rot_dim / 2;
    const float theta_scale = powf(theta_base, -2.0f / static_cast<float>(rot_dim));
    float theta = static_cast<float>(pos);
    for (int i0 = 0; i0 < half; i0 += kChunk) {
        const int np = half - i0 < kChunk ? half - i0 : kChunk;
        for (int i = 0; i < np; ++i) {
            const float ff = freq_factors ? freq_factors[i0 + i] : 1.0f;
            const float angle = freq_scale * (theta / ff);
            cs[i] = cosf(angle);
            sn[i] = sinf(angle);
            theta *= theta_scale;
        }
        for (int h = 0; h < n_heads; ++h) {
            float* xh = x + static_cast<int64_t>(h) * head_dim;
            int i = 0;
            for (; i + 4 <= np; i += 4) {
                const float32x4_t c = vld1q_f32(cs + i), s = vld1q_f32(sn + i);
                float32x4_t x0, x1;
                if (neox) {
                    x0 = vld1q_f32(xh + i0 + i);
                    x1 = vld1q_f32(xh + i0 + i + half);
                } else {
                    const float32x4x2_t v = vld2q_f32(xh + 2 * (i0 + i));
                    x0 = v.val[0];
                    x1 = v.val[1];
                }
                const float32x4_t y0 = vsubq_f32(vmulq_f32(x0, c), vmulq_f32(x1, s));
                const float32x4_t y1 = vaddq_f32(vmulq_f32(x0, s), vmulq_f32(x1, c));
                if (neox) {
                    vst1q_f32(xh + i0 + i, y0);
                    vst1q_f32(xh + i0 + i + half, y1);
                } else {
                    vst2q_f32(xh + 2 * (i0 + i), float32x4x2_t{{y0, y1}});
                }
            }
            for (; i < np; ++i) {
                const int a = neox ? i0 + i : 2 * (i0 + i);
                const int b = neox ? i0 + i + half : 2 * (i0 + i) + 1;
                const float x0 = xh[a], x1 = xh[b];
                xh[a] = x0 * cs[i] - x1 * sn[i];
                xh[b] = x0 * sn[i] + x1 * cs[i];
            }
        }
    }
}

// Gated FFN activations, both x * sigmoid(z) * hb2, as the reference computes them: swiglu z = x (SiLU), geglu
// z = 2u, u = sqrt(2/pi) x (1 + 0.044715 x^2) (GELU's tanh form: 0.5 x (1 + tanh u) = x / (1 + e^(-2u))).
template <bool kGelu>
void gated(float* hb, const float* hb2, int64_t n) {
    constexpr float kSqrt2OverPi = 0.79788456080286535588f, kCoef = 0.044715f;
    int64_t i = 0;
    const float32x4_t one = vdupq_n_f32(1.0f), m2k = vdupq_n_f32(-2.0f * kSqrt2OverPi), c = vdupq_n_f32(kCoef);
    for (; i + 4 <= n; i += 4) {
        const float32x4_t x = vld1q_f32(hb + i);
        const float32x4_t mz = kGelu ? vmulq_f32(vmulq_f32(m2k, x), vfmaq_f32(one, vmulq_f32(c, x), x)) : vnegq_f32(x);
        const float32x4_t e = exp4(mz);
        vst1q_f32(hb + i, vmulq_f32(vdivq_f32(x, vaddq_f32(one, e)), vld1q_f32(hb2 + i)));
    }
    for (; i < n; ++i) {
        const float x = hb[i];
        const float mz = kGelu ? -2.0f * (kSqrt2OverPi * x * (1.0f + kCoef * x * x)) : -x;
        hb[i] = x / (1.0f + expf(mz)) * hb2[i];
    }
}

void add(float* x, const float* y, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(x + i, vaddq_f32(vld1q_f32(x + i), vld1q_f32(y + i)));
    for (; i < n; ++i) x[i] += y[i];
}

// A cache row's elements widened to floats (F32 or F16 cache).
STRATA_INLINE float32x4_t load4(const float* p) { return vld1q_f32(p); }
STRATA_INLINE float32x4_t load4(const f16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
STRATA_INLINE float load1(const float* p) { return *p; }
STRATA_INLINE float load1(const f16_t* p) { return neon_h2f(*p); }

template <class T>
STRATA_INLINE float dot_f32(const float* a, const T* b, int n) {
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = vdupq_n_f32(0.0f);
    int d = 0;
    for (; d + 8 <= n; d += 8) {
        s0 = vfmaq_f32(s0, vld1q_f32(a + d), load4(b + d));
        s1 = vfmaq_f32(s1, vld1q_f32(a + d + 4), load4(b + d + 4));
    }
    for (; d + 4 <= n; d += 4) s0 = vfmaq_f32(s0, vld1q_f32(a + d), load4(b + d));
    float s = vaddvq_f32(vaddq_f32(s0, s1));
    for (; d < n; ++d) s += a[d] * load1(b + d);
    return s;
}

// Online softmax over the cache in chunks of kChunk positions, as the AVX2 kernel: the chunk's scores (vector dots
// over head_dim), one rescale of the running output per chunk, then out += sum_t p_t v_t with vectors over head_dim.
// T: the cache's element type (float or f16_t).
template <class T>
void attention(const float* q, const void* k_, size_t k_stride, const void* v_, size_t v_stride, int n_kv,
               int head_dim, float scale, float* out) {
    const T* k = static_cast<const T*>(k_);
    const T* v = static_cast<const T*>(v_);
    constexpr int kChunk = 32;
    alignas(16) float p[kChunk];
    float m = -INFINITY, l = 0.0f;
    for (int d = 0; d < head_dim; ++d) out[d] = 0.0f;
    for (int t0 = 0; t0 < n_kv; t0 += kChunk) {
        const int nt = n_kv - t0 < kChunk ? n_kv - t0 : kChunk;
        float cmax = -INFINITY;
        for (int t = 0; t < nt; ++t) {
            p[t] = dot_f32(q, k + static_cast<size_t>(t0 + t) * k_stride, head_dim) * scale;
            cmax = p[t] > cmax ? p[t] : cmax;
        }
        const float m_new = cmax > m ? cmax : m;
        const float corr = expf(m - m_new);  // 0 on the first chunk (m = -inf)
        const float32x4_t mv = vdupq_n_f32(m_new);
        float32x4_t lsum = vdupq_n_f32(0.0f);
        int t = 0;
        for (; t + 4 <= nt; t += 4) {
            const float32x4_t e = exp4(vsubq_f32(vld1q_f32(p + t), mv));
            vst1q_f32(p + t, e);
            lsum = vaddq_f32(lsum, e);
        }
        float ls = vaddvq_f32(lsum);
        for (; t < nt; ++t) {
            p[t] = expf(p[t] - m_new);
            ls += p[t];
        }
        l = l * corr + ls;
        m = m_new;
        int d = 0;
        for (; d + 4 <= head_dim; d += 4) {
            float32x4_t o = vmulq_n_f32(vld1q_f32(out + d), corr);
            for (int tt = 0; tt < nt; ++tt)
                o = vfmaq_n_f32(o, load4(v + static_cast<size_t>(t0 + tt) * v_stride + d), p[tt]);
            vst1q_f32(out + d, o);
        }
        for (; d < head_dim; ++d) {
            float o = out[d] * corr;
            for (int tt = 0; tt < nt; ++tt) o += p[tt] * load1(v + static_cast<size_t>(t0 + tt) * v_stride + d);
            out[d] = o;
        }
    }
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    int d = 0;
    for (; d + 4 <= head_dim; d += 4) vst1q_f32(out + d, vmulq_n_f32(vld1q_f32(out + d), inv));
    for (; d < head_dim; ++d) out[d] *= inv;
}

}  // namespace

void fill_float_ops(KernelTable& t) {
    t.rmsnorm = rmsnorm;
    t.rope = rope;
    t.swiglu = gated<false>;
    t.geglu = gated<true>;
    t.add = add;
    t.attention[static_cast<int>(KvType::F32)] = attention<float>;
    t.attention[static_cast<int>(KvType::F16)] = attention<f16_t>;
}

}  // namespace strata::neon
