// AVX-512 kernel table (this directory's files are compiled with -mavx512f/bw/dq/vl/vnni). The table starts as a
// copy of the AVX2 one; this file overrides the kernels that gain from 512-bit vectors and VNNI (vpdpbusd,
// vpdpwssd): every matmul. Quantizers and float ops stay AVX2's. The dispatcher (kernels.cpp) only picks this table
// on a CPU with AVX512-VNNI (Ice Lake / Zen 4 and later); AVX-512 CPUs without it (Skylake-SP) get the AVX2 table.
#define STRATA_X86_NS avx512
#include "kernels/x86_avx2/x86_float.h"
#include "kernels/x86_avx2/x86_quant_k.h"
#include "kernels/x86_avx2/x86_quant_legacy.h"

namespace strata::avx512 {

namespace {

template <Legacy Lg>
void set_legacy(KernelTable& t, DType d) {
    // 4 rows x 4 tokens: 16 accumulators + 4 weight vectors + 4 row scales within AVX-512's 32 registers.
    t.matmul[static_cast<uint32_t>(d)] = &matmul_legacy<V512, Lg, 4, 4>;
    t.vec_dot[static_cast<uint32_t>(d)] = &vec_dot_legacy<V512, Lg>;
}

template <KQuant Kq>
void set_k(KernelTable& t, DType d) {
    t.matmul[static_cast<uint32_t>(d)] = &matmul_k<VK512, Kq, 4, 4>;
    t.vec_dot[static_cast<uint32_t>(d)] = &vec_dot_k<VK512, Kq>;
}

template <FloatW W>
void set_float(KernelTable& t, DType d) {
    t.matmul[static_cast<uint32_t>(d)] = &matmul_float<VF512, W, 4, 6>;
    t.vec_dot[static_cast<uint32_t>(d)] = &vec_dot_float<VF512, W>;
}

}  // namespace

bool fill_table(KernelTable& t) {
    t.isa = "avx512";
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
    return true;
}

}  // namespace strata::avx512
