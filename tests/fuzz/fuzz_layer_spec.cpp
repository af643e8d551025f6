// --layer-spec parser. Input: two bytes picking the model's layer count (1..4096, the range a model's
// block_count may take), then the spec text. Invariants: a parsed spec is never empty and every layer is
// inside the model; the only rejection is std::invalid_argument (the CLI's message path).
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string_view>

#include "core/engine/plan.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2) return 0;
    const int n_layers = 1 + ((data[0] | (data[1] << 8)) % 4096);
    const std::string_view spec(reinterpret_cast<const char*>(data + 2), size - 2);
    try {
        const std::vector<int> layers = strata::parse_layer_spec(spec, n_layers);
        if (layers.empty()) std::abort();
        for (int l : layers)
            if (l < 0 || l >= n_layers) std::abort();
        (void)strata::compact_layer_list(layers);
    } catch (const std::invalid_argument&) {
    }
    return 0;
}
