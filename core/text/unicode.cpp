#include "core/text/unicode.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <array>
#include <stdexcept>

namespace strata::unicode {

size_t utf8_len(uint8_t lead) {
    static constexpr uint8_t lookup[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lookup[lead >> 4];
}

namespace {
constexpr uint32_t kReplacement = 0xFFFD;

bool is_cont(uint8_t b) {
    return (b & 0xC0) == 0x80;
}

// One code point at s[i], llama.cpp's rules; nullopt for an invalid sequence.
std::optional<uint32_t> decode_one(std::string_view s, size_t& i) {
    const auto b = [&](size_t k) { return static_cast<uint8_t>(s[i + k]); };
    const uint8_t b0 = b(0);
    if (!(b0 & 0x80)) {
        i += 1;
        return b0;
    }
    if (!(b0 & 0x40)) return std::nullopt;  // stray continuation byte
    if (!(b0 & 0x20)) {
        if (i + 1 >= s.size() || !is_cont(b(1))) return std::nullopt;
        const uint32_t c = (uint32_t(b0 & 0x1F) << 6) | (b(1) & 0x3F);
        i += 2;
        return c;
    }
    if (!(b0 & 0x10)) {
        if (i + 2 >= s.size() || !is_cont(b(1)) || !is_cont(b(2))) return std::nullopt;
        const uint32_t c = (uint32_t(b0 & 0x0F) << 12) | (uint32_t(b(1) & 0x3F) << 6) | (b(2) & 0x3F);
        i += 3;
        return c;
    }
    if (!(b0 & 0x08)) {
        if (i + 3 >= s.size() || !is_cont(b(1)) || !is_cont(b(2)) || !is_cont(b(3))) return std::nullopt;
        const uint32_t c = (uint32_t(b0 & 0x07) << 18) | (uint32_t(b(1) & 0x3F) << 12) |
                           (uint32_t(b(2) & 0x3F) << 6) | (b(3) & 0x3F);
        if (c > 0x10FFFF) return std::nullopt;  // llama.cpp would throw later; we replace instead
        i += 4;
        return c;
    }
    return std::nullopt;  // F8..FF
}
}  // namespace

std::vector<uint32_t> decode_utf8(std::string_view s) {
    std::vector<uint32_t> out;
    out.reserve(s.size());
    size_t i = 0;
    while (i < s.size()) {
        if (auto c = decode_one(s, i)) {
            out.push_back(*c);
        } else {
            out.push_back(kReplacement);
            ++i;
        }
    }
    return out;
}

void append_utf8(std::string& out, uint32_t cpt) {
    if (cpt <= 0x7F) {
        out.push_back(static_cast<char>(cpt));
    } else if (cpt <= 0x7FF) {
        out.push_back(static_cast<char>(0xC0 | (cpt >> 6)));
        out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
    } else if (cpt <= 0xFFFF) {
        out.push_back(static_cast<char>(0xE0 | (cpt >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
    } else if (cpt <= 0x10FFFF) {
        out.push_back(static_cast<char>(0xF0 | (cpt >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cpt >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
    } else {
        throw std::invalid_argument("append_utf8: code point above U+10FFFF");
    }
}

bool is_whitespace(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000;
}

namespace {
struct ByteMap {
    std::array<std::string, 256> to_char;
    std::array<int16_t, 512> to_byte;  // indexed by code point (all stand-ins are < 512); -1 = none
    ByteMap() {
        to_byte.fill(-1);
        int next = 256;
        for (int b = 0; b < 256; ++b) {
            const bool printable =
                (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            const uint32_t cpt = printable ? b : next++;
            append_utf8(to_char[b], cpt);
            to_byte[cpt] = static_cast<int16_t>(b);
        }
    }
};
const ByteMap& byte_map() {
    static const ByteMap m;
    return m;
}
}  // namespace

const std::string& byte_to_bpe_char(uint8_t byte) {
    return byte_map().to_char[byte];
}

std::optional<uint8_t> bpe_char_to_byte(uint32_t cpt) {
    if (cpt >= 512 || byte_map().to_byte[cpt] < 0) return std::nullopt;
    return static_cast<uint8_t>(byte_map().to_byte[cpt]);
}

size_t complete_utf8_prefix(std::string_view s) {
    const size_t n = s.size();
    // Walk back over at most 3 continuation bytes to the byte that starts the last sequence.
    size_t k = 0;
    while (k < 3 && k < n && is_cont(static_cast<uint8_t>(s[n - 1 - k]))) ++k;
    if (k == n) return n;  // only continuation bytes: nothing can complete them
    const size_t start = n - 1 - k;
    const uint8_t lead = static_cast<uint8_t>(s[start]);
    if (lead < 0xC0 || lead >= 0xF8) return n;  // ASCII, stray continuation run, or an invalid lead
    return (start + utf8_len(lead) > n) ? start : n;
}

// ---- regex splitting --------------------------------------------------------------------------------------

namespace {
// What llama.cpp's regex engines see as "\s" once non-ASCII White_Space is mapped to U+000B.
constexpr const char* kSpaceClassBody = "\\t\\n\\x{0B}\\f\\r ";
}  // namespace

std::string RegexSplitter::translate(std::string_view re) {
    std::string out;
    out.reserve(re.size() + 32);
    bool in_class = false;
    for (size_t i = 0; i < re.size(); ++i) {
        const char c = re[i];
        if (c == '\\' && i + 1 < re.size()) {
            const char e = re[++i];
            if (e == 's') {
                out += in_class ? std::string(kSpaceClassBody) : "[" + std::string(kSpaceClassBody) + "]";
            } else if (e == 'S') {
                if (in_class)
                    throw std::runtime_error("regex '" + std::string(re) +
                                             "': \\S inside a class is not supported");
                out += "[^" + std::string(kSpaceClassBody) + "]";
            } else if (e == 'd') {  // ECMAScript \d is ASCII-only; PCRE2 with UCP would take any Nd
                out += in_class ? "0-9" : "[0-9]";
            } else {
                out += '\\';
                out += e;
            }
            continue;
        }
        if (c == '[' && !in_class) {
            in_class = true;
        } else if (c == ']' && in_class) {
            in_class = false;
        }
        out += c;
    }
    return out;
}

struct RegexSplitter::Compiled {
    std::string source;
    pcre2_code* code = nullptr;
    ~Compiled() { pcre2_code_free(code); }
};

RegexSplitter::RegexSplitter(const std::vector<std::string>& regexes) {
    for (const auto& re : regexes) {
        auto comp = std::make_unique<Compiled>();
        comp->source = re;
        const std::string pattern = translate(re);
        int err = 0;
        PCRE2_SIZE err_off = 0;
        comp->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &err, &err_off, nullptr);
        if (!comp->code) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(err, msg, sizeof msg);
            throw std::runtime_error("pre-tokenizer regex '" + re + "' does not compile with PCRE2 (as '" +
                                     pattern + "'): " + reinterpret_cast<const char*>(msg) + " at offset " +
                                     std::to_string(err_off));
        }
        pcre2_jit_compile(comp->code, PCRE2_JIT_COMPLETE);  // optional speed-up; interpreter otherwise
        compiled_.push_back(std::move(comp));
    }
}

RegexSplitter::~RegexSplitter() = default;

std::vector<std::string> RegexSplitter::split(std::string_view text) const {
    const std::vector<uint32_t> cpts = decode_utf8(text);
    const size_t n = cpts.size();
    if (n == 0) return {};

    // The subject PCRE2 sees: non-ASCII whitespace as U+000B (llama.cpp does the same before std::regex),
    // surrogates (which PCRE2 rejects in UTF-8) as U+E000, another "other" (C) code point.
    std::string shadow;
    std::vector<size_t> shadow_off(n + 1);  // code point index -> byte offset in shadow
    for (size_t i = 0; i < n; ++i) {
        shadow_off[i] = shadow.size();
        uint32_t c = cpts[i];
        if (c >= 0x80 && is_whitespace(c)) c = 0x0B;
        if (c >= 0xD800 && c <= 0xDFFF) c = 0xE000;
        append_utf8(shadow, c);
    }
    shadow_off[n] = shadow.size();
    const auto cpt_at = [&](size_t byte_off) {
        return static_cast<size_t>(std::lower_bound(shadow_off.begin(), shadow_off.end(), byte_off) -
                                   shadow_off.begin());
    };

    std::vector<std::pair<size_t, size_t>> pieces{{0, n}};  // code point ranges [begin, end)
    for (const auto& comp : compiled_) {
        const std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md_owner(
            pcre2_match_data_create_from_pattern(comp->code, nullptr), &pcre2_match_data_free);
        pcre2_match_data* md = md_owner.get();
        if (!md) throw std::bad_alloc();
        std::vector<std::pair<size_t, size_t>> next;
        next.reserve(pieces.size() * 2);
        for (const auto& [b, e] : pieces) {
            const size_t sb = shadow_off[b];
            const size_t len = shadow_off[e] - sb;
            const auto* subject = reinterpret_cast<PCRE2_SPTR>(shadow.data() + sb);
            size_t pos = 0, last = 0;
            while (pos < len) {
                const int rc = pcre2_match(comp->code, subject, len, pos, PCRE2_NO_UTF_CHECK, md, nullptr);
                if (rc == PCRE2_ERROR_NOMATCH) break;
                if (rc < 0) {
                    PCRE2_UCHAR msg[256];
                    pcre2_get_error_message(rc, msg, sizeof msg);
                    throw std::runtime_error("pre-tokenizer regex '" + comp->source +
                                             "' failed to match: " + reinterpret_cast<const char*>(msg));
                }
                const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
                const size_t ms = ov[0], me = ov[1];
                if (me == ms) {  // empty match (none of llama.cpp's regexes produce one): step one character
                    if (ms >= len) break;
                    pos = ms + utf8_len(static_cast<uint8_t>(shadow[sb + ms]));
                    continue;
                }
                if (ms > last) next.emplace_back(cpt_at(sb + last), cpt_at(sb + ms));
                next.emplace_back(cpt_at(sb + ms), cpt_at(sb + me));
                last = pos = me;
            }
            if (last < len) next.emplace_back(cpt_at(sb + last), e);
        }
        pieces = std::move(next);
    }

    std::vector<std::string> words;
    words.reserve(pieces.size());
    for (const auto& [b, e] : pieces) {
        std::string w;
        for (size_t i = b; i < e; ++i) append_utf8(w, cpts[i]);
        words.push_back(std::move(w));
    }
    return words;
}

}  // namespace strata::unicode
