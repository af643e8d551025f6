// Scalar reference float ops: rmsnorm, rope, attention, swiglu, geglu, add.
#include <cmath>
#include <vector>

#include "kernels/generic/generic.h"

namespace strata::generic {

namespace {

void rmsnorm(float* out, const float* x, const float* w, int64_t n, float eps) {
    double ss = 0.0;  // double: the sum of squares of a 4096-wide state loses bits in float
    for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
    const float scale = 1.0f / std::sqrt(static_cast<float>(ss / n) + eps);
    for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * w[i];
}

void rope(float* x, int n_heads, int head_dim, int rot_dim, int pos, float theta_base, float freq_scale,
          const float* freq_factors, bool neox) {
    const int half = rot_dim / 2;
    const float theta_scale = std::pow(theta_base, -2.0f / static_cast<float>(rot_dim));
    float theta = static_cast<float>(pos);
    for (int i = 0; i < half; ++i) {
        const float ff = freq_factors ? freq_factors[i] : 1.0f;
        const float angle = freq_scale * (theta / ff);
        const float c = std::cos(angle), s = std::sin(angle);
        const int a = neox ? i : 2 * i;
        const int b = neox ? i + half : 2 * i + 1;
        for (int h = 0; h < n_heads; ++h) {
            float* xh = x + static_cast<int64_t>(h) * head_dim;
            const float x0 = xh[a], x1 = xh[b];
            xh[a] = x0 * c - x1 * s;
            xh[b] = x0 * s + x1 * c;
        }
        theta *= theta_scale;
    }
}

inline float widen(float x) { return x; }
inline float widen(f16_t x) { return f16_to_f32(x); }

// T: the cache's element type (float or f16_t), widened to float as it is read.
template <class T>
void attention(const float* q, const void* k_, size_t k_stride, const void* v_, size_t v_stride, int n_kv,
               int head_dim, float scale, float* out) {
    const T* k = static_cast<const T*>(k_);
    const T* v = static_cast<const T*>(v_);
    // Online softmax (one pass over the cache): running max m, running denominator l.
    float m = -INFINITY, l = 0.0f;
    for (int d = 0; d < head_dim; ++d) out[d] = 0.0f;
    for (int t = 0; t < n_kv; ++t) {
        const T* kt = k + t * k_stride;
        float s = 0.0f;
        for (int d = 0; d < head_dim; ++d) s += q[d] * widen(kt[d]);
        s *= scale;
        const float m_new = s > m ? s : m;
        const float corr = std::exp(m - m_new);  // exp(-inf) = 0 on the first step
        const float p = std::exp(s - m_new);
        l = l * corr + p;
        const T* vt = v + t * v_stride;
        for (int d = 0; d < head_dim; ++d) out[d] = out[d] * corr + p * widen(vt[d]);
        m = m_new;
    }
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    for (int d = 0; d < head_dim; ++d) out[d] *= inv;
}

void swiglu(float* hb, const float* hb2, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        const float x = hb[i];
        hb[i] = x / (1.0f + std::exp(-x)) * hb2[i];
    }
}

// GELU, tanh form: 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3), computed as x / (1 + e^(-2u)) (the same
// function: 1 + tanh(u) = 2 / (1 + e^(-2u))), which has no cancellation in 1 + tanh(u) for negative x and needs only
// an exponential, as the vector versions do.
void geglu(float* hb, const float* hb2, int64_t n) {
    constexpr float kSqrt2OverPi = 0.79788456080286535588f, kCoef = 0.044715f;
    for (int64_t i = 0; i < n; ++i) {
        const float x = hb[i];
        const float u = kSqrt2OverPi * x * (1.0f + kCoef * x * x);
        hb[i] = x / (1.0f + std::exp(-2.0f * u)) * hb2[i];
    }
}

void add(float* x, const float* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

}  // namespace

void fill_float_ops(KernelTable& t) {
    t.rmsnorm = rmsnorm;
    t.rope = rope;
    t.attention[static_cast<int>(KvType::F32)] = attention<float>;
    t.attention[static_cast<int>(KvType::F16)] = attention<f16_t>;
    t.swiglu = swiglu;
    t.geglu = geglu;
    t.add = add;
}

void fill_table(KernelTable& t) {
    t.isa = "scalar";
    fill_quant_kernels(t);
    fill_float_ops(t);
    fill_probes(t);
}

}  // namespace strata::generic
