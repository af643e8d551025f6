#include "core/analysis/synth.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>

#include "kernels/kernels.h"
#include "loaders/gguf_writer.h"

namespace strata {

const std::vector<SynthShape>& synth_shapes() {
    static const std::vector<SynthShape> shapes = {
        {"llama3.2-1b", 2048, 8192, 16, 32, 8, 128256, 131072, 500000.f, true},
        {"llama3-8b", 4096, 14336, 32, 32, 8, 128256, 8192, 500000.f, false},
        {"smollm2-135m", 576, 1536, 30, 9, 3, 49152, 8192, 100000.f, true},
        {"stories260k", 64, 172, 5, 8, 4, 512, 512, 10000.f, true},
    };
    return shapes;
}

const SynthShape& synth_shape(const std::string& name) {
    std::string names;
    for (const SynthShape& s : synth_shapes()) {
        if (s.name == name) return s;
        names += (names.empty() ? "" : ", ") + s.name;
    }
    throw std::invalid_argument("unknown model shape '" + name + "' (choose from: " + names + ")");
}

namespace {

// rows x cols random values ~ N(0, 1/sqrt(cols)) quantized into `type`, row by row, in parallel.
std::vector<uint8_t> random_matrix(DType type, int64_t cols, int64_t rows, uint64_t seed) {
    const KernelTable& K = kernels();
    const QuantizeRowFn quantize = K.quantize_row[static_cast<int>(type)];
    if (!quantize) throw std::invalid_argument("no quantizer for " + dtype_name(type) + " to write synthetic weights");
    const size_t rb = dtype_row_bytes(type, cols);
    std::vector<uint8_t> out(rb * static_cast<size_t>(rows));
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, rows, 64), [&](const tbb::blocked_range<int64_t>& r) {
        std::mt19937_64 rng(seed * 1000003u + static_cast<uint64_t>(r.begin()));
        std::normal_distribution<float> nd(0.f, 1.f / std::sqrt(static_cast<float>(cols)));
        std::vector<float> row(static_cast<size_t>(cols));
        for (int64_t i = r.begin(); i < r.end(); ++i) {
            for (float& v : row) v = nd(rng);
            quantize(row.data(), out.data() + rb * static_cast<size_t>(i), cols);
        }
    });
    return out;
}

std::vector<uint8_t> ones(int64_t n) {
    std::vector<float> v(static_cast<size_t>(n), 1.0f);
    std::vector<uint8_t> b(v.size() * 4);
    std::memcpy(b.data(), v.data(), b.size());
    return b;
}

// llama.cpp's use_more_bits (src/llama-quant.cpp): the layers whose attn_v and ffn_down an "_M" mix keeps in Q6_K.
bool more_bits_layer(int layer, int n_layers) {
    return layer < n_layers / 8 || layer >= 7 * n_layers / 8 || (layer - n_layers / 8) % 3 == 2;
}

}  // namespace

SynthTypes synth_types(const std::string& name) {
    std::string names;
    for (uint32_t id = 0; id < kNumDTypes; ++id) {
        const DTypeTraits& t = dtype_traits(id);
        if (!t.name || !t.supported) continue;
        names += std::string(names.empty() ? "" : " ") + t.name;
        if (name == t.name) return {name, static_cast<DType>(id), false};
    }
    if (name == "Q4_K_M") return {name, DType::Q4_K, true};
    if (name == "Q5_K_M") return {name, DType::Q5_K, true};
    throw std::invalid_argument("unknown or unsupported weight type '" + name + "' (choose from: " + names +
                                " Q4_K_M Q5_K_M)");
}

void write_synthetic_model(const std::string& path, const SynthShape& s, const SynthTypes& quant, uint64_t seed) {
    const DType type = quant.base;
    // The type of a layer's attn_v and ffn_down: the base type, or Q6_K where an "_M" mix keeps more bits.
    auto v_down_type = [&](int layer) {
        return quant.k_m_mix && more_bits_layer(layer, s.n_layers) ? DType::Q6_K : type;
    };
    const DType output_type = quant.k_m_mix ? DType::Q6_K : type;
    GGUFWriter w;
    w.add_string("general.architecture", "llama");
    w.add_string("general.name", "synthetic " + s.name + " " + quant.name + " (random weights)");
    w.add_u32("llama.block_count", static_cast<uint32_t>(s.n_layers));
    w.add_u32("llama.embedding_length", static_cast<uint32_t>(s.dim));
    w.add_u32("llama.feed_forward_length", static_cast<uint32_t>(s.hidden_dim));
    w.add_u32("llama.attention.head_count", static_cast<uint32_t>(s.n_heads));
    w.add_u32("llama.attention.head_count_kv", static_cast<uint32_t>(s.n_kv_heads));
    w.add_u32("llama.context_length", static_cast<uint32_t>(s.n_ctx));
    w.add_u32("llama.rope.dimension_count", static_cast<uint32_t>(s.dim / s.n_heads));
    w.add_f32("llama.rope.freq_base", s.rope_theta);
    w.add_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
    w.add_u32("llama.vocab_size", static_cast<uint32_t>(s.vocab));
    // Placeholder SentencePiece vocabulary: unk, bos, eos, 256 byte tokens, then filler pieces.
    std::vector<std::string> tokens;
    std::vector<int32_t> types;
    tokens.reserve(static_cast<size_t>(s.vocab));
    tokens.push_back("<unk>");
    tokens.push_back("<s>");
    tokens.push_back("</s>");
    types = {2, 3, 3};
    for (int b = 0; b < 256 && static_cast<int>(tokens.size()) < s.vocab; ++b) {
        char buf[16];  // "<0xFF>": 7 bytes; room for what -Wformat-truncation assumes an int may print
        std::snprintf(buf, sizeof buf, "<0x%02X>", b);
        tokens.push_back(buf);
        types.push_back(6);
    }
    while (static_cast<int>(tokens.size()) < s.vocab) {
        tokens.push_back("\xe2\x96\x81t" + std::to_string(tokens.size()));
        types.push_back(1);
    }
    std::vector<std::string_view> views(tokens.begin(), tokens.end());
    w.add_string("tokenizer.ggml.model", "llama");
    w.add_string_array("tokenizer.ggml.tokens", views);
    w.add_f32_array("tokenizer.ggml.scores", std::vector<float>(tokens.size(), 0.f));
    w.add_i32_array("tokenizer.ggml.token_type", types);
    w.add_u32("tokenizer.ggml.bos_token_id", 1);
    w.add_u32("tokenizer.ggml.eos_token_id", 2);
    w.add_u32("tokenizer.ggml.unknown_token_id", 0);

    const int64_t hd = s.dim / s.n_heads, q_dim = hd * s.n_heads, kv_dim = hd * s.n_kv_heads;
    uint64_t k = seed;
    const DType embd_type = s.tied_output ? output_type : type;
    w.add_tensor_copy("token_embd.weight", embd_type, {s.dim, s.vocab}, random_matrix(embd_type, s.dim, s.vocab, ++k));
    w.add_tensor_copy("output_norm.weight", DType::F32, {s.dim}, ones(s.dim));
    if (!s.tied_output)
        w.add_tensor_copy("output.weight", output_type, {s.dim, s.vocab}, random_matrix(output_type, s.dim, s.vocab, ++k));
    for (int l = 0; l < s.n_layers; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        w.add_tensor_copy(p + "attn_norm.weight", DType::F32, {s.dim}, ones(s.dim));
        w.add_tensor_copy(p + "attn_q.weight", type, {s.dim, q_dim}, random_matrix(type, s.dim, q_dim, ++k));
        w.add_tensor_copy(p + "attn_k.weight", type, {s.dim, kv_dim}, random_matrix(type, s.dim, kv_dim, ++k));
        const DType tv = v_down_type(l);
        w.add_tensor_copy(p + "attn_v.weight", tv, {s.dim, kv_dim}, random_matrix(tv, s.dim, kv_dim, ++k));
        w.add_tensor_copy(p + "attn_output.weight", type, {q_dim, s.dim}, random_matrix(type, q_dim, s.dim, ++k));
        w.add_tensor_copy(p + "ffn_norm.weight", DType::F32, {s.dim}, ones(s.dim));
        w.add_tensor_copy(p + "ffn_gate.weight", type, {s.dim, s.hidden_dim}, random_matrix(type, s.dim, s.hidden_dim, ++k));
        w.add_tensor_copy(p + "ffn_up.weight", type, {s.dim, s.hidden_dim}, random_matrix(type, s.dim, s.hidden_dim, ++k));
        const DType td = v_down_type(l);
        w.add_tensor_copy(p + "ffn_down.weight", td, {s.hidden_dim, s.dim}, random_matrix(td, s.hidden_dim, s.dim, ++k));
    }
    w.write(path);
}

}  // namespace strata
