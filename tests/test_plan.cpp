// --layer-spec grammar: the table from the layer-shuffling issue, with expected layer lists or errors.
#include <numeric>

#include "core/engine/plan.h"
#include "test_util.h"

using namespace strata;

namespace {
std::vector<int> range(int a, int b, int step = 1) {
    std::vector<int> v;
    for (int i = a; step > 0 ? i < b : i > b; i += step) v.push_back(i);
    return v;
}
std::vector<int> cat(std::initializer_list<std::vector<int>> parts) {
    std::vector<int> v;
    for (const auto& p : parts) v.insert(v.end(), p.begin(), p.end());
    return v;
}
std::string error_of(const std::string& spec, int n) {
    try {
        parse_layer_spec(spec, n);
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "";
}
}  // namespace

TEST(LayerSpec, ValidSpecs) {
    const int N = 32;
    EXPECT_EQ(parse_layer_spec("0:8,4:12", N), cat({range(0, 8), range(4, 12)}));
    EXPECT_EQ(parse_layer_spec("0:10,10:20:2,20:", N), cat({range(0, 10), range(10, 20, 2), range(20, 32)}));
    EXPECT_EQ(parse_layer_spec("-4:", N), range(28, 32));
    EXPECT_EQ(parse_layer_spec(":-1", N), range(0, 31));
    EXPECT_EQ(parse_layer_spec("-1", N), std::vector<int>{31});
    EXPECT_EQ(parse_layer_spec("::-1", N), range(31, -1, -1));
    EXPECT_EQ(parse_layer_spec("31:-33:-1", N), range(31, -1, -1));
    EXPECT_EQ(parse_layer_spec("all", N), range(0, 32));
    EXPECT_EQ(parse_layer_spec("0:32", N), range(0, 32));
    EXPECT_EQ(parse_layer_spec(" 3 , 5:7 ", N), (std::vector<int>{3, 5, 6}));
    EXPECT_EQ(parse_layer_spec("0:8,4:12,8:16,12:20,16:24,20:28,24:32", N).size(), 56u);
    EXPECT_EQ(parse_layer_spec("5::-2", N), (std::vector<int>{5, 3, 1}));
}

TEST(LayerSpec, InvalidSpecsNameTheItemAndLayerCount) {
    const int N = 32;
    struct Case {
        const char* spec;
        const char* why;
    };
    const Case cases[] = {
        {"0:40", "stop 40 is outside the model"},
        {"-40:", "start -40 is outside the model"},
        {"5:5", "selects no layers"},
        {"0:8:0", "step must not be zero"},
        {"a:b", "'a' is not an integer"},
        {"1:2:3:4", "at most three parts"},
        {"0:4,,8", "empty item"},
        {"0:4,", "empty item"},
        {"32", "index is outside the model"},
        {"-33", "index is outside the model"},
        {"", "empty"},
        {"8:0", "selects no layers"},
        {"1.5", "not an integer"},
    };
    for (const Case& c : cases) {
        const std::string e = error_of(c.spec, N);
        EXPECT_NE(e.find(c.why), std::string::npos) << "spec '" << c.spec << "' gave: '" << e << "'";
        if (std::string(c.spec).size() > 0) {
            EXPECT_NE(e.find("32 layers"), std::string::npos) << e;
        }
    }
}

TEST(LayerSpec, CompactList) {
    EXPECT_EQ(compact_layer_list(cat({range(0, 8), range(4, 12), range(8, 16)})), "0-7, 4-11, 8-15");
    EXPECT_EQ(compact_layer_list(range(5, -1, -1)), "5-0");
    EXPECT_EQ(compact_layer_list({3, 7, 9}), "3, 7, 9");
}

#include "core/analysis/mergekit.h"

TEST(Mergekit, PassthroughSlicesBecomeASpec) {
    const char* yaml = R"(# a self-merge
slices:
  - sources:
    - model: meta-llama/Meta-Llama-3-8B-Instruct
      layer_range: [0, 8]
  - sources:
      - model: "meta-llama/Meta-Llama-3-8B-Instruct"
        layer_range: [4, 12]   # overlap
merge_method: passthrough
dtype: bfloat16
)";
    EXPECT_EQ(layer_spec_from_mergekit_yaml(yaml), "0:8,4:12");
}

TEST(Mergekit, RejectsWhatASpecCannotExpress) {
    auto err = [](const std::string& y) {
        try {
            layer_spec_from_mergekit_yaml(y);
        } catch (const std::invalid_argument& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    EXPECT_NE(err("slices:\n  - sources:\n    - model: A\n      layer_range: [0, 4]\n  - sources:\n    - model: B\n      "
                  "layer_range: [4, 8]\nmerge_method: passthrough\n")
                  .find("second model 'B'"),
              std::string::npos);
    EXPECT_NE(err("slices:\n  - sources:\n    - model: A\n      layer_range: [0, 4]\n    - model: A\n      layer_range: "
                  "[0, 4]\n")
                  .find("several sources"),
              std::string::npos);
    EXPECT_NE(err("slices:\n  - sources:\n    - model: A\n      layer_range: [0, 4]\n      parameters:\n        scale: 0.5\n")
                  .find("scale"),
              std::string::npos);
    EXPECT_NE(err("slices:\n  - sources:\n    - model: A\n      layer_range: [0, 4]\nmerge_method: slerp\n").find("slerp"),
              std::string::npos);
    EXPECT_NE(err("models:\n  - model: A\n").find("models"), std::string::npos);
    EXPECT_NE(err("dtype: float16\n").find("no 'slices:'"), std::string::npos);
    EXPECT_NE(err("slices:\n  - sources:\n    - model: A\n      layer_range: [0, x]\n").find("'x'"), std::string::npos);
}

#include "core/engine/model.h"
#include "test_util.h"

// Counts come from the plan: repeated layers add virtual parameters, never unique bytes.
TEST(PlanCost, VirtualVersusUnique) {
    STRATA_REQUIRE_FILE(strata::test::shared_model("stories260K.gguf"));
    auto m = Model::load(strata::test::shared_model("stories260K.gguf"));
    const PlanCost all = plan_cost(*m, make_plan(*m));
    EXPECT_EQ(all.virtual_params, all.unique_params);
    EXPECT_EQ(all.unique_weight_bytes, m->weight_bytes_global() + 5 * m->weight_bytes_layer(0));
    EXPECT_TRUE(all.repeated.empty() && all.dropped.empty());
    const PlanCost merged = plan_cost(*m, make_plan(*m, "0:3,1:5"));
    EXPECT_EQ(merged.virtual_params, all.virtual_params + 2 * m->n_params_layer(1));
    EXPECT_EQ(merged.unique_weight_bytes, all.unique_weight_bytes);
    EXPECT_EQ(merged.repeated, (std::vector<int>{1, 2}));
    const PlanCost pruned = plan_cost(*m, make_plan(*m, "0,2,4"));
    EXPECT_EQ(pruned.dropped, (std::vector<int>{1, 3}));
    EXPECT_EQ(pruned.unique_params, pruned.virtual_params);
    EXPECT_LT(pruned.unique_weight_bytes, all.unique_weight_bytes);
}
