// Tokenizers against llama.cpp's own test vectors (models/ggml-vocab-*.gguf{,.inp,.out}), the llama2.c vocab,
// and (when present) golden SmolLM2 tokenizations produced by llama.cpp.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include "core/text/tokenizer.h"
#include "core/text/unicode.h"
#include "loaders/mapped_file.h"
#include "loaders/model_file.h"

using namespace strata;
namespace fs = std::filesystem;

namespace {

const std::string kShared = STRATA_SHARED_MODELS;

std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

std::vector<std::string> split(const std::string& s, const std::string& sep) {
    std::vector<std::string> out;
    size_t pos = 0;
    for (size_t hit; (hit = s.find(sep, pos)) != std::string::npos; pos = hit + sep.size())
        out.push_back(s.substr(pos, hit - pos));
    out.push_back(s.substr(pos));
    return out;
}

struct VocabCase {
    std::string text;
    std::vector<int32_t> ids;
};

// llama.cpp's tests/test-tokenizer-0 format: inputs separated by "\n__ggml_vocab_test__\n" (with a trailing
// separator), one line of space-separated ids per input.
std::vector<VocabCase> load_cases(const std::string& base) {
    auto inputs = split(read_file(base + ".inp"), "\n__ggml_vocab_test__\n");
    if (!inputs.empty() && inputs.back().empty()) inputs.pop_back();
    auto lines = split(read_file(base + ".out"), "\n");
    std::vector<VocabCase> cases;
    for (size_t i = 0; i < inputs.size(); ++i) {
        VocabCase c{inputs[i], {}};
        std::istringstream ls(i < lines.size() ? lines[i] : "");
        for (int32_t id; ls >> id;) c.ids.push_back(id);
        cases.push_back(std::move(c));
    }
    return cases;
}

std::string show(const std::vector<int32_t>& ids) {
    std::string s;
    for (int32_t id : ids) {
        if (!s.empty()) s += ' ';
        s += std::to_string(id);
    }
    return s;
}

// Loaded once per vocab file; the tokenizer keeps its own copies, so the mapping can go.
const Tokenizer* vocab(const std::string& name) {
    static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
    auto it = cache.find(name);
    if (it != cache.end()) return it->second.get();
    const std::string path = kShared + "/" + name;
    if (!fs::exists(path)) return nullptr;
    ModelFile mf = read_gguf(MappedFile::open(path));
    auto tok = std::make_unique<Tokenizer>(Tokenizer::from_metadata(mf.meta));
    return cache.emplace(name, std::move(tok)).first->second.get();
}

const Tokenizer* smollm2() {
    static std::unique_ptr<Tokenizer> tok;
    static bool tried = false;
    if (!tried) {
        tried = true;
        const std::string path = std::string(STRATA_MODEL_CACHE) + "/SmolLM2-135M-Instruct.Q4_1.gguf";
        if (fs::exists(path))
            tok =
                std::make_unique<Tokenizer>(Tokenizer::from_metadata(read_gguf(MappedFile::open(path)).meta));
    }
    return tok.get();
}

void check_vocab_vectors(const Tokenizer& tok, const std::string& base) {
    const auto cases = load_cases(base);
    ASSERT_FALSE(cases.empty());
    size_t pass = 0;
    for (const auto& c : cases) {
        const auto got = tok.encode(c.text, /*add_special=*/false, /*parse_special=*/false);
        if (got == c.ids) {
            ++pass;
        } else {
            ADD_FAILURE() << "text: '" << c.text << "'\n  expected: " << show(c.ids)
                          << "\n  got:      " << show(got);
        }
    }
    std::cout << "[          ] " << fs::path(base).filename().string() << ": " << pass << "/" << cases.size()
              << " cases match llama.cpp\n";
}

#define REQUIRE_VOCAB(var, name)        \
    const Tokenizer* var = vocab(name); \
    if (!var) GTEST_SKIP() << kShared << "/" << name << " is absent";

}  // namespace

// ---- llama.cpp test vectors -------------------------------------------------------------------------------

TEST(TokenizerVectors, LlamaSpm) {
    REQUIRE_VOCAB(tok, "ggml-vocab-llama-spm.gguf");
    EXPECT_EQ(tok->kind(), Tokenizer::Kind::SPM);
    EXPECT_EQ(tok->n_vocab(), 32000);
    check_vocab_vectors(*tok, kShared + "/ggml-vocab-llama-spm.gguf");
}

TEST(TokenizerVectors, Phi3) {
    REQUIRE_VOCAB(tok, "ggml-vocab-phi-3.gguf");
    check_vocab_vectors(*tok, kShared + "/ggml-vocab-phi-3.gguf");
}

TEST(TokenizerVectors, Gpt2) {
    REQUIRE_VOCAB(tok, "ggml-vocab-gpt-2.gguf");
    EXPECT_EQ(tok->kind(), Tokenizer::Kind::BPE);
    check_vocab_vectors(*tok, kShared + "/ggml-vocab-gpt-2.gguf");
}

// The llama2.c tokenizer.bin holds the same vocabulary with raw spaces and "\n<s>\n"; presented under the
// GGUF keys (as loaders/llama2c_reader does, here without token types) it must tokenize like the llama-spm
// vocab.
TEST(TokenizerVectors, Llama2cTokenizerBin) {
    const std::string path = kShared + "/tokenizer.bin";
    if (!fs::exists(path)) GTEST_SKIP() << path << " is absent";
    const std::string bin = read_file(path);
    Metadata meta;
    MetaValue tokens, scores, model;
    tokens.type = scores.type = GGUFType::ARRAY;
    tokens.elem_type = GGUFType::STRING;
    scores.elem_type = GGUFType::F32;
    std::string score_bytes;
    size_t pos = 4;
    while (pos + 8 <= bin.size()) {
        int32_t len;
        score_bytes.append(bin, pos, 4);
        std::memcpy(&len, bin.data() + pos + 4, 4);
        pos += 8;
        ASSERT_LE(pos + len, bin.size());
        tokens.strs.push_back(meta.own(bin.substr(pos, len)));
        pos += len;
    }
    tokens.count = scores.count = tokens.strs.size();
    scores.raw = reinterpret_cast<const uint8_t*>(meta.own(std::move(score_bytes)).data());
    model.type = GGUFType::STRING;
    model.str = meta.own("llama");
    meta.set("tokenizer.ggml.tokens", tokens);
    meta.set("tokenizer.ggml.scores", scores);
    meta.set("tokenizer.ggml.model", model);
    const Tokenizer tok = Tokenizer::from_metadata(meta);
    ASSERT_EQ(tok.n_vocab(), 32000);
    EXPECT_EQ(tok.token_text(1), "<s>");
    EXPECT_TRUE(tok.is_control(1));
    EXPECT_TRUE(tok.is_byte(13));
    EXPECT_EQ(tok.token_to_piece(13), "\n");
    check_vocab_vectors(tok, kShared + "/ggml-vocab-llama-spm.gguf");
    if (const Tokenizer* gguf = vocab("ggml-vocab-llama-spm.gguf")) {
        for (int32_t id = 0; id < tok.n_vocab(); ++id) {
            ASSERT_EQ(tok.token_text(id), gguf->token_text(id)) << id;
        }
    }
}

// ---- round trips and decoding -----------------------------------------------------------------------------

namespace {
// Text llama.cpp's "clean spaces" pass would alter (BPE vocabs that enable it).
bool cleanup_sensitive(const std::string& s) {
    for (const char* p : {" ?", " !", " .", " ,", " '"})
        if (s.find(p) != std::string::npos) return true;
    return false;
}
}  // namespace

TEST(TokenizerRoundTrip, VocabStrings) {
    for (const char* name : {"ggml-vocab-llama-spm.gguf", "ggml-vocab-phi-3.gguf", "ggml-vocab-gpt-2.gguf"}) {
        const Tokenizer* tok = vocab(name);
        if (!tok) continue;
        size_t checked = 0;
        for (const auto& c : load_cases(kShared + "/" + name)) {
            const auto ids = tok->encode(c.text, false, false);
            std::string pieces;
            for (int32_t id : ids) pieces += tok->token_to_piece(id);
            if (tok->add_space_prefix() && !pieces.empty() && pieces[0] == ' ') pieces.erase(0, 1);
            EXPECT_EQ(pieces, c.text) << name;  // the pieces always give the text back
            if (tok->kind() == Tokenizer::Kind::BPE && cleanup_sensitive(c.text)) continue;
            EXPECT_EQ(tok->decode(ids), c.text) << name;
            ++checked;
        }
        EXPECT_GT(checked, 30u) << name;
    }
}

TEST(TokenizerRoundTrip, SpecialTokens) {
    REQUIRE_VOCAB(tok, "ggml-vocab-llama-spm.gguf");
    const auto ids = tok->encode("Hello world", /*add_special=*/true, false);
    ASSERT_FALSE(ids.empty());
    EXPECT_EQ(ids[0], tok->bos_id());
    EXPECT_TRUE(tok->add_bos());
    EXPECT_FALSE(tok->add_eos());
    EXPECT_EQ(tok->decode(ids),
              "<s> Hello world");  // llama.cpp: the space is only stripped from the first token
    EXPECT_EQ(tok->decode(ids, /*special=*/false), " Hello world");
    EXPECT_EQ(tok->token_to_piece(tok->eos_id()), "</s>");
    EXPECT_EQ(tok->token_to_piece(tok->eos_id(), false), "");
    EXPECT_TRUE(tok->is_eog(tok->eos_id()));
    EXPECT_FALSE(tok->is_eog(tok->bos_id()));
    EXPECT_EQ(tok->find_token("<0x0A>"), std::optional<int32_t>(13));
    EXPECT_FALSE(tok->find_token("no such token"));
    // parse_special turns "<s>" into BOS; without it the text is tokenized as text
    const auto parsed = tok->encode("<s>Hi", false, true);
    ASSERT_FALSE(parsed.empty());
    EXPECT_EQ(parsed[0], tok->bos_id());
    const auto plain = tok->encode("<s>Hi", false, false);
    EXPECT_EQ(std::count(plain.begin(), plain.end(), tok->bos_id()), 0);
}

TEST(TokenizerRoundTrip, Phi3SpecialsAndRstrip) {
    REQUIRE_VOCAB(tok, "ggml-vocab-phi-3.gguf");
    // "</s>" is user-defined in Phi-3's vocab, but llama.cpp lists it among the end-of-generation texts and
    // so makes it a control token: only parse_special splits it out. Phi-3 also strips the whitespace after
    // its special tokens (llama.cpp's per-model RSTRIP), so the next text fragment starts with just the space
    // prefix.
    const int32_t eos_s = *tok->find_token("</s>");
    EXPECT_TRUE(tok->is_control(eos_s));
    EXPECT_TRUE(tok->is_eog(eos_s));
    const auto a = tok->encode("a</s>  b", false, true);
    EXPECT_EQ(a, tok->encode("a</s>b", false, true));
    EXPECT_EQ(std::count(a.begin(), a.end(), eos_s), 1);
    const auto plain = tok->encode("a</s>b", false, false);
    EXPECT_EQ(std::count(plain.begin(), plain.end(), eos_s), 0);
    const auto end_id = tok->find_token("<|end|>");
    ASSERT_TRUE(end_id);
    EXPECT_TRUE(tok->is_eog(*end_id));
    EXPECT_TRUE(tok->is_eog(tok->eos_id()));
    EXPECT_EQ(tok->eos_id(), 32000);
}

TEST(TokenizerRoundTrip, Gpt2Specials) {
    REQUIRE_VOCAB(tok, "ggml-vocab-gpt-2.gguf");
    EXPECT_EQ(tok->bos_id(), 50256);
    EXPECT_FALSE(tok->add_bos());
    EXPECT_TRUE(tok->is_eog(50256));
    EXPECT_TRUE(tok->is_control(50256));
    EXPECT_EQ(tok->encode("a<|endoftext|>b", false, true), (std::vector<int32_t>{64, 50256, 65}));
    EXPECT_EQ(tok->decode({64, 50256, 65}), "a<|endoftext|>b");
    EXPECT_EQ(tok->decode({64, 50256, 65}, false), "ab");
    EXPECT_EQ(tok->decode(tok->encode("Hello , world !", false, false)), "Hello, world!");  // clean spaces
}

// ---- streaming
// ---------------------------------------------------------------------------------------------

namespace {
bool valid_utf8(const std::string& s) {
    const auto cpts = unicode::decode_utf8(s);
    return std::find(cpts.begin(), cpts.end(), 0xFFFDu) == cpts.end();
}

void check_stream(const Tokenizer& tok, const std::string& text, size_t min_split_tokens) {
    const auto ids = tok.encode(text, false, false);
    StreamDecoder sd(tok);
    std::string out;
    size_t empty_feeds = 0;
    for (int32_t id : ids) {
        const std::string part = sd.feed(id);
        EXPECT_TRUE(valid_utf8(part)) << "partial character leaked: " << part;
        empty_feeds += part.empty();
        out += part;
    }
    out += sd.flush();
    std::string want;
    for (int32_t id : ids) want += tok.token_to_piece(id, false);
    EXPECT_EQ(out, want);
    EXPECT_GE(empty_feeds, min_split_tokens - 1) << "the emoji should arrive over several tokens";
}
}  // namespace

TEST(TokenizerStream, EmojiOverByteTokens) {
    if (const Tokenizer* spm = vocab("ggml-vocab-llama-spm.gguf")) {
        const auto ids = spm->encode("🦙", false, false);  // no token for it: 4 byte tokens after "▁"
        EXPECT_EQ(std::count_if(ids.begin(), ids.end(), [&](int32_t id) { return spm->is_byte(id); }), 4);
        check_stream(*spm, " this is 🦙.cpp", 4);
        StreamDecoder sd(*spm);
        EXPECT_EQ(sd.feed(*spm->find_token("<0xF0>")), "");
        EXPECT_EQ(sd.feed(*spm->find_token("<0x9F>")), "");
        EXPECT_EQ(sd.feed(*spm->find_token("<0xA6>")), "");
        EXPECT_EQ(sd.feed(*spm->find_token("<0x99>")), "🦙");
        EXPECT_EQ(sd.feed(*spm->find_token("<0xF0>")), "");
        EXPECT_EQ(sd.flush(), "\xF0");                           // an unfinished character comes out on flush
        EXPECT_EQ(sd.feed(*spm->find_token("<0x80>")), "\x80");  // a stray continuation byte is not held
    }
    if (const Tokenizer* bpe = vocab("ggml-vocab-gpt-2.gguf")) {
        check_stream(*bpe, "llamas 🦙🦙", 2);
    }
    if (!vocab("ggml-vocab-llama-spm.gguf") && !vocab("ggml-vocab-gpt-2.gguf"))
        GTEST_SKIP() << "no vocab files";
}

// ---- invalid input ----------------------------------------------------------------------------------------

TEST(TokenizerInvalidUtf8, SpmFallsBackToBytes) {
    REQUIRE_VOCAB(tok, "ggml-vocab-llama-spm.gguf");
    const std::string bad = "a\x80\x80 b\xc3";  // stray continuation bytes, a truncated sequence at the end
    const auto ids = tok->encode(bad, false, false);
    EXPECT_EQ(tok->decode(ids), bad);  // byte tokens carry the invalid bytes through unchanged
    EXPECT_EQ(std::count(ids.begin(), ids.end(), *tok->find_token("<0x80>")), 2);
    // As in llama.cpp, a lead byte takes as many following bytes as it announces, whatever they are: here
    // 0xFF takes "\xfe" and the first two bytes of the U+2581 that stands for the space, which then come out
    // as bytes.
    const auto ids2 = tok->encode("\xff\xfe b", false, false);
    EXPECT_EQ(tok->decode(ids2),
              "\xff\xfe\xe2\x96\x81"
              "b");
}

TEST(TokenizerInvalidUtf8, BpeSeesReplacementCharacter) {
    REQUIRE_VOCAB(tok, "ggml-vocab-gpt-2.gguf");
    // llama.cpp decodes each invalid byte as U+FFFD before pre-tokenizing
    EXPECT_EQ(tok->encode("a\xff"
                          "b",
                          false, false),
              tok->encode("a\xEF\xBF\xBD"
                          "b",
                          false, false));
    EXPECT_EQ(tok->encode("x\xe2\x82", false, false), tok->encode("x\xEF\xBF\xBD\xEF\xBF\xBD", false, false));
    EXPECT_EQ(tok->encode(std::string("\xc0\x80", 2), false, false),
              tok->encode(std::string(1, '\0'), false, false));
    EXPECT_NO_THROW(tok->encode(std::string("\xf7\xbf\xbf\xbf\xed\xa0\x80\x80", 8), false, false));
}

// ---- errors
// ------------------------------------------------------------------------------------------------

namespace {
Metadata tiny_meta(const std::string& model, const std::string& pre) {
    Metadata m;
    MetaValue v;
    v.type = GGUFType::STRING;
    v.str = m.own(model);
    m.set("tokenizer.ggml.model", v);
    if (!pre.empty()) {
        v.str = m.own(pre);
        m.set("tokenizer.ggml.pre", v);
    }
    MetaValue arr;
    arr.type = GGUFType::ARRAY;
    arr.elem_type = GGUFType::STRING;
    for (const char* t : {"a", "b", "ab"}) arr.strs.push_back(m.own(t));
    arr.count = arr.strs.size();
    m.set("tokenizer.ggml.tokens", arr);
    MetaValue merges = arr;
    merges.strs = {m.own("a b")};
    merges.count = 1;
    m.set("tokenizer.ggml.merges", merges);
    return m;
}
std::string error_of(const Metadata& m) {
    try {
        Tokenizer::from_metadata(m);
    } catch (const std::exception& e) {
        return e.what();
    }
    return "";
}
}  // namespace

TEST(TokenizerErrors, UnknownModel) {
    const std::string err = error_of(tiny_meta("bert", ""));
    EXPECT_NE(err.find("'bert'"), std::string::npos) << err;
    EXPECT_NE(err.find("llama"), std::string::npos) << err;
    EXPECT_NE(err.find("gpt2"), std::string::npos) << err;
}

TEST(TokenizerErrors, UnknownPreTokenizer) {
    const std::string err = error_of(tiny_meta("gpt2", "no-such-pre"));
    EXPECT_NE(err.find("'no-such-pre'"), std::string::npos) << err;
    EXPECT_NE(err.find("smollm"), std::string::npos) << err;
    EXPECT_NE(err.find("llama-bpe"), std::string::npos) << err;
}

TEST(TokenizerErrors, IdsOutOfRange) {
    Metadata m = tiny_meta("gpt2", "gpt-2");
    MetaValue id;
    id.type = GGUFType::U32;
    id.u = 7, id.i = 7;
    m.set("tokenizer.ggml.eos_token_id", id);
    EXPECT_NE(error_of(m).find("out of range"), std::string::npos);
    id.u = id.i = 0xFFFFFFFFu;  // "none" (as stories260K.gguf writes for its padding id) is accepted
    m.set("tokenizer.ggml.eos_token_id", id);
    EXPECT_EQ(error_of(m), "");
}

TEST(TokenizerErrors, TinyBpeMerges) {
    const Tokenizer tok = Tokenizer::from_metadata(tiny_meta("gpt2", "gpt-2"));
    EXPECT_EQ(tok.encode("ab", false, false), (std::vector<int32_t>{2}));
    EXPECT_EQ(tok.encode("ba", false, false), (std::vector<int32_t>{1, 0}));
    EXPECT_THROW(tok.token_to_piece(3), std::out_of_range);
}

TEST(TokenizerRegex, SplitKeepsUnmatchedText) {
    const unicode::RegexSplitter gpt2(
        {"'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"});
    EXPECT_EQ(gpt2.split("Hello   world\n!"), (std::vector<std::string>{"Hello", "  ", " world", "\n", "!"}));
    // U+180E is \s for PCRE2's UCP but not White_Space for llama.cpp; U+0085 and U+3000 are whitespace
    EXPECT_EQ(gpt2.split("a\xe1\xa0\x8e"
                         "b"),
              (std::vector<std::string>{"a", "\xe1\xa0\x8e", "b"}));
    EXPECT_EQ(gpt2.split("a\xc2\x85\xc2\x85"
                         "b"),
              (std::vector<std::string>{"a", "\xc2\x85", "\xc2\x85", "b"}));
    const unicode::RegexSplitter digits({"\\p{N}"});
    EXPECT_EQ(digits.split("ab12"), (std::vector<std::string>{"ab", "1", "2"}));
}

// Every supported pre-tokenizer's regexes compile under PCRE2 and split without losing a byte (a byte-level BPE
// vocab can spell anything, so the pieces must give the text back).
TEST(TokenizerRegex, EveryPreTokenizerIsLossless) {
    const std::string path = kShared + "/ggml-vocab-gpt-2.gguf";
    if (!fs::exists(path)) GTEST_SKIP() << path << " is absent";
    ModelFile mf = read_gguf(MappedFile::open(path));
    const auto cases = load_cases(path);
    ASSERT_FALSE(cases.empty());
    const auto names = Tokenizer::supported_pre_tokenizers();
    EXPECT_GE(names.size(), 30u);
    for (const std::string& name : names) {
        MetaValue pre;
        pre.type = GGUFType::STRING;
        pre.str = mf.meta.own(name);
        mf.meta.set("tokenizer.ggml.pre", pre);
        const Tokenizer tok = Tokenizer::from_metadata(mf.meta);
        EXPECT_EQ(tok.pre(), name);
        for (const auto& c : cases) {
            std::string pieces;
            for (int32_t id : tok.encode(c.text, false, false)) pieces += tok.token_to_piece(id);
            ASSERT_EQ(pieces, c.text) << "pre-tokenizer " << name;
        }
    }
}

// ---- SmolLM2 (gpt2 vocab, pre "smollm") -------------------------------------------------------------------

TEST(TokenizerSmolLM2, Basics) {
    const Tokenizer* tok = smollm2();
    if (!tok) GTEST_SKIP() << STRATA_MODEL_CACHE << "/SmolLM2-135M-Instruct.Q4_1.gguf is absent";
    EXPECT_EQ(tok->pre(), "smollm");
    EXPECT_FALSE(tok->add_bos());
    EXPECT_EQ(tok->bos_id(), 1);
    EXPECT_EQ(tok->eos_id(), 2);
    EXPECT_TRUE(tok->is_eog(2));  // <|im_end|>
    EXPECT_TRUE(tok->is_eog(0));  // <|endoftext|>
    EXPECT_FALSE(tok->is_eog(1));
    const auto ids = tok->encode("<|im_start|>user\nHi<|im_end|>\n", false, true);
    ASSERT_GE(ids.size(), 4u);
    EXPECT_EQ(ids.front(), 1);
    EXPECT_EQ(std::count(ids.begin(), ids.end(), 2), 1);
    EXPECT_EQ(tok->decode(ids), "<|im_start|>user\nHi<|im_end|>\n");
    const auto plain = tok->encode("<|im_start|>", false, false);
    EXPECT_EQ(std::count(plain.begin(), plain.end(), 1), 0);
    EXPECT_EQ(tok->encode("12345", false, false).size(), 5u);  // smollm splits digits one by one
}

// ---- SmolLM2 golden tokenizations from llama.cpp (tests/golden/smollm2_tokenize.json)
// ----------------------

using nlohmann::json;

TEST(TokenizerSmolLM2, GoldenFromLlamaCpp) {
    const std::string path = std::string(STRATA_TEST_DATA) + "/golden/smollm2_tokenize.json";
    if (!fs::exists(path)) GTEST_SKIP() << path << " is absent (tests/reference/make_golden.py writes it)";
    const Tokenizer* tok = smollm2();
    if (!tok) GTEST_SKIP() << STRATA_MODEL_CACHE << "/SmolLM2-135M-Instruct.Q4_1.gguf is absent";
    const json root = json::parse(read_file(path));
    size_t pass = 0, total = 0;
    const auto check = [&](const json& c) {
        ++total;
        const std::string text = c["text"];
        const auto want = c["ids"].get<std::vector<int32_t>>();
        const auto got = tok->encode(text, c["add_special"], c["parse_special"]);
        if (got == want) {
            ++pass;
        } else {
            ADD_FAILURE() << "text: '" << text << "' (parse_special=" << c["parse_special"].get<bool>()
                          << ")\n  expected: " << show(want) << "\n  got:      " << show(got);
        }
    };
    for (const json& c : root["cases"]) check(c);
    check(root["add_special_case"]);
    EXPECT_GT(total, 100u);
    std::cout << "[          ] smollm2_tokenize.json: " << pass << "/" << total << " cases match llama.cpp\n";
}
