// UTF-8 helpers and the regex pre-tokenizer for byte-level BPE, following llama.cpp's unicode.cpp behaviour
// (lenient UTF-8 decoding, Unicode White_Space as "\s", GPT-2 bytes_to_unicode), with PCRE2 as the regex
// engine.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace strata::unicode {

// Length of the UTF-8 sequence a byte starts, by its high nibble: 1 for ASCII and for stray continuation
// bytes, 2/3/4 for lead bytes (llama.cpp's unicode_len_utf8; no validation).
size_t utf8_len(uint8_t lead);

// Decodes like llama.cpp's unicode_cpts_from_utf8: overlong forms and surrogates are accepted as they decode;
// a stray continuation byte, a bad lead byte or a truncated sequence gives U+FFFD and consumes one byte.
// One difference: a sequence that decodes above U+10FFFF (F4 90.., F5..F7 leads) also gives U+FFFD for its
// lead byte, where llama.cpp would throw while re-encoding it.
std::vector<uint32_t> decode_utf8(std::string_view s);

// Appends cpt as UTF-8 (surrogates are encoded as their 3 bytes, as llama.cpp does; cpt must be <= 0x10FFFF).
void append_utf8(std::string& out, uint32_t cpt);

// Unicode White_Space: the set llama.cpp's tables call whitespace (25 code points).
bool is_whitespace(uint32_t cpt);

// GPT-2's bytes_to_unicode: the printable stand-in (as UTF-8) for a raw byte, and back.
const std::string& byte_to_bpe_char(uint8_t byte);
std::optional<uint8_t> bpe_char_to_byte(uint32_t cpt);

// Number of leading bytes of s that form complete UTF-8 sequences, leaving out a trailing sequence that is
// still incomplete (a lead byte followed by fewer continuation bytes than it announces). Invalid bytes count
// as complete: they will never become valid by waiting.
size_t complete_utf8_prefix(std::string_view s);

// Splits text the way llama.cpp's unicode_regex_split does for a list of regexes: each regex splits every
// piece the previous one produced; the text between matches is kept as pieces of its own. The regexes are
// llama.cpp's strings (ECMAScript flavour); they are translated for PCRE2 (UTF + UCP): "\s" becomes an
// explicit ASCII whitespace class and non-ASCII White_Space is matched as U+000B, which is what llama.cpp's
// std::regex path and its custom splitters both see.
class RegexSplitter {
  public:
    explicit RegexSplitter(const std::vector<std::string>& regexes);
    ~RegexSplitter();
    RegexSplitter(const RegexSplitter&) = delete;
    RegexSplitter& operator=(const RegexSplitter&) = delete;

    // The words, as UTF-8 of the leniently decoded code points (invalid bytes became U+FFFD).
    std::vector<std::string> split(std::string_view text) const;

    // The PCRE2 pattern a llama.cpp regex is translated to (exposed for tests and error messages).
    static std::string translate(std::string_view regex);

  private:
    struct Compiled;
    std::vector<std::unique_ptr<Compiled>> compiled_;
};

}  // namespace strata::unicode
