#include "core/analysis/logits_file.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <stdexcept>

namespace strata {

namespace {

constexpr char kMagic[8] = {'_', 'l', 'o', 'g', 'i', 't', 's', '_'};
constexpr uint64_t kMagicAndInts = sizeof kMagic + 3 * sizeof(int32_t);
// Sanity bounds for a header read from a file: far above any real model, low enough that sizes cannot
// overflow.
constexpr int kMaxCtx = 1 << 22, kMaxVocab = 1 << 24;

std::string str(uint64_t v) {
    return std::to_string(v);
}

// How llama.cpp makes the base (llama-perplexity), for messages.
const char* kMakeOne =
    "make one with `strata perplexity -m MODEL -f TEXT --kl-divergence-base FILE` or llama.cpp's "
    "`llama-perplexity -m MODEL -f TEXT --kl-divergence-base FILE`";

}  // namespace

uint64_t LogitsFileHeader::header_bytes() const {
    return kMagicAndInts + static_cast<uint64_t>(n_chunks) * static_cast<uint64_t>(n_ctx) * sizeof(int32_t);
}

uint64_t LogitsFileHeader::chunk_bytes() const {
    return static_cast<uint64_t>(scored_per_chunk(n_ctx)) * record_values(n_vocab) * sizeof(uint16_t);
}

double code_log_probs(const float* logits, int n_vocab, int next_token, uint16_t* record) {
    float hi = logits[0], lo = logits[0];
    for (int i = 1; i < n_vocab; ++i) hi = std::max(hi, logits[i]), lo = std::min(lo, logits[i]);
    if (!std::isfinite(hi)) throw std::runtime_error("the model produced a non-finite logit");
    lo = std::max(lo, hi - 16);
    double sum = 0;
    for (int i = 0; i < n_vocab; ++i) sum += std::exp(logits[i] - hi);  // float terms, a double sum
    const double lse = std::log(sum);
    const float scale = (hi - lo) / 65535.f;
    const float min_log_prob = static_cast<float>(lo - hi - lse);
    std::memcpy(record, &scale, sizeof scale);
    std::memcpy(record + 2, &min_log_prob, sizeof min_log_prob);
    uint16_t* v = record + 4;
    std::fill(v, record + record_values(n_vocab), uint16_t{0});  // the values below the floor, and the pad
    if (scale > 0) {
        const float inv_scale = 1 / scale;
        for (int i = 0; i < n_vocab; ++i)
            if (logits[i] > lo)
                v[i] = static_cast<uint16_t>(std::min(std::nearbyint(inv_scale * (logits[i] - lo)), 65535.f));
    }
    return hi + lse - logits[next_token];
}

RecordScale record_scale(const uint16_t* record) {
    RecordScale s;
    std::memcpy(&s.scale, record, sizeof s.scale);
    std::memcpy(&s.min_log_prob, record + 2, sizeof s.min_log_prob);
    return s;
}

void check_record(const uint16_t* record, int n_vocab, const std::string& where) {
    const RecordScale s = record_scale(record);
    const float slack = 1e-2f;
    const bool ok = s.scale >= 0 && s.scale <= (16 + slack) / 65535 &&
                    s.min_log_prob >= -16 - std::log(static_cast<float>(n_vocab)) - slack &&
                    s.min_log_prob + 65535 * s.scale <= slack;
    if (!ok)
        throw std::runtime_error(where + " is not a coded log-probability distribution (scale " +
                                 std::to_string(s.scale) + ", minimum log-prob " +
                                 std::to_string(s.min_log_prob) +
                                 "): the file is corrupt or not a llama.cpp base");
}

LogitsFileWriter::LogitsFileWriter(const std::string& path, int n_ctx, int n_vocab, int n_chunks,
                                   std::span<const int32_t> tokens)
    : path_(path), out_(path, std::ios::binary | std::ios::trunc) {
    h_.n_ctx = n_ctx, h_.n_vocab = n_vocab, h_.n_chunks = n_chunks;
    if (n_ctx < 3 || n_vocab < 1 || n_chunks < 1)
        throw std::invalid_argument(
            "a KL-divergence base needs a context of 3 or more, a vocabulary and a chunk");
    if (tokens.size() != static_cast<size_t>(n_chunks) * static_cast<size_t>(n_ctx))
        throw std::invalid_argument("a KL-divergence base holds n_chunks * n_ctx tokens (" +
                                    str(static_cast<uint64_t>(n_chunks) * n_ctx) + "), given " +
                                    str(tokens.size()));
    if (!out_) throw std::runtime_error("cannot write the KL-divergence base " + path);
    const int32_t ints[3] = {n_ctx, n_vocab, n_chunks};
    out_.write(kMagic, sizeof kMagic);
    out_.write(reinterpret_cast<const char*>(ints), sizeof ints);
    out_.write(reinterpret_cast<const char*>(tokens.data()),
               static_cast<std::streamsize>(tokens.size_bytes()));
    if (!out_) throw std::runtime_error("write failed: " + path);
}

void LogitsFileWriter::write_records(const uint16_t* records, size_t n) {
    const uint64_t total = static_cast<uint64_t>(h_.n_chunks) * scored_per_chunk(h_.n_ctx);
    if (records_written_ + n > total)
        throw std::logic_error("more records than the base's header announces (" + str(total) + ")");
    out_.write(reinterpret_cast<const char*>(records),
               static_cast<std::streamsize>(n * record_values(h_.n_vocab) * sizeof(uint16_t)));
    if (!out_) throw std::runtime_error("write failed: " + path_ + " (disk full?)");
    records_written_ += n;
}

void LogitsFileWriter::finish() {
    const uint64_t total = static_cast<uint64_t>(h_.n_chunks) * scored_per_chunk(h_.n_ctx);
    if (records_written_ != total)
        throw std::logic_error("the base " + path_ + " got " + str(records_written_) + " of its " +
                               str(total) + " records");
    out_.flush();
    out_.close();
    if (!out_) throw std::runtime_error("write failed: " + path_ + " (disk full?)");
}

LogitsFileReader::LogitsFileReader(const std::string& path) : name_(path) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    auto in = std::make_unique<std::ifstream>(path, std::ios::binary);
    if (ec || !*in) throw std::runtime_error("cannot read the KL-divergence base " + path);
    in_ = std::move(in);
    open(size);
}

LogitsFileReader::LogitsFileReader(std::unique_ptr<std::istream> in, uint64_t size, const std::string& name)
    : name_(name), in_(std::move(in)) {
    open(size);
}

void LogitsFileReader::open(uint64_t size) {
    char magic[sizeof kMagic] = {};
    int32_t ints[3] = {};
    in_->read(magic, sizeof magic);
    if (!*in_ || std::memcmp(magic, kMagic, sizeof kMagic) != 0)
        throw std::runtime_error(
            name_ +
            " is not a llama.cpp KL-divergence base (it does not start with \"_logits_\"): " + kMakeOne);
    in_->read(reinterpret_cast<char*>(ints), sizeof ints);
    if (!*in_) throw std::runtime_error(name_ + " is truncated: it ends inside its header");
    h_.n_ctx = ints[0], h_.n_vocab = ints[1], h_.n_chunks = ints[2];
    if (h_.n_ctx < 3 || h_.n_ctx > kMaxCtx || h_.n_vocab < 1 || h_.n_vocab > kMaxVocab || h_.n_chunks < 1 ||
        h_.n_chunks > kMaxCtx)
        throw std::runtime_error(name_ + " has an impossible header (context " + std::to_string(h_.n_ctx) +
                                 ", vocabulary " + std::to_string(h_.n_vocab) + ", chunks " +
                                 std::to_string(h_.n_chunks) +
                                 "): the file is corrupt or not a llama.cpp base");
    if (static_cast<uint64_t>(h_.n_chunks) > (uint64_t{1} << 62) / h_.chunk_bytes())  // no file is that large
        throw std::runtime_error(name_ + " announces " + std::to_string(h_.n_chunks) + " chunks of " +
                                 std::to_string(h_.n_ctx) + " tokens over a vocabulary of " +
                                 std::to_string(h_.n_vocab) +
                                 ", more than any file holds: the file is corrupt or not a llama.cpp base");
    if (size < h_.header_bytes())
        throw std::runtime_error(name_ + " is truncated: its header announces " +
                                 std::to_string(h_.n_chunks) + " chunks of " + std::to_string(h_.n_ctx) +
                                 " tokens, and the file ends inside the tokens");
    if (size > h_.file_bytes())
        throw std::runtime_error(name_ + " has " + str(size - h_.file_bytes()) +
                                 " bytes more than its header announces (" + str(h_.file_bytes()) +
                                 "): the file is corrupt or not a llama.cpp base");
    complete_chunks_ = static_cast<int>((size - h_.header_bytes()) / h_.chunk_bytes());
    tokens_.resize(static_cast<size_t>(h_.n_chunks) * static_cast<size_t>(h_.n_ctx));
    in_->read(reinterpret_cast<char*>(tokens_.data()),
              static_cast<std::streamsize>(tokens_.size() * sizeof(int32_t)));
    if (!*in_) throw std::runtime_error(name_ + " is truncated: it ends inside its tokens");
    for (size_t i = 0; i < tokens_.size(); ++i)
        if (tokens_[i] < 0 || tokens_[i] >= h_.n_vocab)
            throw std::runtime_error(name_ + ": token " + str(i) + " is " + std::to_string(tokens_[i]) +
                                     ", outside its vocabulary of " + std::to_string(h_.n_vocab) +
                                     ": the file is corrupt or not a llama.cpp base");
}

void LogitsFileReader::read_records(uint16_t* out, size_t n) {
    const size_t nv = record_values(h_.n_vocab);
    const int per_chunk = scored_per_chunk(h_.n_ctx);
    const uint64_t chunk = (records_read_ + n - 1) / static_cast<uint64_t>(per_chunk);
    if (n == 0) return;
    if (chunk >= static_cast<uint64_t>(complete_chunks_))
        throw std::runtime_error(name_ + " holds " + std::to_string(complete_chunks_) +
                                 " whole chunks of the " + std::to_string(h_.n_chunks) +
                                 " its header announces (it was cut short): score at most " +
                                 std::to_string(complete_chunks_) + " with --chunks");
    in_->read(reinterpret_cast<char*>(out), static_cast<std::streamsize>(n * nv * sizeof(uint16_t)));
    if (!*in_) throw std::runtime_error(name_ + ": read failed in chunk " + str(chunk + 1));
    for (size_t i = 0; i < n; ++i) {
        const uint64_t r = records_read_ + i;
        check_record(out + i * nv, h_.n_vocab,
                     name_ + ": chunk " + str(r / per_chunk + 1) + ", position " + str(r % per_chunk + 1));
    }
    records_read_ += n;
}

}  // namespace strata
