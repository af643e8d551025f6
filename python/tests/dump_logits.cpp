// strata_dump_logits MODEL SPEC THREADS OUT GROUP...: a plain C++ forward pass, for the Python tests'
// bit-for-bit check of the module's logits through code that shares nothing with the binding. Each GROUP is
// comma-separated token ids evaluated by one Forward::eval call after the groups before it; the last token's
// logits of every group (vocab float32 each) are appended to OUT. SPEC "" is the model's own layers.
#include <cstdio>
#include <exception>
#include <sstream>
#include <string>
#include <vector>

#include "core/engine/forward.h"
#include "core/engine/plan.h"

int main(int argc, char** argv) {
    if (argc < 6) {
        std::fprintf(stderr, "usage: %s MODEL SPEC THREADS OUT GROUP...\n", argv[0]);
        return 2;
    }
    try {
        const auto model = strata::Model::load(argv[1]);
        strata::ForwardOptions fo;
        fo.n_threads = std::stoi(argv[3]);
        strata::Forward fwd(model, strata::make_plan(*model, argv[2]), fo);
        FILE* out = std::fopen(argv[4], "wb");
        if (!out) throw std::runtime_error(std::string("cannot write ") + argv[4]);
        int pos = 0;
        for (int g = 5; g < argc; ++g) {
            std::vector<int32_t> tokens;
            std::stringstream ss(argv[g]);
            for (std::string item; std::getline(ss, item, ',');) tokens.push_back(std::stoi(item));
            const std::span<const float> logits = fwd.eval(tokens, pos);
            pos += static_cast<int>(tokens.size());
            std::fwrite(logits.data(), sizeof(float), logits.size(), out);
        }
        std::fclose(out);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}
