// `--draft-spec auto`: choose which layers a self-speculative draft skips, from the layer-importance analysis
// (core/layer_stats) on a short calibration pass, then rank the candidates by the speed-up they predict.
//
// Candidates, for block sizes n of 1/8, 1/4, 3/8 and 1/2 of the layers: the contiguous block of n layers whose
// input and output hidden states are closest in angle (Gromov et al.), and the n layers of lowest Block
// Influence (ShortGPT); the last layer always stays. Each candidate is run over the same tokens as the full
// model; a = the fraction of positions where its greedy (argmax) token equals the full model's, an estimate of
// greedy speculation's per-token acceptance. With cost ratio r = draft virtual params / full virtual params
// (decode reads every weight once per token) and a verify pass costing one full decode step (a batch of k+1
// tokens reads the weights once), the expected speed-up at k drafted tokens per round is
// (1 - a^(k+1)) / ((1 - a) (k r + 1)) (Leviathan et al., 2023); the candidate and k with the largest win.
#pragma once
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/engine/forward.h"

namespace strata {

struct DraftCandidate {
    std::string spec;  // a --layer-spec of the kept layers
    std::string how;   // which layers it skips and why: "layers 12-15 (angular distance)"
    int steps = 0;
    double agreement = 0;          // greedy top-1 agreement with the full model on the calibration tokens
    double cost_ratio = 0;         // draft virtual params / full virtual params
    int best_k = 1;                // drafted tokens per round that maximise the predicted speed-up
    double predicted_speedup = 0;  // at best_k
};

struct DraftSelection {
    DraftCandidate best;
    std::vector<DraftCandidate> candidates;  // every one tried, best first
    int calibration_tokens = 0;
};

// Predicted speed-up of greedy self-speculation (see above), k tokens drafted per round.
double predicted_speedup(double agreement, double cost_ratio, int k);

// tokens: the calibration text (BOS first), at least 32 tokens; draft_max bounds k. Runs 1 + (number of
// candidates) forward passes over the tokens, plus the layer analysis.
DraftSelection select_draft_spec(const std::shared_ptr<const Model>& model, std::span<const int32_t> tokens,
                                 int draft_max, const ForwardOptions& fo = {});

// A few paragraphs of plain English prose, the default calibration text (no file needed at run time).
const char* builtin_calibration_text();

}  // namespace strata
