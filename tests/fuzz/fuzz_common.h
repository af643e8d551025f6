// Shared by the libFuzzer harnesses: where the real models are, and the one rule every harness follows —
// an input may be rejected with an exception (that is the parser working), anything else is a finding.
#pragma once
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace strata::fuzz {

// The first of the candidate files that exists, or "" (the harness then skips that vocabulary).
inline std::string find_model(const std::string& file) {
    for (const char* dir : {static_cast<const char*>(std::getenv("STRATA_FUZZ_MODELS")), STRATA_SHARED_MODELS,
                            STRATA_MODEL_CACHE}) {
        if (!dir) continue;
        const std::filesystem::path p = std::filesystem::path(dir) / file;
        if (std::filesystem::exists(p)) return p.string();
    }
    return "";
}

// A harness found that its own preconditions fail (a missing model it cannot run without): stop loudly.
[[noreturn]] inline void setup_failure(const std::string& what) {
    std::fprintf(stderr, "fuzz harness setup failed: %s\n", what.c_str());
    std::abort();
}

}  // namespace strata::fuzz
