#include "core/api/registry.h"

#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "core/run/session.h"

namespace strata {

std::string canonical_model_path(const std::string& path) {
    if (path.empty()) return path;
    std::error_code ec;
    const std::filesystem::path p = std::filesystem::canonical(path, ec);
    return ec ? path : p.string();
}

std::shared_ptr<const Model> ModelRegistry::open(const std::string& path, const std::string& tokenizer_path) {
    const std::string key = canonical_model_path(path);
    const std::string tok_key = canonical_model_path(tokenizer_path);
    std::lock_guard<std::mutex> lock(mu_);
    // Forget the files nobody holds any more.
    std::erase_if(entries_, [](const Entry& e) { return e.model.expired(); });
    for (Entry& e : entries_) {
        if (e.path != key || e.tokenizer_path != tok_key) continue;
        if (std::shared_ptr<const Model> m = e.model.lock()) {
            ++e.opens;
            return m;
        }
    }
    LoadOptions lo;
    lo.tokenizer_path = tokenizer_path;
    std::shared_ptr<const Model> m = Model::load(path, lo);  // throws; nothing recorded then
    entries_.push_back({key, tok_key, m, 1});
    return m;
}

std::vector<ModelRegistry::FileInfo> ModelRegistry::files() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<FileInfo> out;
    for (const Entry& e : entries_) {
        std::shared_ptr<const Model> m = e.model.lock();
        if (!m) continue;
        FileInfo f;
        f.path = e.path;
        f.tokenizer_path = e.tokenizer_path;
        f.mapped_bytes = m->file().file_bytes;
        f.users = m.use_count() - 1;
        f.opens = e.opens;
        f.model = std::move(m);
        out.push_back(std::move(f));
    }
    return out;
}

size_t ModelRegistry::mapped_bytes() const {
    size_t n = 0;
    for (const FileInfo& f : files()) n += f.mapped_bytes;
    return n;
}

namespace {
std::string mib(double bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f MiB", bytes / (1024.0 * 1024.0));
    return buf;
}
}  // namespace

std::string memory_report(const ModelRegistry& registry, const std::vector<NamedSession>& sessions) {
    std::string out;
    size_t total = 0;
    for (const ModelRegistry::FileInfo& f : registry.files()) {
        std::string users;
        int n_sessions = 0;
        for (const NamedSession& s : sessions) {
            if (!s.session || &s.session->model() != f.model.get()) continue;
            users += (users.empty() ? "" : ", ") + s.name;
            ++n_sessions;
        }
        out += "mapped once: " + f.path + " " + mib(static_cast<double>(f.mapped_bytes)) + " (" +
               std::to_string(n_sessions) + (n_sessions == 1 ? " session" : " sessions") +
               (users.empty() ? "" : ": " + users) + ")\n";
        total += f.mapped_bytes;
    }
    for (const NamedSession& s : sessions) {
        if (!s.session) continue;
        const Forward& fwd = s.session->forward();
        const Plan& plan = fwd.plan();
        const size_t kv = fwd.kv_cache().bytes();
        out += "session " + s.name + ": " + std::to_string(plan.n_steps()) + " steps" +
               (plan.spec.empty() ? "" : " (layer spec " + plan.spec + ")") + ", KV cache " +
               mib(static_cast<double>(kv)) + " for " + std::to_string(fwd.n_ctx()) + " tokens, " +
               std::to_string(s.session->stats().context_tokens) + " in use\n";
        total += kv;
    }
    out += "total: " + mib(static_cast<double>(total)) + " (weights mapped once per file + one KV cache per session)";
    return out;
}

}  // namespace strata
