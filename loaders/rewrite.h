// Physically rewritten models: a file whose layers are another file's layers copied in a given order.
// Tests compare a plan over the original with the identity plan over the rewrite; users can save a merge.
#pragma once
#include <string>
#include <vector>

#include "loaders/gguf_writer.h"
#include "loaders/model_file.h"

namespace strata {

// Fills w with src's metadata (block count and per-layer arrays adjusted to the new order) and tensors,
// blk.<layers[i]>.* renamed blk.<i>.*. Tensor bytes are referenced: src must outlive w's write.
void rewrite_layers(GGUFWriter& w, const ModelFile& src, const std::vector<int>& layers);

}  // namespace strata
