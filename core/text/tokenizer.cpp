// Reproduces llama.cpp's llama-vocab.cpp tokenization (SPM and BPE sessions, tokenizer_st_partition,
// special-token and end-of-generation detection, detokenize) from the published behaviour, written anew.
#include "core/text/tokenizer.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <queue>
#include <stdexcept>

#include "core/text/unicode.h"

namespace strata {

namespace {

// ---- pre-tokenizers: llama.cpp's regex lists per tokenizer.ggml.pre ---------------------------------------

const std::string kGpt2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
// llama.cpp's form of "(?i:'s|'t|'re|'ve|'m|'ll|'d)|..." (case-insensitive contractions spelled out).
const std::string kContractions = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";
const std::string kLlama3 = kContractions +
                            "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
                            "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const std::string kQwen2 =
    kContractions +
    "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const std::string kQwen35 = kContractions +
                            "|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| "
                            "?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const std::string kBloom = " ?[^(\\s|.,!?…。，、।۔،)]+";
const std::string kTekkenLike =  // \p{Lu}/\p{Ll} emulated with lookaheads, as llama.cpp adapts them
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|"
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|"
    "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const std::string kOptContractions = kContractions + "?";
const std::string kGpt4oFull =
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+" + kOptContractions +
    "|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*" + kOptContractions +
    "|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

struct PreSpec {
    std::vector<std::string> names;
    std::vector<std::string> regexes;
    bool clean_spaces = true;
    bool ignore_merges = false;
    bool add_bos = false;
    bool no_bos = false;
};

const std::vector<PreSpec>& pre_specs() {
    static const std::vector<PreSpec> specs = {
        {{"default"}, {"[\\p{P}\\$\\+<=>\\^~\\|]+", kGpt2, "\\p{N}+", "[0-9][0-9][0-9]"}},
        {{"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2"},
         {kLlama3},
         true,
         true,
         true},
        {{"dbrx", "smaug-bpe"}, {kLlama3}},
        {{"chatglm-bpe", "glm4"}, {kLlama3}, true, false, false, true},
        {{"deepseek-llm"},
         {"[\r\n]",
          "\\s?[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}"
          "\\x{1C4}-\\x{293}\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}\\x{37F}"
          "\\x{386}\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-\\x{481}"
          "\\x{48A}-\\x{52F}\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}\\x{13F8}-\\x{13FD}"
          "\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}"
          "\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}\\x{1F20}-\\x{1F45}"
          "\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}\\x{1F5F}-\\x{1F7D}"
          "\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}"
          "\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}"
          "\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}"
          "\\x{2124}\\x{2126}\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}\\x{2139}"
          "\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}"
          "\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}"
          "\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}"
          "\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}"
          "\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}\\x{104D8}-\\x{104FB}"
          "\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}\\x{118A0}-\\x{118DF}\\x{1E900}-\\x{1E943}]+",
          "\\s?[!-/:-~！-／：-～‘-‟　-。]+", "\\s+$", "[一-龥ࠀ-一가-퟿]+", "\\p{N}+"},
         false},
        {{"deepseek-coder"},
         {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[一-龥ࠀ-一가-퟿]+", "\\p{N}"},
         false},
        {{"deepseek-v3"},
         {"\\p{N}{1,3}", "[一-龥぀-ゟ゠-ヿ]+",
          "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| "
          "?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"},
         false},
        {{"falcon"}, {"[\\p{P}\\$\\+<=>\\^~\\|`]+", kGpt2, "[0-9][0-9][0-9]"}},
        {{"gpt-2", "mpt", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0",
          "mellum", "exaone4", "olmo", "jais"},
         {kGpt2}},
        {{"starcoder", "refact", "codeshell", "exaone", "minerva-7b", "mellum2"}, {"\\p{N}", kGpt2}},
        {{"smollm", "command-r"}, {"\\p{N}", kGpt2}, false},
        {{"qwen2", "deepseek-r1-qwen", "kormo"}, {kQwen2}, false},
        {{"stablelm2", "megrez"}, {kQwen2}},
        {{"qwen35"}, {kQwen35}, false},
        {{"bloom", "gpt3-finnish"}, {kBloom}},
        {{"poro-chat"}, {kBloom}, false},
        {{"viking"}, {kBloom, "\\p{N}"}, false},
        {{"tekken"}, {kTekkenLike}, false, true, true},
        {{"gpt-4o", "llama4"}, {kGpt4oFull}, false},
    };
    return specs;
}

std::string supported_pre_names() {
    std::string s;
    for (const auto& spec : pre_specs())
        for (const auto& n : spec.names) {
            if (!s.empty()) s += ", ";
            s += n;
        }
    return s;
}

// ---- misc helpers -----------------------------------------------------------------------------------------

const std::string kSpaceMark = "\xE2\x96\x81";  // U+2581, SentencePiece's escaped space

void replace_all(std::string& s, std::string_view from, std::string_view to) {
    if (from.empty()) return;
    std::string out;
    out.reserve(s.size());
    size_t pos = 0;
    for (size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
        out.append(s, pos, hit - pos);
        out.append(to);
    }
    out.append(s, pos, std::string::npos);
    s = std::move(out);
}

bool ascii_space(char c) {
    return c == ' ' || (c >= '\t' && c <= '\r');
}

bool is_byte_token_text(std::string_view t) {
    return t.size() == 6 && t.substr(0, 3) == "<0x" && t[5] == '>' &&
           std::isxdigit(static_cast<unsigned char>(t[3])) && std::isxdigit(static_cast<unsigned char>(t[4]));
}

struct Symbol {
    int prev, next;
    const char* text;
    size_t n;
};

}  // namespace

// ---- construction -----------------------------------------------------------------------------------------

Tokenizer::Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::Tokenizer(const Tokenizer&) = default;
Tokenizer& Tokenizer::operator=(const Tokenizer&) = default;
Tokenizer::~Tokenizer() = default;

std::vector<std::string> Tokenizer::supported_pre_tokenizers() {
    std::vector<std::string> names;
    for (const auto& spec : pre_specs()) names.insert(names.end(), spec.names.begin(), spec.names.end());
    return names;
}

Tokenizer Tokenizer::from_metadata(const Metadata& meta) {
    Tokenizer t;
    const auto model = meta.find_string("tokenizer.ggml.model");
    if (!model)
        throw std::runtime_error(
            "the model file has no tokenizer (metadata key 'tokenizer.ggml.model' is missing)");
    t.pre_ = std::string(meta.find_string("tokenizer.ggml.pre").value_or(""));

    const PreSpec* pre = nullptr;
    if (*model == "llama") {
        t.kind_ = Kind::SPM;
        t.bos_ = 1, t.eos_ = 2, t.unk_ = 0;
        t.add_space_prefix_ = true, t.add_bos_ = true, t.add_eos_ = false;
    } else if (*model == "gpt2") {
        t.kind_ = Kind::BPE;
        t.bos_ = 11, t.eos_ = 11, t.unk_ = -1;
        const std::string pre_name =
            t.pre_.empty() ? "default" : t.pre_;  // llama.cpp warns and uses 'default'
        for (const auto& spec : pre_specs())
            if (std::find(spec.names.begin(), spec.names.end(), pre_name) != spec.names.end()) pre = &spec;
        if (!pre)
            throw std::runtime_error("unknown BPE pre-tokenizer tokenizer.ggml.pre = '" + pre_name +
                                     "'; supported: " + supported_pre_names());
        t.clean_spaces_ = pre->clean_spaces;
        t.ignore_merges_ = pre->ignore_merges;
        t.add_bos_ = pre->add_bos;
        if (pre->no_bos) t.bos_ = -1;
    } else {
        throw std::runtime_error(
            "tokenizer model tokenizer.ggml.model = '" + std::string(*model) +
            "' is not supported; supported: 'llama' (SentencePiece-style) and 'gpt2' (byte-level BPE)");
    }
    if (auto v = meta.find_bool("tokenizer.ggml.add_space_prefix")) t.add_space_prefix_ = *v;

    // vocabulary
    const auto& words = meta.get_string_array("tokenizer.ggml.tokens");
    const size_t n = words.size();
    if (n == 0) throw std::runtime_error("tokenizer.ggml.tokens is empty");
    if (n > static_cast<size_t>(INT32_MAX))
        throw std::runtime_error("tokenizer.ggml.tokens has too many entries");
    std::vector<float> scores;
    if (meta.has("tokenizer.ggml.scores")) {
        scores = meta.get_float_array("tokenizer.ggml.scores");
        if (scores.size() < n)
            throw std::runtime_error("tokenizer.ggml.scores has " + std::to_string(scores.size()) +
                                     " entries for " + std::to_string(n) + " tokens");
    }
    std::vector<int64_t> types;
    if (meta.has("tokenizer.ggml.token_type")) {
        types = meta.get_int_array("tokenizer.ggml.token_type");
        if (types.size() < n)
            throw std::runtime_error("tokenizer.ggml.token_type has " + std::to_string(types.size()) +
                                     " entries for " + std::to_string(n) + " tokens");
    }
    // A llama2.c tokenizer.bin vocab has raw spaces where SentencePiece has U+2581 and "\n<s>\n" for "<s>".
    bool raw_spaces = false;
    if (t.kind_ == Kind::SPM) {
        bool any_mark = false, any_space = false;
        for (auto w : words) {
            any_mark |= w.find(kSpaceMark) != std::string_view::npos;
            any_space |= w.find(' ') != std::string_view::npos;
        }
        raw_spaces = any_space && !any_mark;
    }
    t.tokens_.resize(n);
    t.scores_.assign(n, 0.0f);
    t.attrs_.assign(n, NORMAL);
    for (size_t i = 0; i < n; ++i) {
        std::string w(words[i]);
        if (raw_spaces) {
            if (w.size() > 2 && w.front() == '\n' && w.back() == '\n' && w[1] == '<')
                w = w.substr(1, w.size() - 2);
            replace_all(w, " ", kSpaceMark);
        }
        if (w.empty()) w = "[EMPTY_" + std::to_string(i) + "]";  // as llama.cpp
        if (!scores.empty()) t.scores_[i] = scores[i];
        if (!types.empty()) {
            switch (types[i]) {
                case 1:
                    t.attrs_[i] = NORMAL;
                    break;
                case 2:
                    t.attrs_[i] = UNKNOWN;
                    break;
                case 3:
                    t.attrs_[i] = CONTROL;
                    break;
                case 4:
                    t.attrs_[i] = USER_DEFINED;
                    break;
                case 5:
                    t.attrs_[i] = UNUSED;
                    break;
                case 6:
                    t.attrs_[i] = BYTE;
                    break;
                default:
                    t.attrs_[i] = UNDEFINED;
                    break;
            }
        }
        t.token_to_id_[w] = static_cast<int32_t>(i);  // a later duplicate wins, as in llama.cpp
        t.tokens_[i] = std::move(w);
    }

    if (t.kind_ == Kind::BPE) {
        if (!meta.has("tokenizer.ggml.merges"))
            throw std::runtime_error(
                "BPE tokenizer without merges (metadata key 'tokenizer.ggml.merges' is missing)");
        const auto& merges = meta.get_string_array("tokenizer.ggml.merges");
        t.bpe_ranks_.reserve(merges.size());
        for (size_t i = 0; i < merges.size(); ++i) {
            const std::string_view m = merges[i];
            const size_t pos = m.size() > 1 ? m.find(' ', 1) : std::string_view::npos;
            std::string key = pos == std::string_view::npos ? std::string(" ") : std::string(m);
            t.bpe_ranks_.try_emplace(std::move(key), static_cast<int>(i));  // first occurrence wins
        }
        t.splitter_ = std::make_shared<unicode::RegexSplitter>(pre->regexes);
    }

    // special token ids: defaults outside the vocab are disabled; 0xFFFFFFFF / negative mean "none" and keep
    // the default (llama.cpp ignores any out-of-range value; we reject the others for the ids we act on)
    int32_t fim_pad = -1, fim_rep = -1, fim_sep = -1, sep = -1;
    const auto read_id = [&](const char* key, int32_t& id, bool strict) {
        if (id >= static_cast<int64_t>(n)) id = -1;
        const auto v = meta.find_int(key);
        if (!v) return;
        if (*v < 0 || *v == 0xFFFFFFFFLL) return;
        if (*v >= static_cast<int64_t>(n)) {
            if (strict)
                throw std::runtime_error(std::string(key) + " = " + std::to_string(*v) +
                                         " is out of range for a vocabulary of " + std::to_string(n) +
                                         " tokens");
            return;
        }
        id = static_cast<int32_t>(*v);
    };
    read_id("tokenizer.ggml.bos_token_id", t.bos_, true);
    read_id("tokenizer.ggml.eos_token_id", t.eos_, true);
    read_id("tokenizer.ggml.eot_token_id", t.eot_, true);
    read_id("tokenizer.ggml.eom_token_id", t.eom_, true);
    read_id("tokenizer.ggml.unknown_token_id", t.unk_, true);
    read_id("tokenizer.ggml.seperator_token_id", sep, false);
    read_id("tokenizer.ggml.padding_token_id", t.pad_, false);
    read_id("tokenizer.ggml.fim_pad_token_id", fim_pad, false);
    read_id("tokenizer.ggml.fim_rep_token_id", fim_rep, false);
    read_id("tokenizer.ggml.fim_sep_token_id", fim_sep, false);
    if (auto v = meta.find_bool("tokenizer.ggml.add_bos_token")) t.add_bos_ = *v;
    if (auto v = meta.find_bool("tokenizer.ggml.add_eos_token")) t.add_eos_ = *v;

    if (types.empty() &&
        t.kind_ == Kind::SPM) {  // no token types (e.g. a llama2.c vocab): infer the obvious ones
        for (size_t i = 0; i < n; ++i)
            if (is_byte_token_text(t.tokens_[i])) t.attrs_[i] = BYTE;
        if (t.unk_ >= 0) t.attrs_[t.unk_] = UNKNOWN;
        if (t.bos_ >= 0) t.attrs_[t.bos_] = CONTROL;
        if (t.eos_ >= 0) t.attrs_[t.eos_] = CONTROL;
    }

    // auto-detection of special tokens by their text (llama.cpp's lists; ids visited in ascending order)
    const auto detect = [&](int32_t& id, std::initializer_list<std::string_view> texts) {
        if (id >= 0) return;
        for (size_t i = 0; i < n && id < 0; ++i)
            if (std::find(texts.begin(), texts.end(), t.tokens_[i]) != texts.end()) {
                id = static_cast<int32_t>(i);
                t.attrs_[i] |= CONTROL;
            }
    };
    int32_t fim_pre = -1, fim_suf = -1, fim_mid = -1;
    detect(t.eot_,
           {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
            "<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>"});
    detect(t.eom_, {"<|eom_id|>"});
    detect(fim_pre, {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>",
                     "<|code_prefix|>", "<|prefix|>"});
    detect(fim_suf, {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>",
                     "<|code_suffix|>", "<|suffix|>"});
    detect(fim_mid, {"<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>",
                     "<|code_middle|>", "<|middle|>"});
    detect(fim_pad, {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"});
    detect(fim_rep, {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"});
    detect(fim_sep, {"<|file_sep|>"});
    for (size_t i = 0; i < n; ++i)  // control tokens named "unused..." are unused
        if ((t.attrs_[i] & CONTROL) && t.tokens_[i].find("unused") != std::string::npos)
            t.attrs_[i] |= UNUSED;

    // end-of-generation set
    std::vector<int32_t> eog;
    for (int32_t id : {fim_pad, fim_rep, fim_sep})
        if (id >= 0) eog.push_back(id);
    static const std::vector<std::string_view> eog_texts = {"<|eot_id|>",
                                                            "<|im_end|>",
                                                            "<|end|>",
                                                            "<|return|>",
                                                            "<|call|>",
                                                            "<|flush|>",
                                                            "<|calls|>",
                                                            "<end_of_turn>",
                                                            "<|endoftext|>",
                                                            "</s>",
                                                            "<|eom_id|>",
                                                            "<EOT>",
                                                            "_<EOT>",
                                                            "[EOT]",
                                                            "[EOS]",
                                                            "<|end_of_text|>",
                                                            "<end_of_utterance>",
                                                            "<eos>",
                                                            "<turn|>",
                                                            "<|tool_response>",
                                                            "<｜end▁of▁sentence｜>",
                                                            "[e~["};
    for (size_t i = 0; i < n; ++i)
        if (std::find(eog_texts.begin(), eog_texts.end(), t.tokens_[i]) != eog_texts.end()) {
            eog.push_back(static_cast<int32_t>(i));
            t.attrs_[i] |= CONTROL;
        }
    for (size_t i = 0; i < n; ++i) {  // gpt-oss: always render these
        const auto& w = t.tokens_[i];
        if (w == "<|channel|>" || w == "<|message|>" || w == "<|start|>" || w == "<|constrain|>")
            t.attrs_[i] = USER_DEFINED;
    }
    for (int32_t id : {t.eos_, t.eot_, t.eom_})
        if (id >= 0) eog.push_back(id);
    std::sort(eog.begin(), eog.end());
    eog.erase(std::unique(eog.begin(), eog.end()), eog.end());
    const auto eog_with = [&](std::string_view text) -> int32_t {
        for (int32_t id : eog)
            if (t.tokens_[id] == text) return id;
        return -1;
    };
    const auto eog_erase = [&](int32_t id) { eog.erase(std::find(eog.begin(), eog.end(), id)); };
    // o200k_harmony / solar-open: "<|end|>" is not end of generation there
    const int32_t end_id = eog_with("<|end|>");
    const bool has_call = eog_with("<|call|>") >= 0 || eog_with("<|calls|>") >= 0;
    if (end_id >= 0 && has_call && (eog_with("<|return|>") >= 0 || eog_with("<|flush|>") >= 0)) {
        eog_erase(end_id);
        t.attrs_[end_id] = USER_DEFINED;
    }
    const int32_t s_id = eog_with("</s>");  // gemma4 / paddleocr: "</s>" is not end of generation there
    if (s_id >= 0 && eog_with("<|tool_response>") >= 0) {
        eog_erase(s_id);
        t.attrs_[s_id] = NORMAL;
    }
    t.eog_ids_ = std::move(eog);

    t.finish_setup(meta.find_string("general.name").value_or(""));
    return t;
}

void Tokenizer::finish_setup(std::string_view model_name) {
    const size_t n = tokens_.size();
    for (size_t i = 0; i < n; ++i)
        if (attrs_[i] & (CONTROL | USER_DEFINED | UNKNOWN)) special_cache_.push_back(static_cast<int32_t>(i));
    // longest first (llama.cpp uses an unstable sort; ties are ordered by id here)
    std::stable_sort(special_cache_.begin(), special_cache_.end(),
                     [&](int32_t a, int32_t b) { return tokens_[a].size() > tokens_[b].size(); });

    pieces_.resize(n);
    for (size_t i = 0; i < n; ++i) {
        const uint32_t attr = attrs_[i];
        const std::string& text = tokens_[i];
        std::string& piece = pieces_[i];
        if (attr & (UNKNOWN | CONTROL | USER_DEFINED)) {
            piece = text;
        } else if (attr & NORMAL) {
            if (kind_ == Kind::SPM) {
                piece = text;
                replace_all(piece, kSpaceMark, " ");
            } else {
                for (uint32_t cpt : unicode::decode_utf8(text)) {
                    if (auto b = unicode::bpe_char_to_byte(cpt)) {
                        piece.push_back(static_cast<char>(*b));
                    } else {  // llama.cpp's marker for a code point outside the byte map
                        std::string utf8;
                        unicode::append_utf8(utf8, cpt);
                        char hex[3];
                        piece += "[UNK_BYTE_0x";
                        for (unsigned char c : utf8) {
                            std::snprintf(hex, sizeof hex, "%02x", c);
                            piece += hex;
                        }
                        piece += text + "]";
                    }
                }
            }
        } else if (attr & BYTE) {
            const std::string hex = text.size() >= 5 ? text.substr(3, 2) : std::string();
            piece.push_back(static_cast<char>(std::strtol(hex.c_str(), nullptr, 16)));
        }
    }

    // per-model attributes llama.cpp sets by name: Phi-3 strips whitespace after its special tokens
    std::string name(model_name);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    if (name.find("phi-3") != std::string::npos || name.find("phi3") != std::string::npos) {
        for (int32_t id : special_cache_) attrs_[id] |= RSTRIP;
        if (auto id = find_token("</s>")) attrs_[*id] |= RSTRIP;
        for (const char* w : {"<unk>", "<s>", "<|endoftext|>"})
            if (auto id = find_token(w)) attrs_[*id] &= ~uint32_t(RSTRIP);
    }
}

// ---- lookups ----------------------------------------------------------------------------------------------

void Tokenizer::check_id(int32_t id) const {
    if (id < 0 || id >= n_vocab())
        throw std::out_of_range("token id " + std::to_string(id) + " is outside the vocabulary (0.." +
                                std::to_string(n_vocab() - 1) + ")");
}

int32_t Tokenizer::text_to_token(std::string_view text) const {
    auto it = token_to_id_.find(text);
    return it == token_to_id_.end() ? -1 : it->second;
}

std::optional<int32_t> Tokenizer::find_token(std::string_view text) const {
    const int32_t id = text_to_token(text);
    return id < 0 ? std::nullopt : std::optional<int32_t>(id);
}

std::string_view Tokenizer::token_text(int32_t id) const {
    check_id(id);
    return tokens_[id];
}

bool Tokenizer::is_eog(int32_t id) const {
    return std::binary_search(eog_ids_.begin(), eog_ids_.end(), id);
}
bool Tokenizer::is_control(int32_t id) const {
    return id >= 0 && id < n_vocab() && (attrs_[id] & CONTROL);
}
bool Tokenizer::is_byte(int32_t id) const {
    return id >= 0 && id < n_vocab() && (attrs_[id] & BYTE);
}

int32_t Tokenizer::byte_to_token(uint8_t byte) const {
    static const char* hex = "0123456789ABCDEF";
    const char buf[6] = {'<', '0', 'x', hex[byte >> 4], hex[byte & 15], '>'};
    int32_t id = text_to_token(std::string_view(buf, 6));
    if (id < 0) id = text_to_token(std::string_view(reinterpret_cast<const char*>(&byte), 1));
    if (id < 0) id = unk_;  // llama.cpp would throw here; a vocab without byte fallback gets <unk>
    if (id < 0)
        throw std::runtime_error("the vocabulary has neither a byte token for this byte nor an <unk> token");
    return id;
}

int Tokenizer::bpe_rank(const std::string& left, const std::string& right) const {
    std::string key;
    key.reserve(left.size() + right.size() + 1);
    key.append(left).push_back(' ');
    key.append(right);
    auto it = bpe_ranks_.find(key);
    return it == bpe_ranks_.end() ? -1 : it->second;
}

// ---- encoding ---------------------------------------------------------------------------------------------

// llama.cpp's tokenizer_st_partition: for each special token, longest text first, split every text fragment
// at its occurrences. Control and unknown tokens only take part when parse_special is set.
std::vector<Tokenizer::Fragment> Tokenizer::partition_special(std::string_view text,
                                                              bool parse_special) const {
    std::vector<Fragment> frags;
    if (text.empty()) return frags;
    frags.push_back({-1, 0, text.size()});
    for (int32_t id : special_cache_) {
        const uint32_t attr = attrs_[id];
        if (!parse_special && (attr & (CONTROL | UNKNOWN))) continue;
        const std::string& special = tokens_[id];
        // Fragments are ranges of text: a token that text lacks splits none of them. Most special tokens are
        // absent (Gemma 3 has thousands), so this keeps a short encode from rebuilding the list for each.
        if (text.find(special) == std::string_view::npos) continue;
        std::vector<Fragment> next;
        next.reserve(frags.size() + 2);
        for (const Fragment& f : frags) {
            if (f.token >= 0) {
                next.push_back(f);
                continue;
            }
            size_t off = f.offset, len = f.length;
            while (true) {
                const size_t match = text.substr(0, off + len).find(special, off);
                if (match == std::string_view::npos) {
                    next.push_back({-1, off, len});
                    break;
                }
                if (match > off) {
                    size_t left_len = match - off;
                    if (attr & LSTRIP)
                        while (left_len > 0 && ascii_space(text[off + left_len - 1])) --left_len;
                    if (left_len > 0) next.push_back({-1, off, left_len});
                }
                next.push_back({id, 0, 0});
                const size_t end = match + special.size();
                if (end >= off + len) break;
                size_t right_off = end, right_len = off + len - end;
                if (attr & RSTRIP)
                    while (right_len > 0 && ascii_space(text[right_off])) ++right_off, --right_len;
                if (right_len == 0) break;
                off = right_off, len = right_len;
            }
        }
        frags = std::move(next);
    }
    return frags;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
    std::vector<int32_t> out;
    const std::vector<Fragment> frags = partition_special(text, parse_special);
    const auto push_bos = [&] {
        if (bos_ < 0) throw std::runtime_error("the vocabulary asks for a BOS token but has none");
        out.push_back(bos_);
    };
    if (add_special && add_bos_) push_bos();
    if (kind_ == Kind::SPM) {
        bool prev_special = true;  // a leading space prefix, as SentencePiece adds one
        for (const Fragment& f : frags) {
            if (f.token >= 0) {
                out.push_back(f.token);
                prev_special = true;
                continue;
            }
            std::string piece = (add_space_prefix_ && prev_special) ? " " : "";
            piece.append(text.substr(f.offset, f.length));
            replace_all(piece, " ", kSpaceMark);
            spm_tokenize(piece, out);
            prev_special = false;
        }
    } else {
        for (const Fragment& f : frags) {
            if (f.token >= 0)
                out.push_back(f.token);
            else
                bpe_tokenize(text.substr(f.offset, f.length), out);
        }
    }
    if (add_special && add_eos_) {
        if (eos_ < 0) throw std::runtime_error("the vocabulary asks for an EOS token but has none");
        out.push_back(eos_);
    }
    return out;
}

// SentencePiece-style: split into UTF-8 characters (no validation: a byte's length comes from its high
// nibble), repeatedly merge the adjacent pair whose joined text is the best-scoring token (leftmost on ties),
// then emit each symbol as its token or, failing that, as byte tokens.
void Tokenizer::spm_tokenize(const std::string& text, std::vector<int32_t>& out) const {
    std::vector<Symbol> sym;
    for (size_t offs = 0; offs < text.size();) {
        const size_t len = std::min(unicode::utf8_len(static_cast<uint8_t>(text[offs])), text.size() - offs);
        const int index = static_cast<int>(sym.size());
        sym.push_back({index - 1, offs + len == text.size() ? -1 : index + 1, text.data() + offs, len});
        offs += len;
    }
    struct Bigram {
        int left, right;
        float score;
        size_t size;
    };
    const auto cmp = [](const Bigram& l, const Bigram& r) {
        return l.score < r.score || (l.score == r.score && l.left > r.left);
    };
    std::priority_queue<Bigram, std::vector<Bigram>, decltype(cmp)> queue(cmp);
    std::unordered_map<std::string, std::pair<int, int>> rev_merge;
    const auto try_add = [&](int left, int right) {
        if (left < 0 || right < 0) return;
        std::string joined(sym[left].text, sym[left].n + sym[right].n);
        const int32_t id = text_to_token(joined);
        if (id < 0) return;
        queue.push({left, right, scores_[id], joined.size()});
        rev_merge[std::move(joined)] = {left, right};
    };
    for (int i = 1; i < static_cast<int>(sym.size()); ++i) try_add(i - 1, i);
    while (!queue.empty()) {
        const Bigram bg = queue.top();
        queue.pop();
        Symbol& l = sym[bg.left];
        Symbol& r = sym[bg.right];
        if (l.n == 0 || r.n == 0 || l.n + r.n != bg.size) continue;  // stale
        l.n += r.n;
        r.n = 0;
        l.next = r.next;
        if (r.next >= 0) sym[r.next].prev = bg.left;
        try_add(l.prev, bg.left);
        try_add(bg.left, l.next);
    }
    // resegment: a symbol that is not a token is split back along the merge that formed it, else into bytes
    const auto resegment = [&](auto&& self, const Symbol& s) -> void {
        const std::string_view st(s.text, s.n);
        if (const int32_t id = text_to_token(st); id >= 0) {
            out.push_back(id);
            return;
        }
        const auto it = rev_merge.find(std::string(st));
        if (it == rev_merge.end()) {
            for (size_t j = 0; j < s.n; ++j) out.push_back(byte_to_token(static_cast<uint8_t>(s.text[j])));
            return;
        }
        self(self, sym[it->second.first]);
        self(self, sym[it->second.second]);
    };
    for (int i = sym.empty() ? -1 : 0; i != -1; i = sym[i].next) resegment(resegment, sym[i]);
}

// Byte-level BPE: pre-tokenizer regexes split the text into words; each word's bytes are mapped to GPT-2's
// printable stand-ins and merged by rank (lowest first, leftmost on ties).
void Tokenizer::bpe_tokenize(std::string_view text, std::vector<int32_t>& out) const {
    for (const std::string& raw_word : splitter_->split(text)) {
        std::string word;
        for (unsigned char c : raw_word) word += unicode::byte_to_bpe_char(c);

        std::vector<Symbol> sym;
        size_t offset = 0;
        if (ignore_merges_ && text_to_token(word) >= 0) {
            sym.push_back({-1, -1, word.data(), word.size()});
            offset = word.size();
        }
        while (offset < word.size()) {
            const size_t len =
                std::min(word.size() - offset, unicode::utf8_len(static_cast<uint8_t>(word[offset])));
            const int index = static_cast<int>(sym.size());
            sym.push_back(
                {index - 1, offset + len == word.size() ? -1 : index + 1, word.data() + offset, len});
            offset += len;
        }
        struct Bigram {
            int left, right;
            std::string text;
            int rank;
        };
        const auto cmp = [](const Bigram& l, const Bigram& r) {
            return l.rank > r.rank || (l.rank == r.rank && l.left > r.left);
        };
        std::priority_queue<Bigram, std::vector<Bigram>, decltype(cmp)> queue(cmp);
        const auto try_add = [&](int left, int right) {
            if (left < 0 || right < 0) return;
            std::string lt(sym[left].text, sym[left].n), rt(sym[right].text, sym[right].n);
            const int rank = bpe_rank(lt, rt);
            if (rank < 0) return;
            queue.push({left, right, lt + rt, rank});
        };
        for (int i = 1; i < static_cast<int>(sym.size()); ++i) try_add(i - 1, i);
        while (!queue.empty()) {
            const Bigram bg = queue.top();
            queue.pop();
            Symbol& l = sym[bg.left];
            Symbol& r = sym[bg.right];
            if (l.n == 0 || r.n == 0) continue;
            if (std::string_view(l.text, l.n + r.n) != bg.text || l.text + l.n != r.text) continue;  // stale
            l.n += r.n;
            r.n = 0;
            l.next = r.next;
            if (r.next >= 0) sym[r.next].prev = bg.left;
            try_add(l.prev, bg.left);
            try_add(bg.left, l.next);
        }
        for (const Symbol& s : sym) {
            if (s.n == 0) continue;
            const std::string_view st(s.text, s.n);
            if (const int32_t id = text_to_token(st); id >= 0) {
                out.push_back(id);
                continue;
            }
            for (char c : st)  // llama.cpp's fallback: single-byte tokens where they exist, others dropped
                if (const int32_t id = text_to_token(std::string_view(&c, 1)); id >= 0) out.push_back(id);
        }
    }
}

// ---- decoding ---------------------------------------------------------------------------------------------

std::string Tokenizer::token_to_piece(int32_t id, bool special) const {
    check_id(id);
    if (!special && (attrs_[id] & (UNKNOWN | CONTROL))) return {};
    return pieces_[id];
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool special) const {
    std::string text;
    bool remove_space = add_space_prefix_;  // strip one leading space from the first token only
    for (int32_t id : ids) {
        std::string piece = token_to_piece(id, special);
        if (remove_space && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
        remove_space = false;
        text += piece;
    }
    if (!clean_spaces_) return text;
    // llama.cpp's clean_up_tokenization_spaces: three in-place passes over the buffer, emulated index for
    // index (the second pass writes a NUL over the space it skips, which the next comparison then sees).
    std::string& t = text;
    int total = static_cast<int>(t.size());
    const int total1 = total;
    total = total ? 1 : 0;
    for (int i = 1; i < total1; ++i) {  // " ?", " !", " .", " ," lose the space
        const char x = t[i];
        if (t[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) total--;
        t[total++] = x;
    }
    const int total2 = total;
    total = total ? 1 : 0;
    for (int i = 1; i < total2; ++i) {  // " ' " becomes "'"
        const char x = t[i];
        if (x == '\'' && i + 1 < total2 && t[i - 1] == ' ' && t[i + 1] == ' ') {
            total--;
            t[++i] = '\0';
        }
        t[total++] = x;
    }
    const int total3 = total;
    total = total ? 1 : 0;
    for (int i = 1; i < total3; ++i) {  // " 's", " 'm", " 're", " 've" lose the space
        const char x = t[i];
        if (t[i - 1] == ' ' && x == '\'' && i + 1 < total3) {
            const char x1 = t[i + 1];
            if (x1 == 's' || x1 == 'm') {
                total--;
            } else if (i + 2 < total3) {
                const char x2 = t[i + 2];
                if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) total--;
            }
        }
        t[total++] = x;
    }
    t.resize(total);
    return text;
}

std::string StreamDecoder::feed(int32_t id) {
    pending_ += tok_.token_to_piece(id, special_);
    const size_t n = unicode::complete_utf8_prefix(pending_);
    std::string ready = pending_.substr(0, n);
    pending_.erase(0, n);
    return ready;
}

std::string StreamDecoder::flush() {
    std::string rest;
    rest.swap(pending_);
    return rest;
}

}  // namespace strata
