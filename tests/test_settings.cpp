// Session settings by name (core/run/settings.h), which the C API, the CLI and a server share: the ranges and
// their one-line messages, -n/--n-predict, --seed -1 (random), -c 0 and -t clamping, and the C API's use of them.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "core/api/strata.h"
#include "core/engine/forward.h"
#include "core/engine/model.h"
#include "core/engine/sampler.h"
#include "core/run/settings.h"
#include "test_util.h"

using namespace strata;
using strata::test::smollm2_path;

TEST(Settings, NumbersOutsideTheirRangeSayWhatIsValid) {
    const NumberRule n = *session_setting_rule("n-predict");
    EXPECT_EQ(check_number("-1", n), "");
    EXPECT_EQ(check_number("0", n), "");
    EXPECT_EQ(check_number("-5", n), "-5 is not valid: use a count >= 0, or -1 for until the end of text or context");
    EXPECT_EQ(check_number("2.5", n).rfind("2.5 is not valid: use ", 0), 0u);
    EXPECT_EQ(check_number("abc", n).rfind("'abc' is not a number: use ", 0), 0u);
    EXPECT_EQ(check_number("", n).rfind("an empty value is not valid", 0), 0u);
    EXPECT_NE(check_number("99999999999", n), "");  // more than an int holds
    const NumberRule top_p = *session_setting_rule("top-p");
    EXPECT_NE(check_number("0", top_p), "");  // (0, 1]
    EXPECT_EQ(check_number("1", top_p), "");
    EXPECT_EQ(check_number("0.5", top_p), "");
    EXPECT_NE(check_number("1.01", top_p), "");
    EXPECT_NE(check_number("nan", top_p), "");
    EXPECT_NE(check_number("inf", *session_setting_rule("temp")), "");
    const NumberRule seed = *session_setting_rule("seed");
    EXPECT_EQ(check_number("-1", seed), "");
    EXPECT_EQ(check_number("9223372036854775807", seed), "");
    EXPECT_NE(check_number("-2", seed), "");
    EXPECT_NE(check_number("18446744073709551615", seed), "");
    EXPECT_EQ(session_setting_rule("system"), nullptr);
}

TEST(Settings, ApplyNamesTheOptionAndAcceptsTheAliases) {
    SessionSettings s;
    EXPECT_EQ(s.sampler.seed, kRandomSeed);  // the default: a random seed
    EXPECT_EQ(s.forward.n_ctx, kDefaultContext);
    apply_session_setting(s, "n-predict", "-1");
    EXPECT_EQ(s.session.max_new_tokens, -1);
    apply_session_setting(s, "max-new-tokens", "12");
    EXPECT_EQ(s.session.max_new_tokens, 12);
    apply_session_setting(s, "seed", "42");
    EXPECT_EQ(s.sampler.seed, 42u);
    apply_session_setting(s, "seed", "-1");
    EXPECT_EQ(s.sampler.seed, kRandomSeed);
    apply_session_setting(s, "ctx-size", "0");
    EXPECT_EQ(s.forward.n_ctx, 0);
    apply_session_setting(s, "temp", "0.25");
    EXPECT_FLOAT_EQ(s.sampler.temperature, 0.25f);
    const auto message = [&](const char* key, const char* value) {
        try {
            apply_session_setting(s, key, value);
        } catch (const std::invalid_argument& e) {
            return std::string(e.what());
        }
        return std::string("(accepted)");
    };
    EXPECT_EQ(message("n-predict", "-5"),
              "--n-predict: -5 is not valid: use a count >= 0, or -1 for until the end of text or context");
    EXPECT_EQ(message("threads", "-1"), "--threads: -1 is not valid: use a count >= 1, or 0 for all hardware threads");
    EXPECT_EQ(message("ctx-overflow", "later").rfind("--ctx-overflow: ", 0), 0u);
    EXPECT_EQ(message("reversed-role", "maybe").rfind("--reversed-role: ", 0), 0u);
    EXPECT_EQ(message("colour", "red"), "unknown option --colour");
}

TEST(Settings, RandomSeedIsDrawnPerSamplerAndAFixedOneRepeats) {
    const std::vector<float> logits = {0.1f, 0.3f, 0.2f, 0.4f, 0.0f, 0.25f, 0.15f, 0.35f};
    const auto draws = [&](uint64_t seed) {
        SamplerParams p;
        p.temperature = 1.0f, p.top_k = 0, p.top_p = 1.0f, p.min_p = 0, p.seed = seed;
        Sampler s(p);
        std::vector<int32_t> out;
        for (int i = 0; i < 64; ++i) out.push_back(s.sample(logits));
        return std::make_pair(s.params().seed, out);
    };
    const auto a = draws(kRandomSeed), b = draws(kRandomSeed), c = draws(7), d = draws(7);
    EXPECT_NE(a.first, b.first);
    EXPECT_NE(a.second, b.second);
    EXPECT_LE(a.first, static_cast<uint64_t>(INT64_MAX));  // can be given back as --seed
    EXPECT_EQ(draws(a.first).second, a.second);           // the seed in params() repeats the run
    EXPECT_EQ(c.first, 7u);
    EXPECT_EQ(c.second, d.second);
}

TEST(Settings, ContextAndThreads) {
    ModelConfig c;
    c.n_ctx_train = 8192;
    EXPECT_EQ(context_size(c, 0), 8192);  // -c 0: the training context
    EXPECT_EQ(context_size(c, kDefaultContext), 4096);
    EXPECT_EQ(context_size(c, 100), 100);
    EXPECT_EQ(context_size(c, 10000), 10000);
    c.n_ctx_train = 512;
    EXPECT_EQ(context_size(c, kDefaultContext), 512);
    const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    EXPECT_EQ(hardware_threads(), hw);
    EXPECT_EQ(thread_count(0), hw);
    EXPECT_EQ(thread_count(1), 1);
    EXPECT_EQ(thread_count(hw + 1000), hw);
}

// The C API takes the same names and ranges: -n / --n-predict, a bad value's message, a random seed by default
// (shown in the statistics) and a fixed one when given, -t clamped to the hardware threads.
TEST(Settings, CApiUsesTheSameSettings) {
    STRATA_REQUIRE_FILE(smollm2_path());
    strata_model* model = nullptr;
    ASSERT_EQ(strata_model_open(smollm2_path().c_str(), nullptr, &model), STRATA_OK) << strata_last_error();
    strata_session* s = nullptr;
    const char* bad[] = {"--temp", "0", "--top-p", "1.5"};
    EXPECT_EQ(strata_session_new(model, 4, bad, &s), STRATA_ERR_INVALID_ARG);
    EXPECT_STREQ(strata_last_error(), "--top-p: 1.5 is not valid: use a probability > 0 and <= 1 (1: off)");
    const char* bad_n[] = {"-n", "-2"};
    EXPECT_EQ(strata_session_new(model, 2, bad_n, &s), STRATA_ERR_INVALID_ARG);
    EXPECT_NE(std::string(strata_last_error()).find("--n-predict: -2 is not valid"), std::string::npos);
    const char* unknown[] = {"--tokenizer", "x"};
    EXPECT_EQ(strata_session_new(model, 2, unknown, &s), STRATA_ERR_INVALID_ARG);

    const auto stats = [](strata_session* x) { return nlohmann::json::parse(strata_session_stats_json(x)); };
    const char* opts[] = {"--temp", "0", "-n", "3", "-c", "256", "-t", "100000"};
    ASSERT_EQ(strata_session_new(model, 8, opts, &s), STRATA_OK) << strata_last_error();
    ASSERT_EQ(strata_session_send(s, "Hello!", nullptr, nullptr, nullptr), STRATA_OK) << strata_last_error();
    nlohmann::json j = stats(s);
    EXPECT_EQ(j["last_generated_tokens"], 3);
    EXPECT_EQ(j["n_threads"], hardware_threads());
    strata_session* r1 = nullptr;
    strata_session* r2 = nullptr;
    strata_session* fixed = nullptr;
    const char* seeded[] = {"-c", "64", "--seed", "123"};
    const char* plain[] = {"-c", "64"};
    ASSERT_EQ(strata_session_new(model, 2, plain, &r1), STRATA_OK);
    ASSERT_EQ(strata_session_new(model, 2, plain, &r2), STRATA_OK);
    ASSERT_EQ(strata_session_new(model, 4, seeded, &fixed), STRATA_OK);
    EXPECT_NE(stats(r1)["seed"], stats(r2)["seed"]);
    EXPECT_EQ(stats(fixed)["seed"], 123);
    for (strata_session* x : {s, r1, r2, fixed}) strata_session_free(x);
    strata_model_close(model);
}
