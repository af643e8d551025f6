// Synthetic random-weight models with real shapes, for benchmarks: speed does not depend on the values,
// so anyone can measure an 8B-shaped model without downloading one. Never a stand-in for correctness.
#pragma once
#include <string>
#include <vector>

#include "kernels/dtype.h"

namespace strata {

struct SynthShape {
    std::string name;  // "llama3.2-1b"
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab;
    int n_ctx;
    float rope_theta;
    bool tied_output;
};

const std::vector<SynthShape>& synth_shapes();  // llama3.2-1b, llama3-8b, smollm2-135m, stories260k
const SynthShape& synth_shape(const std::string& name);  // throws naming the choices

// Writes a `llama` GGUF of the shape with every matrix in `type` (norms F32), random values from `seed`,
// and a placeholder byte-fallback SentencePiece vocabulary of the shape's size.
void write_synthetic_model(const std::string& path, const SynthShape& shape, DType type, uint64_t seed = 1);

}  // namespace strata
