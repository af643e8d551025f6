// Options shared by every command that loads a model, and small terminal helpers.
#pragma once
#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "core/engine/forward.h"
#include "core/engine/model.h"
#include "core/engine/plan.h"
#include "core/engine/sampler.h"
#include "core/run/settings.h"

namespace strata::cli {

// Numeric options: CLI11 takes a negative number as the option's value (`-n -1`, `--seed -1`); these checks
// then refuse a value outside the option's range with one line that names the option and says what is valid
// ("--n-predict: -5 is not valid: use a count >= 0, or -1 for until the end of text or context"), exit 105.
CLI::Validator number_check(const NumberRule& rule);
// The check of a session setting's key (ctx-size, threads, temp, seed, max-new-tokens ...: core/run/settings.h).
CLI::Validator setting_check(std::string_view key);
// Rules of the CLI's own counts.
inline constexpr NumberRule kCountRule{0, 2147483647, false, true, "a count >= 0"};
inline constexpr NumberRule kPositiveRule{1, 2147483647, false, true, "a count >= 1"};
// One line on stderr when -t asks for more threads than the machine has (the forward pass runs on the hardware
// threads: core/engine/forward.h thread_count).
void warn_if_too_many_threads(int n_threads);
// -n/--n-predict (and the alias --max-new-tokens where `also_max_new_tokens`): tokens to generate, -1 for until
// the end of text or context.
CLI::Option* add_n_predict_option(CLI::App& app, int& n, bool also_max_new_tokens);

struct ModelOptions {
    std::string model_path;
    std::string tokenizer_path;
    std::string layer_spec;
    std::string layer_spec_file;  // mergekit passthrough YAML
    bool show_plan = false;       // --show: print the plan summary and exit
    int n_ctx = kDefaultContext;  // 0: the model's training context; kDefaultContext: that, at most 4096
    int n_threads = 0;
    int n_batch = 256;
    std::string device;     // cpu | cuda; empty: cpu, or cuda when -ngl is given
    int n_gpu_layers = -1;  // -ngl: plan steps offloaded to the GPU (-1: all with --device cuda)
};

// -m/--model, --tokenizer, --layer-spec/--layer_spec, -c/--ctx-size, -t/--threads, -b/--batch-size. A command
// with another default context sets o.n_ctx before the call (--help shows it).
void add_model_options(CLI::App& app, ModelOptions& o);
// --temp --top-k --top-p --min-p --repeat-penalty --repeat-last-n -s/--seed (-1, the default: a random seed).
void add_sampler_options(CLI::App& app, SamplerParams& p);
// With --verbose (stderr): the seed in use (drawn at random for --seed -1), the context (and what -c 0 or no -c
// made of it) and the threads.
void print_verbose_settings(const SamplerParams& asked, uint64_t seed, const Forward& fwd, const ModelOptions& o);

struct LoadedModel {
    std::shared_ptr<const Model> model;
    Plan plan;
};
LoadedModel load_model(const ModelOptions& o);
// What a plan costs: steps vs file layers, virtual parameters vs unique weight bytes, KV bytes.
void print_plan_summary(const Model& model, const Plan& plan, int n_ctx);
// With --show: prints the plan summary and returns true (the command then exits 0).
bool show_plan_if_asked(const LoadedModel& m, const ModelOptions& o);
ForwardOptions forward_options(const ModelOptions& o);

// Self-speculative decoding options shared by run, chat and bench.
struct DraftOptions {
    std::string spec;  // a layer spec of the same model, "auto", or "" (off)
    int draft_max = 4;
    bool fixed = false;  // always draft draft_max tokens (no adaptation)
};
// --draft-spec (single; bench adds its own repeatable form), --draft-max, --draft-fixed.
void add_draft_options(CLI::App& app, DraftOptions& o, bool spec_option = true);
// The draft plan for `spec`: a layer spec, or "auto" - chosen by select_draft_spec over the built-in calibration
// text (a few seconds at most; the choice and its prediction are printed on stderr).
Plan make_draft_plan(const std::shared_ptr<const Model>& model, const std::string& spec, int draft_max,
                     const ForwardOptions& fo);

std::string human_count(double n);   // 134.5M
std::string human_bytes(double n);   // 86.5 MiB

}  // namespace strata::cli
