// AVX512 kernels (ISA flags on this folder's files only).
#include "kernels/kernels.h"

namespace strata::avx512 {
bool fill_table(KernelTable& t) { return false; }  // none yet: the scalar table serves
}  // namespace strata::avx512
