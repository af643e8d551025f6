// mergekit passthrough configs for one model, read as layer specs:
//   slices:
//     - sources:
//       - model: X
//         layer_range: [0, 8]
// becomes "0:8". What a layer spec cannot express (several models, several sources in a slice, per-tensor
// parameters such as scale, another merge method) is rejected by name.
#pragma once
#include <string>
#include <string_view>

namespace strata {

// Returns the equivalent --layer-spec; throws std::invalid_argument with the line at fault.
std::string layer_spec_from_mergekit_yaml(std::string_view yaml);
std::string layer_spec_from_mergekit_file(const std::string& path);

}  // namespace strata
