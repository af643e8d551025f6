// The GGUF harness's seed inputs, made on demand with the project's GGUF writer rather than committed (model
// files stay out of the repository): tiny models of every architecture and several weight types with the real
// stories260K and gpt-2 vocabularies, one with general.alignment 1 (the fuzz finding: tensors at odd offsets),
// header-only copies of SmolLM2 and Gemma 3 where the model cache has them, and the first 16 KiB of the two
// llama.cpp vocabulary files. Used by make_seeds (the fuzzers' seed folder) and test_fuzz_regressions.cpp.
#pragma once
#include <cstdint>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "fuzz_common.h"
#include "tiny_model.h"

namespace strata::fuzz {

inline std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// find_model, or an error naming the file.
inline std::string need_model(const std::string& file) {
    const std::string p = find_model(file);
    if (p.empty()) throw std::runtime_error("missing " + file);
    return p;
}

// A real model's metadata (vocabulary cut to 512) and all its tensor infos, without tensor data: the header a
// truncated download would leave.
inline std::vector<uint8_t> header_only(const std::string& path) {
    const ModelFile mf = load_model_file(path);
    GGUFWriter w(mf.alignment);
    w.copy_metadata(mf.meta, [](const std::string& k) { return k.rfind("tokenizer.", 0) != 0; });
    copy_vocab(w, mf.meta, 512);
    std::vector<int64_t> ne;
    for (const WeightView& t : mf.tensors) {
        ne.assign(t.ne, t.ne + t.n_dims);
        w.add_tensor(t.name, t.dtype, ne, t.data, t.nbytes);
    }
    std::vector<uint8_t> bytes = w.bytes();
    const ModelFile back = read_gguf(MappedFile::from_bytes(bytes));
    bytes.resize(back.data_offset);
    return bytes;
}

constexpr const char* kAlignment1Seed = "tiny-llama-q5_0-align1.gguf";

using SeedSink = std::function<void(const std::string& name, const std::vector<uint8_t>& bytes)>;

inline void gguf_model_seeds(const SeedSink& put) {
    const ModelFile spm = load_model_file(need_model("stories260K.gguf"));
    const ModelFile bpe = load_model_file(need_model("ggml-vocab-gpt-2.gguf"));
    const std::vector<std::pair<std::string, Tiny>> tinies = {
        {"llama-f32", {"llama", DType::F32, 8, 16, 2, 2, 1, true}},
        {"llama-q8_0", {"llama", DType::Q8_0, 32, 64, 1, 4, 2, false}},
        {"llama-q4_0", {"llama", DType::Q4_0, 32, 32, 1, 2, 2, true}},
        {"llama-q4_1", {"llama", DType::Q4_1, 32, 32, 1, 2, 1, true}},
        {"llama-q5_0", {"llama", DType::Q5_0, 32, 32, 1, 2, 1, true}},
        {"llama-q5_1", {"llama", DType::Q5_1, 32, 32, 1, 2, 1, true}},
        {"llama-f16", {"llama", DType::F16, 16, 32, 1, 2, 1, true}},
        {"llama-bf16", {"llama", DType::BF16, 16, 32, 1, 2, 1, true}},
        {"gemma3-f32", {"gemma3", DType::F32, 8, 16, 2, 2, 1, true}},
        {"qwen2-f32", {"qwen2", DType::F32, 8, 16, 1, 2, 1, false}},
        {"qwen3-f32", {"qwen3", DType::F32, 8, 16, 1, 2, 2, true}},
    };
    uint32_t seed = 1;
    for (const auto& [name, t] : tinies) {
        const bool use_bpe = t.arch == "qwen2" || t.arch == "qwen3";
        put("tiny-" + name + ".gguf", tiny_model(t, use_bpe ? bpe.meta : spm.meta, use_bpe ? 300 : 512, seed++));
    }
    // general.alignment 1 (the format allows any power of two): tensors at odd offsets
    put(kAlignment1Seed, tiny_model({"llama", DType::Q5_0, 32, 32, 1, 2, 1, false}, spm.meta, 300, seed++, 1));
    // K-quant models are 256 wide at least (over 200 KiB here): the header-only Gemma 3 copy carries those types.
    for (const char* f : {"SmolLM2-135M-Instruct.Q4_1.gguf", "gemma-3-270m-q4_k_m.gguf"}) {
        const std::string p = find_model(f);
        if (!p.empty()) put(std::string("header-") + f, header_only(p));
    }
    // The real llama.cpp vocabulary files, cut to their first 16 KiB (they are GGUFs without tensors).
    for (const char* f : {"ggml-vocab-llama-spm.gguf", "ggml-vocab-gpt-2.gguf"}) {
        const std::string head = slurp(need_model(f)).substr(0, 16384);
        put(std::string("head16k-") + f, std::vector<uint8_t>(head.begin(), head.end()));
    }
}

}  // namespace strata::fuzz
