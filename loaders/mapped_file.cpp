#include "loaders/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

// Under AddressSanitizer the slack around from_bytes()'s aligned copy is poisoned, so a parser that reads even
// one byte before or past the bytes it was given is caught (the fuzz harnesses and the sanitizer tests rely on it).
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define STRATA_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(STRATA_ASAN)
#define STRATA_ASAN 1
#endif
#ifdef STRATA_ASAN
#include <sanitizer/asan_interface.h>
#define STRATA_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define STRATA_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define STRATA_POISON(p, n) ((void)(p), (void)(n))
#define STRATA_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace strata {

std::shared_ptr<const MappedFile> MappedFile::open(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error("cannot open '" + path + "': " + std::strerror(errno));
    struct stat st {};
    if (fstat(fd, &st) != 0) {
        const int err = errno;
        ::close(fd);
        throw std::runtime_error("cannot stat '" + path + "': " + std::strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        throw std::runtime_error("'" + path + "' is not a regular file");
    }
    std::shared_ptr<MappedFile> f(new MappedFile());
    f->path_ = path;
    f->size_ = static_cast<size_t>(st.st_size);
    if (f->size_ == 0) {
        ::close(fd);
        throw std::runtime_error("'" + path + "' is empty");
    }
    void* p = mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    const int err = errno;
    ::close(fd);
    if (p == MAP_FAILED) throw std::runtime_error("cannot map '" + path + "': " + std::strerror(err));
    f->data_ = static_cast<const uint8_t*>(p);
    f->mapped_ = true;
    return f;
}

std::shared_ptr<const MappedFile> MappedFile::from_bytes(std::vector<uint8_t> bytes, std::string name) {
    std::shared_ptr<MappedFile> f(new MappedFile());
    // Tensor data must be as aligned as in a real mapping (page-aligned base): malloc only promises 16 bytes,
    // so the bytes are placed at a 64-byte boundary inside the owned buffer.
    constexpr size_t kAlign = 64;
    f->owned_.resize(bytes.size() + kAlign);
    const auto base = reinterpret_cast<uintptr_t>(f->owned_.data());
    uint8_t* aligned = f->owned_.data() + ((kAlign - base % kAlign) % kAlign);
    if (!bytes.empty()) std::memcpy(aligned, bytes.data(), bytes.size());
    f->data_ = aligned;
    f->size_ = bytes.size();
    STRATA_POISON(f->owned_.data(), static_cast<size_t>(aligned - f->owned_.data()));
    STRATA_POISON(aligned + bytes.size(), static_cast<size_t>(f->owned_.data() + f->owned_.size() - (aligned + bytes.size())));
    f->path_ = std::move(name);
    return f;
}

MappedFile::~MappedFile() {
    if (mapped_ && data_) munmap(const_cast<uint8_t*>(data_), size_);
    if (!owned_.empty()) STRATA_UNPOISON(owned_.data(), owned_.size());
}

}  // namespace strata
