// A read-only view of a whole file: mmap'd from disk, or (for fuzzing and tests) an owned buffer.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace strata {

class MappedFile {
public:
    // Maps path read-only; throws std::runtime_error naming the path and the OS error.
    static std::shared_ptr<const MappedFile> open(const std::string& path);
    // Wraps a copy of bytes (no file): parsers see the same interface.
    static std::shared_ptr<const MappedFile> from_bytes(std::vector<uint8_t> bytes, std::string name = "<memory>");
    ~MappedFile();
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    const uint8_t* data() const { return data_; }
    size_t size() const { return size_; }
    const std::string& path() const { return path_; }
    bool is_mmap() const { return mapped_; }

private:
    MappedFile() = default;
    const uint8_t* data_ = nullptr;
    size_t size_ = 0;
    bool mapped_ = false;
    std::string path_;
    std::vector<uint8_t> owned_;
};

}  // namespace strata
