#include "loaders/metadata.h"

#include <cstring>
#include <stdexcept>

namespace strata {

const char* gguf_type_name(GGUFType t) {
    switch (t) {
        case GGUFType::U8: return "u8";
        case GGUFType::I8: return "i8";
        case GGUFType::U16: return "u16";
        case GGUFType::I16: return "i16";
        case GGUFType::U32: return "u32";
        case GGUFType::I32: return "i32";
        case GGUFType::F32: return "f32";
        case GGUFType::BOOL: return "bool";
        case GGUFType::STRING: return "string";
        case GGUFType::ARRAY: return "array";
        case GGUFType::U64: return "u64";
        case GGUFType::I64: return "i64";
        case GGUFType::F64: return "f64";
    }
    return "unknown";
}

size_t gguf_scalar_size(GGUFType t) {
    switch (t) {
        case GGUFType::U8: case GGUFType::I8: case GGUFType::BOOL: return 1;
        case GGUFType::U16: case GGUFType::I16: return 2;
        case GGUFType::U32: case GGUFType::I32: case GGUFType::F32: return 4;
        case GGUFType::U64: case GGUFType::I64: case GGUFType::F64: return 8;
        default: return 0;
    }
}

bool MetaValue::is_integer() const {
    switch (type) {
        case GGUFType::U8: case GGUFType::I8: case GGUFType::U16: case GGUFType::I16: case GGUFType::U32:
        case GGUFType::I32: case GGUFType::U64: case GGUFType::I64: return true;
        default: return false;
    }
}

std::string MetaValue::type_string() const {
    if (type != GGUFType::ARRAY) return gguf_type_name(type);
    return std::string("array[") + gguf_type_name(elem_type) + "] of " + std::to_string(count);
}

namespace {
// Element k of a numeric array, widened. raw may be unaligned: memcpy.
template <typename T>
T load(const uint8_t* p) {
    T v;
    std::memcpy(&v, p, sizeof(T));
    return v;
}
double array_elem_as_double(const MetaValue& v, uint64_t k) {
    const uint8_t* p = v.raw + k * gguf_scalar_size(v.elem_type);
    switch (v.elem_type) {
        case GGUFType::U8: return load<uint8_t>(p);
        case GGUFType::I8: return load<int8_t>(p);
        case GGUFType::U16: return load<uint16_t>(p);
        case GGUFType::I16: return load<int16_t>(p);
        case GGUFType::U32: return load<uint32_t>(p);
        case GGUFType::I32: return load<int32_t>(p);
        case GGUFType::U64: return static_cast<double>(load<uint64_t>(p));
        case GGUFType::I64: return static_cast<double>(load<int64_t>(p));
        case GGUFType::F32: return load<float>(p);
        case GGUFType::F64: return load<double>(p);
        case GGUFType::BOOL: return load<uint8_t>(p) ? 1.0 : 0.0;
        default: return 0.0;
    }
}
int64_t array_elem_as_int(const MetaValue& v, uint64_t k) {
    const uint8_t* p = v.raw + k * gguf_scalar_size(v.elem_type);
    switch (v.elem_type) {
        case GGUFType::U64: {
            const uint64_t u = load<uint64_t>(p);
            if (u > static_cast<uint64_t>(INT64_MAX)) throw std::runtime_error("array element out of range");
            return static_cast<int64_t>(u);
        }
        case GGUFType::I64: return load<int64_t>(p);
        default: return static_cast<int64_t>(array_elem_as_double(v, k));
    }
}
}  // namespace

std::string MetaValue::to_display(size_t max_chars) const {
    std::string s;
    if (type == GGUFType::STRING) {
        s = "\"";
        for (char c : str) {
            if (c == '\n') s += "\\n";
            else s += c;
        }
        s += "\"";
    } else if (type == GGUFType::BOOL) {
        s = u ? "true" : "false";
    } else if (is_integer()) {
        s = (type == GGUFType::U64 || type == GGUFType::U32 || type == GGUFType::U16 || type == GGUFType::U8)
                ? std::to_string(u) : std::to_string(i);
    } else if (is_float()) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%g", f);
        s = buf;
    } else if (type == GGUFType::ARRAY) {
        s = "[" + std::to_string(count) + " x " + gguf_type_name(elem_type) + "]";
    }
    if (s.size() > max_chars) s = s.substr(0, max_chars) + "...";
    return s;
}

void Metadata::set(std::string key, MetaValue v) {
    auto it = values_.find(key);
    if (it == values_.end()) order_.push_back(key);
    values_[std::move(key)] = std::move(v);
}

std::string_view Metadata::own(std::string s) {
    storage_.push_back(std::move(s));
    return storage_.back();
}

const MetaValue* Metadata::find(std::string_view key) const {
    auto it = values_.find(std::string(key));
    return it == values_.end() ? nullptr : &it->second;
}

namespace {
[[noreturn]] void missing(std::string_view key) {
    throw std::runtime_error("metadata key '" + std::string(key) + "' is missing");
}
[[noreturn]] void wrong_type(std::string_view key, const MetaValue& v, const char* want) {
    throw std::runtime_error("metadata key '" + std::string(key) + "' has type " + v.type_string() +
                             ", expected " + want);
}
}  // namespace

std::optional<int64_t> Metadata::find_int(std::string_view key) const {
    const MetaValue* v = find(key);
    if (!v) return std::nullopt;
    if (!v->is_integer()) wrong_type(key, *v, "an integer");
    if ((v->type == GGUFType::U64) && v->u > static_cast<uint64_t>(INT64_MAX))
        throw std::runtime_error("metadata key '" + std::string(key) + "' is out of range");
    return v->i;
}
int64_t Metadata::get_int(std::string_view key) const {
    auto r = find_int(key);
    if (!r) missing(key);
    return *r;
}
std::optional<double> Metadata::find_float(std::string_view key) const {
    const MetaValue* v = find(key);
    if (!v) return std::nullopt;
    if (v->is_float()) return v->f;
    if (v->is_integer()) return static_cast<double>(v->i);
    wrong_type(key, *v, "a number");
}
double Metadata::get_float(std::string_view key) const {
    auto r = find_float(key);
    if (!r) missing(key);
    return *r;
}
std::optional<bool> Metadata::find_bool(std::string_view key) const {
    const MetaValue* v = find(key);
    if (!v) return std::nullopt;
    if (v->type != GGUFType::BOOL) wrong_type(key, *v, "bool");
    return v->u != 0;
}
bool Metadata::get_bool(std::string_view key) const {
    auto r = find_bool(key);
    if (!r) missing(key);
    return *r;
}
std::optional<std::string_view> Metadata::find_string(std::string_view key) const {
    const MetaValue* v = find(key);
    if (!v) return std::nullopt;
    if (v->type != GGUFType::STRING) wrong_type(key, *v, "string");
    return v->str;
}
std::string_view Metadata::get_string(std::string_view key) const {
    auto r = find_string(key);
    if (!r) missing(key);
    return *r;
}
const std::vector<std::string_view>& Metadata::get_string_array(std::string_view key) const {
    const MetaValue* v = find(key);
    if (!v) missing(key);
    if (v->type != GGUFType::ARRAY || v->elem_type != GGUFType::STRING) wrong_type(key, *v, "array[string]");
    return v->strs;
}
std::vector<float> Metadata::get_float_array(std::string_view key) const {
    const MetaValue* v = find(key);
    if (!v) missing(key);
    if (v->type != GGUFType::ARRAY || gguf_scalar_size(v->elem_type) == 0) wrong_type(key, *v, "numeric array");
    std::vector<float> out(v->count);
    for (uint64_t k = 0; k < v->count; ++k) out[k] = static_cast<float>(array_elem_as_double(*v, k));
    return out;
}
std::vector<int64_t> Metadata::get_int_array(std::string_view key) const {
    const MetaValue* v = find(key);
    if (!v) missing(key);
    if (v->type != GGUFType::ARRAY || gguf_scalar_size(v->elem_type) == 0 || v->elem_type == GGUFType::F32 ||
        v->elem_type == GGUFType::F64)
        wrong_type(key, *v, "integer array");
    std::vector<int64_t> out(v->count);
    for (uint64_t k = 0; k < v->count; ++k) out[k] = array_elem_as_int(*v, k);
    return out;
}

}  // namespace strata
