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

// The weight types of a synthetic model: every matrix in one type ("Q4_0", "Q4_K", "F16", ...), or the mix
// llama.cpp's quantizer makes of a K-quant "_M" file type ("Q4_K_M", "Q5_K_M": the output matrix, or the
// embedding when it is tied, in Q6_K; attn_v and ffn_down in Q6_K in the first and last eighth of the layers and
// every third layer between; every other matrix in the base type), so real files' mixes can be benchmarked.
struct SynthTypes {
    std::string name;  // as given
    DType base{};
    bool k_m_mix = false;
};
SynthTypes synth_types(const std::string& name);  // throws naming the choices

// Writes a `llama` GGUF of the shape with its matrices in `types` (norms F32), random values from `seed`,
// and a placeholder byte-fallback SentencePiece vocabulary of the shape's size.
void write_synthetic_model(const std::string& path, const SynthShape& shape, const SynthTypes& types,
                           uint64_t seed = 1);

}  // namespace strata
