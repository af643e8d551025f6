// Helpers shared by the tests: where the real models are, temp files, running the CLI.
#pragma once
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace strata::test {

// The folders are compiled in; STRATA_SHARED_MODELS / STRATA_MODEL_CACHE in the environment override them
// (a test binary carried to another machine, e.g. a GPU host).
inline std::string env_or(const char* name, const char* fallback) {
    const char* v = std::getenv(name);
    return v && *v ? v : fallback;
}
inline std::string shared_model(const std::string& name) { return env_or("STRATA_SHARED_MODELS", STRATA_SHARED_MODELS) + "/" + name; }
inline std::string cached_model(const std::string& name) { return env_or("STRATA_MODEL_CACHE", STRATA_MODEL_CACHE) + "/" + name; }
inline std::string test_data(const std::string& rel) { return std::string(STRATA_TEST_DATA) + "/" + rel; }
inline std::string smollm2_path() { return cached_model("SmolLM2-135M-Instruct.Q4_1.gguf"); }

#define STRATA_REQUIRE_FILE(path)                                                             \
    do {                                                                                      \
        if (!std::filesystem::exists(path)) GTEST_SKIP() << "missing model file " << (path) \
                                                         << " (run .ci/run or tests/fetch_models.sh)"; \
    } while (0)

inline std::string temp_path(const std::string& name) {
    const auto dir = std::filesystem::temp_directory_path() / ("strata-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    return (dir / name).string();
}

inline std::vector<uint8_t> read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}
inline void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}
inline std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

struct CliResult {
    int exit_code = -1;
    std::string out, err;
};
// Runs the strata binary with args (a shell-quoted string) and optional stdin text.
inline CliResult run_cli(const std::string& args, const std::string& stdin_text = "") {
    const std::string in = temp_path("stdin.txt"), out = temp_path("stdout.txt"), err = temp_path("stderr.txt");
    {
        std::ofstream f(in, std::ios::binary);
        f << stdin_text;
    }
    const std::string cmd = std::string(STRATA_CLI_PATH) + " " + args + " <" + in + " >" + out + " 2>" + err;
    const int rc = std::system(cmd.c_str());
    CliResult r;
    r.exit_code = WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc);
    r.out = read_text(out);
    r.err = read_text(err);
    return r;
}

// A --transcript file: one JSON object per line.
inline std::vector<nlohmann::json> read_jsonl(const std::string& path) {
    std::vector<nlohmann::json> out;
    std::istringstream in(read_text(path));
    for (std::string line; std::getline(in, line);)
        if (!line.empty()) out.push_back(nlohmann::json::parse(line));
    return out;
}
// The entries of a transcript whose "event" is kind.
inline std::vector<nlohmann::json> events(const std::vector<nlohmann::json>& log, const std::string& kind) {
    std::vector<nlohmann::json> out;
    for (const nlohmann::json& e : log)
        if (e.at("event") == kind) out.push_back(e);
    return out;
}

}  // namespace strata::test
