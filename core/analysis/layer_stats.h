// How much each layer changes the residual stream, measured over a text: ShortGPT's Block Influence and
// Gromov et al.'s angular distance between hidden states n layers apart. Drives `strata layers`.
#pragma once
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/analysis/perplexity.h"
#include "core/engine/forward.h"

namespace strata {

struct LayerStats {
    int n_layers = 0, max_block = 0;
    int64_t tokens = 0;  // token positions averaged over
    // (n_layers): BI_l = 1 - mean_t cos(x_l[t], x_{l+1}[t]), x_l = the residual stream entering file layer l.
    std::vector<double> block_influence;
    // angular[n-1][l], l in [0, n_layers - n]: mean_t arccos(cos(x_l[t], x_{l+n}[t])) / pi.
    std::vector<std::vector<double>> angular;
};

// Runs the identity plan over the text's chunks (split as perplexity() does, BOS first) and averages over every
// position except each chunk's first (the BOS, whose states are attention-sink outliers). Gromov et al. use
// only each sequence's last token; over one text, every position gives far more samples.
LayerStats analyze_layers(const std::shared_ptr<const Model>& model, std::span<const int32_t> tokens,
                          const PerplexityOptions& o, int max_block, const ForwardOptions& fwd = {});

// cos(a, b) in double; 1 when both are zero.
double cosine(const float* a, const float* b, int n);

// Layer lists and specs for the suggestions: "0:27,28:" from the kept layers of a model with n_layers.
std::string spec_from_layers(const std::vector<int>& layers, int n_layers);

// --layer-spec suggestions from the statistics: for n = 1..max_block, drop the block of n layers whose ends are
// closest in angle ("prune-angular"), drop the n lowest-BI layers ("prune-bi"); and the 3 best self-merge seams
// ("merge": repeat [start, start+n) right after itself where x_{start+n} is closest to x_start).
struct LayerSuggestion {
    std::string kind;  // "prune-angular", "prune-bi", "merge"
    int n = 0, start = 0;
    double score = 0;  // angular distance, or the sum of the dropped layers' BI
    std::string spec;
};
std::vector<LayerSuggestion> suggest_layer_specs(const LayerStats& st);

}  // namespace strata
