// Writes the seed corpora of the fuzz harnesses into OUT/<harness>/ from the real files: tiny models of every
// architecture and several weight types built with the project's GGUF writer (vocabularies taken from the real
// stories260K and gpt-2 files), header-only copies of SmolLM2 and Gemma 3 (metadata with the vocabulary cut to
// 512 entries, every tensor info, no tensor data), a tiny llama2.c checkpoint with the real tok512.bin, text
// from llama.cpp's tokenizer test inputs, the real chat templates, layer specs and mergekit configs.
// Usage: fuzz_make_seeds OUT   (tests/fuzz/README says when to rerun it)
//        fuzz_make_seeds --vocab-only MODEL OUT   (MODEL's metadata without tensors: a real vocabulary that a
//        fuzzing machine without the model cache can load; the tokenizer harnesses read STRATA_FUZZ_MODELS)
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "fuzz_common.h"
#include "gguf_seeds.h"
#include "tiny_model.h"
#include "core/analysis/logits_file.h"
#include "loaders/gguf_writer.h"
#include "loaders/model_file.h"

using namespace strata;
namespace fs = std::filesystem;
using fuzz::copy_vocab;
using fuzz::Tiny;
using fuzz::tiny_model;

namespace {

fs::path g_out;

void put(const std::string& harness, const std::string& name, const std::string& bytes) {
    const fs::path dir = g_out / harness;
    fs::create_directories(dir);
    std::ofstream(dir / name, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}
void put(const std::string& harness, const std::string& name, const std::vector<uint8_t>& b) {
    put(harness, name, std::string(b.begin(), b.end()));
}
using fuzz::slurp;
std::string need(const std::string& file) { return fuzz::need_model(file); }

void gguf_seeds() {
    fuzz::gguf_model_seeds([](const std::string& name, const std::vector<uint8_t>& b) { put("gguf_model", name, b); });
}

void llama2c_seeds() {
    const std::string tok = slurp(need("tok512.bin"));
    std::mt19937 rng(7);
    std::normal_distribution<float> d(0.f, 0.5f);
    struct H {
        const char* name;
        int32_t dim, hidden, layers, heads, kv_heads, vocab, seq;
    };
    for (const H& h : {H{"shared", 8, 16, 1, 2, 2, 512, 8}, H{"unshared-gqa", 8, 16, 2, 2, 1, -512, 4}}) {
        const int64_t V = h.vocab < 0 ? -h.vocab : h.vocab, hd = h.dim / h.heads, kv = hd * h.kv_heads;
        int64_t floats = V * h.dim + h.layers * (h.dim + h.dim * h.dim + 2 * h.dim * kv + h.dim * h.dim + h.dim +
                                                 3 * h.dim * h.hidden) +
                         h.dim + h.seq * hd;
        if (h.vocab < 0) floats += V * h.dim;
        std::string ckpt(reinterpret_cast<const char*>(&h.dim), 28);
        for (int64_t k = 0; k < floats; ++k) {
            const float v = d(rng);
            ckpt.append(reinterpret_cast<const char*>(&v), 4);
        }
        const uint32_t len = static_cast<uint32_t>(ckpt.size());
        put("llama2c", std::string("tiny-") + h.name, std::string(reinterpret_cast<const char*>(&len), 4) + ckpt + tok);
    }
}

void tokenizer_seeds() {
    std::vector<std::string> texts = {"", " ", "Hello world", " Hello  World!\n", "<s>Hi</s>", "<|im_start|>user\nhi<|im_end|>",
                                      "<start_of_turn>model\n", "\xe2\x96\x81x", "\xff\xfe\xc3", "\xf0\x9f\xa6\x99 emoji"};
    for (const char* f : {"ggml-vocab-llama-spm.gguf.inp", "ggml-vocab-gpt-2.gguf.inp", "ggml-vocab-qwen35.gguf.inp"}) {
        const std::string in = slurp(need(f));
        size_t start = 0;
        for (size_t hit; (hit = in.find("\n__ggml_vocab_test__\n", start)) != std::string::npos; start = hit + 21)
            texts.push_back(in.substr(start, hit - start));
    }
    int k = 0;
    for (const char* h : {"tokenizer_spm", "tokenizer_bpe"}) {
        const int n_vocabs = std::string(h) == "tokenizer_spm" ? 4 : 2;
        for (size_t i = 0; i < texts.size(); ++i) {
            const uint8_t ctl = static_cast<uint8_t>((i % n_vocabs) | ((i & 1) ? 8 : 0) | ((i & 2) ? 16 : 0) | ((i & 4) ? 32 : 0));
            put(h, "text-" + std::to_string(k++), std::string(1, static_cast<char>(ctl)) + texts[i]);
        }
        // ids to decode: little-endian u32s
        std::string ids(1, static_cast<char>(64 | 32));
        for (uint32_t id : {0u, 1u, 2u, 3u, 259u, 300u, 5u, 0xFFFFFFFFu}) ids.append(reinterpret_cast<const char*>(&id), 4);
        put(h, "ids-" + std::to_string(k++), ids);
    }
}

void spec_seeds() {
    int k = 0;
    for (const char* s : {"0:8,4:12", "0:10,10:20:2,20:", "-4:", ":-1", "-1", "::-1", "31:-33:-1", "all", "0:32",
                          " 3 , 5:7 ", "0:8,4:12,8:16,12:20,16:24,20:28,24:32", "5::-2", "0:40", "5:5", "0:8:0", "a:b",
                          "1:2:3:4", "0:4,,8", "0:4,", "+3", "1.5", "9223372036854775807", "-9223372036854775808:"}) {
        const uint16_t n = 31;  // 32 layers
        put("layer_spec", "spec-" + std::to_string(k++), std::string(reinterpret_cast<const char*>(&n), 2) + s);
    }
}

void mergekit_seeds() {
    const std::vector<std::string> y = {
        "# a self-merge\nslices:\n  - sources:\n    - model: meta-llama/Meta-Llama-3-8B-Instruct\n      layer_range: [0, 8]\n"
        "  - sources:\n      - model: \"meta-llama/Meta-Llama-3-8B-Instruct\"\n        layer_range: [4, 12]   # overlap\n"
        "merge_method: passthrough\ndtype: bfloat16\n",
        "slices:\n  - sources:\n    - model: A\n      layer_range: [0, 4]\n  - sources:\n    - model: B\n      layer_range: [4, 8]\n"
        "merge_method: passthrough\n",
        "slices:\n  - sources:\n    - model: A\n      layer_range: [0, 4]\n      parameters:\n        scale: 0.5\n",
        "slices:\n- sources:\n  - model: A\n    layer_range: [0, 24]\n- sources:\n  - model: A\n    layer_range: [8, 32]\n"
        "merge_method: passthrough\nbase_model: A\ntokenizer_source: base\n---\n",
        "models:\n  - model: A\n", "dtype: float16\n"};
    for (size_t k = 0; k < y.size(); ++k) put("mergekit", "yaml-" + std::to_string(k), y[k]);
}

void chat_template_seeds() {
    int k = 0;
    const std::string msgs = std::string("\x03\x00", 2) + "You are helpful." + std::string(1, '\0') + "\x01" + "Hi there" +
                             std::string(1, '\0') + "\x02" + "Hello!" + std::string(1, '\0');
    for (const auto& e : fs::directory_iterator(fs::path(STRATA_TEST_DATA) / "golden" / "chat_templates"))
        put("chat_template", "tmpl-" + std::to_string(k++), msgs + slurp(e.path().string()));
    for (const char* n : {"chatml", "llama3", "llama3.1", "llama2", "mistral", "mistral-v3", "mistral-v3-tekken", "gemma", "phi3"})
        put("chat_template", "name-" + std::to_string(k++), msgs + n);
}

void c_api_seeds() {
    const auto f = [](std::initializer_list<std::string> fields) {
        std::string s;
        for (const std::string& x : fields) s += x + std::string(1, '\0');
        s.pop_back();
        return s;
    };
    put("c_api", "send", f({"\x00", "\x00Once upon a time"}));
    put("c_api", "opts-send-continue", f({"\x04", "--layer-spec", "0:3,1:5", "--temp", "0.7", "\x00Hi", "\x01 more", "\x06"}));
    put("c_api", "system-prefix", f({"\x04", "--system", "Be brief.", "--ai-prefix", "Sure,", "\x00Tell a story", "\x03new system", "\x06"}));
    put("c_api", "messages", f({"\x02", "--ctx-overflow", "shift", "\x02hello", "\x0c" "a reply", "\x01", "\x04prefix", "\x05", "\x07stop"}));
    put("c_api", "bad", f({"\x03", "--top-k", "x", "--seed"}));
    put("c_api", "errors", f({"\x00", "\x08missing.gguf", "\x09", "\x11" "abc"}));
    put("c_api", "template", f({"\x02", "--chat-template", "llama3", "\x00Hi", "\x1b" "again"}));
}

// llama.cpp KL-divergence bases written by the project's writer: small vocabularies (odd ones have the pad),
// logits of several spreads (one flat: scale 0), whole files and files cut inside a chunk.
void kl_base_seeds() {
    struct B {
        int n_ctx, n_vocab, n_chunks;
        float spread;
    };
    std::mt19937 rng(11);
    int k = 0;
    for (const B& b : {B{8, 5, 2, 3.f}, B{8, 16, 1, 0.f}, B{12, 33, 1, 12.f}, B{9, 64, 2, 1.f}}) {
        const std::string path = (g_out / "kl_base.tmp").string();
        std::vector<int32_t> tokens(static_cast<size_t>(b.n_ctx) * b.n_chunks);
        for (int32_t& t : tokens) t = static_cast<int32_t>(rng() % static_cast<uint32_t>(b.n_vocab));
        {
            LogitsFileWriter w(path, b.n_ctx, b.n_vocab, b.n_chunks, tokens);
            std::normal_distribution<float> d(0.f, b.spread > 0 ? b.spread : 1.f);
            std::vector<float> logits(static_cast<size_t>(b.n_vocab));
            std::vector<uint16_t> rec(record_values(b.n_vocab));
            for (int i = 0; i < b.n_chunks * scored_per_chunk(b.n_ctx); ++i) {
                for (float& l : logits) l = b.spread > 0 ? d(rng) : 0.5f;
                code_log_probs(logits.data(), b.n_vocab, 0, rec.data());
                w.write_records(rec.data(), 1);
            }
            w.finish();
        }
        const std::string bytes = slurp(path);
        fs::remove(path);
        put("kl_base", "base-" + std::to_string(k), bytes);
        put("kl_base", "cut-" + std::to_string(k++), bytes.substr(0, bytes.size() - bytes.size() / 5));
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 4 && std::string(argv[1]) == "--vocab-only") {
        try {
            const ModelFile mf = load_model_file(argv[2]);
            GGUFWriter w(mf.alignment);
            w.copy_metadata(mf.meta);
            w.write(argv[3]);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "fuzz_make_seeds: %s\n", e.what());
            return 1;
        }
        return 0;
    }
    if (argc != 2) {
        std::fprintf(stderr, "usage: fuzz_make_seeds OUT\n");
        return 2;
    }
    g_out = argv[1];
    try {
        gguf_seeds();
        llama2c_seeds();
        tokenizer_seeds();
        spec_seeds();
        mergekit_seeds();
        chat_template_seeds();
        c_api_seeds();
        kl_base_seeds();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "fuzz_make_seeds: %s\n", e.what());
        return 1;
    }
    return 0;
}
