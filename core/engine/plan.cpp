#include "core/engine/plan.h"

#include <charconv>
#include <stdexcept>

namespace strata {

std::vector<int> Plan::layers() const {
    std::vector<int> out;
    out.reserve(steps.size());
    for (const Step& s : steps) out.push_back(s.file_layer);
    return out;
}

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

[[noreturn]] void spec_error(std::string_view item, int n_layers, const std::string& why) {
    throw std::invalid_argument("layer spec item '" + std::string(item) + "': " + why + " (the model has " +
                                std::to_string(n_layers) + " layers, 0.." + std::to_string(n_layers - 1) + ")");
}

// An optional integer: empty -> has=false.
bool parse_int(std::string_view text, std::string_view item, int n_layers, long long& out) {
    text = trim(text);
    if (text.empty()) return false;
    const char* b = text.data();
    const char* e = b + text.size();
    if (*b == '+') ++b;
    auto [p, ec] = std::from_chars(b, e, out);
    if (ec != std::errc() || p != e) spec_error(item, n_layers, "'" + std::string(text) + "' is not an integer");
    return true;
}

}  // namespace

std::vector<int> parse_layer_spec(std::string_view spec, int n_layers) {
    if (n_layers <= 0) throw std::invalid_argument("layer spec: the model has no layers");
    const long long N = n_layers;
    std::vector<int> out;
    if (trim(spec).empty()) throw std::invalid_argument("layer spec is empty");
    size_t start = 0;
    while (true) {
        const size_t comma = spec.find(',', start);
        const std::string_view raw = spec.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
        const std::string_view item = trim(raw);
        if (item.empty()) spec_error(spec, n_layers, "has an empty item (check for ',,' or a trailing ',')");
        if (item == "all") {
            for (int l = 0; l < n_layers; ++l) out.push_back(l);
        } else if (item.find(':') == std::string_view::npos) {
            long long i = 0;
            parse_int(item, item, n_layers, i);
            if (i < -N || i >= N) spec_error(item, n_layers, "index is outside the model");
            out.push_back(static_cast<int>(i < 0 ? i + N : i));
        } else {
            std::string_view parts[3];
            int n_parts = 0;
            size_t p = 0;
            while (true) {
                const size_t colon = item.find(':', p);
                if (n_parts == 3) spec_error(item, n_layers, "a slice has at most three parts, start:stop:step");
                parts[n_parts++] = item.substr(p, colon == std::string_view::npos ? std::string_view::npos : colon - p);
                if (colon == std::string_view::npos) break;
                p = colon + 1;
            }
            long long step = 1, lo = 0, hi = 0;
            if (n_parts == 3 && parse_int(parts[2], item, n_layers, step) && step == 0)
                spec_error(item, n_layers, "step must not be zero");
            const bool has_start = parse_int(parts[0], item, n_layers, lo);
            const bool has_stop = parse_int(parts[1], item, n_layers, hi);
            long long first, stop;
            if (has_start) {
                if (lo < -N || lo >= N) spec_error(item, n_layers, "start " + std::to_string(lo) + " is outside the model");
                first = lo < 0 ? lo + N : lo;
            } else {
                first = step > 0 ? 0 : N - 1;
            }
            if (has_stop) {
                // stop may be one past either end: N (through the last layer) or -N-1 (down through layer 0).
                if (hi < -N - 1 || hi > N) spec_error(item, n_layers, "stop " + std::to_string(hi) + " is outside the model");
                stop = hi < 0 ? hi + N : hi;
            } else {
                stop = step > 0 ? N : -1;
            }
            const size_t before = out.size();
            for (long long l = first; step > 0 ? l < stop : l > stop; l += step) out.push_back(static_cast<int>(l));
            if (out.size() == before) spec_error(item, n_layers, "selects no layers");
        }
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    return out;
}

Plan make_plan(const Model& model, const std::vector<int>& layers, std::string spec) {
    const auto& file_layers = model.weights().layers;
    Plan plan;
    plan.spec = std::move(spec);
    plan.steps.reserve(layers.size());
    for (int l : layers) {
        if (l < 0 || static_cast<size_t>(l) >= file_layers.size())
            throw std::invalid_argument("plan: layer " + std::to_string(l) + " is outside the model");
        const LayerWeights& w = file_layers[static_cast<size_t>(l)];
        plan.steps.push_back(Step{&w, static_cast<int>(plan.steps.size()), l, w.kind});
    }
    if (plan.steps.empty()) throw std::invalid_argument("plan: no layers");
    return plan;
}

Plan make_plan(const Model& model, std::string_view spec) {
    const int n = model.config().n_layers;
    if (trim(spec).empty()) {
        std::vector<int> all(static_cast<size_t>(n));
        for (int l = 0; l < n; ++l) all[static_cast<size_t>(l)] = l;
        return make_plan(model, all, "");
    }
    return make_plan(model, parse_layer_spec(spec, n), std::string(spec));
}

PlanCost plan_cost(const Model& m, const Plan& plan) {
    const int n = m.config().n_layers;
    std::vector<int> uses(static_cast<size_t>(n), 0);
    PlanCost c;
    c.virtual_params = c.unique_params = m.n_params_global();
    c.unique_weight_bytes = m.weight_bytes_global();
    for (const Step& s : plan.steps) {
        c.virtual_params += m.n_params_layer(s.file_layer);
        uses.at(static_cast<size_t>(s.file_layer))++;
    }
    for (int l = 0; l < n; ++l) {
        const int u = uses[static_cast<size_t>(l)];
        if (u > 0) {
            c.unique_params += m.n_params_layer(l);
            c.unique_weight_bytes += m.weight_bytes_layer(l);
        }
        if (u > 1) c.repeated.push_back(l);
        if (u == 0) c.dropped.push_back(l);
    }
    return c;
}

std::string compact_layer_list(const std::vector<int>& layers) {
    std::string out;
    size_t i = 0;
    while (i < layers.size()) {
        size_t j = i;
        const int dir = (i + 1 < layers.size() && layers[i + 1] == layers[i] - 1) ? -1 : 1;
        while (j + 1 < layers.size() && layers[j + 1] == layers[j] + dir) ++j;
        if (!out.empty()) out += ", ";
        out += std::to_string(layers[i]);
        if (j > i) out += "-" + std::to_string(layers[j]);
        i = j + 1;
    }
    return out;
}

}  // namespace strata
