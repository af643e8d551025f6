// stories260K (a real, tiny Llama-2-architecture model) in both formats: greedy generation from BOS must
// reproduce the independently computed reference ids (../shared/models/SOURCES.md).
#include <cstring>
#include <sstream>

#include "core/engine/forward.h"
#include "core/run/generate.h"
#include "core/text/tokenizer.h"
#include "test_util.h"

using namespace strata;
using namespace strata::test;

namespace {

std::vector<int32_t> reference_ids() {
    std::istringstream in(read_text(shared_model("stories260K.greedy255.ids.txt")));
    std::vector<int32_t> ids;
    for (int32_t t; in >> t;) ids.push_back(t);
    return ids;
}

std::vector<int32_t> greedy_from_bos(const std::shared_ptr<const Model>& model, int n, int n_threads = 1) {
    ForwardOptions fo;
    fo.n_threads = n_threads;
    Forward fwd(model, make_plan(*model), fo);
    SamplerParams sp;
    sp.temperature = 0;
    Sampler sampler(sp);
    GenerateOptions go;
    go.max_new_tokens = n;
    go.stop_at_eog = false;
    int pos = 0;
    const int32_t bos[1] = {model->tokenizer().bos_id()};
    return generate(fwd, sampler, bos, pos, go, nullptr, nullptr);
}

}  // namespace

TEST(Stories260K, GgufGreedyMatchesReference) {
    STRATA_REQUIRE_FILE(shared_model("stories260K.gguf"));
    const auto ref = reference_ids();
    ASSERT_EQ(ref.size(), 255u);
    auto model = Model::load(shared_model("stories260K.gguf"));
    EXPECT_EQ(greedy_from_bos(model, 255), ref);
    const std::string text = model->tokenizer().decode(ref);
    EXPECT_EQ(text.rfind("Once upon a time, there was a little girl named Lily.", 0), 0u) << text.substr(0, 80);
}

TEST(Stories260K, Llama2cGreedyMatchesReference) {
    STRATA_REQUIRE_FILE(shared_model("stories260K.bin"));
    LoadOptions lo;
    lo.tokenizer_path = shared_model("tok512.bin");
    auto model = Model::load(shared_model("stories260K.bin"), lo);
    EXPECT_EQ(model->file().format, "llama2.c");
    EXPECT_EQ(greedy_from_bos(model, 255, 2), reference_ids());
    EXPECT_EQ(model->tokenizer().decode(reference_ids()).rfind("Once upon a time, there was a little girl named Lily.", 0), 0u);
}

TEST(Stories260K, BothFormatsGiveTheSameWeights) {
    STRATA_REQUIRE_FILE(shared_model("stories260K.bin"));
    STRATA_REQUIRE_FILE(shared_model("stories260K.gguf"));
    auto a = load_model_file(shared_model("stories260K.gguf"));
    auto b = load_model_file(shared_model("stories260K.bin"), shared_model("tok512.bin"));
    for (const WeightView& w : b.tensors) {
        const WeightView* g = a.find_tensor(w.name);
        ASSERT_NE(g, nullptr) << w.name;
        ASSERT_EQ(g->nbytes, w.nbytes) << w.name;
        EXPECT_EQ(0, std::memcmp(g->data, w.data, w.nbytes)) << w.name;
    }
    // Tokenizers agree on every token's text.
    const auto& ta = a.meta.get_string_array("tokenizer.ggml.tokens");
    const auto& tb = b.meta.get_string_array("tokenizer.ggml.tokens");
    ASSERT_EQ(ta.size(), tb.size());
    for (size_t i = 0; i < ta.size(); ++i) EXPECT_EQ(ta[i], tb[i]) << "token " << i;
}

TEST(Stories260K, BatchedPrefillEqualsTokenByToken) {
    STRATA_REQUIRE_FILE(shared_model("stories260K.gguf"));
    auto model = Model::load(shared_model("stories260K.gguf"));
    const auto ref = reference_ids();
    std::vector<int32_t> prompt = {1};
    prompt.insert(prompt.end(), ref.begin(), ref.begin() + 40);
    ForwardOptions fo;
    fo.max_batch = 16;  // several batches, the last partial
    Forward batched(model, make_plan(*model), fo);
    auto all = batched.eval(prompt, 0, /*all_logits=*/true);
    std::vector<float> batched_logits(all.begin(), all.end());
    Forward single(model, make_plan(*model), fo);
    const size_t V = static_cast<size_t>(model->config().vocab_size);
    for (size_t i = 0; i < prompt.size(); ++i) {
        auto l = single.eval(std::span<const int32_t>(&prompt[i], 1), static_cast<int>(i));
        for (size_t j = 0; j < V; ++j) ASSERT_NEAR(l[j], batched_logits[i * V + j], 1e-4) << "pos " << i << " tok " << j;
    }
}

TEST(Stories260K, ContextOverflowIsAnError) {
    STRATA_REQUIRE_FILE(shared_model("stories260K.gguf"));
    auto model = Model::load(shared_model("stories260K.gguf"));
    ForwardOptions fo;
    fo.n_ctx = 8;
    Forward fwd(model, make_plan(*model), fo);
    std::vector<int32_t> toks(9, 1);
    EXPECT_THROW(fwd.eval(toks, 0), std::runtime_error);
    const int32_t bad[1] = {100000};
    EXPECT_THROW(fwd.eval(bad, 0), std::runtime_error);
}

TEST(Stories260K, ContextLargerThanMemoryIsAClearError) {
    STRATA_REQUIRE_FILE(shared_model("stories260K.gguf"));
    CliResult r = run_cli("run -m " + shared_model("stories260K.gguf") + " -p hi -n 1 -c 2000000000");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("more than this machine's"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("lower -c"), std::string::npos) << r.err;
}
