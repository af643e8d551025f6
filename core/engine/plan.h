// The execution plan: which file layer each step runs, and each step's own KV-cache slot.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "core/engine/model.h"

namespace strata {

// One step of the forward pass. Two steps that reuse a file layer hold the same weight pointers and
// different KV slots; the layer's kind comes with its weights, not from the step's position.
struct Step {
    const LayerWeights* w = nullptr;
    int kv_slot = 0;     // == the step's index: every step has its own slot
    int file_layer = 0;  // == w->file_layer
    LayerKind kind = LayerKind::Global;
};

struct Plan {
    std::vector<Step> steps;
    std::string spec;  // the --layer-spec it came from; empty for the identity plan

    std::vector<int> layers() const;  // file layer of each step
    int n_steps() const { return static_cast<int>(steps.size()); }
};

// Parses a layer spec (chatllm.cpp's grammar, made strict): comma-separated items, each `all`, an index I,
// or a Python slice [start]:[stop][:step]. Negative indexes count from the end. An index or explicit bound
// outside the model, a zero step, an unparsable or empty item, and an item selecting no layers are errors
// (std::invalid_argument naming the item and the layer count).
std::vector<int> parse_layer_spec(std::string_view spec, int n_layers);

// Builds a plan over the model's file layers; an empty spec is the identity plan.
Plan make_plan(const Model& model, std::string_view spec = "");
Plan make_plan(const Model& model, const std::vector<int>& layers, std::string spec);

// What a plan costs (DESIGN.md rule 4): the parameters its steps execute, and the weights memory holds.
struct PlanCost {
    int64_t virtual_params = 0;      // global tensors + every step's layer, repeats counted each time
    int64_t unique_params = 0;       // global tensors + each file layer the plan uses, once
    size_t unique_weight_bytes = 0;  // the bytes of those
    std::vector<int> repeated;       // file layers run by more than one step
    std::vector<int> dropped;        // file layers no step runs
};
PlanCost plan_cost(const Model& model, const Plan& plan);

// "0-7, 4-11, 8-15": runs of consecutive ascending (or descending) layers collapsed.
std::string compact_layer_list(const std::vector<int>& layers);

}  // namespace strata
