// Scalar reference kernels: the ground truth every ISA variant is tested against.
#pragma once
#include "kernels/kernels.h"

namespace strata::generic {
void fill_table(KernelTable& t);        // everything below
void fill_quant_kernels(KernelTable& t);  // quantize_row / dequantize_row / vec_dot / matmul for every dtype
void fill_float_ops(KernelTable& t);      // rmsnorm, rope, attention, swiglu, add
void fill_probes(KernelTable& t);         // read_stream, int8_dot_peak (probes.cpp)
}  // namespace strata::generic
