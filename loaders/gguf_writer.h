// A GGUF v3 writer: tests build physically rewritten models with it (a spec's layers copied in order),
// fuzzing seeds come from it, and bench/ writes synthetic random-weight models of real shapes.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/dtype.h"
#include "loaders/metadata.h"

namespace strata {

class GGUFWriter {
public:
    explicit GGUFWriter(uint32_t alignment = 32) : alignment_(alignment) {}

    void add_u32(const std::string& key, uint32_t v);
    void add_i32(const std::string& key, int32_t v);
    void add_u64(const std::string& key, uint64_t v);
    void add_f32(const std::string& key, float v);
    void add_bool(const std::string& key, bool v);
    void add_string(const std::string& key, std::string_view v);
    void add_string_array(const std::string& key, const std::vector<std::string_view>& v);
    void add_f32_array(const std::string& key, const std::vector<float>& v);
    void add_i32_array(const std::string& key, const std::vector<int32_t>& v);
    void add_bool_array(const std::string& key, const std::vector<bool>& v);
    // Copies a value read from another file (any type, arrays included).
    void add_value(const std::string& key, const MetaValue& v);
    // Copies every key of meta for which keep(key) is true (all when keep is empty).
    void copy_metadata(const Metadata& meta, const std::function<bool(const std::string&)>& keep = {});
    bool has_key(const std::string& key) const;

    // The bytes are referenced, not copied: they must stay alive until write()/bytes().
    // ne in ggml order (ne[0] = row length). nbytes must equal the size the type and shape imply.
    void add_tensor(const std::string& name, DType type, const std::vector<int64_t>& ne, const void* data, size_t nbytes);
    // The tensor's bytes are owned by the writer.
    void add_tensor_copy(const std::string& name, DType type, const std::vector<int64_t>& ne, std::vector<uint8_t> bytes);

    std::vector<uint8_t> bytes() const;
    void write(const std::string& path) const;  // throws on I/O failure

private:
    struct KV {
        std::string key;
        std::vector<uint8_t> encoded;  // type + value, as the file stores them
    };
    struct Tensor {
        std::string name;
        DType type;
        std::vector<int64_t> ne;
        const uint8_t* data;
        size_t nbytes;
    };
    void add_kv(const std::string& key, std::vector<uint8_t> encoded);
    std::vector<uint8_t> header(std::vector<size_t>& offsets, size_t& data_bytes) const;
    uint32_t alignment_;
    std::vector<KV> kvs_;
    std::vector<Tensor> tensors_;
    std::vector<std::vector<uint8_t>> owned_;
};

}  // namespace strata
