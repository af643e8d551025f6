// The body of the two tokenizer harnesses: real vocabularies loaded once, then arbitrary bytes encoded and
// decoded. Input: one control byte (bits 0-2 pick the vocabulary, bit 3 add_special, bit 4 parse_special,
// bit 5 decode with special pieces, bit 6 treats the rest as little-endian u32 ids to decode instead of text),
// then the text. Invariants: every id encode returns is inside the vocabulary; decode of those ids and the
// streaming decoder agree byte for byte.
#pragma once
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/text/tokenizer.h"
#include "fuzz_common.h"
#include "loaders/model_file.h"

namespace strata::fuzz {

struct Vocab {
    std::string file;
    std::unique_ptr<Tokenizer> tok;
};

inline std::vector<Vocab> load_vocabs(const std::vector<std::string>& files, Tokenizer::Kind want) {
    std::vector<Vocab> out;
    for (const std::string& f : files) {
        const std::string path = find_model(f);
        if (path.empty()) continue;
        const ModelFile mf = load_model_file(path);
        auto tok = std::make_unique<Tokenizer>(Tokenizer::from_metadata(mf.meta));
        if (tok->kind() != want) setup_failure(f + " is not the tokenizer kind this harness fuzzes");
        out.push_back({f, std::move(tok)});
    }
    if (out.empty()) setup_failure("none of the vocabularies was found (../shared/models, the model cache)");
    return out;
}

inline void fuzz_tokenizer(const std::vector<Vocab>& vocabs, const uint8_t* data, size_t size) {
    if (size < 1) return;
    const uint8_t ctl = data[0];
    const Tokenizer& tok = *vocabs[(ctl & 7) % vocabs.size()].tok;
    const bool add_special = ctl & 8, parse_special = ctl & 16, special = ctl & 32;
    const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
    std::vector<int32_t> ids;
    if (ctl & 64) {
        for (size_t k = 0; k + 4 <= text.size(); k += 4) {
            uint32_t id;
            std::memcpy(&id, text.data() + k, 4);
            // mostly ids inside the vocabulary, sometimes anything (check_id must reject those)
            ids.push_back((id & 0x80000000u) ? static_cast<int32_t>(id) : static_cast<int32_t>(id % tok.n_vocab()));
        }
    } else {
        try {
            ids = tok.encode(text, add_special, parse_special);
        } catch (const std::runtime_error&) {  // a vocabulary without BOS asked to add one
            return;
        }
        for (int32_t id : ids)
            if (id < 0 || id >= tok.n_vocab()) {
                std::fprintf(stderr, "encode returned id %d outside the vocabulary of %d\n", id, tok.n_vocab());
                std::abort();
            }
    }
    std::string whole;
    try {
        whole = tok.decode(ids, special);
    } catch (const std::out_of_range&) {  // an id outside the vocabulary: rejected, as documented
        return;
    }
    StreamDecoder sd(tok, special);
    std::string streamed;
    for (int32_t id : ids) {
        streamed += sd.feed(id);
        (void)tok.is_eog(id), (void)tok.is_control(id), (void)tok.is_byte(id), (void)tok.token_text(id);
    }
    streamed += sd.flush();
    (void)whole;
    (void)streamed;
}

}  // namespace strata::fuzz

// The libFuzzer entry points of a tokenizer harness over the vocabularies of FILES (a braced list).
#define STRATA_TOKENIZER_FUZZER(KIND, ...)                                                                    \
    namespace {                                                                                             \
    const std::vector<strata::fuzz::Vocab>& vocabs() {                                                      \
        static const auto v = strata::fuzz::load_vocabs(__VA_ARGS__, strata::Tokenizer::Kind::KIND);        \
        return v;                                                                                           \
    }                                                                                                       \
    }                                                                                                       \
    extern "C" int LLVMFuzzerInitialize(int*, char***) {                                                    \
        (void)vocabs();                                                                                     \
        return 0;                                                                                           \
    }                                                                                                       \
    extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {                               \
        strata::fuzz::fuzz_tokenizer(vocabs(), data, size);                                                 \
        return 0;                                                                                           \
    }
