// The strata command end to end: run, show, layer specs from the command line, and memory of a self-merge.
#include <regex>
#include <set>

#include "test_util.h"

using namespace strata::test;

TEST(Cli, RunStoriesGreedy) {
    STRATA_REQUIRE_FILE(shared_model("stories260K.gguf"));
    CliResult r = run_cli("run -m " + shared_model("stories260K.gguf") + " -p '' -n 40 --temp 0 -t 1");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("Once upon a time, there was a little girl named Lily."), std::string::npos) << r.out;
    EXPECT_NE(r.err.find("generation: 40 tokens"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("tok/s"), std::string::npos) << r.err;
}

TEST(Cli, RunLlama2cCheckpoint) {
    STRATA_REQUIRE_FILE(shared_model("stories260K.bin"));
    CliResult r = run_cli("run -m " + shared_model("stories260K.bin") + " --tokenizer " + shared_model("tok512.bin") +
                          " -p 'Once upon a time' -n 16 --temp 0");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.rfind("Once upon a time", 0), 0u) << r.out;
    CliResult missing = run_cli("run -m " + shared_model("stories260K.bin") + " -p x -n 2");
    EXPECT_NE(missing.exit_code, 0);  // tokenizer.bin is not beside it in ../shared/models
    EXPECT_NE(missing.err.find("tokenizer"), std::string::npos) << missing.err;
}

TEST(Cli, InvalidLayerSpecsExitNonZeroWithTheirMessage) {
    STRATA_REQUIRE_FILE(shared_model("stories260K.gguf"));
    const std::pair<const char*, const char*> cases[] = {
        {"0:40", "stop 40 is outside the model"}, {"-40:", "start -40 is outside the model"},
        {"3:3", "selects no layers"},            {"0:8:0", "step must not be zero"},
        {"a:b", "not an integer"},               {"1:2:3:4", "at most three parts"},
        {"0:4,,8", "empty item"},                {"0:4,", "empty item"},
        {"-1:0", "selects no layers"},           {"7", "index is outside the model"},
    };
    for (const auto& [spec, why] : cases) {
        for (const char* flag : {"--layer-spec", "--layer_spec"}) {
            CliResult r = run_cli(std::string("run -m ") + shared_model("stories260K.gguf") + " -p hi -n 1 " + flag +
                                  " '" + spec + "'");
            EXPECT_NE(r.exit_code, 0) << spec;
            EXPECT_NE(r.err.find(why), std::string::npos) << spec << ": " << r.err;
            EXPECT_NE(r.err.find("5 layers"), std::string::npos) << spec << ": " << r.err;
        }
    }
}

TEST(Cli, ShowPrintsModelAndPlan) {
    STRATA_REQUIRE_FILE(smollm2_path());
    CliResult r = run_cli("show -m " + smollm2_path() + " --layer-spec 0:20,10:30");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    for (const char* want : {"architecture:  llama", "layers:        30", "heads:         9 query, 3 key/value",
                             "blk.[0..29].ffn_up.weight", "Q4_1", "[576, 1536]", "layers:        0-19, 10-29",
                             "steps:         40 (file layers: 30)", "repeated:      10-19", "dropped:       none",
                             "tokenizer:     gpt2, pre smollm, 49152 tokens", "chat template: present"})
        EXPECT_NE(r.out.find(want), std::string::npos) << "missing '" << want << "' in:\n" << r.out;
}

// A self-merge maps no extra weights: peak RSS grows by at most the extra KV cache plus 5%.
TEST(Cli, SelfMergeCostsNoWeightMemory) {
    STRATA_REQUIRE_FILE(smollm2_path());
    auto peak = [](const std::string& err) {
        std::smatch m;
        if (!std::regex_search(err, m, std::regex(R"(peak RSS ([0-9.]+) MiB, KV cache ([0-9.]+) MiB)")))
            return std::pair<double, double>{-1, -1};
        return std::pair<double, double>{std::stod(m[1]), std::stod(m[2])};
    };
    const std::string common = "run -m " + smollm2_path() + " -p 'Hello there' -n 16 --temp 0 -c 256 -t 2";
    CliResult plain = run_cli(common);
    CliResult merged = run_cli(common + " --layer-spec 0:20,10:30");
    ASSERT_EQ(plain.exit_code, 0) << plain.err;
    ASSERT_EQ(merged.exit_code, 0) << merged.err;
    auto [rss_plain, kv_plain] = peak(plain.err);
    auto [rss_merged, kv_merged] = peak(merged.err);
    ASSERT_GT(rss_plain, 0) << plain.err;
    const double budget = rss_plain + (kv_merged - kv_plain) + 0.05 * rss_plain;
    EXPECT_LE(rss_merged, budget) << "plain " << rss_plain << " MiB, merged " << rss_merged << " MiB";
    std::printf("[ rss ] plain %.1f MiB, self-merge 0:20,10:30 %.1f MiB (extra KV %.1f MiB)\n", rss_plain, rss_merged,
                kv_merged - kv_plain);
}

TEST(Cli, ShowFlagAndMergekitFile) {
    STRATA_REQUIRE_FILE(shared_model("stories260K.gguf"));
    const std::string yml = temp_path("merge.yml");
    {
        std::ofstream f(yml);
        f << "slices:\n  - sources:\n    - model: stories\n      layer_range: [0, 3]\n  - sources:\n    - model: stories\n"
             "      layer_range: [1, 5]\nmerge_method: passthrough\n";
    }
    CliResult r = run_cli("run -m " + shared_model("stories260K.gguf") + " --layer-spec-file " + yml + " --show");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("layers:        0-2, 1-4"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("steps:         7 (file layers: 5)"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("repeated:      1-2"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("Once upon"), std::string::npos) << "--show must not generate";
    CliResult both = run_cli("run -m " + shared_model("stories260K.gguf") + " --layer-spec-file " + yml +
                             " --layer-spec 0:2 --show");
    EXPECT_NE(both.exit_code, 0);
    CliResult pruned = run_cli("show -m " + shared_model("stories260K.gguf") + " --layer_spec 0,2,4");
    EXPECT_NE(pruned.out.find("dropped:       1, 3"), std::string::npos) << pruned.out;
}

TEST(Cli, BenchComparesSpecsAndSelfSpeculation) {
    STRATA_REQUIRE_FILE(shared_model("stories260K.gguf"));
    CliResult r = run_cli("bench -m " + shared_model("stories260K.gguf") +
                          " -p 16 -n 16 -r 1 -t 1 --spec base --spec 0:3,1:5 --draft-spec 0,2,4 -o json");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const nlohmann::json rows = nlohmann::json::parse(r.out);
    std::set<std::string> tests;
    for (const auto& row : rows) {
        tests.insert(row["spec"].get<std::string>() + "|" + row["test"].get<std::string>());
        EXPECT_GT(row["tokens_per_second"].get<double>(), 0);
        if (row["test"].get<std::string>().find("draft") != std::string::npos) {
            EXPECT_TRUE(row["draft_acceptance"].is_number());
        }
    }
    for (const char* want : {"base|pp16", "base|tg16", "base|tg16 greedy", "base|tg16 greedy, draft 0,2,4",
                             "0:3,1:5|pp16", "0:3,1:5|tg16"})
        EXPECT_TRUE(tests.count(want)) << want;
    for (const auto& row : rows) {
        if (row["spec"] == "0:3,1:5") {
            EXPECT_EQ(row["steps"], 7);
        }
    }
}
