// Tiny models of every architecture with a real vocabulary and random weights, written with the project's GGUF
// writer: the seeds of the GGUF harness (make_seeds) and the model the C API harness drives (fast to run).
#pragma once
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "loaders/gguf_writer.h"
#include "loaders/model_file.h"

namespace strata::fuzz {

// Random tensor bytes of a type; every 2-byte half scale of a quantized block is a small finite value.
inline std::vector<uint8_t> tensor_bytes(DType t, int64_t cols, int64_t rows, std::mt19937& rng) {
    const size_t n = dtype_row_bytes(t, cols) * static_cast<size_t>(rows);
    std::vector<uint8_t> b(n);
    if (t == DType::F32) {
        std::normal_distribution<float> d(0.f, 0.5f);
        for (size_t k = 0; k < n; k += 4) {
            const float v = d(rng);
            std::memcpy(&b[k], &v, 4);
        }
        return b;
    }
    for (auto& x : b) x = static_cast<uint8_t>(rng());
    if (t == DType::F16 || t == DType::BF16) {
        for (size_t k = 0; k < n; k += 2) b[k + 1] = (t == DType::F16 ? 0x30 : 0x3e) | (b[k + 1] & 0x80);
        return b;
    }
    const DTypeTraits& tr = dtype_traits(t);
    for (size_t blk = 0; blk < n; blk += tr.block_bytes) {  // d (and dmin) at the block start; Q6_K: at its end
        if (t == DType::Q6_K) b[blk + tr.block_bytes - 1] = 0x20;
        else {
            b[blk + 1] = 0x20;
            if (t == DType::Q4_1 || t == DType::Q5_1 || t == DType::Q4_K || t == DType::Q5_K) b[blk + 3] = 0x20;
        }
    }
    return b;
}
inline std::vector<uint8_t> ones(int64_t n) {
    std::vector<uint8_t> b(static_cast<size_t>(n) * 4);
    const float one = 1.f;
    for (int64_t k = 0; k < n; ++k) std::memcpy(&b[static_cast<size_t>(k) * 4], &one, 4);
    return b;
}

// Copies the tokenizer.* keys of src, arrays cut to max_vocab entries (merges to max_vocab / 2).
inline void copy_vocab(GGUFWriter& w, const Metadata& src, size_t max_vocab) {
    for (const std::string& key : src.keys()) {
        if (key.rfind("tokenizer.", 0) != 0) continue;
        MetaValue v = *src.find(key);
        if (v.type == GGUFType::ARRAY) {
            const size_t cap = key == "tokenizer.ggml.merges" ? max_vocab / 2 : max_vocab;
            if (v.count > cap) v.count = cap;
            if (v.elem_type == GGUFType::STRING) v.strs.resize(static_cast<size_t>(v.count));
        }
        if (key == "tokenizer.ggml.bos_token_id" || key == "tokenizer.ggml.eos_token_id" ||
            key == "tokenizer.ggml.eot_token_id" || key == "tokenizer.ggml.padding_token_id" ||
            key == "tokenizer.ggml.unknown_token_id") {
            if (v.u >= max_vocab) continue;
        }
        w.add_value(key, v);
    }
}

struct Tiny {
    std::string arch;
    DType type;
    int dim, hidden, n_layers, n_heads, n_kv_heads;
    bool tied;
};

// A tiny model of an architecture with the given vocabulary (a real one), random weights.
inline std::vector<uint8_t> tiny_model(const Tiny& s, const Metadata& vocab, size_t n_vocab, uint32_t seed,
                                       uint32_t alignment = 32) {
    std::mt19937 rng(seed);
    GGUFWriter w(alignment);
    const std::string a = s.arch + ".";
    w.add_string("general.architecture", s.arch);
    w.add_string("general.name", "fuzz seed " + s.arch + " " + dtype_name(s.type));
    w.add_u32(a + "block_count", static_cast<uint32_t>(s.n_layers));
    w.add_u32(a + "embedding_length", static_cast<uint32_t>(s.dim));
    w.add_u32(a + "feed_forward_length", static_cast<uint32_t>(s.hidden));
    w.add_u32(a + "attention.head_count", static_cast<uint32_t>(s.n_heads));
    w.add_u32(a + "attention.head_count_kv", static_cast<uint32_t>(s.n_kv_heads));
    w.add_u32(a + "context_length", 64);
    w.add_f32(a + "rope.freq_base", 10000.f);
    w.add_f32(a + "attention.layer_norm_rms_epsilon", 1e-6f);
    if (s.arch == "gemma3") {
        w.add_u32(a + "attention.sliding_window", 4);
        w.add_u32(a + "attention.key_length", static_cast<uint32_t>(s.dim / s.n_heads));
        w.add_u32(a + "attention.value_length", static_cast<uint32_t>(s.dim / s.n_heads));
    }
    copy_vocab(w, vocab, n_vocab);
    const int64_t hd = s.dim / s.n_heads, q = hd * s.n_heads, kv = hd * s.n_kv_heads, V = static_cast<int64_t>(n_vocab);
    auto mat = [&](const std::string& name, int64_t cols, int64_t rows) {
        w.add_tensor_copy(name, s.type, {cols, rows}, tensor_bytes(s.type, cols, rows, rng));
    };
    auto vec = [&](const std::string& name, int64_t n) { w.add_tensor_copy(name, DType::F32, {n}, ones(n)); };
    mat("token_embd.weight", s.dim, V);
    vec("output_norm.weight", s.dim);
    if (!s.tied) mat("output.weight", s.dim, V);
    for (int l = 0; l < s.n_layers; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        vec(p + "attn_norm.weight", s.dim);
        mat(p + "attn_q.weight", s.dim, q);
        mat(p + "attn_k.weight", s.dim, kv);
        mat(p + "attn_v.weight", s.dim, kv);
        mat(p + "attn_output.weight", q, s.dim);
        if (s.arch == "qwen2")
            for (auto [n, len] : {std::pair{"attn_q.bias", q}, {"attn_k.bias", kv}, {"attn_v.bias", kv}}) vec(p + n, len);
        if (s.arch == "qwen3" || s.arch == "gemma3") {
            vec(p + "attn_q_norm.weight", hd);
            vec(p + "attn_k_norm.weight", hd);
        }
        if (s.arch == "gemma3") {
            vec(p + "post_attention_norm.weight", s.dim);
            vec(p + "post_ffw_norm.weight", s.dim);
        }
        vec(p + "ffn_norm.weight", s.dim);
        mat(p + "ffn_gate.weight", s.dim, s.hidden);
        mat(p + "ffn_up.weight", s.dim, s.hidden);
        mat(p + "ffn_down.weight", s.hidden, s.dim);
    }
    return w.bytes();
}

}  // namespace strata::fuzz
