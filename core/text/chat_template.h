// Chat templates: a conversation (system / user / assistant messages) rendered into the exact prompt text the
// model's own Jinja template (tokenizer.chat_template) produces. No Jinja interpreter: the template family is
// recognised by its distinctive markers (as llama.cpp's llm_chat_detect_template does) and rendered by hand,
// with the variant details read from the template text (a default system prompt the template injects, the
// date line of Llama 3.1+, whether an empty system message is printed, ...). tests/golden/chat_templates.json
// holds what jinja2 renders for each family's real template; tests/test_chat_template.cpp compares byte for
// byte.
#pragma once
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace strata {

class Metadata;
class Tokenizer;

struct ChatMessage {
    std::string role;  // "system", "user" or "assistant"
    std::string content;
};

enum class ChatFamily { ChatML, Llama3, Llama31, Llama2, Mistral, MistralV3, MistralV3Tekken, Gemma, Phi3 };

class ChatTemplate {
  public:
    // The variant details of a family, read from the template text by detect() (defaults for from_name()).
    struct Options {
        std::string bos_token;  // the tokenizer's BOS / EOS text, as the template sees them
        std::string eos_token;
        std::optional<std::string> default_system;  // ChatML: the system prompt injected when none is given
        bool emit_bos = false;                      // Phi-3: the template starts with {{ bos_token }}
        bool skip_empty_system = false;             // Phi-3.5: `if role == 'system' and content`
        std::string date;                           // Llama 3.1+: "Today Date: ..." ("%d %b %Y")
    };

    // The names --chat-template accepts, one per family: chatml, llama3, llama3.1, llama2, mistral,
    // mistral-v3, mistral-v3-tekken, gemma, phi3.
    static const std::vector<std::string>& names();
    // An unknown name throws std::invalid_argument naming the choices.
    static ChatTemplate from_name(std::string_view name);
    // Recognises a Jinja template text (or a bare family name); an unrecognised one throws std::runtime_error
    // naming the choices for --chat-template.
    static ChatTemplate detect(std::string_view template_text);
    // The model's own template, read from its metadata's tokenizer.chat_template (or the named family when
    // override_name is given), with the tokenizer's BOS/EOS text. A model without a template needs an override
    // (a clear error otherwise). Called as for_model(model.file().meta, model.tokenizer()).
    static ChatTemplate for_model(const Metadata& meta, const Tokenizer& tok, std::string_view override_name = "");

    // The prompt text, exactly as the model's Jinja template renders `messages` (string contents) with
    // add_generation_prompt. Where the Jinja template would raise (a system message for Gemma 2 or
    // Mistral v0.2, roles that do not alternate), this renders anyway: a system message the family has no
    // place for is put before the first user message, separated by a blank line (as Gemma 3 and llama.cpp
    // do).
    std::string render(std::span<const ChatMessage> messages, bool add_generation_prompt) const;

    // The text up to where a new `role` message's content would begin: the conversation followed by that
    // message's opening, without its content or closing (Hugging Face's continue_final_message). For the
    // assistant role this can differ from the generation prompt (Llama 2 and Mistral v3 put a space there).
    std::string render_open(std::span<const ChatMessage> messages, std::string_view role) const;

    ChatFamily family() const { return family_; }
    const std::string& name() const;  // the family's --chat-template name
    Options& options() { return opts_; }
    const Options& options() const { return opts_; }

  private:
    ChatTemplate(ChatFamily f, Options o) : family_(f), opts_(std::move(o)) {}
    ChatFamily family_;
    Options opts_;
};

// Today's date as Llama 3.2's strftime_now("%d %b %Y") prints it ("15 Mar 2025").
std::string chat_today();

// Python's str.strip() (Jinja's trim filter): Unicode whitespace removed from both ends.
std::string py_strip(std::string_view s);

}  // namespace strata
