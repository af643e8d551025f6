// The logit lens (core/analysis/lens, strata lens): after the last step it is the model's output, bit for
// bit; its summaries agree with a direct computation from its own logits; repeated layers give distinct rows;
// the CLI's JSON, CSV and plots. tests/reference/lens_numpy.py (ctest lens_numpy) checks every step against
// an independent numpy model of stories260K.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <numeric>

#include "core/analysis/lens.h"
#include "core/text/tokenizer.h"
#include "test_util.h"

using namespace strata;
using namespace strata::test;

namespace {

std::string stories_path() {
    return shared_model("stories260K.gguf");
}
std::string gemma_path() {
    return cached_model("gemma-3-270m-q4_k_m.gguf");
}

// Runs the lens over every position and checks that the last step's logits are eval's, bit for bit:
// all_logits over the whole prompt (in several batches), and the last position as a plain eval returns it.
void expect_last_step_is_output(const std::string& path, const std::string& spec) {
    auto m = Model::load(path);
    const std::vector<int32_t> prompt =
        m->tokenizer().encode("The capital of France is Paris, and the capital of Italy is", true, false);
    const Plan plan = make_plan(*m, spec);
    const size_t V = static_cast<size_t>(m->config().vocab_size);
    LensOptions o;
    o.all_positions = true;
    o.fwd.max_batch = 5;  // several batches
    o.fwd.n_threads = 2;
    std::map<int, std::vector<float>> last;  // position -> the lens logits after the last step
    o.on_row = [&](const LensRow& r) {
        if (r.step == plan.n_steps() - 1) last[r.position].assign(r.logits, r.logits + V);
    };
    const LensReport rep = run_lens(m, plan, prompt, o);
    ASSERT_EQ(last.size(), prompt.size());

    ForwardOptions fo = o.fwd;
    fo.n_ctx = static_cast<int>(prompt.size());
    Forward f(m, plan, fo);
    const auto all = f.eval(prompt, 0, true);
    for (size_t p = 0; p < prompt.size(); ++p)
        ASSERT_EQ(std::memcmp(last[static_cast<int>(p)].data(), all.data() + p * V, V * sizeof(float)), 0)
            << path << " spec " << spec << " position " << p;
    Forward g(m, plan, fo);
    const auto out = g.eval(prompt, 0, false);
    EXPECT_EQ(std::memcmp(last[static_cast<int>(prompt.size() - 1)].data(), out.data(), V * sizeof(float)),
              0);
    // The last step's row is the output: KL 0, its top-1 the target at rank 1.
    for (const LensCell& c : rep.steps.back().cells) {
        EXPECT_EQ(c.kl, 0.0);
        EXPECT_EQ(c.target_rank, 1);
        EXPECT_EQ(c.top.front().id, c.target);
    }
}

}  // namespace

TEST(Lens, LastStepEqualsTheOutputLogitsBitForBit) {
    STRATA_REQUIRE_FILE(stories_path());
    expect_last_step_is_output(stories_path(), "");
    expect_last_step_is_output(stories_path(), "0:5,1:3");
}

TEST(Lens, TheHeadMayRunInsideTheStateObserver) {
    // Forward::logits_from_residual called from the observer, mid-pass, leaves the pass's own results alone.
    STRATA_REQUIRE_FILE(smollm2_path());
    auto m = Model::load(smollm2_path());
    const std::vector<int32_t> prompt = m->tokenizer().encode("Layers all the way down", true, false);
    const size_t V = static_cast<size_t>(m->config().vocab_size), B = prompt.size();
    ForwardOptions fo;
    fo.n_ctx = 64;
    Forward plain(m, make_plan(*m, "0:20,10:30"), fo);
    const auto want = plain.eval(prompt, 0, true);
    const std::vector<float> expected(want.begin(), want.end());
    Forward f(m, make_plan(*m, "0:20,10:30"), fo);
    std::vector<float> lens(B * V);
    f.set_state_observer([&](int state, const float* x, int n, int) {
        f.logits_from_residual(x, n, lens.data());
        if (state == 40) {
            EXPECT_EQ(std::memcmp(lens.data(), expected.data(), B * V * sizeof(float)), 0);
        }
    });
    const auto got = f.eval(prompt, 0, true);
    EXPECT_EQ(std::memcmp(got.data(), expected.data(), B * V * sizeof(float)), 0);
}

TEST(Lens, LastStepEqualsTheOutputLogitsOnQuantizedModels) {
    // SmolLM2 Q4_1 self-merged (its tied Q8_0 embedding as the head: activations quantized to q8); Gemma 3
    // (embedding scale, tied Q8_0 head, 262144 tokens).
    STRATA_REQUIRE_FILE(smollm2_path());
    expect_last_step_is_output(smollm2_path(), "0:20,10:30");
    STRATA_REQUIRE_FILE(gemma_path());
    expect_last_step_is_output(gemma_path(), "0:12,6:18");
}

TEST(Lens, SummariesAgreeWithItsOwnLogits) {
    STRATA_REQUIRE_FILE(smollm2_path());
    auto m = Model::load(smollm2_path());
    const std::vector<int32_t> prompt = m->tokenizer().encode("One, two, three, four,", true, false);
    const int V = m->config().vocab_size;
    LensOptions o;
    o.top_k = 4;
    o.all_positions = true;
    // The final distribution per position, then each row's summary recomputed from the logits it was made of.
    std::map<int, std::vector<double>> final_logp;
    std::vector<LensRow> rows;
    std::vector<std::vector<float>> logits;
    o.on_row = [&](const LensRow& r) {
        rows.push_back(r);
        logits.emplace_back(r.logits, r.logits + V);
    };
    const Plan plan = make_plan(*m, "0:16,8:30");
    const LensReport rep = run_lens(m, plan, prompt, o);
    ASSERT_EQ(rows.size(), static_cast<size_t>(plan.n_steps()) * prompt.size());
    auto logp_of = [&](const std::vector<float>& l) {
        double mx = *std::max_element(l.begin(), l.end()), s = 0;
        for (float v : l) s += std::exp(v - mx);
        std::vector<double> lp(l.size());
        for (size_t i = 0; i < l.size(); ++i) lp[i] = l[i] - mx - std::log(s);
        return lp;
    };
    for (size_t i = 0; i < rows.size(); ++i)
        if (rows[i].step == plan.n_steps() - 1) final_logp[rows[i].position] = logp_of(logits[i]);
    for (size_t i = 0; i < rows.size(); ++i) {
        const LensRow& r = rows[i];
        const LensCell& c = rep.steps[static_cast<size_t>(r.step)].cells[static_cast<size_t>(r.position)];
        ASSERT_EQ(&c, r.cell);
        const std::vector<double> lp = logp_of(logits[i]), &fl = final_logp[r.position];
        double entropy = 0, kl = 0;
        for (int v = 0; v < V; ++v)
            entropy -= std::exp(lp[v]) * lp[v], kl += std::exp(fl[v]) * (fl[v] - lp[v]);
        EXPECT_NEAR(c.entropy, entropy, 1e-9 * std::max(1.0, entropy));
        EXPECT_NEAR(c.kl, std::max(0.0, kl), 1e-9 * std::max(1.0, kl));
        const int target = static_cast<int>(std::max_element(fl.begin(), fl.end()) - fl.begin());
        EXPECT_EQ(c.target, target);
        std::vector<int> order(static_cast<size_t>(V));
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return lp[a] > lp[b]; });
        ASSERT_EQ(c.top.size(), 4u);
        for (size_t k = 0; k < 4; ++k) {
            EXPECT_EQ(c.top[k].id, order[k]) << "step " << r.step << " position " << r.position;
            EXPECT_NEAR(c.top[k].prob, std::exp(lp[order[k]]), 1e-6);
        }
        EXPECT_EQ(c.target_rank, 1 + std::find(order.begin(), order.end(), target) - order.begin());
        EXPECT_NEAR(c.target_prob, std::exp(lp[target]), 1e-6);
    }
}

TEST(Lens, ARepeatedLayerGivesTwoDifferentRows) {
    STRATA_REQUIRE_FILE(smollm2_path());
    auto m = Model::load(smollm2_path());
    const std::vector<int32_t> prompt =
        m->tokenizer().encode("The quick brown fox jumps over the lazy", true, false);
    const Plan plan = make_plan(*m, "0:20,10:30");  // layers 10..19 run twice: steps 10..19 and 20..29
    const LensReport r = run_lens(m, plan, prompt, {});
    ASSERT_EQ(r.steps.size(), 40u);
    for (int s = 10; s < 20; ++s) {
        const LensStep &a = r.steps[static_cast<size_t>(s)], &b = r.steps[static_cast<size_t>(s + 10)];
        ASSERT_EQ(a.layer, b.layer);
        EXPECT_EQ(a.step, s);
        EXPECT_EQ(b.step, s + 10);
        EXPECT_NE(a.cells[0].kl, b.cells[0].kl) << "layer " << a.layer;
        EXPECT_NE(a.cells[0].top[0].prob, b.cells[0].top[0].prob) << "layer " << a.layer;
    }
    // The first 20 steps are the base model's: against the base as reference, their KL to the reference's
    // output equals the base's own KL at those steps.
    const LensReport base = run_lens(m, make_plan(*m), prompt, {});
    LensOptions o;
    o.reference_states = base.final_states;
    const LensReport cmp = run_lens(m, plan, prompt, o);
    for (int s = 0; s < 20; ++s)
        EXPECT_EQ(cmp.steps[static_cast<size_t>(s)].cells[0].kl_reference,
                  base.steps[static_cast<size_t>(s)].cells[0].kl);
    EXPECT_GT(cmp.steps.back().cells[0].kl_reference, 0.0);
    EXPECT_EQ(base.steps.back().cells[0].kl, 0.0);
}

TEST(Lens, BadOptionsAreClearErrors) {
    STRATA_REQUIRE_FILE(stories_path());
    auto m = Model::load(stories_path());
    const std::vector<int32_t> prompt = m->tokenizer().encode("Once upon a time", true, false);
    LensOptions o;
    o.top_k = 0;
    EXPECT_THROW(run_lens(m, make_plan(*m), prompt, o), std::invalid_argument);
    o.top_k = 5;
    o.fwd.device = "cuda";
    try {
        run_lens(m, make_plan(*m), prompt, o);
        FAIL() << "--device cuda must be refused";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("CPU"), std::string::npos) << e.what();
    }
    o.fwd.device = "cpu";
    EXPECT_THROW(run_lens(m, make_plan(*m), {}, o), std::invalid_argument);
    o.reference_states.assign(3, 0.f);  // not (positions, dim)
    EXPECT_THROW(run_lens(m, make_plan(*m), prompt, o), std::invalid_argument);
}

// ---- the command
// --------------------------------------------------------------------------------------------

TEST(LensCli, JsonHasOneEntryPerPlanStep) {
    STRATA_REQUIRE_FILE(stories_path());
    const CliResult r =
        run_cli("lens -m " + stories_path() +
                " -p 'Once upon a time' --layer-spec 0:5,1:3 --positions all --top-k 3 -o json");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const nlohmann::json j = nlohmann::json::parse(r.out);
    ASSERT_TRUE(j.at("steps").is_array());
    ASSERT_EQ(j["steps"].size(), 7u);
    EXPECT_EQ(j["n_steps"], 7);
    EXPECT_EQ(j["layer_spec"], "0:5,1:3");
    const std::vector<int> layers = {0, 1, 2, 3, 4, 1, 2};
    const size_t n_tokens = j.at("tokens").size();
    EXPECT_EQ(j.at("positions").size(), n_tokens);
    for (size_t s = 0; s < 7; ++s) {
        const nlohmann::json& st = j["steps"][s];
        EXPECT_EQ(st.at("step"), static_cast<int>(s));
        EXPECT_EQ(st.at("layer"), layers[s]);
        ASSERT_EQ(st.at("positions").size(), n_tokens);
        for (const nlohmann::json& c : st["positions"]) {
            EXPECT_EQ(c.at("top").size(), 3u);
            EXPECT_TRUE(c.at("top")[0].contains("text"));
            EXPECT_GE(c.at("target").at("rank"), 1);
            EXPECT_GE(c.at("entropy"), 0.0);
            EXPECT_GE(c.at("kl"), 0.0);
        }
    }
    // The duplicated layers' rows differ.
    EXPECT_NE(j["steps"][1]["positions"][0]["kl"], j["steps"][5]["positions"][0]["kl"]);
}

TEST(LensCli, CsvMarkdownAndCompare) {
    STRATA_REQUIRE_FILE(stories_path());
    const std::string base = "lens -m " + stories_path() + " -p 'Once upon a time' --layer-spec 0:3,1:5";
    CliResult r = run_cli(base + " -o csv --compare base");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::istringstream in(r.out);
    std::string line;
    std::getline(in, line);
    EXPECT_EQ(line.rfind("layer_spec,step,layer,position,", 0), 0u) << line;
    int spec_rows = 0, base_rows = 0;
    while (std::getline(in, line)) (line.rfind("\"0:3,1:5\",", 0) == 0 ? spec_rows : base_rows)++;
    EXPECT_EQ(spec_rows, 7);  // the last position only: one row per step
    EXPECT_EQ(base_rows, 5);
    r = run_cli(base);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("| step | layer | top-5 |"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("`␣time`"), std::string::npos) << r.out;  // tokens made visible: a space as ␣
    int table_rows = 0;
    for (std::istringstream md(r.out); std::getline(md, line);)
        table_rows += line.size() > 2 && line[0] == '|' && std::isdigit(line[2]);
    EXPECT_EQ(table_rows, 7) << r.out;
}

TEST(LensCli, PlotsSvgAndPng) {
    STRATA_REQUIRE_FILE(stories_path());
    const std::string svg = temp_path("lens.svg"), png = temp_path("lens.png");
    const std::string base =
        "lens -m " + stories_path() + " -p 'Once upon a time' --layer-spec 0:5,1:3 -o json";
    CliResult r = run_cli(base + " --compare base --plot " + svg);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::string text = read_text(svg);
    EXPECT_EQ(text.rfind("<?xml", 0), 0u);
    EXPECT_NE(text.find("step 5 ← layer 1 (2nd)"), std::string::npos);
    EXPECT_NE(text.find("base (step i on row i): KL to its own output"), std::string::npos);
    EXPECT_NE(text.find("0:5,1:3: KL to base output"), std::string::npos);
    // --plot without --positions shows every position: one column head per prompt token.
    EXPECT_EQ(nlohmann::json::parse(r.out).at("positions").size(),
              nlohmann::json::parse(r.out).at("tokens").size());
    r = run_cli(base + " --plot " + png);
    if (std::system("command -v rsvg-convert >/dev/null 2>&1") == 0) {
        ASSERT_EQ(r.exit_code, 0) << r.err;
        const std::vector<uint8_t> b = read_bytes(png);
        ASSERT_GT(b.size(), 8u);
        EXPECT_EQ(std::memcmp(b.data(), "\x89PNG", 4), 0);
    } else {
        EXPECT_NE(r.exit_code, 0);
        EXPECT_NE(r.err.find("librsvg2-bin"), std::string::npos) << r.err;
    }
}

TEST(LensCli, BadInputIsAClearError) {
    STRATA_REQUIRE_FILE(stories_path());
    const std::string m = "lens -m " + stories_path();
    struct Case {
        std::string args, says;
    } cases[] = {
        {" -p hi --top-k 0", "top-k"},   {" -p hi --positions some", "positions"},
        {" -p hi -o xml", "output"},     {" -p hi --plot out.gif", ".svg or .png"},
        {"", "-p TEXT or -f FILE"},      {" -p hi --layer-spec 0:9", "0:9"},
        {" -p hi --compare 7:1", "7:1"}, {" -p hi --device cuda", "cuda"},
    };
    for (const Case& c : cases) {
        const CliResult r = run_cli(m + c.args);
        EXPECT_NE(r.exit_code, 0) << c.args;
        EXPECT_NE(r.err.find(c.says), std::string::npos) << c.args << ": " << r.err;
        EXPECT_EQ(r.err.find("terminate"), std::string::npos) << r.err;
    }
}
