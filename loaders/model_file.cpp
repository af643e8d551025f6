#include "loaders/model_file.h"

#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace strata {

std::string WeightView::shape_string() const {
    std::string s = "[";
    for (int d = 0; d < n_dims; ++d) s += (d ? ", " : "") + std::to_string(ne[d]);
    return s + "]";
}

const WeightView* ModelFile::find_tensor(std::string_view name) const {
    auto it = by_name_.find(std::string(name));
    return it == by_name_.end() ? nullptr : &tensors[it->second];
}

void ModelFile::index_tensors() {
    by_name_.clear();
    for (size_t k = 0; k < tensors.size(); ++k) {
        if (!by_name_.emplace(tensors[k].name, k).second)
            throw std::runtime_error(path + ": tensor '" + tensors[k].name + "' appears twice");
    }
}

ModelFile load_model_file(const std::string& path, const std::string& tokenizer_path) {
    auto file = MappedFile::open(path);
    if (file->size() >= 4 && std::memcmp(file->data(), "GGUF", 4) == 0) return read_gguf(file);
    if (file->size() >= 4 && std::memcmp(file->data(), "FUGG", 4) == 0)
        throw std::runtime_error(path + ": big-endian GGUF files are not supported");
    // llama2.c checkpoints have no magic: a 7 x int32 header of small positive numbers.
    if (file->size() >= 28) {
        int32_t h[7];
        std::memcpy(h, file->data(), sizeof h);
        bool plausible = true;
        for (int k = 0; k < 7; ++k) {
            const int32_t v = k == 5 ? (h[k] < 0 ? -h[k] : h[k]) : h[k];
            if (v <= 0 || v > (1 << 24)) plausible = false;
        }
        if (plausible) {
            std::string tok = tokenizer_path;
            if (tok.empty()) tok = (std::filesystem::path(path).parent_path() / "tokenizer.bin").string();
            if (!std::filesystem::exists(tok))
                throw std::runtime_error(path + " looks like a llama2.c checkpoint, but its tokenizer '" + tok +
                                         "' does not exist (pass --tokenizer FILE)");
            return read_llama2c(file, MappedFile::open(tok));
        }
    }
    throw std::runtime_error(path + ": not a GGUF file (bad magic) and not a llama2.c checkpoint");
}

}  // namespace strata
