// Chat templates: every family renders byte for byte what the model's own Jinja template renders
// (tests/golden/chat_templates.json, from tests/reference/make_chat_golden.py), and detection finds each
// family.
#include <nlohmann/json.hpp>

#include "core/engine/model.h"
#include "core/text/chat_template.h"
#include "test_util.h"

using namespace strata;
using namespace strata::test;

namespace {

nlohmann::json golden() {
    return nlohmann::json::parse(read_text(test_data("golden/chat_templates.json")));
}

std::vector<ChatMessage> messages(const nlohmann::json& j) {
    std::vector<ChatMessage> out;
    for (const auto& m : j)
        out.push_back({m.at("role").get<std::string>(), m.at("content").get<std::string>()});
    return out;
}

}  // namespace

TEST(ChatTemplate, GoldenRenderingsOfEveryFamily) {
    const nlohmann::json g = golden();
    const std::vector<ChatMessage> turns = messages(g.at("turns"));
    std::vector<ChatMessage> with_system = {{"system", g.at("system").at("content").get<std::string>()}};
    with_system.insert(with_system.end(), turns.begin(), turns.end());
    const std::vector<ChatMessage> closed(turns.begin(), turns.begin() + 4);
    std::vector<ChatMessage> closed_system(with_system.begin(), with_system.begin() + 5);
    const std::map<std::string, std::pair<const std::vector<ChatMessage>*, bool>> cases = {
        {"no_system", {&turns, true}},
        {"system", {&with_system, true}},
        {"no_system_closed", {&closed, false}},
        {"system_closed", {&closed_system, false}},
    };
    std::set<std::string> families;
    int compared = 0;
    for (const auto& t : g.at("templates")) {
        const std::string file = t.at("file");
        SCOPED_TRACE(file);
        const std::string text = read_text(test_data("golden/chat_templates/" + file));
        ASSERT_FALSE(text.empty());
        ChatTemplate ct = ChatTemplate::detect(text);
        EXPECT_EQ(ct.name(), t.at("family").get<std::string>());
        families.insert(ct.name());
        ct.options().bos_token = t.at("bos_token");
        ct.options().eos_token = t.at("eos_token");
        if (ct.family() == ChatFamily::Llama31 && text.find("strftime_now") != std::string::npos)
            ct.options().date = g.at("today");  // the golden script's fixed "today"
        for (const auto& [name, c] : cases) {
            SCOPED_TRACE(name);
            const auto& expected = t.at("cases").at(name);
            const std::string got = ct.render(*c.first, c.second);
            if (expected.is_null()) {
                // The Jinja template raises (no system role): strata folds the system text into the first
                // turn.
                EXPECT_NE(got.find(with_system[0].content), std::string::npos) << got;
                continue;
            }
            EXPECT_EQ(got, expected.get<std::string>());
            ++compared;
        }
    }
    for (const char* f : {"chatml", "llama3", "llama3.1", "llama2", "mistral", "mistral-v3",
                          "mistral-v3-tekken", "gemma", "phi3"})
        EXPECT_TRUE(families.count(f)) << "no golden template for family " << f;
    EXPECT_GE(compared, 50);
}

TEST(ChatTemplate, DefaultSystemPromptsComeFromTheTemplate) {
    const ChatTemplate smol =
        ChatTemplate::detect(read_text(test_data("golden/chat_templates/smollm2-135m-instruct.jinja")));
    ASSERT_TRUE(smol.options().default_system.has_value());
    EXPECT_EQ(*smol.options().default_system,
              "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
    const ChatTemplate qwen =
        ChatTemplate::detect(read_text(test_data("golden/chat_templates/qwen2.5-7b-instruct.jinja")));
    ASSERT_TRUE(qwen.options().default_system.has_value());
    EXPECT_EQ(*qwen.options().default_system,
              "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.");
    const ChatTemplate hermes =
        ChatTemplate::detect(read_text(test_data("golden/chat_templates/openhermes-2.5-mistral-7b.jinja")));
    EXPECT_FALSE(hermes.options().default_system.has_value());
    // By name: plain ChatML, no injected prompt.
    EXPECT_FALSE(ChatTemplate::from_name("chatml").options().default_system.has_value());
}

TEST(ChatTemplate, UnknownNamesAndTemplatesNameTheChoices) {
    try {
        ChatTemplate::from_name("vicuna");
        FAIL() << "no error";
    } catch (const std::invalid_argument& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("vicuna"), std::string::npos) << msg;
        for (const std::string& n : ChatTemplate::names()) EXPECT_NE(msg.find(n), std::string::npos) << msg;
    }
    try {
        ChatTemplate::detect("{% for m in messages %}USER: {{ m.content }}{% endfor %}");
        FAIL() << "no error";
    } catch (const std::runtime_error& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("unrecognised chat template"), std::string::npos) << msg;
        EXPECT_NE(msg.find("--chat-template"), std::string::npos) << msg;
        EXPECT_NE(msg.find("chatml"), std::string::npos) << msg;
    }
    // A bare family name is accepted as a template text (as llama.cpp does).
    EXPECT_EQ(ChatTemplate::detect("gemma").family(), ChatFamily::Gemma);
}

TEST(ChatTemplate, OpenMessagesEndWhereTheContentWouldBegin) {
    const std::vector<ChatMessage> conv = {{"user", "Hi"}};
    ChatTemplate chatml = ChatTemplate::from_name("chatml");
    EXPECT_EQ(chatml.render_open(conv, "assistant"), chatml.render(conv, true));
    EXPECT_EQ(chatml.render_open(conv, "user"), "<|im_start|>user\nHi<|im_end|>\n<|im_start|>user\n");
    ChatTemplate llama3 = ChatTemplate::from_name("llama3");
    llama3.options().bos_token = "<|begin_of_text|>";
    EXPECT_EQ(llama3.render_open(conv, "assistant"), llama3.render(conv, true));
    ChatTemplate gemma = ChatTemplate::from_name("gemma");
    EXPECT_EQ(gemma.render_open(conv, "assistant"), gemma.render(conv, true));
    // Llama 2 writes ' ' + content.strip() + ' ' + eos for an assistant message: the open one keeps the
    // space.
    ChatTemplate llama2 = ChatTemplate::from_name("llama2");
    llama2.options().bos_token = "<s>";
    EXPECT_EQ(llama2.render_open(conv, "assistant"), "<s>[INST] Hi [/INST] ");
    ChatTemplate phi3 = ChatTemplate::from_name("phi3");
    EXPECT_EQ(phi3.render_open(conv, "assistant"), phi3.render(conv, true));
}

TEST(ChatTemplate, PythonStrip) {
    EXPECT_EQ(py_strip("  a b \n\t"), "a b");
    EXPECT_EQ(py_strip("\xC2\xA0x\xE3\x80\x80"), "x");  // NBSP and ideographic space
    EXPECT_EQ(py_strip("\x1Fx\x1C"), "x");              // Python counts the separators as space
    EXPECT_EQ(py_strip("你好 "), "你好");
    EXPECT_EQ(py_strip("   "), "");
    EXPECT_EQ(py_strip("\xF0\x9F\x98\x80"), "\xF0\x9F\x98\x80");
}

TEST(ChatTemplate, SmolLM2TemplateFromTheModel) {
    STRATA_REQUIRE_FILE(smollm2_path());
    auto model = Model::load(smollm2_path());
    const ChatTemplate ct = ChatTemplate::for_model(model->file().meta, model->tokenizer());
    EXPECT_EQ(ct.name(), "chatml");
    EXPECT_TRUE(ct.options().default_system.has_value());
    EXPECT_EQ(ChatTemplate::for_model(model->file().meta, model->tokenizer(), "llama3").name(), "llama3");
    EXPECT_THROW(ChatTemplate::for_model(model->file().meta, model->tokenizer(), "nope"), std::invalid_argument);
}

TEST(ChatTemplate, ModelWithoutTemplateNeedsAName) {
    STRATA_REQUIRE_FILE(shared_model("stories260K.gguf"));
    auto model = Model::load(shared_model("stories260K.gguf"));
    try {
        ChatTemplate::for_model(model->file().meta, model->tokenizer());
        FAIL() << "no error";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("--chat-template"), std::string::npos) << e.what();
    }
    EXPECT_EQ(ChatTemplate::for_model(model->file().meta, model->tokenizer(), "llama2").name(), "llama2");
}
