// The logit lens per plan step: after every step, the model's own final norm and output head applied to the
// residual stream (Forward::logits_from_residual, the very code of the real output), so one sees what each
// step
// -- a repeated layer's first and second pass told apart -- would predict. Drives `strata lens` and the C
// API's strata_lens; plain structs of rows, easy to bind.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/engine/forward.h"
#include "core/run/settings.h"

namespace strata {

// --top-k of the lens: tokens listed per step and position.
inline constexpr NumberRule kLensTopKRule{1, 100, false, true, "a count from 1 to 100"};

struct LensToken {
    int32_t id = 0;
    float prob = 0;
};

// The lens of one plan step at one prompt position (its prediction of the token after that position).
struct LensCell {
    int position = 0;
    std::vector<LensToken> top;  // (top_k) most probable first
    int32_t target = 0;          // the token the full model (the last step's output) predicts here
    int target_rank = 0;         // 1: the lens's top token; ties count for the target
    float target_prob = 0;
    double entropy = 0;        // of the lens distribution, nats
    double kl = 0;             // KL(final || lens), nats: 0 at the last step
    double kl_reference = -1;  // KL(reference final || lens) with LensOptions::reference_states, else -1
};

struct LensStep {
    int step = 0;                 // plan step index
    int layer = 0;                // the file layer it runs (repeated layers: several steps, different rows)
    std::vector<LensCell> cells;  // one per reported position
};

// One row as the lens computes it, for callers that want more than the summary (the C API's callback).
struct LensRow {
    int step = 0, layer = 0, position = 0;
    const float* residual = nullptr;  // (dim) the residual stream after the step at this position
    const float* logits = nullptr;    // (vocab) the lens logits
    const LensCell* cell = nullptr;   // the summary computed from them
};

struct LensOptions {
    int top_k = 5;
    bool all_positions = false;  // false: the last position only
    ForwardOptions fwd;          // n_ctx 0: the prompt's length
    // Another run's final residual stream at the same positions (LensReport::final_states of e.g. the base
    // model over the same tokens): fills LensCell::kl_reference. Empty: none.
    std::vector<float> reference_states;         // (positions, dim)
    std::function<void(const LensRow&)> on_row;  // called for every step and position, in that order
};

struct LensReport {
    std::string spec;                 // the plan's layer spec
    std::vector<int32_t> tokens;      // the prompt
    std::vector<int> positions;       // the reported positions (ascending)
    std::vector<LensStep> steps;      // one per plan step, in plan order
    std::vector<float> final_states;  // (positions, dim) the residual stream after the last step
    // Mean over the reported positions of LensCell::kl / kl_reference, per step.
    std::vector<double> mean_kl() const;
    std::vector<double> mean_kl_reference() const;
};

// Runs the plan over tokens once (CPU only: the per-step residual stays on the GPU under --device cuda, so a
// GPU forward throws) and applies the lens to every step's residual at the reported positions.
LensReport run_lens(const std::shared_ptr<const Model>& model, const Plan& plan,
                    std::span<const int32_t> tokens, const LensOptions& o);

// The report as JSON (the schema is in the README's `strata lens` section): token texts as the tokenizer
// writes them (invalid UTF-8 replaced); with a reference, "reference" names it and cells carry
// "kl_reference".
std::string lens_json(const Model& model, const LensReport& r, const LensReport* reference = nullptr);

}  // namespace strata
