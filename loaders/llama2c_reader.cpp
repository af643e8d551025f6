// llama2.c legacy checkpoints (karpathy/llama2.c run.c format) and their tokenizer.bin, presented as the
// GGUF `llama` architecture would present them, so one binding path in core/ serves both formats.
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>

#include "loaders/model_file.h"

namespace strata {

namespace {

MetaValue int_value(int64_t v) {
    MetaValue m;
    m.type = GGUFType::I64;
    m.i = v;
    m.u = static_cast<uint64_t>(v);
    return m;
}
MetaValue float_value(double v) {
    MetaValue m;
    m.type = GGUFType::F32;
    m.f = v;
    return m;
}
MetaValue bool_value(bool v) {
    MetaValue m;
    m.type = GGUFType::BOOL;
    m.u = v;
    m.i = v;
    return m;
}

}  // namespace

ModelFile read_llama2c(std::shared_ptr<const MappedFile> ckpt, std::shared_ptr<const MappedFile> tok) {
    ModelFile mf;
    mf.path = ckpt->path();
    mf.format = "llama2.c";
    mf.file_bytes = ckpt->size() + tok->size();
    const std::string& path = mf.path;

    if (ckpt->size() < 28) throw std::runtime_error(path + ": too small for a llama2.c header");
    int32_t h[7];
    std::memcpy(h, ckpt->data(), sizeof h);
    const int64_t dim = h[0], hidden = h[1], n_layers = h[2], n_heads = h[3], n_kv_heads = h[4];
    const bool shared_classifier = h[5] > 0;
    const int64_t vocab = h[5] < 0 ? -static_cast<int64_t>(h[5]) : h[5];
    const int64_t seq_len = h[6];
    for (int k = 0; k < 7; ++k)
        if (h[k] == 0) throw std::runtime_error(path + ": llama2.c header has a zero field");
    if (dim <= 0 || hidden <= 0 || n_layers <= 0 || n_heads <= 0 || n_kv_heads <= 0 || seq_len <= 0 ||
        dim % n_heads != 0 || n_heads % n_kv_heads != 0 || (dim / n_heads) % 2 != 0)
        throw std::runtime_error(path + ": inconsistent llama2.c header (dim " + std::to_string(dim) + ", heads " +
                                 std::to_string(n_heads) + ", kv heads " + std::to_string(n_kv_heads) + ")");
    const int64_t head_dim = dim / n_heads, kv_dim = head_dim * n_kv_heads;

    // Layout: embedding, then each per-layer tensor for all layers in turn, then final norm, RoPE tables,
    // and the classifier when it is not shared.
    size_t offset = 28;
    auto add = [&](const std::string& name, int64_t cols, int64_t rows) {
        const uint64_t bytes = static_cast<uint64_t>(cols) * static_cast<uint64_t>(rows) * 4;
        if (offset > ckpt->size() || bytes > ckpt->size() - offset)
            throw std::runtime_error(path + ": file is truncated: tensor '" + name + "' needs " + std::to_string(bytes) +
                                     " bytes at offset " + std::to_string(offset) + ", file has " +
                                     std::to_string(ckpt->size()));
        WeightView w;
        w.name = name;
        w.dtype = DType::F32;
        w.n_dims = rows == 1 ? 1 : 2;
        w.ne[0] = cols;
        w.ne[1] = rows;
        w.row_bytes = static_cast<size_t>(cols) * 4;
        w.nbytes = static_cast<size_t>(bytes);
        w.data = ckpt->data() + offset;
        offset += static_cast<size_t>(bytes);
        mf.tensors.push_back(std::move(w));
    };
    auto per_layer = [&](const char* suffix, int64_t cols, int64_t rows) {
        for (int64_t l = 0; l < n_layers; ++l) add("blk." + std::to_string(l) + "." + suffix, cols, rows);
    };
    add("token_embd.weight", dim, vocab);
    per_layer("attn_norm.weight", dim, 1);
    per_layer("attn_q.weight", dim, dim);
    per_layer("attn_k.weight", dim, kv_dim);
    per_layer("attn_v.weight", dim, kv_dim);
    per_layer("attn_output.weight", dim, dim);
    per_layer("ffn_norm.weight", dim, 1);
    per_layer("ffn_gate.weight", dim, hidden);
    per_layer("ffn_down.weight", hidden, dim);
    per_layer("ffn_up.weight", dim, hidden);
    add("output_norm.weight", dim, 1);
    // freq_cis_real and freq_cis_imag: (seq_len, head_dim/2) floats each, unused (RoPE is computed).
    const uint64_t rope_bytes = static_cast<uint64_t>(seq_len) * static_cast<uint64_t>(head_dim) * 4;
    if (offset > ckpt->size() || rope_bytes > ckpt->size() - offset)
        throw std::runtime_error(path + ": file is truncated in its RoPE tables");
    offset += static_cast<size_t>(rope_bytes);
    if (!shared_classifier) add("output.weight", dim, vocab);
    if (offset != ckpt->size())
        throw std::runtime_error(path + ": file has " + std::to_string(ckpt->size() - offset) +
                                 " bytes after the last tensor: not a llama2.c checkpoint of this header");

    Metadata& m = mf.meta;
    MetaValue arch;
    arch.type = GGUFType::STRING;
    arch.str = m.own("llama");
    m.set("general.architecture", arch);
    MetaValue name = arch;
    name.str = m.own(std::filesystem::path(path).stem().string());
    m.set("general.name", name);
    m.set("llama.block_count", int_value(n_layers));
    m.set("llama.embedding_length", int_value(dim));
    m.set("llama.feed_forward_length", int_value(hidden));
    m.set("llama.attention.head_count", int_value(n_heads));
    m.set("llama.attention.head_count_kv", int_value(n_kv_heads));
    m.set("llama.context_length", int_value(seq_len));
    m.set("llama.rope.dimension_count", int_value(head_dim));
    m.set("llama.rope.freq_base", float_value(10000.0));
    m.set("llama.attention.layer_norm_rms_epsilon", float_value(1e-5));
    m.set("llama.vocab_size", int_value(vocab));

    // tokenizer.bin: int32 max_token_length, then per token: f32 score, i32 length, bytes.
    const uint8_t* p = tok->data();
    const size_t n = tok->size();
    size_t pos = 4;
    if (n < 4) throw std::runtime_error(tok->path() + ": too small for a llama2.c tokenizer");
    MetaValue tokens, scores, types;
    tokens.type = scores.type = types.type = GGUFType::ARRAY;
    tokens.elem_type = GGUFType::STRING;
    scores.elem_type = GGUFType::F32;
    types.elem_type = GGUFType::I32;
    tokens.count = scores.count = types.count = static_cast<uint64_t>(vocab);
    std::string score_bytes, type_bytes;
    for (int64_t id = 0; id < vocab; ++id) {
        if (n - pos < 8)
            throw std::runtime_error(tok->path() + ": truncated at token " + std::to_string(id) + " of " +
                                     std::to_string(vocab) + " (does it belong to this checkpoint?)");
        float score;
        int32_t len;
        std::memcpy(&score, p + pos, 4);
        std::memcpy(&len, p + pos + 4, 4);
        pos += 8;
        if (len < 0 || static_cast<size_t>(len) > n - pos)
            throw std::runtime_error(tok->path() + ": token " + std::to_string(id) + " has an invalid length " +
                                     std::to_string(len));
        std::string text(reinterpret_cast<const char*>(p + pos), static_cast<size_t>(len));
        pos += static_cast<size_t>(len);
        // llama2.c writes BOS/EOS as "\n<s>\n" / "\n</s>\n" and spaces as spaces; GGUF's llama vocab uses
        // "<s>" / "</s>" and U+2581 for spaces.
        int32_t type = 1;  // normal
        if (text == "\n<s>\n" || text == "\n</s>\n") {
            text = text.substr(1, text.size() - 2);
            type = 3;  // control
        } else if (text == "<unk>") {
            type = 2;
        } else if (text.size() == 6 && text.rfind("<0x", 0) == 0 && text[5] == '>') {
            type = 6;  // byte
        } else {
            std::string t;
            for (char c : text) t += c == ' ' ? std::string("\xe2\x96\x81") : std::string(1, c);
            text = std::move(t);
        }
        tokens.strs.push_back(m.own(std::move(text)));
        score_bytes.append(reinterpret_cast<const char*>(&score), 4);
        type_bytes.append(reinterpret_cast<const char*>(&type), 4);
    }
    if (pos != n)
        throw std::runtime_error(tok->path() + ": tokenizer has more than the checkpoint's " + std::to_string(vocab) +
                                 " tokens (" + std::to_string(n - pos) +
                                 " bytes left over): it belongs to another model (pass --tokenizer FILE)");
    scores.raw = reinterpret_cast<const uint8_t*>(m.own(std::move(score_bytes)).data());
    types.raw = reinterpret_cast<const uint8_t*>(m.own(std::move(type_bytes)).data());
    m.set("tokenizer.ggml.tokens", std::move(tokens));
    m.set("tokenizer.ggml.scores", std::move(scores));
    m.set("tokenizer.ggml.token_type", std::move(types));
    MetaValue model = arch;
    model.str = m.own("llama");
    m.set("tokenizer.ggml.model", model);
    m.set("tokenizer.ggml.bos_token_id", int_value(1));
    m.set("tokenizer.ggml.eos_token_id", int_value(2));
    m.set("tokenizer.ggml.unknown_token_id", int_value(0));
    m.set("tokenizer.ggml.add_bos_token", bool_value(true));

    mf.mappings.push_back(std::move(ckpt));
    mf.mappings.push_back(std::move(tok));
    mf.index_tensors();
    return mf;
}

}  // namespace strata
