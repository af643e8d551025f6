// strata serve's request parsing: a body as a client sends it -> parse_request (JSON, fields, ranges) ->
// Catalog::prepare over stories260K (the model's name, the layer spec, the chat template, tokenization, the
// context) -> the reply's JSON with arbitrary text in it; and the stop-sequence matcher over the body's bytes
// as streamed text. Input: a control byte (bit 0: chat or completion endpoint; bits 1-3: the piece size the
// text is streamed in), then the body. Rejections are ApiError (which must carry a 4xx status and a message);
// anything else is a finding.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "fuzz_common.h"
#include "server/catalog.h"
#include "server/request.h"
#include "server/responses.h"
#include "server/stop.h"

using namespace strata;
using namespace strata::server;

namespace {

std::unique_ptr<Catalog> g_catalog;  // stories260K with a ChatML template, a tiny context

void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "invariant failed: %s\n", what);
        std::abort();
    }
}

// The matcher's output, piece by piece, is the text before the stop sequences that have appeared after the
// first piece that completes one (the earliest of them), and all of the text if none ever appears.
void check_stops(const std::vector<std::string>& stops, std::string_view text, size_t piece) {
    StopMatcher m(stops);
    std::string out;
    for (size_t i = 0; i < text.size() && !m.stopped(); i += piece) out += m.feed(text.substr(i, piece));
    out += m.flush();
    constexpr size_t none = std::string_view::npos;
    size_t seen = none;  // the end of the first piece after which some stop sequence is in the text
    for (const std::string& s : stops)
        if (const size_t at = text.find(s); at != none)
            seen = std::min(seen, std::min(text.size(), (at + s.size() + piece - 1) / piece * piece));
    size_t cut = none;
    for (const std::string& s : stops)
        if (const size_t at = text.find(s); at != none && at + s.size() <= seen) cut = std::min(cut, at);
    check(out == text.substr(0, cut), "stop matcher output is the text before the first stop sequence seen");
    check(m.stopped() == (cut != none), "stop matcher stops exactly when a sequence appears");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    const std::string path = fuzz::find_model("stories260K.gguf");
    if (path.empty()) fuzz::setup_failure("stories260K.gguf not found (STRATA_SHARED_MODELS)");
    CatalogOptions o;
    o.n_ctx = 64;
    o.n_threads = 1;
    o.max_batch = 8;
    o.chat_template = "chatml";
    g_catalog =
        std::make_unique<Catalog>(std::vector<ModelSource>{{"stories260K", path, {{"short", "0:3"}}}}, o);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    if (!g_catalog) LLVMFuzzerInitialize(nullptr, nullptr);
    const Endpoint endpoint = data[0] & 1 ? Endpoint::Completion : Endpoint::Chat;
    const size_t piece = 1 + ((data[0] >> 1) & 7);
    const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
    try {
        const GenerationRequest r = parse_request(endpoint, body);
        check(!r.max_tokens || *r.max_tokens >= 1, "max_tokens >= 1");
        check(r.temperature >= 0 && r.temperature <= 2, "temperature in [0, 2]");
        check(r.top_p > 0 && r.top_p <= 1, "top_p in (0, 1]");
        check(r.stop.size() <= 4, "at most 4 stop sequences");
        for (const std::string& s : r.stop) check(!s.empty(), "no empty stop sequence");
        check(endpoint == Endpoint::Completion || !r.messages.empty(), "a chat request has messages");
        check_stops(r.stop, body, piece);
        const PreparedRequest p = g_catalog->prepare(r);
        check(!p.prompt.empty() && static_cast<int>(p.prompt.size()) < p.forward->n_ctx(),
              "a prepared prompt leaves room in the context");
        for (int32_t t : p.prompt)
            check(t >= 0 && t < p.forward->model().config().vocab_size, "prompt ids in the vocabulary");
        // The reply object, with the body's bytes as its text (any bytes: invalid UTF-8 is replaced).
        const ResponseHead head = response_head(endpoint, p.model_id);
        Finish f = Finish::ended("stop");
        (void)dump(reply_json(head, std::string(body), f));
        (void)dump(text_chunk_json(head, std::string(body)));
    } catch (const ApiError& e) {
        check(e.status >= 400 && e.status < 500, "a request is refused with a 4xx status");
        check(e.what()[0] != '\0', "a refusal says why");
        (void)dump(error_json(e));
    }
    return 0;
}
