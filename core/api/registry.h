// Several models in one process: a ModelRegistry opens each file once and hands out the same immutable Model
// (one mapping, one set of weight views) to every session that asks for it. Each session keeps its own Plan
// (so a model and its pruned or self-merged variant share weights), KV cache, sampler and history.
#pragma once
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/engine/model.h"

namespace strata {

class Session;

class ModelRegistry {
  public:
    // The model of `path` (with `tokenizer_path` for llama2.c checkpoints), loaded on the first call and shared
    // afterwards while anyone still holds it. Files are keyed by canonical path, so "./a.gguf" and an absolute
    // path or a symlink to it are one file. A failed load throws (Model::load's message, prefixed by the path)
    // and leaves the registry and every model already open as they were. Thread-safe.
    std::shared_ptr<const Model> open(const std::string& path, const std::string& tokenizer_path = "");

    struct FileInfo {
        std::string path;            // canonical
        std::string tokenizer_path;  // canonical, or "" (the default)
        std::shared_ptr<const Model> model;
        size_t mapped_bytes = 0;  // bytes of the file's mappings (counted once, however many sessions use it)
        long users = 0;           // holders of the model besides the registry's own listing
        int opens = 0;            // calls to open() that returned this model
    };
    // The files still held by someone (released models are forgotten).
    std::vector<FileInfo> files() const;
    size_t mapped_bytes() const;  // all files, each once

  private:
    struct Entry {
        std::string path, tokenizer_path;
        std::weak_ptr<const Model> model;
        int opens = 0;
    };
    mutable std::mutex mu_;
    std::vector<Entry> entries_;
};

// The file's key: its canonical path when it exists, else the path as given (the load then fails on it).
std::string canonical_model_path(const std::string& path);

// One line per file (mapped once, and how many sessions use it) and per session (its plan and KV cache):
// what `/stats` and `--verbose` print in the multi-model commands.
struct NamedSession {
    std::string name;
    const Session* session = nullptr;
};
std::string memory_report(const ModelRegistry& registry, const std::vector<NamedSession>& sessions);

}  // namespace strata
