// llama2.c checkpoint + tokenizer.bin -> read_llama2c -> Model::from_file -> encode/decode -> a one-token
// forward pass. Input: a little-endian u32 checkpoint length, the checkpoint bytes, then the tokenizer bytes
// (make_seeds writes seeds in this form). A std::exception is a rejection; anything else is a finding.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <exception>
#include <vector>

#include "core/engine/forward.h"
#include "core/engine/model.h"
#include "core/engine/plan.h"
#include "core/text/tokenizer.h"
#include "loaders/model_file.h"

using namespace strata;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 4) return 0;
    uint32_t ckpt_len;
    std::memcpy(&ckpt_len, data, 4);
    data += 4, size -= 4;
    const size_t n = std::min<size_t>(ckpt_len, size);
    auto ckpt = MappedFile::from_bytes(std::vector<uint8_t>(data, data + n), "fuzz.bin");
    auto tok = MappedFile::from_bytes(std::vector<uint8_t>(data + n, data + size), "fuzz-tokenizer.bin");
    try {
        ModelFile mf = read_llama2c(ckpt, tok);
        for (const WeightView& w : mf.tensors)
            if (w.nbytes > 0 && (w.data < ckpt->data() || w.data + w.nbytes > ckpt->data() + ckpt->size()))
                std::abort();  // a view outside the checkpoint's bytes
        auto model = Model::from_file(std::move(mf));
        const Tokenizer& t = model->tokenizer();
        const std::vector<int32_t> ids = t.encode("Once upon a time", true, false);
        (void)t.decode(ids);
        ForwardOptions fo;
        fo.n_ctx = 2;
        fo.n_threads = 1;
        fo.max_batch = 1;
        Forward fwd(model, make_plan(*model), fo);
        const int32_t first = ids.empty() ? 0 : ids.front();
        (void)fwd.eval(std::span<const int32_t>(&first, 1), 0);
    } catch (const std::exception&) {
    }
    return 0;
}
