// The C API (core/api/strata.h) driven by a script: sessions over a tiny llama model with stories260K's real
// vocabulary (written once at start-up with the GGUF writer, so that a turn takes well under a millisecond),
// configured by fuzzed
// argv options, then up to 8 calls (send, continue, add_message, restart, set_ai_prefix, set_max_new_tokens,
// last_reply / stats, opening a missing file, null arguments). Input: fields separated by NUL bytes; the first
// byte of the first field is how many of the following fields are session options; every later field is one
// call: an opcode byte and its text. Every call must return a status (never throw, never crash) and a failed
// call must leave a message in strata_last_error().
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/api/strata.h"
#include "fuzz_common.h"
#include "tiny_model.h"
#include <unistd.h>

namespace {

strata_model* g_model = nullptr;

void check(int status) {
    if (status < 0 && strata_last_error()[0] == '\0') {
        std::fprintf(stderr, "status %d without a message in strata_last_error()\n", status);
        std::abort();
    }
    if (status != 0 && status != 1 && status != -1 && status != -2 && status != -3 && status != -4) std::abort();
}

void on_piece(void* user, const char* piece, size_t len) {
    if (piece[len] != '\0') std::abort();  // NUL-terminated after len bytes (a byte token may hold a NUL)
    *static_cast<size_t*>(user) += len;
}
void on_end(void*, int, const char* text) { (void)std::strlen(text); }

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    const std::string vocab = strata::fuzz::find_model("stories260K.gguf");
    if (vocab.empty()) strata::fuzz::setup_failure("stories260K.gguf not found");
    const strata::ModelFile src = strata::load_model_file(vocab);
    const std::vector<uint8_t> bytes =
        strata::fuzz::tiny_model({"llama", strata::DType::F32, 8, 16, 2, 2, 1, true}, src.meta, 512, 1);
    char path[] = "/tmp/strata-fuzz-c-api-XXXXXX";
    const int fd = mkstemp(path);
    if (fd < 0 || write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size()))
        strata::fuzz::setup_failure("cannot write the tiny model");
    close(fd);
    const int r = strata_model_open(path, nullptr, &g_model);
    unlink(path);  // the mapping keeps the bytes
    if (r != 0) strata::fuzz::setup_failure(std::string("cannot open the tiny model: ") + strata_last_error());
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::vector<std::string> fields;
    size_t start = 0;
    for (size_t k = 0; k <= size; ++k)
        if (k == size || data[k] == 0) {
            fields.emplace_back(reinterpret_cast<const char*>(data + start), k - start);
            start = k + 1;
        }
    if (fields.empty() || fields[0].empty()) return 0;
    const size_t n_opts = std::min<size_t>(static_cast<uint8_t>(fields[0][0]) % 12, fields.size() - 1);

    // Defaults the fuzzer may override, its options, then limits it may not (the last value of an option wins),
    // so that every input runs in milliseconds.
    std::vector<std::string> args = {"--chat-template", "chatml"};
    for (size_t k = 1; k <= n_opts; ++k) args.push_back(fields[k]);
    for (const char* a : {"-t", "1", "-c", "96", "-b", "16", "--max-new-tokens", "3"}) args.emplace_back(a);
    std::vector<const char*> argv;
    for (const std::string& a : args) argv.push_back(a.c_str());

    strata_session* s = nullptr;
    const int st = strata_session_new(g_model, static_cast<int>(argv.size()), argv.data(), &s);
    check(st);
    if (st != 0) {
        if (s) std::abort();
        return 0;
    }
    size_t bytes = 0;
    int calls = 0;
    for (size_t k = 1 + n_opts; k < fields.size() && calls < 8; ++k, ++calls) {
        const std::string& f = fields[k];
        if (f.empty()) continue;
        const uint8_t op = static_cast<uint8_t>(f[0]);
        const std::string text = f.substr(1);
        switch (op % 10) {
            case 0: check(strata_session_send(s, text.c_str(), on_piece, on_end, &bytes)); break;
            case 1: check(strata_session_continue(s, text.empty() ? nullptr : text.c_str(), on_piece, on_end, &bytes)); break;
            case 2: {
                static const char* roles[] = {"user", "assistant", "system", "tool"};
                check(strata_session_add_message(s, roles[(op / 10) % 4], text.c_str()));
                break;
            }
            case 3: check(strata_session_restart(s, (op / 10) % 2 ? nullptr : text.c_str())); break;
            case 4: check(strata_session_set_ai_prefix(s, text.c_str())); break;
            case 5: check(strata_session_set_max_new_tokens(s, static_cast<int>(op / 10 % 5) - 1)); break;
            case 6:
                if (std::strlen(strata_session_last_reply(s)) > strata_session_last_reply_size(s)) std::abort();
                (void)std::strlen(strata_session_stats_json(s));
                (void)std::strlen(strata_model_info_json(g_model));
                break;
            case 7:
                strata_session_abort(s);
                check(strata_session_send(s, text.c_str(), nullptr, nullptr, nullptr));
                break;
            case 8: {
                strata_model* m = nullptr;
                const std::string missing = "/nonexistent-strata-fuzz/" + text;
                const int r = strata_model_open(missing.c_str(), nullptr, &m);
                check(r);
                if (r == 0 || m) std::abort();
                break;
            }
            default:
                check(strata_session_send(nullptr, text.c_str(), nullptr, nullptr, nullptr));
                check(strata_session_add_message(s, nullptr, text.c_str()));
                check(strata_session_new(nullptr, 0, nullptr, nullptr));
                (void)strata_session_last_reply(nullptr);
                if (strata_session_last_reply_size(nullptr) != 0) std::abort();
                (void)strata_session_stats_json(nullptr);
                (void)strata_model_info_json(nullptr);
                break;
        }
    }
    strata_session_free(s);
    return 0;
}
