// NEON kernel table (AArch64). What is here: bit-exact activation quantizers (quantize.cpp), the quantized matmuls
// for every weight type in two builds of one source (neon_quant.h: quant.cpp for any Armv8-A core, quant_dotprod.cpp
// with sdot), F32/F16/BF16 matmuls (float_matmul.cpp) and the float ops (ops.cpp).
//
// The dotprod matmuls are chosen at run time from the kernel's HWCAP_ASIMDDP bit, so one binary runs on a
// Cortex-A53 and uses sdot on a Cortex-A76 or Graviton. STRATA_NEON_DOTPROD=0 in the environment keeps the
// vmull/vpadal matmuls on a dotprod CPU (to test that path on the hardware at hand). Both give the same bits: the
// integer sums are exact and reduced the same way before any float operation.
#include <sys/auxv.h>

#include <cstdlib>
#include <cstring>

#include "kernels/kernels.h"

#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)  // asm/hwcap.h on AArch64 Linux
#endif

namespace strata {
namespace neon {
void fill_quantize(KernelTable& t);       // quantize.cpp
void fill_float_matmuls(KernelTable& t);  // float_matmul.cpp
void fill_float_ops(KernelTable& t);      // ops.cpp
void fill_quant_matmuls(KernelTable& t);  // quant.cpp
}  // namespace neon
namespace neon_dotprod {
void fill_quant_matmuls(KernelTable& t);  // quant_dotprod.cpp
}

namespace neon {

namespace {
bool use_dotprod() {
    if (const char* e = std::getenv("STRATA_NEON_DOTPROD"); e && std::strcmp(e, "0") == 0) return false;
    return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
}
}  // namespace

bool fill_table(KernelTable& t) {
    fill_quantize(t);
    fill_float_matmuls(t);
    fill_float_ops(t);
    if (use_dotprod()) {
        t.isa = "neon+dotprod";
        neon_dotprod::fill_quant_matmuls(t);
    } else {
        t.isa = "neon";
        fill_quant_matmuls(t);
    }
    return true;
}

}  // namespace neon
}  // namespace strata
