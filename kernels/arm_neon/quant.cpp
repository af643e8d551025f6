// The quantized matmuls of the base NEON table (no dotprod: int8 products by vmull_s8 + vpadalq_s16), for
// Armv8.0 cores such as the Cortex-A53 / A72 (Raspberry Pi 3 and 4). See neon_quant.h.
#define STRATA_NEON_NS neon
#include "kernels/arm_neon/neon_quant.h"

#if STRATA_NEON_DOTPROD
#error "quant.cpp is the table for CPUs without dotprod: compile it without +dotprod"
#endif

namespace strata::neon {
void fill_quant_matmuls(KernelTable& t) { fill_quant_matmuls_here(t); }
}  // namespace strata::neon
