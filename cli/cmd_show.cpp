// strata show: what a model file is, and what a layer spec makes of it.
#include <cstdio>
#include <map>
#include <regex>
#include <set>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/text/tokenizer.h"

namespace strata::cli {

namespace {

struct ShowArgs {
    ModelOptions model;
    bool metadata = false;
};

// "blk.12.ffn_up.weight" -> ("blk.{}.ffn_up.weight", 12); other names -> (name, -1)
std::pair<std::string, int> split_layer(const std::string& name) {
    static const std::regex re(R"(^blk\.(\d+)\.(.*)$)");
    std::smatch m;
    if (std::regex_match(name, m, re)) return {"blk.{}." + m[2].str(), std::stoi(m[1].str())};
    return {name, -1};
}

}  // namespace

std::function<int()> register_show(CLI::App& app) {
    auto args = std::make_shared<ShowArgs>();
    CLI::App* sub = app.add_subcommand("show", "print a model's architecture, tensors and a layer spec's plan");
    add_model_options(*sub, args->model);
    sub->add_flag("--metadata", args->metadata, "also print every metadata key");
    return [args]() -> int {
        LoadedModel lm = load_model(args->model);
        const Model& m = *lm.model;
        const ModelConfig& c = m.config();
        const ModelFile& f = m.file();
        const Tokenizer& tok = m.tokenizer();
        std::printf("file:          %s (%s, %s)\n", f.path.c_str(), f.format.c_str(), human_bytes(f.file_bytes).c_str());
        std::printf("name:          %s\n", c.name.c_str());
        std::printf("architecture:  %s\n", c.arch_name.c_str());
        std::printf("dimensions:    embedding %d, feed-forward %d, vocab %d\n", c.dim, c.hidden_dim, c.vocab_size);
        std::printf("layers:        %d\n", c.n_layers);
        std::printf("heads:         %d query, %d key/value (head dim %d)\n", c.n_heads, c.n_kv_heads, c.head_dim);
        std::printf("context:       %d (training)\n", c.n_ctx_train);
        std::printf("rope:          %s pairs, %d dims, base %g, freq scale %g%s\n", c.rope_neox ? "neox" : "adjacent",
                    c.rope_dim, c.rope_theta, c.rope_freq_scale, m.weights().rope_freqs ? ", frequency factors" : "");
        std::printf("norm eps:      %g\n", c.rms_eps);
        const auto tmodel = f.meta.find_string("tokenizer.ggml.model");
        const auto tpre = f.meta.find_string("tokenizer.ggml.pre");
        std::printf("tokenizer:     %s%s%s, %d tokens\n", tmodel ? std::string(*tmodel).c_str() : "?",
                    tpre ? ", pre " : "", tpre ? std::string(*tpre).c_str() : "", tok.n_vocab());
        auto tok_name = [&](int32_t id) {
            return id >= 0 && id < tok.n_vocab() ? std::string(tok.token_text(id)) : std::string("-");
        };
        std::printf("special:       bos %d '%s'%s, eos %d '%s'\n", tok.bos_id(), tok_name(tok.bos_id()).c_str(),
                    tok.add_bos() ? " (added)" : "", tok.eos_id(), tok_name(tok.eos_id()).c_str());
        std::printf("chat template: %s\n", f.meta.has("tokenizer.chat_template") ? "present" : "none");

        // Quant mix and totals.
        std::map<std::string, std::pair<int, size_t>> mix;
        int64_t params = 0;
        size_t bytes = 0;
        for (const WeightView& w : f.tensors) {
            auto& e = mix[dtype_name(w.dtype)];
            e.first++;
            e.second += w.nbytes;
            params += w.elements();
            bytes += w.nbytes;
        }
        std::printf("quant mix:    ");
        for (const auto& [name, e] : mix) std::printf(" %s x%d (%s)", name.c_str(), e.first, human_bytes(e.second).c_str());
        std::printf("\nparameters:    %s (%lld)\nweight bytes:  %s\n", human_count(params).c_str(),
                    static_cast<long long>(params), human_bytes(bytes).c_str());

        // Tensor table with layer indices collapsed.
        struct Row {
            std::string type, shape;
            std::set<int> layers;
        };
        std::vector<std::pair<std::string, Row>> rows;
        for (const WeightView& w : f.tensors) {
            auto [pattern, layer] = split_layer(w.name);
            const std::string key = pattern + "|" + dtype_name(w.dtype) + "|" + w.shape_string();
            auto it = std::find_if(rows.begin(), rows.end(), [&](const auto& r) { return r.first == key; });
            if (it == rows.end()) {
                rows.push_back({key, Row{dtype_name(w.dtype), w.shape_string(), {}}});
                it = rows.end() - 1;
            }
            if (layer >= 0) it->second.layers.insert(layer);
        }
        std::printf("\ntensors:\n");
        for (const auto& [key, r] : rows) {
            std::string name = key.substr(0, key.find('|'));
            if (!r.layers.empty()) {
                std::vector<int> ls(r.layers.begin(), r.layers.end());
                std::string range = ls.size() == 1 ? std::to_string(ls[0])
                                                   : std::to_string(ls.front()) + ".." + std::to_string(ls.back());
                if (static_cast<int>(ls.size()) != ls.back() - ls.front() + 1) range = compact_layer_list(ls);
                name.replace(name.find("{}"), 2, "[" + range + "]");
            }
            std::printf("  %-40s %-5s %s\n", name.c_str(), r.type.c_str(), r.shape.c_str());
        }
        if (args->metadata) {
            std::printf("\nmetadata:\n");
            for (const std::string& k : f.meta.keys())
                std::printf("  %-45s %s\n", k.c_str(), f.meta.find(k)->to_display().c_str());
        }
        std::printf("\n");
        print_plan_summary(m, lm.plan, context_size(c, args->model.n_ctx));
        return 0;
    };
}

}  // namespace strata::cli
