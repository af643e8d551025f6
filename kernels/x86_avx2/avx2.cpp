// AVX2 kernel table (this directory's files are compiled with -mavx2 -mfma -mf16c -mbmi2).
// What is here: bit-exact activation quantizers (quantize.cpp), the quantized matmuls for every weight type
// (x86_quant_legacy.h, x86_quant_k.h), F32/F16/BF16 matmuls (x86_float.h) and the float ops (ops.cpp).
#define STRATA_X86_NS avx2
#include "kernels/x86_avx2/x86_float.h"
#include "kernels/x86_avx2/x86_probes.h"
#include "kernels/x86_avx2/x86_quant_k.h"
#include "kernels/x86_avx2/x86_quant_legacy.h"

namespace strata::avx2 {

void fill_quantize(KernelTable& t);    // quantize.cpp
void fill_float_ops(KernelTable& t);  // ops.cpp

namespace {

template <Legacy Lg>
void set_legacy(KernelTable& t, DType d) {
    // 4 rows x 2 tokens: 8 accumulators + 4 weight vectors + temporaries fit AVX2's 16 registers.
    t.matmul[static_cast<uint32_t>(d)] = &matmul_legacy<V256, Lg, 4, 2>;
    t.vec_dot[static_cast<uint32_t>(d)] = &vec_dot_legacy<V256, Lg>;
}

template <KQuant Kq>
void set_k(KernelTable& t, DType d) {
    // 2 rows x 4 tokens: 8 int32 accumulators + 2 weight vectors + temporaries in 16 registers.
    t.matmul[static_cast<uint32_t>(d)] = &matmul_k<VK256, Kq, 2, 4>;
    t.vec_dot[static_cast<uint32_t>(d)] = &vec_dot_k<VK256, Kq>;
}

template <FloatW W>
void set_float(KernelTable& t, DType d) {
    // 4 rows x 3 tokens: 12 accumulators + 4 weight vectors (activations as memory operands).
    t.matmul[static_cast<uint32_t>(d)] = &matmul_float<VF256, W, 4, 3>;
    t.vec_dot[static_cast<uint32_t>(d)] = &vec_dot_float<VF256, W>;
}

}  // namespace

bool fill_table(KernelTable& t) {
    t.isa = "avx2";
    fill_quantize(t);
    fill_float_ops(t);
    set_float<FloatW::F32>(t, DType::F32);
    set_float<FloatW::F16>(t, DType::F16);
    set_float<FloatW::BF16>(t, DType::BF16);
    set_legacy<Legacy::Q4_0>(t, DType::Q4_0);
    set_legacy<Legacy::Q4_1>(t, DType::Q4_1);
    set_legacy<Legacy::Q5_0>(t, DType::Q5_0);
    set_legacy<Legacy::Q5_1>(t, DType::Q5_1);
    set_legacy<Legacy::Q8_0>(t, DType::Q8_0);
    set_k<KQuant::Q4_K>(t, DType::Q4_K);
    set_k<KQuant::Q5_K>(t, DType::Q5_K);
    set_k<KQuant::Q6_K>(t, DType::Q6_K);
    fill_probes(t);
    return true;
}

}  // namespace strata::avx2
