// Key/value metadata of a model file (GGUF's, or synthesised for llama2.c files), with checked getters.
#pragma once
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace strata {

// GGUF value types, numbered as the format numbers them.
enum class GGUFType : uint32_t {
    U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7, STRING = 8, ARRAY = 9,
    U64 = 10, I64 = 11, F64 = 12,
};
const char* gguf_type_name(GGUFType t);
size_t gguf_scalar_size(GGUFType t);  // 0 for STRING / ARRAY / unknown

struct MetaValue {
    GGUFType type = GGUFType::U8;
    // scalars (integers widened; floats as double)
    uint64_t u = 0;
    int64_t i = 0;
    double f = 0.0;
    std::string_view str;  // STRING (points into the mapping or the Metadata's own storage)
    // ARRAY
    GGUFType elem_type = GGUFType::U8;
    uint64_t count = 0;
    const uint8_t* raw = nullptr;          // numeric arrays: count little-endian elements (maybe unaligned)
    std::vector<std::string_view> strs;    // string arrays

    bool is_integer() const;
    bool is_float() const { return type == GGUFType::F32 || type == GGUFType::F64; }
    std::string type_string() const;       // "u32", "array[string] of 49152", ...
    std::string to_display(size_t max_chars = 80) const;
};

class Metadata {
public:
    void set(std::string key, MetaValue v);
    // Stores a copy of s and returns a view of the copy (for values a loader builds itself).
    std::string_view own(std::string s);

    const MetaValue* find(std::string_view key) const;
    bool has(std::string_view key) const { return find(key) != nullptr; }
    const std::vector<std::string>& keys() const { return order_; }  // insertion order

    // Checked getters: throw std::runtime_error "metadata key 'K' ..." when missing or of the wrong type.
    int64_t get_int(std::string_view key) const;
    double get_float(std::string_view key) const;  // floats, or integers converted
    bool get_bool(std::string_view key) const;
    std::string_view get_string(std::string_view key) const;
    const std::vector<std::string_view>& get_string_array(std::string_view key) const;
    std::vector<float> get_float_array(std::string_view key) const;
    std::vector<int64_t> get_int_array(std::string_view key) const;

    std::optional<int64_t> find_int(std::string_view key) const;
    std::optional<double> find_float(std::string_view key) const;
    std::optional<bool> find_bool(std::string_view key) const;
    std::optional<std::string_view> find_string(std::string_view key) const;

private:
    std::unordered_map<std::string, MetaValue> values_;
    std::vector<std::string> order_;
    std::deque<std::string> storage_;
};

}  // namespace strata
