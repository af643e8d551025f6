// llama.cpp KL-divergence base files (--kl-divergence-base FILE --kl-divergence): the reader's header, tokens
// and every record of every whole chunk, each record scored against fixed logits as perplexity does.
// Rejections are std::runtime_error naming the file; anything else is a finding, and so is a reader that
// accepts a header the input cannot hold or a record whose scores are not finite.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/analysis/kl_divergence.h"
#include "core/analysis/logits_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace strata;
    try {
        LogitsFileReader r(
            std::make_unique<std::istringstream>(std::string(reinterpret_cast<const char*>(data), size)),
            size, "fuzz.kld");
        const LogitsFileHeader& h = r.header();
        if (h.header_bytes() > size || r.complete_chunks() < 0 || r.complete_chunks() > h.n_chunks ||
            h.header_bytes() + static_cast<uint64_t>(r.complete_chunks()) * h.chunk_bytes() > size)
            std::abort();
        if (r.complete_chunks() == 0) return 0;
        std::vector<uint16_t> record(record_values(h.n_vocab));
        std::vector<float> logits(static_cast<size_t>(h.n_vocab));  // fixed, finite, varied
        for (size_t i = 0; i < logits.size(); ++i) logits[i] = std::sin(0.37f * static_cast<float>(i)) * 8;
        const uint64_t n = static_cast<uint64_t>(r.complete_chunks()) * scored_per_chunk(h.n_ctx);
        for (uint64_t i = 0; i < n; ++i) {
            r.read_records(record.data(), 1);
            const int next = r.tokens()[i % r.tokens().size()];
            const TokenKl t = score_position(logits.data(), h.n_vocab, record.data(), next);
            if (!std::isfinite(t.kld) || !std::isfinite(t.nll_base) || !std::isfinite(t.p_diff)) std::abort();
        }
        if (r.complete_chunks() < h.n_chunks) {  // a cut file: the next record is refused
            r.read_records(record.data(), 1);
            std::abort();
        }
    } catch (const std::runtime_error&) {
    }
    return 0;
}
