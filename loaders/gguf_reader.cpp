// GGUF reader over one read-only mapping. Nothing is trusted: every length and count is checked against
// the bytes that remain before anything is allocated or read.
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

#include "loaders/model_file.h"

namespace strata {

namespace {

constexpr uint64_t kMaxDims = 4;
constexpr uint64_t kMaxStringBytes = 1ull << 30;  // no key or value string is a gigabyte

class Cursor {
public:
    Cursor(const uint8_t* data, size_t size, const std::string& path) : data_(data), size_(size), path_(path) {}

    size_t pos() const { return pos_; }
    size_t remaining() const { return size_ - pos_; }

    [[noreturn]] void fail(const std::string& what) const {
        throw std::runtime_error(path_ + ": " + what + " (at byte " + std::to_string(pos_) + " of " +
                                 std::to_string(size_) + ")");
    }
    void need(uint64_t n, const char* what) const {
        if (n > remaining()) fail(std::string("file is truncated: ") + what + " needs " + std::to_string(n) +
                                  " bytes, " + std::to_string(remaining()) + " remain");
    }
    template <typename T>
    T read(const char* what) {
        need(sizeof(T), what);
        T v;
        std::memcpy(&v, data_ + pos_, sizeof(T));
        pos_ += sizeof(T);
        return v;
    }
    std::string_view read_string(const char* what) {
        const uint64_t len = read<uint64_t>(what);
        if (len > kMaxStringBytes) fail(std::string(what) + " claims an absurd length of " + std::to_string(len));
        need(len, what);
        std::string_view s(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(len));
        pos_ += static_cast<size_t>(len);
        return s;
    }
    const uint8_t* skip(uint64_t n, const char* what) {
        need(n, what);
        const uint8_t* p = data_ + pos_;
        pos_ += static_cast<size_t>(n);
        return p;
    }

private:
    const uint8_t* data_;
    size_t size_;
    size_t pos_ = 0;
    const std::string& path_;
};

MetaValue read_value(Cursor& c, GGUFType type, const std::string& key, bool in_array = false) {
    MetaValue v;
    v.type = type;
    switch (type) {
        case GGUFType::U8: v.u = c.read<uint8_t>("u8 value"); v.i = static_cast<int64_t>(v.u); break;
        case GGUFType::I8: v.i = c.read<int8_t>("i8 value"); v.u = static_cast<uint64_t>(v.i); break;
        case GGUFType::U16: v.u = c.read<uint16_t>("u16 value"); v.i = static_cast<int64_t>(v.u); break;
        case GGUFType::I16: v.i = c.read<int16_t>("i16 value"); v.u = static_cast<uint64_t>(v.i); break;
        case GGUFType::U32: v.u = c.read<uint32_t>("u32 value"); v.i = static_cast<int64_t>(v.u); break;
        case GGUFType::I32: v.i = c.read<int32_t>("i32 value"); v.u = static_cast<uint64_t>(v.i); break;
        case GGUFType::U64: v.u = c.read<uint64_t>("u64 value"); v.i = static_cast<int64_t>(v.u); break;
        case GGUFType::I64: v.i = c.read<int64_t>("i64 value"); v.u = static_cast<uint64_t>(v.i); break;
        case GGUFType::F32: v.f = c.read<float>("f32 value"); break;
        case GGUFType::F64: v.f = c.read<double>("f64 value"); break;
        case GGUFType::BOOL: {
            const uint8_t b = c.read<uint8_t>("bool value");
            if (b > 1) c.fail("metadata key '" + key + "' has a bool that is neither 0 nor 1");
            v.u = b;
            v.i = b;
            break;
        }
        case GGUFType::STRING: v.str = c.read_string("string value"); break;
        case GGUFType::ARRAY: {
            if (in_array) c.fail("metadata key '" + key + "' holds an array of arrays, which strata does not read");
            const uint32_t et = c.read<uint32_t>("array element type");
            if (et > static_cast<uint32_t>(GGUFType::F64))
                c.fail("metadata key '" + key + "' has an array of unknown type " + std::to_string(et));
            v.elem_type = static_cast<GGUFType>(et);
            v.count = c.read<uint64_t>("array length");
            if (v.elem_type == GGUFType::ARRAY)
                c.fail("metadata key '" + key + "' holds an array of arrays, which strata does not read");
            if (v.elem_type == GGUFType::STRING) {
                // each string takes at least its 8-byte length
                if (v.count > c.remaining() / 8)
                    c.fail("metadata key '" + key + "' claims " + std::to_string(v.count) +
                           " strings, more than the file can hold");
                v.strs.reserve(static_cast<size_t>(v.count));
                for (uint64_t k = 0; k < v.count; ++k) v.strs.push_back(c.read_string("array string"));
            } else {
                const size_t es = gguf_scalar_size(v.elem_type);
                if (v.count > c.remaining() / es)
                    c.fail("metadata key '" + key + "' claims " + std::to_string(v.count) + " elements of " +
                           gguf_type_name(v.elem_type) + ", more than the file can hold");
                v.raw = c.skip(v.count * es, "array data");
            }
            break;
        }
        default: c.fail("metadata key '" + key + "' has unknown value type " + std::to_string(static_cast<uint32_t>(type)));
    }
    return v;
}

}  // namespace

ModelFile read_gguf(std::shared_ptr<const MappedFile> file) {
    ModelFile mf;
    mf.path = file->path();
    mf.file_bytes = file->size();
    Cursor c(file->data(), file->size(), mf.path);

    const uint32_t magic = c.read<uint32_t>("magic");
    if (std::memcmp(&magic, "GGUF", 4) != 0) c.fail("not a GGUF file (bad magic)");
    const uint32_t version = c.read<uint32_t>("version");
    if (version == 1) c.fail("GGUF version 1 is not supported (re-convert the model; versions 2 and 3 are)");
    if (version != 2 && version != 3) {
        if ((version & 0xffff) == 0) c.fail("big-endian GGUF files are not supported");
        c.fail("unsupported GGUF version " + std::to_string(version) + " (strata reads 2 and 3)");
    }
    mf.format = "GGUF v" + std::to_string(version);
    const uint64_t n_tensors = c.read<uint64_t>("tensor count");
    const uint64_t n_kv = c.read<uint64_t>("metadata count");
    // A key/value takes at least 8 (key length) + 4 (type) + 1 bytes; a tensor info at least 8 + 4 + 8 + 4 + 8.
    if (n_kv > c.remaining() / 13) c.fail("metadata count " + std::to_string(n_kv) + " is more than the file can hold");
    if (n_tensors > c.remaining() / 32)
        c.fail("tensor count " + std::to_string(n_tensors) + " is more than the file can hold");

    for (uint64_t k = 0; k < n_kv; ++k) {
        std::string key(c.read_string("metadata key"));
        if (key.empty()) c.fail("metadata key #" + std::to_string(k) + " is empty");
        if (mf.meta.has(key)) c.fail("metadata key '" + key + "' appears twice");
        const uint32_t type = c.read<uint32_t>("metadata value type");
        if (type > static_cast<uint32_t>(GGUFType::F64))
            c.fail("metadata key '" + key + "' has unknown value type " + std::to_string(type));
        MetaValue v = read_value(c, static_cast<GGUFType>(type), key);
        mf.meta.set(std::move(key), std::move(v));
    }

    uint64_t alignment = 32;
    if (const MetaValue* a = mf.meta.find("general.alignment")) {
        if (!a->is_integer()) c.fail("general.alignment is not an integer");
        alignment = a->u;
        // The format requires a multiple of 8; below that, tensor data lands at addresses its type cannot be read
        // from (a float at an odd byte: undefined behaviour, found by fuzzing with general.alignment = 1).
        if (alignment < 8 || (alignment & (alignment - 1)) != 0 || alignment > (1u << 20))
            c.fail("general.alignment " + std::to_string(alignment) +
                   " is not a power of two from 8 to 1 MiB (GGUF requires a multiple of 8)");
    }
    mf.alignment = static_cast<uint32_t>(alignment);

    struct RawInfo {
        uint64_t offset;
    };
    std::vector<RawInfo> offsets;
    mf.tensors.reserve(static_cast<size_t>(n_tensors));
    offsets.reserve(static_cast<size_t>(n_tensors));
    for (uint64_t k = 0; k < n_tensors; ++k) {
        WeightView w;
        w.name = std::string(c.read_string("tensor name"));
        if (w.name.empty()) c.fail("tensor #" + std::to_string(k) + " has an empty name");
        const uint32_t n_dims = c.read<uint32_t>("tensor dimension count");
        if (n_dims == 0 || n_dims > kMaxDims)
            c.fail("tensor '" + w.name + "' has " + std::to_string(n_dims) + " dimensions (1 to 4 allowed)");
        w.n_dims = static_cast<int>(n_dims);
        uint64_t total = 1;
        for (uint32_t d = 0; d < n_dims; ++d) {
            const uint64_t ne = c.read<uint64_t>("tensor dimension");
            if (ne == 0 || ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / total)
                c.fail("tensor '" + w.name + "' has an invalid or overflowing dimension " + std::to_string(ne));
            total *= ne;
            w.ne[d] = static_cast<int64_t>(ne);
        }
        const uint32_t type = c.read<uint32_t>("tensor type");
        const DTypeTraits& tr = dtype_traits(type);
        if (!tr.name) c.fail("tensor '" + w.name + "' has unknown type id " + std::to_string(type));
        w.dtype = static_cast<DType>(type);
        if (w.ne[0] % tr.block_elems != 0)
            c.fail("tensor '" + w.name + "' row of " + std::to_string(w.ne[0]) + " is not a multiple of the " +
                   tr.name + " block size " + std::to_string(tr.block_elems));
        w.row_bytes = static_cast<size_t>(w.ne[0] / tr.block_elems) * tr.block_bytes;
        const uint64_t rows = total / static_cast<uint64_t>(w.ne[0]);
        if (rows > std::numeric_limits<uint64_t>::max() / (w.row_bytes ? w.row_bytes : 1))
            c.fail("tensor '" + w.name + "' size overflows");
        w.nbytes = static_cast<size_t>(rows * w.row_bytes);
        const uint64_t offset = c.read<uint64_t>("tensor offset");
        if (offset % alignment != 0)
            c.fail("tensor '" + w.name + "' offset " + std::to_string(offset) + " is not aligned to " +
                   std::to_string(alignment));
        offsets.push_back({offset});
        mf.tensors.push_back(std::move(w));
    }

    const uint64_t data_offset = (c.pos() + alignment - 1) / alignment * alignment;
    if (n_tensors > 0 && data_offset > file->size()) c.fail("file is truncated before its tensor data");
    mf.data_offset = static_cast<size_t>(data_offset);
    const uint64_t data_size = file->size() > data_offset ? file->size() - data_offset : 0;
    for (size_t k = 0; k < mf.tensors.size(); ++k) {
        WeightView& w = mf.tensors[k];
        const uint64_t off = offsets[k].offset;
        if (off > data_size || w.nbytes > data_size - off)
            throw std::runtime_error(mf.path + ": tensor '" + w.name + "' data (" + std::to_string(w.nbytes) +
                                     " bytes at offset " + std::to_string(off) + ") runs past the end of the file (" +
                                     std::to_string(data_size) + " data bytes): the file is truncated or corrupt");
        w.data = file->data() + data_offset + off;
    }
    mf.mappings.push_back(std::move(file));
    mf.index_tensors();
    return mf;
}

}  // namespace strata
