// mergekit passthrough YAML reader, and the layer spec it yields fed to the spec parser (as --layer-spec-file
// does). Rejections are std::invalid_argument naming the line; anything else is a finding.
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>

#include "core/analysis/mergekit.h"
#include "core/engine/plan.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view yaml(reinterpret_cast<const char*>(data), size);
    std::string spec;
    try {
        spec = strata::layer_spec_from_mergekit_yaml(yaml);
    } catch (const std::invalid_argument&) {
        return 0;
    }
    if (spec.empty()) std::abort();
    for (int n_layers : {1, 30, 4096}) {
        try {
            (void)strata::parse_layer_spec(spec, n_layers);
        } catch (const std::invalid_argument&) {
        }
    }
    return 0;
}
