// What a loader hands to core/: the mapping(s), the metadata and non-owning views of every tensor.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "kernels/dtype.h"
#include "loaders/mapped_file.h"
#include "loaders/metadata.h"

namespace strata {

// A tensor inside a mapped file: never owns, never copies. Dims in ggml order: ne[0] is the row length.
struct WeightView {
    std::string name;
    DType dtype = DType::F32;
    int n_dims = 0;
    int64_t ne[4] = {1, 1, 1, 1};
    size_t row_bytes = 0;  // bytes of one row of ne[0] elements
    size_t nbytes = 0;     // bytes of the whole tensor
    const uint8_t* data = nullptr;

    int64_t cols() const { return ne[0]; }
    int64_t rows() const { return ne[1] * ne[2] * ne[3]; }
    int64_t elements() const { return ne[0] * rows(); }
    const uint8_t* row(int64_t r) const { return data + static_cast<size_t>(r) * row_bytes; }
    std::string shape_string() const;  // "[576, 1536]"
};

struct ModelFile {
    std::string path;
    std::string format;  // "GGUF v3", "llama2.c"
    std::vector<std::shared_ptr<const MappedFile>> mappings;  // keep the bytes alive
    Metadata meta;
    std::vector<WeightView> tensors;  // file order
    size_t file_bytes = 0;            // bytes of all mappings
    size_t data_offset = 0;           // GGUF: where tensor data starts
    uint32_t alignment = 0;           // GGUF: tensor data alignment

    const WeightView* find_tensor(std::string_view name) const;
    void index_tensors();  // (re)build the name index; loaders call it once

private:
    std::unordered_map<std::string, size_t> by_name_;
};

// Reads a GGUF file (v2 or v3); every count, length, offset and size is checked against the file.
// Throws std::runtime_error with one line saying what is wrong and where.
ModelFile read_gguf(std::shared_ptr<const MappedFile> file);

// Reads a llama2.c legacy checkpoint (.bin) and its tokenizer.bin, presenting them as a `llama` GGUF would.
ModelFile read_llama2c(std::shared_ptr<const MappedFile> checkpoint, std::shared_ptr<const MappedFile> tokenizer);

// Opens path and picks the reader from its first bytes. tokenizer_path is needed for llama2.c checkpoints
// (default: tokenizer.bin beside the checkpoint).
ModelFile load_model_file(const std::string& path, const std::string& tokenizer_path = "");

}  // namespace strata
