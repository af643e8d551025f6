// The quantized matmuls with sdot (Armv8.2 dotprod: Cortex-A55/A76 and later, Apple M, Graviton 2+), chosen at run
// time from HWCAP_ASIMDDP (neon.cpp). This file alone is compiled with +dotprod (CMakeLists.txt). See neon_quant.h.
#define STRATA_NEON_NS neon_dotprod
#include "kernels/arm_neon/neon_quant.h"

#if !STRATA_NEON_DOTPROD
#error "quant_dotprod.cpp needs +dotprod (-march=armv8.2-a+dotprod) on this file"
#endif

namespace strata::neon_dotprod {
void fill_quant_matmuls(KernelTable& t) { fill_quant_matmuls_here(t); }
}  // namespace strata::neon_dotprod
