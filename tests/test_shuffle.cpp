// Layer shuffling: a plan over the original file equals the identity plan over a physically rewritten
// file (layers copied in the spec's order) - which proves every step has its own KV slot - and repeated
// layers share their weights.
#include <cmath>

#include "core/engine/forward.h"
#include "core/text/tokenizer.h"
#include "loaders/rewrite.h"
#include "test_util.h"

using namespace strata;
using namespace strata::test;

namespace {

// Logits of every prompt token and of 32 greedily decoded tokens, one row per position.
std::vector<std::vector<float>> trace(const std::shared_ptr<const Model>& m, const Plan& plan,
                                      const std::vector<int32_t>& prompt, int n_decode,
                                      std::vector<int32_t>* decoded) {
    ForwardOptions fo;
    fo.n_ctx = 256;
    fo.max_batch = 7;  // several batches
    Forward f(m, plan, fo);
    std::vector<std::vector<float>> rows;
    const size_t V = static_cast<size_t>(m->config().vocab_size);
    auto all = f.eval(prompt, 0, true);
    for (size_t i = 0; i < prompt.size(); ++i) rows.emplace_back(all.begin() + i * V, all.begin() + (i + 1) * V);
    int pos = static_cast<int>(prompt.size());
    int32_t next = static_cast<int32_t>(std::max_element(rows.back().begin(), rows.back().end()) - rows.back().begin());
    for (int k = 0; k < n_decode; ++k) {
        if (decoded) decoded->push_back(next);
        auto l = f.eval(std::span<const int32_t>(&next, 1), pos++);
        rows.emplace_back(l.begin(), l.end());
        next = static_cast<int32_t>(std::max_element(l.begin(), l.end()) - l.begin());
    }
    return rows;
}

// The largest |difference| between two traces.
float max_abs_diff(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b) {
    float m = 0;
    for (size_t i = 0; i < a.size() && i < b.size(); ++i)
        for (size_t j = 0; j < a[i].size(); ++j) m = std::max(m, std::fabs(a[i][j] - b[i][j]));
    return m;
}

void expect_spec_equals_rewrite(const std::shared_ptr<const Model>& model, const std::string& spec,
                                const std::string& prompt_text) {
    const std::vector<int> layers = parse_layer_spec(spec, model->config().n_layers);
    GGUFWriter w(model->file().alignment ? model->file().alignment : 32);
    rewrite_model_layers(w, *model, layers);
    auto rewritten = Model::from_file(read_gguf(MappedFile::from_bytes(w.bytes(), "rewritten.gguf")));
    ASSERT_EQ(rewritten->config().n_layers, static_cast<int>(layers.size()));

    std::vector<int32_t> prompt = model->tokenizer().encode(prompt_text, true, false);
    ASSERT_GE(prompt.size(), 3u);
    std::vector<int32_t> dec_a, dec_b;
    auto a = trace(model, make_plan(*model, spec), prompt, 32, &dec_a);
    auto b = trace(rewritten, make_plan(*rewritten), prompt, 32, &dec_b);
    ASSERT_EQ(dec_a, dec_b) << spec;
    const float max_diff = max_abs_diff(a, b);
    // The same kernels run on the same bytes in the same order, so only threading could reorder sums;
    // the matmul splits rows (not sums) across threads, so the results are expected to be identical.
    EXPECT_LE(max_diff, 1e-4f) << spec;
}

}  // namespace

TEST(Shuffle, IdentitySpecsAreBitIdentical) {
    STRATA_REQUIRE_FILE(shared_model("stories260K.gguf"));
    auto m = Model::load(shared_model("stories260K.gguf"));
    const std::vector<int32_t> prompt = m->tokenizer().encode("Once upon a time, a cat", true, false);
    auto base = trace(m, make_plan(*m), prompt, 8, nullptr);
    for (const char* spec : {"all", "0:5", "0:", ":", "0,1,2,3,4", "-5:"}) {
        auto t = trace(m, make_plan(*m, spec), prompt, 8, nullptr);
        ASSERT_EQ(t.size(), base.size());
        for (size_t i = 0; i < t.size(); ++i) EXPECT_EQ(t[i], base[i]) << spec << " position " << i;
    }
}

TEST(Shuffle, StoriesSpecEqualsRewrittenFile) {
    STRATA_REQUIRE_FILE(shared_model("stories260K.gguf"));
    for (const char* spec : {"0:3,1:5", "0,1,3,4", "::-1", "0:2,0:2,2:5,4"})
        expect_spec_equals_rewrite(Model::load(shared_model("stories260K.gguf")), spec, "Once upon a time, there was a dog");
}

TEST(Shuffle, SmolLM2SpecEqualsRewrittenFile) {
    STRATA_REQUIRE_FILE(smollm2_path());
    for (const char* spec : {"0:20,10:30", "0:10,10:20:2,20:", "::-1"})
        expect_spec_equals_rewrite(Model::load(smollm2_path()), spec, "The quick brown fox jumps over the lazy dog because");
}

TEST(Shuffle, RepeatedLayersShareWeightPointersAndHaveOwnKvSlots) {
    STRATA_REQUIRE_FILE(shared_model("stories260K.gguf"));
    auto m = Model::load(shared_model("stories260K.gguf"));
    Plan p = make_plan(*m, "0:3,1:5,1");
    ASSERT_EQ(p.n_steps(), 8);
    const uint8_t* lo = m->file().mappings[0]->data();
    const uint8_t* hi = lo + m->file().mappings[0]->size();
    for (int i = 0; i < p.n_steps(); ++i) {
        EXPECT_EQ(p.steps[i].kv_slot, i);
        for (const WeightView* v : p.steps[i].w->all()) {
            EXPECT_GE(v->data, lo);
            EXPECT_LT(v->data, hi);  // a view into the mapping, never a copy
        }
        for (int j = 0; j < p.n_steps(); ++j)
            if (p.steps[i].file_layer == p.steps[j].file_layer) {
                EXPECT_EQ(p.steps[i].w, p.steps[j].w);
                EXPECT_EQ(p.steps[i].w->wq->data, p.steps[j].w->wq->data);
            }
    }
    EXPECT_EQ(p.steps[1].file_layer, 1);
    EXPECT_EQ(p.steps[3].file_layer, 1);
    EXPECT_EQ(p.steps[7].file_layer, 1);
}

// Gemma 3: sliding-window and global layers differ (window, RoPE base). A layer's kind comes from the file
// layer, so it travels with the layer through any spec.
namespace {
std::string gemma_path() { return cached_model("gemma-3-270m-q4_k_m.gguf"); }

// The real Gemma 3 file with its sliding window shrunk to `window` tokens (metadata only; weights are the
// file's), so a short test crosses the window.
std::shared_ptr<const Model> gemma_with_window(const std::shared_ptr<const Model>& g, uint32_t window, GGUFWriter& w) {
    rewrite_model_layers(w, *g, [&] { std::vector<int> all(static_cast<size_t>(g->config().n_layers)); for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i); return all; }());
    w.add_u32("gemma3.attention.sliding_window", window);
    return Model::from_file(read_gguf(MappedFile::from_bytes(w.bytes(), "gemma-window.gguf")));
}
}  // namespace

TEST(ShuffleGemma3, KindsComeFromTheFileLayer) {
    STRATA_REQUIRE_FILE(gemma_path());
    auto g = Model::load(gemma_path());
    for (int l = 0; l < g->config().n_layers; ++l) {
        const LayerWeights& L = g->weights().layers[static_cast<size_t>(l)];
        const bool global = l % 6 == 5;
        EXPECT_EQ(L.kind, global ? LayerKind::Global : LayerKind::SlidingWindow) << l;
        EXPECT_EQ(L.rope_theta, global ? 1e6f : 1e4f) << l;
    }
    Plan p = make_plan(*g, "5,0,11:13,-1");
    ASSERT_EQ(p.n_steps(), 5);
    EXPECT_EQ(p.steps[0].kind, LayerKind::Global);         // layer 5 stays global at position 0
    EXPECT_EQ(p.steps[1].kind, LayerKind::SlidingWindow);  // layer 0 stays local at position 1
    EXPECT_EQ(p.steps[2].kind, LayerKind::Global);         // 11
    EXPECT_EQ(p.steps[3].kind, LayerKind::SlidingWindow);  // 12
    EXPECT_EQ(p.steps[4].kind, LayerKind::Global);         // 17
}

TEST(ShuffleGemma3, SpecEqualsRewrittenFileAcrossTheWindow) {
    STRATA_REQUIRE_FILE(gemma_path());
    auto g = Model::load(gemma_path());
    GGUFWriter w;
    auto small_window = gemma_with_window(g, 8, w);  // prompt + 32 decoded tokens cross an 8-token window
    for (const char* spec : {"0:6,3:9,12:18", "::-1", "5,0:5,11"})
        expect_spec_equals_rewrite(small_window, spec, "Write a short poem about the sea and the sky");
}

// Negative control: a rewrite that drops the per-layer kinds (so kinds follow position again, as
// chatllm.cpp does) gives different logits. Without this the test above could pass by accident.
TEST(ShuffleGemma3, PositionalKindsWouldBeWrong) {
    STRATA_REQUIRE_FILE(gemma_path());
    auto g = Model::load(gemma_path());
    const std::string spec = "5,0:5,11";
    const std::vector<int> layers = parse_layer_spec(spec, g->config().n_layers);
    GGUFWriter w;
    rewrite_layers(w, g->file(), layers);  // no kind array: the rewritten file derives kinds by position
    auto positional = Model::from_file(read_gguf(MappedFile::from_bytes(w.bytes(), "positional.gguf")));
    const std::vector<int32_t> prompt = g->tokenizer().encode("The sea is", true, false);
    auto a = trace(g, make_plan(*g, spec), prompt, 4, nullptr);
    auto b = trace(positional, make_plan(*positional), prompt, 4, nullptr);
    EXPECT_GT(max_abs_diff(a, b), 0.1f);
}
