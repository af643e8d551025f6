// Replays every fuzz input through its harness (tests/fuzz/fuzz_*.cpp, compiled in here under the names
// tests/CMakeLists.txt gives them): the committed seed corpora and findings in tests/fuzz/{corpus,regressions}/,
// and the GGUF harness's seeds, which are model files and so are written here (tests/fuzz/gguf_seeds.h), not
// committed.
// A harness rejects bad input with an exception it catches itself; any crash, sanitizer report or failed
// invariant (std::abort) fails this suite. The sanitizer build in .ci/run runs it too.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "fuzz/gguf_seeds.h"
#include "loaders/gguf_writer.h"
#include "loaders/model_file.h"
#include "test_util.h"

#define STRATA_HARNESS(name)                                                  \
    extern "C" int strata_fuzz_one_##name(const uint8_t* data, size_t size); \
    extern "C" int strata_fuzz_init_##name(int*, char***) __attribute__((weak));
STRATA_HARNESS(gguf_model)
STRATA_HARNESS(llama2c)
STRATA_HARNESS(tokenizer_spm)
STRATA_HARNESS(tokenizer_bpe)
STRATA_HARNESS(layer_spec)
STRATA_HARNESS(mergekit)
STRATA_HARNESS(chat_template)
STRATA_HARNESS(c_api)
STRATA_HARNESS(kl_base)
STRATA_HARNESS(server_request)

namespace {

namespace fs = std::filesystem;
using Harness = int (*)(const uint8_t*, size_t);
using Init = int (*)(int*, char***);

// Runs every file under tests/fuzz/<dir>/<name>/ through the harness; returns how many it ran.
size_t replay(const std::string& dir, const std::string& name, Init init, Harness one) {
    const fs::path folder = fs::path(STRATA_FUZZ_DIR) / dir / name;
    if (!fs::exists(folder)) return 0;
    if (init) init(nullptr, nullptr);
    size_t n = 0;
    for (const auto& e : fs::directory_iterator(folder)) {
        if (!e.is_regular_file()) continue;
        const std::vector<uint8_t> bytes = strata::test::read_bytes(e.path().string());
        SCOPED_TRACE(e.path().string());
        EXPECT_EQ(one(bytes.data(), bytes.size()), 0);
        ++n;
    }
    return n;
}

}  // namespace

#define STRATA_REPLAY_TEST(name, ...)                                                                       \
    TEST(FuzzRegression, name) {                                                                            \
        __VA_ARGS__;                                                                                         \
        const size_t seeds = replay("corpus", #name, strata_fuzz_init_##name, strata_fuzz_one_##name);      \
        replay("regressions", #name, nullptr, strata_fuzz_one_##name);                                      \
        EXPECT_GT(seeds, 0u) << "tests/fuzz/corpus/" #name " is empty";                                    \
    }

// The GGUF seeds, the alignment-1 finding among them, made by the same code that makes the fuzzers' seeds.
TEST(FuzzRegression, gguf_model) {
    STRATA_REQUIRE_FILE(strata::test::shared_model("stories260K.gguf"));
    size_t seeds = replay("corpus", "gguf_model", nullptr, strata_fuzz_one_gguf_model);
    strata::fuzz::gguf_model_seeds([&](const std::string& name, const std::vector<uint8_t>& bytes) {
        SCOPED_TRACE(name);
        EXPECT_EQ(strata_fuzz_one_gguf_model(bytes.data(), bytes.size()), 0);
        ++seeds;
    });
    replay("regressions", "gguf_model", nullptr, strata_fuzz_one_gguf_model);
    EXPECT_GE(seeds, 14u);
}
STRATA_REPLAY_TEST(llama2c)
STRATA_REPLAY_TEST(tokenizer_spm, STRATA_REQUIRE_FILE(strata::test::shared_model("stories260K.gguf")))
STRATA_REPLAY_TEST(tokenizer_bpe, STRATA_REQUIRE_FILE(strata::test::shared_model("ggml-vocab-gpt-2.gguf")))
STRATA_REPLAY_TEST(layer_spec)
STRATA_REPLAY_TEST(mergekit)
STRATA_REPLAY_TEST(chat_template)
STRATA_REPLAY_TEST(c_api, STRATA_REQUIRE_FILE(strata::test::shared_model("stories260K.gguf")))
STRATA_REPLAY_TEST(kl_base)
STRATA_REPLAY_TEST(server_request, STRATA_REQUIRE_FILE(strata::test::shared_model("stories260K.gguf")))

// Finding (fuzz_gguf_model): general.alignment = 1 put Q5_0 blocks and F32 norms at odd addresses, and the
// kernels read them as structs and floats (undefined behaviour; UBSan: misaligned address). GGUF requires a
// multiple of 8: anything less is now refused while reading the header, naming the key.
TEST(GgufBadInput, AlignmentBelowEightIsRefused) {
    for (uint32_t a : {1u, 2u, 4u}) {
        strata::GGUFWriter w(a);
        w.add_string("general.architecture", "llama");
        const float x[3] = {1, 2, 3};
        w.add_tensor("t", strata::DType::F32, {3}, x, sizeof x);
        try {
            strata::read_gguf(strata::MappedFile::from_bytes(w.bytes(), "align.gguf"));
            ADD_FAILURE() << "alignment " << a << " accepted";
        } catch (const std::runtime_error& e) {
            EXPECT_NE(std::string(e.what()).find("general.alignment " + std::to_string(a)), std::string::npos) << e.what();
            EXPECT_NE(std::string(e.what()).find("multiple of 8"), std::string::npos) << e.what();
        }
    }
    // The fuzzer's input itself (a tiny Q5_0 model written with alignment 1), through the CLI.
    STRATA_REQUIRE_FILE(strata::test::shared_model("stories260K.gguf"));
    const std::string recorded = strata::test::temp_path("general-alignment-1-misaligned-blocks.gguf");
    strata::fuzz::gguf_model_seeds([&](const std::string& name, const std::vector<uint8_t>& bytes) {
        if (name == strata::fuzz::kAlignment1Seed) strata::test::write_bytes(recorded, bytes);
    });
    const auto r = strata::test::run_cli("show -m '" + recorded + "'");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("multiple of 8"), std::string::npos) << r.err;
}
