// strata serve without sockets: request parsing, stop sequences, response shapes, and the scheduler's
// continuous batching against plain one-request-at-a-time generation (core/run/generate.h) on a real model.
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/run/generate.h"
#include "core/text/tokenizer.h"
#include "server/catalog.h"
#include "server/request.h"
#include "server/responses.h"
#include "server/scheduler.h"
#include "server/stop.h"
#include "test_util.h"

using namespace strata;
using namespace strata::server;

namespace {

ApiError refusal(Endpoint e, const std::string& body) {
    try {
        parse_request(e, body);
    } catch (const ApiError& err) {
        return err;
    }
    ADD_FAILURE() << "accepted: " << body;
    return ApiError(0, "");
}

}  // namespace

TEST(ServerRequest, ChatDefaultsAndFields) {
    const GenerationRequest r = parse_request(Endpoint::Chat, R"({"model": "m", "messages": [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Hello, "}, {"type": "text", "text": "you"}]},
        {"role": "assistant", "content": null}], "stop": "\n", "seed": 42, "stream": true,
        "stream_options": {"include_usage": true}, "ai_prefix": "Well,", "layer_spec": "0:3",
        "user": "ignored",
        "max_completion_tokens": 7, "n": 1, "presence_penalty": 0, "logit_bias": {}})");
    ASSERT_EQ(r.messages.size(), 3u);
    EXPECT_EQ(r.messages[0].role, Role::System);
    EXPECT_EQ(r.messages[1].text, "Hello, you");
    EXPECT_EQ(r.messages[2].role, Role::Assistant);
    EXPECT_EQ(r.messages[2].text, "");
    EXPECT_EQ(r.stop, std::vector<std::string>{"\n"});
    EXPECT_EQ(r.seed, 42u);
    EXPECT_TRUE(r.stream && r.include_usage);
    EXPECT_EQ(r.ai_prefix, "Well,");
    EXPECT_EQ(r.layer_spec, "0:3");
    EXPECT_EQ(r.max_tokens, 7);
    EXPECT_EQ(r.temperature, 1.0);  // OpenAI's defaults
    EXPECT_EQ(r.top_p, 1.0);
    EXPECT_FALSE(
        parse_request(Endpoint::Chat, R"({"messages": [{"role": "user", "content": "x"}]})").max_tokens);
}

TEST(ServerRequest, CompletionPrompts) {
    EXPECT_EQ(parse_request(Endpoint::Completion, R"({"prompt": "abc"})").prompt, "abc");
    EXPECT_EQ(parse_request(Endpoint::Completion, R"({"prompt": ["abc"]})").prompt, "abc");
    const GenerationRequest t =
        parse_request(Endpoint::Completion, R"({"prompt": [[1, 2, 3]], "echo": true})");
    EXPECT_TRUE(t.prompt_is_tokens && t.echo);
    EXPECT_EQ(t.prompt_tokens, (std::vector<int32_t>{1, 2, 3}));
    EXPECT_EQ(t.max_tokens, 16);  // the legacy endpoint's default
}

TEST(ServerRequest, RefusalsNameTheField) {
    const std::pair<const char*, const char*> chat[] = {
        {R"({"messages": "hi"})", "messages"},
        {R"({"messages": [{"role": "user"}]})", "messages[0].content"},
        {R"({"messages": [{"role": "user", "content": "x"}], "temperature": 2.01})", "temperature"},
        {R"({"messages": [{"role": "user", "content": "x"}], "top_p": 0})", "top_p"},
        {R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0})", "max_tokens"},
        {R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 3000000000})", "max_tokens"},
        {R"({"messages": [{"role": "user", "content": "x"}], "n": 3})", "n"},
        {R"({"messages": [{"role": "user", "content": "x"}], "stop": [1]})", "stop"},
        {R"({"messages": [{"role": "user", "content": "x"}], "stream_options": 1})", "stream_options"},
        {R"({"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_object"}})",
         "response_format"},
        {R"({"messages": [{"role": "user", "content": "x"}], "top_k": -1})", "top_k"},
        {R"({"messages": [{"role": "user", "content": "x"}], "model": 5})", "model"},
    };
    for (const auto& [body, param] : chat) {
        const ApiError e = refusal(Endpoint::Chat, body);
        EXPECT_EQ(e.status, 400) << body;
        EXPECT_EQ(e.param, param) << body << ": " << e.what();
    }
    EXPECT_EQ(refusal(Endpoint::Chat, "{").code, "invalid_json");
    // Finding (fuzz_server_request): a number beyond a double is nlohmann's out_of_range, not a parse_error,
    // and escaped as a 500; it is malformed JSON like any other.
    EXPECT_EQ(refusal(Endpoint::Completion, R"({"prompt": "x", "temperature": 5e555})").code, "invalid_json");
    EXPECT_EQ(refusal(Endpoint::Completion, R"({"prompt": [1, -2]})").param, "prompt");
    EXPECT_EQ(refusal(Endpoint::Completion, R"({"prompt": "x", "suffix": "y"})").code, "unsupported");
}

TEST(ServerStop, HoldsBackWhatMightStartAStopSequence) {
    StopMatcher m({"</s>", "END"});
    EXPECT_EQ(m.feed("Hello <"), "Hello ");  // "<" may start "</s>"
    EXPECT_EQ(m.feed("b>"), "<b>");
    EXPECT_EQ(m.feed(" EN"), " ");
    EXPECT_EQ(m.feed("D and more"), "");
    EXPECT_TRUE(m.stopped());
    EXPECT_EQ(m.feed("more"), "");
    StopMatcher n({"ab"});
    EXPECT_EQ(n.feed("xa"), "x");
    EXPECT_EQ(n.flush(), "a");          // the end: what was held back is the text's
    StopMatcher first({"cd", "bcde"});  // the earliest occurrence wins, whichever sequence it is
    EXPECT_EQ(first.feed("abcdef"), "a");
}

TEST(ServerResponses, ShapesAndInvalidUtf8) {
    const ResponseHead h = response_head(Endpoint::Chat, "m");
    EXPECT_EQ(h.id.rfind("chatcmpl-", 0), 0u);
    Finish f = Finish::ended("length");
    f.prompt_tokens = 3, f.completion_tokens = 2;
    const nlohmann::json j = nlohmann::json::parse(dump(reply_json(h, "a\xff", f)));
    EXPECT_EQ(j["object"], "chat.completion");
    EXPECT_EQ(j["choices"][0]["message"]["content"], "a\xef\xbf\xbd");  // U+FFFD
    EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
    EXPECT_EQ(j["usage"]["total_tokens"], 5);
    EXPECT_EQ(first_chunk_json(h)["choices"][0]["delta"]["role"], "assistant");
    EXPECT_TRUE(finish_chunk_json(h, "stop")["choices"][0]["delta"].empty());
    EXPECT_TRUE(usage_chunk_json(h, f)["choices"].empty());
    const ResponseHead c = response_head(Endpoint::Completion, "m");
    EXPECT_EQ(text_chunk_json(c, "x")["choices"][0]["text"], "x");
    EXPECT_EQ(text_chunk_json(c, "x")["object"], "text_completion");
    const nlohmann::json e =
        error_json(ApiError(404, "no", "invalid_request_error", "model", "model_not_found"));
    EXPECT_EQ(e["error"]["param"], "model");
    EXPECT_TRUE(error_json(ApiError(400, "no"))["error"]["code"].is_null());
}

// Requests on two plans (the base and a variant), joining at different times, each through the scheduler's
// shared batched passes: every reply equals plain generation of that request alone.
TEST(ServerScheduler, BatchedRepliesEqualGenerationAlone) {
    const std::string path = strata::test::shared_model("stories260K.gguf");
    STRATA_REQUIRE_FILE(path);
    CatalogOptions co;
    co.n_ctx = 256, co.n_threads = 2, co.max_batch = 16;  // prompts longer than a pass: read in chunks
    const Catalog catalog({{"base", path, {{"merged", "0:4,1:5"}}}}, co);
    Metrics metrics;
    SchedulerOptions so;
    so.n_slots = 3, so.max_queue = 8;  // more requests than slots: some wait
    Scheduler scheduler(so, metrics);

    const char* prompts[] = {"Once upon a time, in a big forest, there lived a small bunny who", "The dog",
                             "Lily and Ben", "One day, the sun", "Tom had a red ball and a blue kite. He"};
    std::vector<std::string> expected;
    std::vector<std::shared_ptr<Reply>> replies;
    for (size_t i = 0; i < std::size(prompts); ++i) {
        GenerationRequest r;
        r.endpoint = Endpoint::Completion;
        r.model = i % 2 ? "merged" : "base";
        r.prompt = prompts[i];
        r.max_tokens = 30 + static_cast<int>(i);
        r.temperature = 0;
        r.ignore_eos = true;
        PreparedRequest p = catalog.prepare(r);
        // The reference: the same plan in a Forward of its own, plain generate().
        ForwardOptions fo;
        fo.n_ctx = 256;
        Forward alone(p.forward->model_ptr(), p.forward->plan(), fo);
        Sampler sampler(p.sampling);
        GenerateOptions go;
        go.max_new_tokens = *r.max_tokens;
        go.stop_at_eog = false;
        int pos = 0;
        StreamDecoder dec(alone.model().tokenizer());
        std::string text;
        generate(
            alone, sampler, p.prompt, pos, go, [&](int32_t t) { return text += dec.feed(t), true; }, nullptr);
        expected.push_back(text + dec.flush());
        replies.push_back(scheduler.submit(std::move(p)));
        if (i == 1) std::this_thread::sleep_for(std::chrono::milliseconds(20));  // later ones join mid-way
    }
    for (size_t i = 0; i < replies.size(); ++i) {
        std::string text;
        for (;;) {
            Reply::Update u = replies[i]->wait(std::chrono::milliseconds(100));
            text += u.text;
            if (u.done) {
                EXPECT_EQ(u.finish.reason, "length");
                EXPECT_EQ(u.finish.completion_tokens, 30 + static_cast<int>(i));
                break;
            }
        }
        EXPECT_EQ(text, expected[i]) << "request " << i;
    }
}
