#include "core/analysis/mergekit.h"

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace strata {

namespace {

std::string trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return std::string(s);
}

std::string unquote(std::string s) {
    if (s.size() >= 2 && (s.front() == '"' || s.front() == '\'') && s.back() == s.front()) return s.substr(1, s.size() - 2);
    return s;
}

[[noreturn]] void fail(int line_no, const std::string& why) {
    throw std::invalid_argument("mergekit config line " + std::to_string(line_no) + ": " + why);
}

}  // namespace

std::string layer_spec_from_mergekit_yaml(std::string_view yaml) {
    std::istringstream in{std::string(yaml)};
    std::string raw;
    int line_no = 0;
    std::string model;               // the one model every source must name
    std::vector<std::string> items;  // "a:b" per slice
    int sources_in_slice = 0;
    bool in_slices = false, saw_slices = false;
    while (std::getline(in, raw)) {
        ++line_no;
        if (const size_t hash = raw.find('#'); hash != std::string::npos) raw.resize(hash);
        std::string line = trim(raw);
        if (line.empty() || line == "---") continue;
        const bool top_level = raw.find_first_not_of(" \t") == 0 && line[0] != '-';
        // Strip list dashes: "- sources:", "- model: X", "- - model: X".
        while (line.rfind("- ", 0) == 0 || line == "-") line = trim(std::string_view(line).substr(1));
        const size_t colon = line.find(':');
        if (colon == std::string::npos) fail(line_no, "expected 'key: value', got '" + line + "'");
        const std::string key = trim(std::string_view(line).substr(0, colon));
        const std::string value = unquote(trim(std::string_view(line).substr(colon + 1)));
        if (top_level) {
            in_slices = key == "slices";
            if (in_slices) {
                saw_slices = true;
                continue;
            }
            if (key == "merge_method") {
                if (value != "passthrough")
                    fail(line_no, "merge_method '" + value + "' mixes weights; only passthrough is a layer spec");
            } else if (key == "models") {
                fail(line_no, "'models:' lists models to blend; only a passthrough 'slices:' config is a layer spec");
            } else if (key == "parameters") {
                fail(line_no, "'parameters' (e.g. scale) change weights; a layer spec cannot express them");
            } else if (key != "dtype" && key != "base_model" && key != "tokenizer_source" && key != "name") {
                fail(line_no, "unknown key '" + key + "'");
            }
            continue;
        }
        if (!in_slices) fail(line_no, "unexpected nested key '" + key + "'");
        if (key == "sources") {
            sources_in_slice = 0;
            if (!value.empty()) fail(line_no, "'sources' must be a list");
            continue;
        }
        if (key == "model") {
            if (++sources_in_slice > 1) fail(line_no, "a slice has several sources: a layer spec takes one model's layers");
            if (model.empty()) model = value;
            else if (value != model)
                fail(line_no, "a second model '" + value + "' (first: '" + model + "'): a layer spec runs one model");
        } else if (key == "layer_range") {
            if (value.size() < 5 || value.front() != '[' || value.back() != ']')
                fail(line_no, "layer_range must be [start, end]");
            const std::string inner = value.substr(1, value.size() - 2);
            const size_t comma = inner.find(',');
            if (comma == std::string::npos) fail(line_no, "layer_range must be [start, end]");
            const std::string a = trim(std::string_view(inner).substr(0, comma));
            const std::string b = trim(std::string_view(inner).substr(comma + 1));
            for (const std::string& n : {a, b})
                if (n.empty() || n.find_first_not_of("0123456789") != std::string::npos)
                    fail(line_no, "layer_range bound '" + n + "' is not a non-negative integer");
            items.push_back(a + ":" + b);
        } else if (key == "parameters" || key == "scale" || key == "filter" || key == "value") {
            fail(line_no, "'" + key + "' (per-tensor parameters such as scale) cannot be expressed as a layer spec");
        } else {
            fail(line_no, "unknown key '" + key + "' in a slice");
        }
    }
    if (!saw_slices) throw std::invalid_argument("mergekit config has no 'slices:' list");
    if (items.empty()) throw std::invalid_argument("mergekit config has no layer_range");
    std::string spec;
    for (const std::string& it : items) spec += (spec.empty() ? "" : ",") + it;
    return spec;
}

std::string layer_spec_from_mergekit_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read mergekit config '" + path + "'");
    std::stringstream ss;
    ss << in.rdbuf();
    return layer_spec_from_mergekit_yaml(ss.str());
}

}  // namespace strata
