// Tokenizers that reproduce llama.cpp's exactly: SentencePiece-style ("llama" vocab: score-driven bigram
// merges, byte fallback) and byte-level BPE ("gpt2" vocab: llama.cpp's pre-tokenizer regexes per
// tokenizer.ggml.pre, run with PCRE2, then merge ranks). Built from GGUF metadata (tokenizer.ggml.*); the
// llama2.c tokenizer.bin vocab is accepted too when a loader presents it under the same keys (raw spaces and
// "\n<s>\n" are normalised).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "loaders/metadata.h"

namespace strata {

namespace unicode {
class RegexSplitter;
}

class Tokenizer {
  public:
    enum class Kind { SPM, BPE };

    // tokenizer.ggml.model "llama" (SPM) or "gpt2" (BPE); anything else throws std::runtime_error naming the
    // model and what is supported, as does an unknown tokenizer.ggml.pre for BPE. Special-token ids that are
    // present must be in range (0xFFFFFFFF / -1 mean "none"); array lengths must agree.
    static Tokenizer from_metadata(const Metadata& meta);

    // The tokenizer.ggml.pre names accepted for BPE vocabularies.
    static std::vector<std::string> supported_pre_tokenizers();

    // add_special: BOS/EOS as tokenizer.ggml.add_bos_token / add_eos_token say (llama.cpp's per-type defaults
    // when absent). parse_special: control/unknown token strings in the text become those tokens
    // (user-defined tokens are always matched, as in llama.cpp). Invalid UTF-8 never throws: SPM falls back
    // to byte tokens per byte, BPE sees each invalid byte as U+FFFD (llama.cpp's behaviour).
    std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;

    // The bytes a token stands for (llama.cpp's llama_token_to_piece). special=true renders control/unknown
    // tokens as their text ("<|im_end|>"); special=false renders them as "".
    std::string token_to_piece(int32_t id, bool special = true) const;

    // llama.cpp's detokenize (common_detokenize): concatenated pieces, one leading space of the first piece
    // removed when the vocab adds a space prefix, and the BPE "clean spaces" pass where llama.cpp applies it.
    std::string decode(const std::vector<int32_t>& ids, bool special = true) const;

    int32_t n_vocab() const { return static_cast<int32_t>(tokens_.size()); }
    int32_t bos_id() const { return bos_; }  // -1 when the vocab has none
    int32_t eos_id() const { return eos_; }
    int32_t unk_id() const { return unk_; }
    int32_t eot_id() const { return eot_; }
    int32_t eom_id() const { return eom_; }
    int32_t pad_id() const { return pad_; }
    bool add_bos() const { return add_bos_; }
    bool add_eos() const { return add_eos_; }
    bool add_space_prefix() const { return add_space_prefix_; }
    Kind kind() const { return kind_; }
    const std::string& pre() const { return pre_; }  // tokenizer.ggml.pre as given ("" when absent)

    bool is_eog(int32_t id) const;      // end of generation, llama.cpp's special_eog_ids
    bool is_control(int32_t id) const;  // token type CONTROL (or promoted to it, as llama.cpp does)
    bool is_byte(int32_t id) const;
    const std::vector<int32_t>& eog_ids() const { return eog_ids_; }

    std::optional<int32_t> find_token(std::string_view text) const;  // exact vocab string lookup
    std::string_view token_text(int32_t id) const;                   // raw vocab string

    Tokenizer(Tokenizer&&) noexcept;
    Tokenizer& operator=(Tokenizer&&) noexcept;
    Tokenizer(const Tokenizer&);
    Tokenizer& operator=(const Tokenizer&);
    ~Tokenizer();

  private:
    Tokenizer();

    struct StringHash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };
    using TokenMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

    // llama.cpp's token attributes (a bit set)
    enum Attr : uint32_t {
        UNDEFINED = 0,
        UNKNOWN = 1 << 0,
        UNUSED = 1 << 1,
        NORMAL = 1 << 2,
        CONTROL = 1 << 3,
        USER_DEFINED = 1 << 4,
        BYTE = 1 << 5,
        NORMALIZED = 1 << 6,
        LSTRIP = 1 << 7,
        RSTRIP = 1 << 8,
        SINGLE_WORD = 1 << 9,
    };
    struct Fragment {
        int32_t token;          // >= 0: a special token; -1: text
        size_t offset, length;  // text fragments: a range of the input
    };

    void finish_setup(std::string_view model_name);
    std::vector<Fragment> partition_special(std::string_view text, bool parse_special) const;
    int32_t text_to_token(std::string_view text) const;  // -1 when absent
    int32_t byte_to_token(uint8_t byte) const;           // SPM byte fallback
    void spm_tokenize(const std::string& text, std::vector<int32_t>& out) const;
    void bpe_tokenize(std::string_view text, std::vector<int32_t>& out) const;
    int bpe_rank(const std::string& left, const std::string& right) const;
    void check_id(int32_t id) const;

    Kind kind_ = Kind::SPM;
    std::string pre_;
    std::vector<std::string> tokens_;
    std::vector<float> scores_;
    std::vector<uint32_t> attrs_;
    std::vector<std::string> pieces_;  // token_to_piece(id, special=true), cached as llama.cpp does
    TokenMap token_to_id_;
    std::unordered_map<std::string, int> bpe_ranks_;  // "left right" -> merge rank
    std::shared_ptr<const unicode::RegexSplitter> splitter_;
    std::vector<int32_t> special_cache_;  // control/user-defined/unknown ids, longest text first
    std::vector<int32_t> eog_ids_;        // sorted
    int32_t bos_ = -1, eos_ = -1, unk_ = -1, eot_ = -1, eom_ = -1, pad_ = -1;
    bool add_bos_ = false, add_eos_ = false, add_space_prefix_ = false;
    bool ignore_merges_ = false, clean_spaces_ = false;
};

// Streaming-safe decoding: feed token ids, get back only complete UTF-8 characters (a multi-byte character
// split across byte tokens comes out once its last byte arrives); flush() returns whatever is left. Pieces
// are token_to_piece(id, special): by default control tokens render as nothing, as in llama.cpp's CLI output.
class StreamDecoder {
  public:
    explicit StreamDecoder(const Tokenizer& tok, bool special = false) : tok_(tok), special_(special) {}
    std::string feed(int32_t id);
    std::string flush();

  private:
    const Tokenizer& tok_;
    bool special_;
    std::string pending_;
};

}  // namespace strata
