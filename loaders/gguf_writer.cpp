#include "loaders/gguf_writer.h"

#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>

namespace strata {

namespace {

template <typename T>
void put(std::vector<uint8_t>& out, T v) {
    const size_t at = out.size();
    out.resize(at + sizeof(T));
    std::memcpy(out.data() + at, &v, sizeof(T));
}
void put_string(std::vector<uint8_t>& out, std::string_view s) {
    put<uint64_t>(out, s.size());
    out.insert(out.end(), s.begin(), s.end());
}
std::vector<uint8_t> typed(GGUFType t) {
    std::vector<uint8_t> e;
    put<uint32_t>(e, static_cast<uint32_t>(t));
    return e;
}

void put_scalar(std::vector<uint8_t>& e, GGUFType t, const MetaValue& v) {
    switch (t) {
        case GGUFType::U8: put<uint8_t>(e, static_cast<uint8_t>(v.u)); break;
        case GGUFType::I8: put<int8_t>(e, static_cast<int8_t>(v.i)); break;
        case GGUFType::U16: put<uint16_t>(e, static_cast<uint16_t>(v.u)); break;
        case GGUFType::I16: put<int16_t>(e, static_cast<int16_t>(v.i)); break;
        case GGUFType::U32: put<uint32_t>(e, static_cast<uint32_t>(v.u)); break;
        case GGUFType::I32: put<int32_t>(e, static_cast<int32_t>(v.i)); break;
        case GGUFType::U64: put<uint64_t>(e, v.u); break;
        case GGUFType::I64: put<int64_t>(e, v.i); break;
        case GGUFType::F32: put<float>(e, static_cast<float>(v.f)); break;
        case GGUFType::F64: put<double>(e, v.f); break;
        case GGUFType::BOOL: put<uint8_t>(e, v.u ? 1 : 0); break;
        case GGUFType::STRING: put_string(e, v.str); break;
        default: throw std::invalid_argument("GGUF writer: cannot encode a value of this type");
    }
}

}  // namespace

void GGUFWriter::add_kv(const std::string& key, std::vector<uint8_t> encoded) {
    for (KV& kv : kvs_)
        if (kv.key == key) {
            kv.encoded = std::move(encoded);
            return;
        }
    kvs_.push_back({key, std::move(encoded)});
}

bool GGUFWriter::has_key(const std::string& key) const {
    for (const KV& kv : kvs_)
        if (kv.key == key) return true;
    return false;
}

void GGUFWriter::add_u32(const std::string& k, uint32_t v) { auto e = typed(GGUFType::U32); put(e, v); add_kv(k, std::move(e)); }
void GGUFWriter::add_i32(const std::string& k, int32_t v) { auto e = typed(GGUFType::I32); put(e, v); add_kv(k, std::move(e)); }
void GGUFWriter::add_u64(const std::string& k, uint64_t v) { auto e = typed(GGUFType::U64); put(e, v); add_kv(k, std::move(e)); }
void GGUFWriter::add_f32(const std::string& k, float v) { auto e = typed(GGUFType::F32); put(e, v); add_kv(k, std::move(e)); }
void GGUFWriter::add_bool(const std::string& k, bool v) { auto e = typed(GGUFType::BOOL); put<uint8_t>(e, v); add_kv(k, std::move(e)); }
void GGUFWriter::add_string(const std::string& k, std::string_view v) {
    auto e = typed(GGUFType::STRING);
    put_string(e, v);
    add_kv(k, std::move(e));
}

void GGUFWriter::add_string_array(const std::string& k, const std::vector<std::string_view>& v) {
    auto e = typed(GGUFType::ARRAY);
    put<uint32_t>(e, static_cast<uint32_t>(GGUFType::STRING));
    put<uint64_t>(e, v.size());
    for (std::string_view s : v) put_string(e, s);
    add_kv(k, std::move(e));
}
void GGUFWriter::add_f32_array(const std::string& k, const std::vector<float>& v) {
    auto e = typed(GGUFType::ARRAY);
    put<uint32_t>(e, static_cast<uint32_t>(GGUFType::F32));
    put<uint64_t>(e, v.size());
    for (float f : v) put(e, f);
    add_kv(k, std::move(e));
}
void GGUFWriter::add_i32_array(const std::string& k, const std::vector<int32_t>& v) {
    auto e = typed(GGUFType::ARRAY);
    put<uint32_t>(e, static_cast<uint32_t>(GGUFType::I32));
    put<uint64_t>(e, v.size());
    for (int32_t i : v) put(e, i);
    add_kv(k, std::move(e));
}
void GGUFWriter::add_bool_array(const std::string& k, const std::vector<bool>& v) {
    auto e = typed(GGUFType::ARRAY);
    put<uint32_t>(e, static_cast<uint32_t>(GGUFType::BOOL));
    put<uint64_t>(e, v.size());
    for (bool b : v) put<uint8_t>(e, b ? 1 : 0);
    add_kv(k, std::move(e));
}

void GGUFWriter::add_value(const std::string& k, const MetaValue& v) {
    auto e = typed(v.type);
    if (v.type != GGUFType::ARRAY) {
        put_scalar(e, v.type, v);
    } else {
        put<uint32_t>(e, static_cast<uint32_t>(v.elem_type));
        put<uint64_t>(e, v.count);
        if (v.elem_type == GGUFType::STRING) {
            for (std::string_view s : v.strs) put_string(e, s);
        } else {
            const size_t n = v.count * gguf_scalar_size(v.elem_type);
            e.insert(e.end(), v.raw, v.raw + n);
        }
    }
    add_kv(k, std::move(e));
}

void GGUFWriter::copy_metadata(const Metadata& meta, const std::function<bool(const std::string&)>& keep) {
    for (const std::string& key : meta.keys())
        if (!keep || keep(key)) add_value(key, *meta.find(key));
}

void GGUFWriter::add_tensor(const std::string& name, DType type, const std::vector<int64_t>& ne, const void* data,
                            size_t nbytes) {
    if (ne.empty() || ne.size() > 4) throw std::invalid_argument("GGUF writer: tensor '" + name + "' needs 1 to 4 dims");
    int64_t rows = 1;
    for (size_t d = 1; d < ne.size(); ++d) rows *= ne[d];
    const size_t expect = dtype_row_bytes(type, ne[0]) * static_cast<size_t>(rows);
    if (expect != nbytes)
        throw std::invalid_argument("GGUF writer: tensor '" + name + "' has " + std::to_string(nbytes) +
                                    " bytes, its type and shape need " + std::to_string(expect));
    for (const Tensor& t : tensors_)
        if (t.name == name) throw std::invalid_argument("GGUF writer: tensor '" + name + "' added twice");
    tensors_.push_back({name, type, ne, static_cast<const uint8_t*>(data), nbytes});
}

void GGUFWriter::add_tensor_copy(const std::string& name, DType type, const std::vector<int64_t>& ne,
                                 std::vector<uint8_t> bytes) {
    owned_.push_back(std::move(bytes));
    add_tensor(name, type, ne, owned_.back().data(), owned_.back().size());
}

// The header (magic, counts, metadata, tensor infos) padded to the data start; offsets of each tensor.
std::vector<uint8_t> GGUFWriter::header(std::vector<size_t>& offsets, size_t& data_bytes) const {
    std::vector<uint8_t> out;
    out.insert(out.end(), {'G', 'G', 'U', 'F'});
    put<uint32_t>(out, 3);
    put<uint64_t>(out, tensors_.size());
    const bool own_alignment = alignment_ != 32 && !has_key("general.alignment");
    put<uint64_t>(out, kvs_.size() + (own_alignment ? 1 : 0));
    for (const KV& kv : kvs_) {
        put_string(out, kv.key);
        out.insert(out.end(), kv.encoded.begin(), kv.encoded.end());
    }
    if (own_alignment) {
        put_string(out, "general.alignment");
        put<uint32_t>(out, static_cast<uint32_t>(GGUFType::U32));
        put<uint32_t>(out, alignment_);
    }
    auto align = [&](size_t n) { return (n + alignment_ - 1) / alignment_ * alignment_; };
    size_t offset = 0;
    offsets.clear();
    for (const Tensor& t : tensors_) {
        put_string(out, t.name);
        put<uint32_t>(out, static_cast<uint32_t>(t.ne.size()));
        for (int64_t d : t.ne) put<uint64_t>(out, static_cast<uint64_t>(d));
        put<uint32_t>(out, static_cast<uint32_t>(t.type));
        put<uint64_t>(out, offset);
        offsets.push_back(offset);
        offset = align(offset + t.nbytes);
    }
    out.resize(align(out.size()), 0);
    data_bytes = offset;
    return out;
}

std::vector<uint8_t> GGUFWriter::bytes() const {
    std::vector<size_t> offsets;
    size_t data_bytes = 0;
    std::vector<uint8_t> out = header(offsets, data_bytes);
    const size_t data_start = out.size();
    out.resize(data_start + data_bytes, 0);
    for (size_t i = 0; i < tensors_.size(); ++i)
        std::memcpy(out.data() + data_start + offsets[i], tensors_[i].data, tensors_[i].nbytes);
    return out;
}

void GGUFWriter::write(const std::string& path) const {
    std::vector<size_t> offsets;
    size_t data_bytes = 0;
    const std::vector<uint8_t> head = header(offsets, data_bytes);
    std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "wb"), std::fclose);
    if (!f) throw std::runtime_error("cannot write '" + path + "'");
    auto out = [&](const void* p, size_t n) {
        if (n && std::fwrite(p, 1, n, f.get()) != n) throw std::runtime_error("short write to '" + path + "'");
    };
    out(head.data(), head.size());
    const std::vector<uint8_t> zeros(alignment_, 0);
    size_t at = 0;  // bytes of tensor data written so far
    for (size_t i = 0; i < tensors_.size(); ++i) {
        out(zeros.data(), offsets[i] - at);
        out(tensors_[i].data, tensors_[i].nbytes);
        at = offsets[i] + tensors_[i].nbytes;
    }
    out(zeros.data(), data_bytes - at);
    if (std::fflush(f.get()) != 0) throw std::runtime_error("cannot flush '" + path + "'");
}

}  // namespace strata
