// llama.cpp's KL-divergence base file, the one `llama-perplexity --kl-divergence-base FILE` writes and
// `--kl-divergence` reads, written and read here in the same layout so that either program reads the other's.
//
// Layout (little-endian, no padding):
//   char[8]  "_logits_"
//   int32    n_ctx             tokens per chunk
//   int32    n_vocab
//   int32    n_chunks
//   int32    tokens[n_chunks * n_ctx]
//                              the text's tokens as tokenized (BOS first when the vocab adds it), not
//                              with each chunk's first token replaced by BOS: readers do that
//   then per chunk, per scored position (n_ctx - 1 - n_ctx/2 of them: the second half, less the last), a
//   record of record_values(n_vocab) uint16:
//     float  scale             (2 uint16)
//     float  min_log_prob      (2 uint16)
//     uint16 v[n_vocab]        log p_i = scale * v_i + min_log_prob
//     uint16 0                 when n_vocab is odd (records stay 4-byte aligned)
//   Coding: over the logits l of the position, hi = max l, lo = max(min l, hi - 16),
//   lse = log sum exp(l - hi); scale = (hi - lo) / 65535, min_log_prob = lo - hi - lse,
//   v_i = round((l_i - lo) / scale) where l_i > lo, else 0. Log-probs are kept to within scale/2 <= 1.2e-4
//   nats; those more than 16 nats below the top are floored.
//
// A base is large (2 bytes per vocabulary entry per scored token: 0.5 MB per token for Gemma 3's 262k vocab,
// 13 GB for 100 chunks of 512), so both sides stream it: a few records at a time, never the whole file.
#pragma once
#include <cstdint>
#include <fstream>
#include <istream>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace strata {

// uint16 values per record: the two floats, the vocab, and one pad value when n_vocab is odd.
inline size_t record_values(int n_vocab) { return 2 * ((static_cast<size_t>(n_vocab) + 1) / 2) + 4; }
// Scored positions per chunk: [n_ctx/2, n_ctx - 1), each predicting the token after it.
inline int scored_per_chunk(int n_ctx) { return n_ctx - n_ctx / 2 - 1; }

struct LogitsFileHeader {
    int n_ctx = 0, n_vocab = 0, n_chunks = 0;
    uint64_t header_bytes() const;  // magic, the three ints and the tokens
    uint64_t chunk_bytes() const;   // the records of one chunk
    uint64_t file_bytes() const { return header_bytes() + static_cast<uint64_t>(n_chunks) * chunk_bytes(); }
};

// Codes one position's logits (n_vocab) into a record (record_values(n_vocab) uint16); returns the negative
// log-likelihood of next_token under those logits (computed before coding).
double code_log_probs(const float* logits, int n_vocab, int next_token, uint16_t* record);

// A record's two floats. Valid records (llama.cpp's and this writer's) have 0 <= scale <= 16/65535 and -16 -
// log(n_vocab) <= min_log_prob <= -(65535 * scale) (the top log-prob, -lse, is never positive), up to float
// rounding; check_record throws with `where` in the message for anything else (a foreign or corrupt file).
struct RecordScale {
    float scale, min_log_prob;
};
RecordScale record_scale(const uint16_t* record);
void check_record(const uint16_t* record, int n_vocab, const std::string& where);

// Writes a base as a run produces it: the header and tokens at once, then the records in order, chunk after
// chunk. finish() checks that every record was written; a writer dropped before that leaves a truncated file,
// which the reader reports as such (with the number of whole chunks it holds).
class LogitsFileWriter {
public:
    // tokens: (n_chunks * n_ctx) as tokenized.
    LogitsFileWriter(const std::string& path, int n_ctx, int n_vocab, int n_chunks,
                     std::span<const int32_t> tokens);
    const LogitsFileHeader& header() const { return h_; }
    const std::string& path() const { return path_; }
    // n records (n, record_values(n_vocab)) of the next positions.
    void write_records(const uint16_t* records, size_t n);
    void finish();

private:
    std::string path_;
    LogitsFileHeader h_;
    std::ofstream out_;
    uint64_t records_written_ = 0;
};

// Reads a base: the header and tokens when opened (checked against the stream's size, so that a truncated or
// foreign file is refused before anything runs), then the records in order.
class LogitsFileReader {
public:
    explicit LogitsFileReader(const std::string& path);
    // The same over any stream of `size` bytes (the fuzz harness reads from memory); `name` goes in messages.
    LogitsFileReader(std::unique_ptr<std::istream> in, uint64_t size, const std::string& name);

    const LogitsFileHeader& header() const { return h_; }
    const std::string& name() const { return name_; }
    const std::vector<int32_t>& tokens() const { return tokens_; }  // (n_chunks * n_ctx)
    // Whole chunks of records the file holds: n_chunks, or fewer for a file that was cut short.
    int complete_chunks() const { return complete_chunks_; }
    // Reads the next n records (n, record_values(n_vocab)) into out, each checked by check_record. Throws
    // when the file ends first.
    void read_records(uint16_t* out, size_t n);
    uint64_t records_read() const { return records_read_; }

private:
    void open(uint64_t size);
    std::string name_;
    std::unique_ptr<std::istream> in_;
    LogitsFileHeader h_;
    std::vector<int32_t> tokens_;
    int complete_chunks_ = 0;
    uint64_t records_read_ = 0;
};

}  // namespace strata
