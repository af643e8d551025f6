#include "core/text/chat_template.h"

#include <ctime>
#include <regex>
#include <stdexcept>

#include "core/text/tokenizer.h"
#include "loaders/metadata.h"

namespace strata {

namespace {

struct FamilyName {
    ChatFamily family;
    std::string name;
};
const std::vector<FamilyName>& family_names() {
    static const std::vector<FamilyName> v = {
        {ChatFamily::ChatML, "chatml"},
        {ChatFamily::Llama3, "llama3"},
        {ChatFamily::Llama31, "llama3.1"},
        {ChatFamily::Llama2, "llama2"},
        {ChatFamily::Mistral, "mistral"},
        {ChatFamily::MistralV3, "mistral-v3"},
        {ChatFamily::MistralV3Tekken, "mistral-v3-tekken"},
        {ChatFamily::Gemma, "gemma"},
        {ChatFamily::Phi3, "phi3"},
    };
    return v;
}

std::string joined_names() {
    std::string s;
    for (const std::string& n : ChatTemplate::names()) s += (s.empty() ? "" : ", ") + n;
    return s;
}

// Python's str.isspace() for one code point.
bool py_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000;
}

// Decodes the code point starting at s[i] (a well-formed sequence; anything else counts as not a space).
uint32_t cpt_at(std::string_view s, size_t i, size_t& len) {
    const auto b = [&](size_t k) { return static_cast<uint8_t>(s[i + k]); };
    const uint8_t lead = b(0);
    if (lead < 0x80) return len = 1, lead;
    if ((lead & 0xE0) == 0xC0 && i + 1 < s.size()) return len = 2, ((lead & 0x1Fu) << 6) | (b(1) & 0x3Fu);
    if ((lead & 0xF0) == 0xE0 && i + 2 < s.size())
        return len = 3, ((lead & 0x0Fu) << 12) | ((b(1) & 0x3Fu) << 6) | (b(2) & 0x3Fu);
    return len = 1, 0xFFFFFFFFu;
}

// Unescapes a Jinja string literal's body (\n, \t, \\, \', \").
std::string unescape_literal(std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '\\' || i + 1 == s.size()) {
            out += s[i];
            continue;
        }
        const char c = s[++i];
        out += c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
    }
    return out;
}

bool contains(std::string_view hay, std::string_view needle) {
    return hay.find(needle) != std::string_view::npos;
}

using Messages = std::span<const ChatMessage>;

// A system message at the front, split off: (its content or nothing, the rest).
std::pair<std::optional<std::string>, Messages> split_system(Messages m) {
    if (!m.empty() && m[0].role == "system") return {m[0].content, m.subspan(1)};
    return {std::nullopt, m};
}

std::string render_chatml(Messages msgs, bool gen, const ChatTemplate::Options& o) {
    std::string out;
    for (size_t i = 0; i < msgs.size(); ++i) {
        // SmolLM2: {% if loop.first and messages[0]['role'] != 'system' %}; Qwen2.5 the same, outside the
        // loop
        if (i == 0 && o.default_system && msgs[0].role != "system")
            out += "<|im_start|>system\n" + *o.default_system + "<|im_end|>\n";
        out += "<|im_start|>" + msgs[i].role + "\n" + msgs[i].content + "<|im_end|>\n";
    }
    if (gen) out += "<|im_start|>assistant\n";
    return out;
}

std::string llama3_header(const std::string& role) {
    return "<|start_header_id|>" + role + "<|end_header_id|>\n\n";
}

std::string render_llama3(Messages msgs, bool gen, const ChatTemplate::Options& o) {
    std::string out;
    for (size_t i = 0; i < msgs.size(); ++i) {
        if (i == 0) out += o.bos_token;
        out += llama3_header(msgs[i].role) + py_strip(msgs[i].content) + "<|eot_id|>";
    }
    if (gen) out += llama3_header("assistant");
    return out;
}

// Llama 3.1 / 3.2 / 3.3: a system header always, with the knowledge cutoff and today's date.
std::string render_llama31(Messages msgs, bool gen, const ChatTemplate::Options& o) {
    auto [system, rest] = split_system(msgs);
    std::string out = o.bos_token + llama3_header("system") + "Cutting Knowledge Date: December 2023\n" +
                      "Today Date: " + o.date + "\n\n" + (system ? py_strip(*system) : "") + "<|eot_id|>";
    for (const ChatMessage& m : rest) out += llama3_header(m.role) + py_strip(m.content) + "<|eot_id|>";
    if (gen) out += llama3_header("assistant");
    return out;
}

// meta-llama/Llama-2-*-chat: BOS before every [INST]; the system message inside the first one.
std::string render_llama2(Messages msgs, bool /*gen: the template has no generation prompt*/,
                          const ChatTemplate::Options& o) {
    auto [system, rest] = split_system(msgs);
    std::string out;
    for (size_t i = 0; i < rest.size(); ++i) {
        std::string content = rest[i].content;
        if (i == 0 && system) content = "<<SYS>>\n" + *system + "\n<</SYS>>\n\n" + content;
        if (rest[i].role == "user")
            out += o.bos_token + "[INST] " + py_strip(content) + " [/INST]";
        else if (rest[i].role == "assistant")
            out += " " + py_strip(content) + " " + o.eos_token;
    }
    return out;
}

// Mistral 7B v0.1 / v0.2: no system role (folded into the first user message here; the template raises).
std::string render_mistral(Messages msgs, bool, const ChatTemplate::Options& o) {
    auto [system, rest] = split_system(msgs);
    std::string out = o.bos_token;
    bool first_user = true;
    for (const ChatMessage& m : rest) {
        if (m.role == "user") {
            const std::string content = first_user && system ? *system + "\n\n" + m.content : m.content;
            out += "[INST] " + content + " [/INST]";
            first_user = false;
        } else if (m.role == "assistant") {
            out += m.content + o.eos_token;
        }
    }
    return out;
}

// Mistral v3 (7B v0.3) and v3-tekken (Nemo): the system message goes into the *last* message, when it is a
// user's.
std::string render_mistral_v3(Messages msgs, bool tekken, const ChatTemplate::Options& o) {
    auto [system, rest] = split_system(msgs);
    const std::string inst = tekken ? "[INST]" : "[INST] ";
    std::string out = o.bos_token;
    for (size_t i = 0; i < rest.size(); ++i) {
        const ChatMessage& m = rest[i];
        if (m.role == "user") {
            if (i + 1 == rest.size() && system)
                out += inst + *system + "\n\n" + m.content + "[/INST]";
            else
                out += inst + m.content + "[/INST]";
        } else if (m.role == "assistant") {
            out += tekken ? m.content + o.eos_token : " " + py_strip(m.content) + o.eos_token;
        }
    }
    return out;
}

// Gemma 2 / 3: assistant is "model"; Gemma 3 puts the system text before the first message (Gemma 2 raises).
std::string render_gemma(Messages msgs, bool gen, const ChatTemplate::Options& o) {
    auto [system, rest] = split_system(msgs);
    const std::string prefix = system ? *system + "\n\n" : "";
    std::string out = o.bos_token;
    for (size_t i = 0; i < rest.size(); ++i) {
        const std::string role = rest[i].role == "assistant" ? "model" : rest[i].role;
        out += "<start_of_turn>" + role + "\n" + (i == 0 ? prefix : "") + py_strip(rest[i].content) +
               "<end_of_turn>\n";
    }
    if (gen) out += "<start_of_turn>model\n";
    return out;
}

std::string render_phi3(Messages msgs, bool gen, const ChatTemplate::Options& o) {
    std::string out = o.emit_bos ? o.bos_token : "";
    for (const ChatMessage& m : msgs) {
        if (o.skip_empty_system && m.role == "system" && m.content.empty()) continue;
        out += "<|" + m.role + "|>\n" + m.content + "<|end|>\n";
    }
    out += gen ? "<|assistant|>\n" : o.eos_token;
    return out;
}

}  // namespace

std::string py_strip(std::string_view s) {
    size_t begin = 0, end = s.size();
    while (begin < end) {
        size_t len = 1;
        if (!py_space(cpt_at(s, begin, len))) break;
        begin += len;
    }
    while (end > begin) {
        // step back to the start of the last code point
        size_t start = end - 1;
        while (start > begin && (static_cast<uint8_t>(s[start]) & 0xC0) == 0x80 && end - start < 4) --start;
        size_t len = 1;
        const uint32_t c = cpt_at(s, start, len);
        if (start + len != end || !py_space(c)) break;
        end = start;
    }
    return std::string(s.substr(begin, end - begin));
}

std::string chat_today() {
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%d %b %Y", &tm);
    return buf;
}

const std::vector<std::string>& ChatTemplate::names() {
    static const std::vector<std::string> v = [] {
        std::vector<std::string> n;
        for (const FamilyName& f : family_names()) n.push_back(f.name);
        return n;
    }();
    return v;
}

const std::string& ChatTemplate::name() const {
    for (const FamilyName& f : family_names())
        if (f.family == family_) return f.name;
    throw std::logic_error("chat family without a name");
}

ChatTemplate ChatTemplate::from_name(std::string_view name) {
    for (const FamilyName& f : family_names()) {
        if (f.name != name) continue;
        Options o;
        if (f.family == ChatFamily::Llama31) o.date = chat_today();
        return ChatTemplate(f.family, o);
    }
    throw std::invalid_argument("unknown chat template '" + std::string(name) +
                                "'; choose one of: " + joined_names());
}

ChatTemplate ChatTemplate::detect(std::string_view t) {
    for (const std::string& n : names())
        if (t == n) return from_name(n);
    Options o;
    const std::string text(t);
    if (contains(t, "<|im_start|>")) {
        if (contains(t, "<|im_sep|>") || contains(t, "<end_of_utterance>")) {
            // Phi-4 and SmolVLM use <|im_start|> too, but they are not ChatML.
        } else {
            // A literal default system prompt: '<|im_start|>system\n...<|im_end|>' inside one string literal.
            static const std::regex re(R"(<\|im_start\|>system(?:\n|\\n)([^'"{}]+?)<\|im_end\|>)");
            std::smatch m;
            if (std::regex_search(text, m, re)) o.default_system = unescape_literal(m[1].str());
            return ChatTemplate(ChatFamily::ChatML, o);
        }
    } else if (contains(t, "[INST]")) {
        if (contains(t, "[SYSTEM_PROMPT]")) {
            // Mistral v7 (Mistral Small 3, Large 2411): not supported yet.
        } else if (contains(t, "[AVAILABLE_TOOLS]")) {
            return ChatTemplate(
                contains(t, "\"[INST]\"") ? ChatFamily::MistralV3Tekken : ChatFamily::MistralV3, o);
        } else if (contains(t, "<<SYS>>")) {
            return ChatTemplate(ChatFamily::Llama2, o);
        } else {
            return ChatTemplate(ChatFamily::Mistral, o);
        }
    } else if (contains(t, "<|assistant|>") && contains(t, "<|end|>")) {
        o.emit_bos = contains(t, "bos_token");
        o.skip_empty_system = contains(t, "'system' and message['content']");
        return ChatTemplate(ChatFamily::Phi3, o);
    } else if (contains(t, "<start_of_turn>")) {
        return ChatTemplate(ChatFamily::Gemma, o);
    } else if (contains(t, "<|start_header_id|>") && contains(t, "<|end_header_id|>")) {
        if (!contains(t, "Cutting Knowledge Date")) return ChatTemplate(ChatFamily::Llama3, o);
        // Llama 3.2 prints today's date (strftime_now); 3.1 and 3.3 a fixed default unless given one.
        static const std::regex re(R"re(set date_string = "([^"]*)")re");
        std::smatch m;
        if (contains(t, "strftime_now"))
            o.date = chat_today();
        else if (std::regex_search(text, m, re))
            o.date = m[1].str();
        else
            o.date = "26 Jul 2024";
        return ChatTemplate(ChatFamily::Llama31, o);
    }
    std::string head(t.substr(0, 60));
    for (char& c : head)
        if (c == '\n') c = ' ';
    throw std::runtime_error("unrecognised chat template (\"" + head + (t.size() > 60 ? "...\")" : "\")") +
                             "; choose one with --chat-template: " + joined_names());
}

ChatTemplate ChatTemplate::for_model(const Metadata& meta, const Tokenizer& tok, std::string_view override_name) {
    const auto text = meta.find_string("tokenizer.chat_template");
    ChatTemplate ct = [&] {
        if (!override_name.empty()) return from_name(override_name);
        if (!text || text->empty())
            throw std::runtime_error(
                "the model has no chat template (tokenizer.chat_template); choose one with "
                "--chat-template: " +
                joined_names());
        return detect(*text);
    }();
    const auto token = [&](int32_t id) {
        return id >= 0 && id < tok.n_vocab() ? std::string(tok.token_text(id)) : std::string();
    };
    ct.opts_.bos_token = token(tok.bos_id());
    ct.opts_.eos_token = token(tok.eos_id());
    return ct;
}

std::string ChatTemplate::render(std::span<const ChatMessage> m, bool gen) const {
    switch (family_) {
        case ChatFamily::ChatML:
            return render_chatml(m, gen, opts_);
        case ChatFamily::Llama3:
            return render_llama3(m, gen, opts_);
        case ChatFamily::Llama31:
            return render_llama31(m, gen, opts_);
        case ChatFamily::Llama2:
            return render_llama2(m, gen, opts_);
        case ChatFamily::Mistral:
            return render_mistral(m, gen, opts_);
        case ChatFamily::MistralV3:
            return render_mistral_v3(m, false, opts_);
        case ChatFamily::MistralV3Tekken:
            return render_mistral_v3(m, true, opts_);
        case ChatFamily::Gemma:
            return render_gemma(m, gen, opts_);
        case ChatFamily::Phi3:
            return render_phi3(m, gen, opts_);
    }
    throw std::logic_error("unhandled chat family");
}

std::string ChatTemplate::render_open(std::span<const ChatMessage> messages, std::string_view role) const {
    // Render with a marker as the new message's content and cut there. The marker has no whitespace at its
    // ends, so templates that trim contents leave it whole.
    static const std::string kMarker = "\x01strata-open-message\x01";
    std::vector<ChatMessage> with(messages.begin(), messages.end());
    with.push_back({std::string(role), kMarker});
    const std::string full = render(with, /*add_generation_prompt=*/false);
    const size_t at = full.rfind(kMarker);
    if (at == std::string::npos)
        throw std::logic_error("chat template '" + name() + "' dropped the open " + std::string(role) +
                               " message");
    return full.substr(0, at);
}

}  // namespace strata
