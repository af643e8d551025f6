// AVX2 float ops: rmsnorm, swiglu, geglu, add, attention (rope stays scalar: it is a small part of a step and its angles
// must match ggml's repeated-multiplication construction exactly). Tested against the scalar ops within 1e-5
// relative in tests/test_kernels_simd.cpp.
#define STRATA_X86_NS avx2
#include <math.h>  // expf / sqrtf: C functions, not <cmath>'s inline overloads (see x86_common.h)

#include "kernels/x86_avx2/x86_common.h"

namespace strata::avx2 {
namespace {

// e^x on 8 lanes: x = k ln2 + r with |r| <= ln2/2 (ln2 split in two for an exact reduction), e^r by a degree-6
// polynomial (Cephes' expf coefficients, ~1 ulp), then scaled by 2^k through the exponent bits. Returns +inf above
// 88.72 (where expf overflows) and 0 below -87.33 (expf's subnormal results there are flushed: callers add them to
// 1 or to a sum that holds a 1).
STRATA_INLINE __m256 exp256(__m256 x) {
    const __m256 hi = _mm256_set1_ps(88.7228394f), lo = _mm256_set1_ps(-87.3365448f);
    const __m256 xc = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
    const __m256 k = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693359375f), xc);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    const __m256 r2 = _mm256_mul_ps(r, r);
    p = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    // 2^k for k in [-126, 128): k = 128 only at the clamp, handled by the overflow blend below.
    const __m256i ki = _mm256_cvtps_epi32(k);
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_min_epi32(ki, _mm256_set1_epi32(127)),
                                                         _mm256_set1_epi32(127)), 23);
    __m256 res = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
    res = _mm256_blendv_ps(res, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(x, hi, _CMP_GT_OQ));
    res = _mm256_andnot_ps(_mm256_cmp_ps(x, lo, _CMP_LT_OQ), res);
    return res;
}

void rmsnorm(float* out, const float* x, const float* w, int64_t n, float eps) {
    // Sum of squares in double like the reference (products of floats are exact in double).
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        const __m256d a = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), b = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
        s0 = _mm256_fmadd_pd(a, a, s0);
        s1 = _mm256_fmadd_pd(b, b, s1);
    }
    alignas(32) double part[4];
    _mm256_store_pd(part, _mm256_add_pd(s0, s1));
    double ss = (part[0] + part[1]) + (part[2] + part[3]);
    for (; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
    const float scale = 1.0f / sqrtf(static_cast<float>(ss / n) + eps);
    const __m256 sv = _mm256_set1_ps(scale);
    i = 0;
    for (; i + 8 <= n; i += 8)  // (x * scale) * w: the reference's two roundings
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), sv), _mm256_loadu_ps(w + i)));
    for (; i < n; ++i) out[i] = x[i] * scale * w[i];
}

// Gated FFN activations, both x * sigmoid(z) * hb2, as the reference computes them: swiglu z = x (SiLU), geglu
// z = 2u, u = sqrt(2/pi) x (1 + 0.044715 x^2) (GELU's tanh form: 0.5 x (1 + tanh u) = x / (1 + e^(-2u))).
template <bool kGelu>
void gated(float* hb, const float* hb2, int64_t n) {
    constexpr float kSqrt2OverPi = 0.79788456080286535588f, kCoef = 0.044715f;
    int64_t i = 0;
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    const __m256 m2k = _mm256_set1_ps(-2.0f * kSqrt2OverPi), c = _mm256_set1_ps(kCoef);
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(hb + i);
        // geglu: -2u = (-2 sqrt(2/pi) x) (1 + c x^2); the reference rounds sqrt(2/pi) x first: same product to an ulp
        const __m256 mz = kGelu ? _mm256_mul_ps(_mm256_mul_ps(m2k, x), _mm256_fmadd_ps(_mm256_mul_ps(c, x), x, one))
                                : _mm256_xor_ps(x, sign);
        const __m256 e = exp256(mz);
        _mm256_storeu_ps(hb + i, _mm256_mul_ps(_mm256_div_ps(x, _mm256_add_ps(one, e)), _mm256_loadu_ps(hb2 + i)));
    }
    for (; i < n; ++i) {
        const float x = hb[i];
        const float mz = kGelu ? -2.0f * (kSqrt2OverPi * x * (1.0f + kCoef * x * x)) : -x;
        hb[i] = x / (1.0f + expf(mz)) * hb2[i];
    }
}

void add(float* x, const float* y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_add_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; ++i) x[i] += y[i];
}

// A cache row's elements widened to floats (F32 or F16 cache).
STRATA_INLINE __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
STRATA_INLINE __m256 load8(const f16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
STRATA_INLINE float load1(const float* p) { return *p; }
STRATA_INLINE float load1(const f16_t* p) { return x86_h2f(*p); }

template <class T>
STRATA_INLINE float dot_f32(const float* a, const T* b, int n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int d = 0;
    for (; d + 16 <= n; d += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + d), load8(b + d), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + d + 8), load8(b + d + 8), s1);
    }
    for (; d + 8 <= n; d += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + d), load8(b + d), s0);
    float s = hsum(_mm256_add_ps(s0, s1));
    for (; d < n; ++d) s += a[d] * load1(b + d);
    return s;
}

// Online softmax over the cache in chunks of kChunk positions: the chunk's scores (vector dots over head_dim), one
// rescale of the running output per chunk, then out += sum_t p_t v_t with vectors over head_dim.
// T: the cache's element type (float or f16_t).
template <class T>
void attention(const float* q, const void* k_, size_t k_stride, const void* v_, size_t v_stride, int n_kv,
               int head_dim, float scale, float* out) {
    const T* k = static_cast<const T*>(k_);
    const T* v = static_cast<const T*>(v_);
    constexpr int kChunk = 32;
    alignas(32) float p[kChunk];
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
        const __m256 mv = _mm256_set1_ps(m_new);
        int t = 0;
        __m256 lsum = _mm256_setzero_ps();
        for (; t + 8 <= nt; t += 8) {
            const __m256 e = exp256(_mm256_sub_ps(_mm256_load_ps(p + t), mv));
            _mm256_store_ps(p + t, e);
            lsum = _mm256_add_ps(lsum, e);
        }
        float ls = hsum(lsum);
        for (; t < nt; ++t) {
            p[t] = expf(p[t] - m_new);
            ls += p[t];
        }
        l = l * corr + ls;
        m = m_new;
        const __m256 cv = _mm256_set1_ps(corr);
        int d = 0;
        for (; d + 8 <= head_dim; d += 8) {
            __m256 o = _mm256_mul_ps(_mm256_loadu_ps(out + d), cv);
            for (int tt = 0; tt < nt; ++tt)
                o = _mm256_fmadd_ps(_mm256_set1_ps(p[tt]), load8(v + static_cast<size_t>(t0 + tt) * v_stride + d), o);
            _mm256_storeu_ps(out + d, o);
        }
        for (; d < head_dim; ++d) {
            float o = out[d] * corr;
            for (int tt = 0; tt < nt; ++tt) o += p[tt] * load1(v + static_cast<size_t>(t0 + tt) * v_stride + d);
            out[d] = o;
        }
    }
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    const __m256 iv = _mm256_set1_ps(inv);
    int d = 0;
    for (; d + 8 <= head_dim; d += 8) _mm256_storeu_ps(out + d, _mm256_mul_ps(_mm256_loadu_ps(out + d), iv));
    for (; d < head_dim; ++d) out[d] *= inv;
}

}  // namespace

void fill_float_ops(KernelTable& t) {
    t.rmsnorm = rmsnorm;
    t.swiglu = gated<false>;
    t.geglu = gated<true>;
    t.add = add;
    t.attention[static_cast<int>(KvType::F32)] = attention<float>;
    t.attention[static_cast<int>(KvType::F16)] = attention<f16_t>;
}

}  // namespace strata::avx2
