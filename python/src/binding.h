// What the module's translation units share: the process-wide model registry, the exceptions that become
// strata_llm's Python exceptions, and small conversions. The module includes core/ only (never kernels/,
// cuda/ or loaders/: tests/check_layering.py).
#pragma once
#include <nanobind/nanobind.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/api/registry.h"
#include "core/run/settings.h"

namespace strata::python {

namespace nb = nanobind;

// The registry behind every Model of the process: one mapping per file, shared by every Model and Chat over
// it (as in the CLI's multi-model commands and the C API). The one piece of global state the module keeps.
ModelRegistry& registry();
// The model of `path` from the registry; any failure becomes a LoadError.
std::shared_ptr<const Model> open_model(const std::string& path, const std::string& tokenizer_path);

// Exceptions the module's translator maps to the Python classes of strata_llm.errors (their names in
// brackets). Engine errors keep their message; std::invalid_argument becomes ValueError, any other
// std::runtime_error StrataError, or ContextOverflowError when it says the context is full.
struct LoadError : std::runtime_error {  // [ModelLoadError]
    using std::runtime_error::runtime_error;
};
struct SpecError : std::invalid_argument {  // [LayerSpecError]
    using std::invalid_argument::invalid_argument;
};
struct ContextOverflow : std::runtime_error {  // [ContextOverflowError]
    using std::runtime_error::runtime_error;
};
void register_errors(nb::module_& m);

// Raises the pending KeyboardInterrupt (or the exception a signal handler raised) as nb::python_error. Call
// with the GIL held; a no-op outside the main thread.
void check_signals();

// A piece of UTF-8 as a Python str; invalid bytes (a byte token that never completes a character) become
// U+FFFD, never an exception.
nb::str utf8_str(std::string_view s);

// Sets a session setting (core/run/settings.h: the rules every front end shares) from a Python argument,
// given as the text Python prints for it; a value the rule refuses is a ValueError with the engine's
// sentence, naming the Python argument ("top_p: 1.5 is not valid: use a probability > 0 and <= 1 (1: off)").
// None leaves the default.
void apply_setting(SessionSettings& s, std::string_view key, std::string_view argument, nb::handle value);

void bind_model(nb::module_& m);
void bind_chat(nb::module_& m);
void bind_analysis(nb::module_& m);

}  // namespace strata::python
