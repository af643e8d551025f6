// AVX-512 attention: a few query heads that share one KV head (GQA) against the same cache rows in one pass, so each
// K and V row loaded serves every query of the group (the AVX2 kernel reads them once per query head).
//
// Per query the arithmetic is fixed whatever the grouping (how many queries share a pass, which tile a key falls
// in): a score is one 16-lane accumulator of FMAs over head_dim in order, reduced by _mm512_reduce_add_ps; the online
// softmax runs over chunks of 32 positions from the first one; a value lane is out * corr followed by one FMA per
// position in order. So a query gives the same bits alone or in a group, and the forward pass may group heads as it
// likes (batch invariance: the same token gives the same bits at any batch size). Needs head_dim % 16 == 0; other
// head sizes keep the per-head AVX2 kernel.
#define STRATA_X86_NS avx512
#include <math.h>  // expf: the C function (see x86_common.h)

#include "kernels/x86_avx2/x86_common.h"

namespace strata::avx512 {
namespace {

// e^x on 16 lanes, as the AVX2 exp256 (kernels/x86_avx2/ops.cpp): Cephes' expf polynomial after an exact
// reduction; +inf above 88.72, 0 below -87.34.
STRATA_INLINE __m512 exp512(__m512 x) {
    const __m512 hi = _mm512_set1_ps(88.7228394f), lo = _mm512_set1_ps(-87.3365448f);
    const __m512 xc = _mm512_min_ps(_mm512_max_ps(x, lo), hi);
    const __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693359375f), xc);
    r = _mm512_fnmadd_ps(k, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    const __m512 r2 = _mm512_mul_ps(r, r);
    p = _mm512_fmadd_ps(p, r2, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    const __m512i ki = _mm512_cvtps_epi32(k);
    const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_min_epi32(ki, _mm512_set1_epi32(127)),
                                                         _mm512_set1_epi32(127)), 23);
    __m512 res = _mm512_mul_ps(p, _mm512_castsi512_ps(e));
    res = _mm512_mask_mov_ps(res, _mm512_cmp_ps_mask(x, hi, _CMP_GT_OQ), _mm512_set1_ps(INFINITY));
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, lo, _CMP_NLT_UQ), res);
}

constexpr int kChunk = 32;  // positions per online-softmax step

// 16 elements of a cache row widened to floats (F32 or F16 cache): every later operation is the F32 kernel's.
STRATA_INLINE __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
STRATA_INLINE __m512 load16(const f16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// The lane sums of 16 vectors a[m][k] at once: lane 4k + m of the result is the sum of a[m][k]'s lanes, added in
// the pairs _mm512_reduce_add_ps adds them (lane i + lane i+8, then i + i+4, then i + i+2, then i + i+1), so each
// sum has the bits it has alone (15 shuffle-and-add steps for 16 sums instead of 16 reductions).
STRATA_INLINE __m512 reduce_add_16(const __m512 (&a)[4][4]) {
    auto halves = [](__m512 x, __m512 y) {  // lanes 0-7: x's i + i+8; lanes 8-15: y's
        return _mm512_add_ps(_mm512_shuffle_f32x4(x, y, _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_f32x4(x, y, _MM_SHUFFLE(3, 2, 3, 2)));
    };
    auto quarters = [](__m512 x, __m512 y) {  // quarter k: vector k's i + i+4 (x holds vectors 0, 1; y 2, 3)
        return _mm512_add_ps(_mm512_shuffle_f32x4(x, y, _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f32x4(x, y, _MM_SHUFFLE(3, 1, 3, 1)));
    };
    __m512 v[4];
    STRATA_UNROLL for (int m = 0; m < 4; ++m) v[m] = quarters(halves(a[m][0], a[m][1]), halves(a[m][2], a[m][3]));
    // Within each quarter: i + i+2 (two vectors' pairs side by side), then i + i+1 (four vectors' sums).
    const __m512 w0 = _mm512_add_ps(_mm512_shuffle_ps(v[0], v[1], _MM_SHUFFLE(1, 0, 1, 0)),
                                    _mm512_shuffle_ps(v[0], v[1], _MM_SHUFFLE(3, 2, 3, 2)));
    const __m512 w1 = _mm512_add_ps(_mm512_shuffle_ps(v[2], v[3], _MM_SHUFFLE(1, 0, 1, 0)),
                                    _mm512_shuffle_ps(v[2], v[3], _MM_SHUFFLE(3, 2, 3, 2)));
    return _mm512_add_ps(_mm512_shuffle_ps(w0, w1, _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_ps(w0, w1, _MM_SHUFFLE(3, 1, 3, 1)));
}

// Scores of NQ queries against NK consecutive keys: p[i][t + j] = (q_i . k_{t+j}) * scale.
template <int NQ, int NK, class T>
STRATA_INLINE void scores(const float* q, size_t q_stride, const T* k, size_t k_stride, int hd, float scale,
                          float (*p)[kChunk], int t) {
    __m512 acc[NQ][NK];
    STRATA_UNROLL for (int i = 0; i < NQ; ++i) STRATA_UNROLL for (int j = 0; j < NK; ++j) acc[i][j] = _mm512_setzero_ps();
    for (int d = 0; d < hd; d += 16) {
        __m512 kv[NK];
        STRATA_UNROLL for (int j = 0; j < NK; ++j) kv[j] = load16(k + j * k_stride + d);
        STRATA_UNROLL for (int i = 0; i < NQ; ++i) {
            const __m512 qv = _mm512_loadu_ps(q + i * q_stride + d);
            STRATA_UNROLL for (int j = 0; j < NK; ++j) acc[i][j] = _mm512_fmadd_ps(qv, kv[j], acc[i][j]);
        }
    }
    if constexpr (NK == 4 && NQ >= 2) {  // 4 keys of 2-4 queries: all the sums in one pass
        __m512 a[4][4];                    // a[key][query], the missing queries zero
        STRATA_UNROLL for (int j = 0; j < 4; ++j) STRATA_UNROLL for (int i = 0; i < 4; ++i)
            a[j][i] = i < NQ ? acc[i < NQ ? i : 0][j] : _mm512_setzero_ps();
        alignas(64) float s[16];  // s[4i + j]: query i, key j
        _mm512_store_ps(s, _mm512_mul_ps(reduce_add_16(a), _mm512_set1_ps(scale)));
        STRATA_UNROLL for (int i = 0; i < NQ; ++i) STRATA_UNROLL for (int j = 0; j < 4; ++j) p[i][t + j] = s[4 * i + j];
    } else {
        STRATA_UNROLL for (int i = 0; i < NQ; ++i) STRATA_UNROLL for (int j = 0; j < NK; ++j)
            p[i][t + j] = _mm512_reduce_add_ps(acc[i][j]) * scale;
    }
}

// out_i[d .. d + 16 DB) = out_i * corr_i + sum_t p_i[t] v_t over the chunk's nt positions.
template <int NQ, int DB, class T>
STRATA_INLINE void accumulate(const float (*p)[kChunk], const float* corr, const T* v, size_t v_stride, int nt,
                              float* out, size_t out_stride, int d) {
    __m512 o[NQ][DB];
    STRATA_UNROLL for (int i = 0; i < NQ; ++i) {
        const __m512 c = _mm512_set1_ps(corr[i]);
        STRATA_UNROLL for (int b = 0; b < DB; ++b) o[i][b] = _mm512_mul_ps(_mm512_loadu_ps(out + i * out_stride + d + 16 * b), c);
    }
    for (int t = 0; t < nt; ++t) {
        __m512 vv[DB];
        STRATA_UNROLL for (int b = 0; b < DB; ++b) vv[b] = load16(v + t * v_stride + d + 16 * b);
        STRATA_UNROLL for (int i = 0; i < NQ; ++i) {
            const __m512 pv = _mm512_set1_ps(p[i][t]);
            STRATA_UNROLL for (int b = 0; b < DB; ++b) o[i][b] = _mm512_fmadd_ps(pv, vv[b], o[i][b]);
        }
    }
    STRATA_UNROLL for (int i = 0; i < NQ; ++i) STRATA_UNROLL for (int b = 0; b < DB; ++b)
        _mm512_storeu_ps(out + i * out_stride + d + 16 * b, o[i][b]);
}

template <int NQ, class T>
void attend(const float* q, size_t q_stride, const T* k, size_t k_stride, const T* v, size_t v_stride,
            int n_kv, int hd, float scale, float* out, size_t out_stride) {
    alignas(64) float p[NQ][kChunk];
    float m[NQ], l[NQ], corr[NQ];
    for (int i = 0; i < NQ; ++i) {
        m[i] = -INFINITY, l[i] = 0.0f;
        for (int d = 0; d < hd; ++d) out[i * out_stride + d] = 0.0f;
    }
    for (int t0 = 0; t0 < n_kv; t0 += kChunk) {
        const int nt = n_kv - t0 < kChunk ? n_kv - t0 : kChunk;
        const T* kc = k + static_cast<size_t>(t0) * k_stride;
        int t = 0;
        for (; t + 4 <= nt; t += 4) scores<NQ, 4>(q, q_stride, kc + t * k_stride, k_stride, hd, scale, p, t);
        for (; t < nt; ++t) scores<NQ, 1>(q, q_stride, kc + t * k_stride, k_stride, hd, scale, p, t);
        for (int i = 0; i < NQ; ++i) {
            float cmax = -INFINITY;
            for (int u = 0; u < nt; ++u) cmax = p[i][u] > cmax ? p[i][u] : cmax;
            const float m_new = cmax > m[i] ? cmax : m[i];
            corr[i] = expf(m[i] - m_new);  // 0 on the first chunk (m = -inf)
            const __m512 mv = _mm512_set1_ps(m_new);
            __m512 ls = _mm512_setzero_ps();
            for (int u = 0; u < nt; u += 16) {
                const __mmask16 live = nt - u >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (nt - u)) - 1);
                const __m512 e = _mm512_maskz_mov_ps(live, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(live, p[i] + u), mv)));
                _mm512_store_ps(p[i] + u, e);
                ls = _mm512_add_ps(ls, e);
            }
            l[i] = l[i] * corr[i] + _mm512_reduce_add_ps(ls);
            m[i] = m_new;
        }
        const T* vc = v + static_cast<size_t>(t0) * v_stride;
        int d = 0;
        for (; d + 64 <= hd; d += 64) accumulate<NQ, 4>(p, corr, vc, v_stride, nt, out, out_stride, d);
        for (; d < hd; d += 16) accumulate<NQ, 1>(p, corr, vc, v_stride, nt, out, out_stride, d);
    }
    for (int i = 0; i < NQ; ++i) {
        const __m512 iv = _mm512_set1_ps(l[i] > 0.0f ? 1.0f / l[i] : 0.0f);
        for (int d = 0; d < hd; d += 16)
            _mm512_storeu_ps(out + i * out_stride + d, _mm512_mul_ps(_mm512_loadu_ps(out + i * out_stride + d), iv));
    }
}

// T: the cache's element type (float or f16_t).
template <class T>
void attention_group(const float* q, size_t q_stride, int nq, const void* k_, size_t k_stride, const void* v_,
                     size_t v_stride, int n_kv, int head_dim, float scale, float* out, size_t out_stride) {
    const T* k = static_cast<const T*>(k_);
    const T* v = static_cast<const T*>(v_);
    for (int i = 0; i < nq; i += 4) {
        const float* qi = q + i * q_stride;
        float* oi = out + i * out_stride;
        switch (nq - i < 4 ? nq - i : 4) {
            case 1: attend<1, T>(qi, q_stride, k, k_stride, v, v_stride, n_kv, head_dim, scale, oi, out_stride); break;
            case 2: attend<2, T>(qi, q_stride, k, k_stride, v, v_stride, n_kv, head_dim, scale, oi, out_stride); break;
            case 3: attend<3, T>(qi, q_stride, k, k_stride, v, v_stride, n_kv, head_dim, scale, oi, out_stride); break;
            default: attend<4, T>(qi, q_stride, k, k_stride, v, v_stride, n_kv, head_dim, scale, oi, out_stride); break;
        }
    }
}

}  // namespace

void fill_attention(KernelTable& t) {
    t.attention_group[static_cast<int>(KvType::F32)] = attention_group<float>;
    t.attention_group[static_cast<int>(KvType::F16)] = attention_group<f16_t>;
    t.attention_group_dims = 16;
}

}  // namespace strata::avx512
