// GGUF bytes -> read_gguf (header, metadata, tensor infos) -> every metadata getter -> Model::from_file
// (configuration, weight binding to the architecture, tokenizer) -> a one-token forward pass over the bound
// weights. A std::exception is a rejection; a crash, a sanitizer report, a leak or a hang is a finding.
// Every view must lie inside the mapping (checked here explicitly; ASan poisons the slack around it too).
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <vector>

#include "core/engine/forward.h"
#include "core/engine/model.h"
#include "core/engine/plan.h"
#include "core/text/chat_template.h"
#include "core/text/tokenizer.h"
#include "fuzz_common.h"
#include "loaders/model_file.h"

using namespace strata;

namespace {

void check_inside(const WeightView& w, const MappedFile& f) {
    const uint8_t* lo = f.data();
    const uint8_t* hi = f.data() + f.size();
    if (w.nbytes > 0 && (w.data < lo || w.data > hi || w.nbytes > static_cast<size_t>(hi - w.data))) {
        std::fprintf(stderr, "tensor '%s' view lies outside the mapping\n", w.name.c_str());
        std::abort();
    }
}

void walk_metadata(const Metadata& meta) {
    for (const std::string& key : meta.keys()) {
        const MetaValue* v = meta.find(key);
        if (!v) std::abort();
        (void)v->type_string();
        (void)v->to_display(40);
        try {
            if (v->type == GGUFType::ARRAY) {
                if (v->elem_type == GGUFType::STRING) (void)meta.get_string_array(key);
                else {
                    (void)meta.get_float_array(key);
                    (void)meta.get_int_array(key);
                }
            } else if (v->type == GGUFType::STRING) {
                (void)meta.get_string(key);
            } else if (v->type == GGUFType::BOOL) {
                (void)meta.get_bool(key);
            } else {
                (void)meta.get_float(key);
                (void)meta.get_int(key);
            }
        } catch (const std::exception&) {
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto file = MappedFile::from_bytes(std::vector<uint8_t>(data, data + size), "fuzz.gguf");
    try {
        ModelFile mf = read_gguf(file);
        walk_metadata(mf.meta);
        for (const WeightView& w : mf.tensors) {
            check_inside(w, *file);
            (void)w.shape_string();
        }
        auto model = Model::from_file(std::move(mf));
        const Tokenizer& tok = model->tokenizer();
        const std::vector<int32_t> ids = tok.encode("Hello <s> world", true, true);
        (void)tok.decode(ids);
        try {
            (void)ChatTemplate::for_model(model->file().meta, model->tokenizer()).render({}, true);
        } catch (const std::exception&) {
        }
        Plan plan = make_plan(*model);
        (void)plan_cost(*model, plan);
        ForwardOptions fo;
        fo.n_ctx = 4;
        fo.n_threads = 1;
        fo.max_batch = 2;
        Forward fwd(model, std::move(plan), fo);
        const int32_t first = ids.empty() ? 0 : ids.front();
        const int32_t prompt[2] = {first, first};
        (void)fwd.eval(std::span<const int32_t>(prompt, 2), 0);
    } catch (const std::exception&) {
    }
    return 0;
}
