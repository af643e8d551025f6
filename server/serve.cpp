#include "server/serve.h"

#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <thread>

#include "core/run/settings.h"
#include "server/api_server.h"

namespace strata::server {

namespace {

// The core's range for a setting (core/run/settings.h), as every front end checks it: one sentence saying what
// is valid.
CLI::Validator setting_check(std::string_view key) {
    const NumberRule* rule = session_setting_rule(key);
    if (!rule) throw std::logic_error("no range for setting " + std::string(key));
    return CLI::Validator([rule](std::string& v) { return check_number(v, *rule); }, "");
}

struct ServeArgs {
    std::vector<std::string> models, aliases, variants;
    CatalogOptions catalog;
    SchedulerOptions scheduler;
    HttpOptions http;
    int http_threads = 0;  // 0: slots + queue + 4
};

// Each --variant belongs to the -m given before it on the command line; the i-th --alias names the i-th -m.
std::vector<ModelSource> model_sources(const ServeArgs& a, const CLI::App& sub, const CLI::Option* model_opt,
                                       const CLI::Option* variant_opt) {
    if (a.aliases.size() > a.models.size())
        throw std::invalid_argument("--alias given " + std::to_string(a.aliases.size()) + " times for " +
                                    std::to_string(a.models.size()) +
                                    " -m (the i-th --alias names the i-th -m)");
    std::vector<ModelSource> out;
    for (size_t i = 0; i < a.models.size(); ++i) {
        const std::string name =
            i < a.aliases.size() ? a.aliases[i] : std::filesystem::path(a.models[i]).stem().string();
        out.push_back({name, a.models[i], {}});
    }
    size_t seen_models = 0, seen_variants = 0;
    for (const CLI::Option* o : sub.parse_order()) {
        if (o == model_opt) ++seen_models;
        if (o != variant_opt) continue;
        const std::string& v = a.variants.at(seen_variants++);
        const size_t eq = v.find('=');
        if (eq == std::string::npos || eq == 0)
            throw std::invalid_argument("--variant '" + v +
                                        "': expected NAME=SPEC, e.g. pruned=0:10,10:20:2,20:");
        if (seen_models == 0)
            throw std::invalid_argument("--variant '" + v +
                                        "' comes before any -m: it belongs to the -m before it");
        out[seen_models - 1].variants.emplace_back(v.substr(0, eq), v.substr(eq + 1));
    }
    return out;
}

int serve(const ServeArgs& a, const std::vector<ModelSource>& sources) {
    const Catalog catalog(sources, a.catalog);
    // SIGINT and SIGTERM are taken here with sigwait, never by a handler: blocked now, and in every thread
    // started below (they inherit the mask).
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    Metrics metrics;
    Scheduler scheduler(a.scheduler, metrics);
    HttpOptions http = a.http;
    http.n_threads = a.http_threads > 0 ? a.http_threads : a.scheduler.n_slots + a.scheduler.max_queue + 4;
    ApiServer api(catalog, scheduler, metrics, http);
    const int port = api.bind();
    std::string names;
    for (const ServedModel& m : catalog.models())
        names += (names.empty() ? "" : ", ") + m.id + " (" + std::to_string(m.steps) + " steps)";
    std::fprintf(stderr, "strata serve: %s | %d slots x %d tokens of context, queue %d, %d threads\n",
                 names.c_str(), a.scheduler.n_slots, catalog.n_ctx(), a.scheduler.max_queue,
                 catalog.models().front().forward->n_threads());
    std::fprintf(stderr, "strata serve: listening on http://%s:%d (Ctrl-C stops)\n", a.http.host.c_str(),
                 port);

    std::atomic<bool> listening{true};
    std::thread http_thread([&] {
        api.listen();
        listening = false;
    });
    const timespec tick{0, 100 * 1000 * 1000};
    while (listening && sigtimedwait(&signals, nullptr, &tick) < 0) {
    }
    if (listening) {  // a signal: finish what is running, refuse the rest; a second signal stops at once
        std::fprintf(stderr, "strata serve: stopping after the %d requests in progress (Ctrl-C again: now)\n",
                     api.in_flight());
        api.drain();
        bool now = false;
        while (api.in_flight() > 0 && listening) {
            if (!now && sigtimedwait(&signals, nullptr, &tick) >= 0) {
                now = true;
                scheduler.abort();
            } else if (now) {
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
            }
        }
    }
    api.stop();
    http_thread.join();
    scheduler.abort();
    scheduler.join();
    std::fprintf(stderr, "strata serve: stopped\n");
    return 0;
}

}  // namespace

std::function<int()> register_serve(CLI::App& app) {
    auto a = std::make_shared<ServeArgs>();
    CLI::App* sub = app.add_subcommand(
        "serve",
        "an OpenAI-compatible HTTP server for models and their layer variants, each file mapped once");
    CLI::Option* model_opt =
        sub->add_option("-m,--model", a->models,
                        "a model file (GGUF); repeat for more, each served under its own name")
            ->required();
    sub->add_option("--alias", a->aliases,
                    "the name of the model given by the matching -m (default: the file's name)");
    CLI::Option* variant_opt = sub->add_option(
        "--variant", a->variants,
        "NAME=SPEC: a layer-spec variant of the -m before it, served as model NAME over the same weights");
    sub->add_option("--host", a->http.host, "address to listen on")->capture_default_str();
    sub->add_option("--port", a->http.port, "port (0: any free port, printed)")
        ->check(CLI::Range(0, 65535))
        ->capture_default_str();
    sub->add_option("--parallel", a->scheduler.n_slots,
                    "slots: requests generating at once, batched together (each has its own KV cache)")
        ->check(CLI::Range(1, 1024))
        ->capture_default_str();
    sub->add_option("--queue", a->scheduler.max_queue, "requests that may wait for a slot; more get 503")
        ->check(CLI::Range(0, 1 << 20))
        ->capture_default_str();
    sub->add_option("-c,--ctx-size", a->catalog.n_ctx,
                    "context of each request in tokens (0: the model's training context)")
        ->check(setting_check("ctx-size"))
        ->default_str("the model's, at most 4096");
    sub->add_option("-t,--threads", a->catalog.n_threads, "threads of the engine (0: all hardware threads)")
        ->check(setting_check("threads"));
    sub->add_option("-b,--batch-size", a->catalog.max_batch,
                    "tokens per batched pass (decode steps and prompt chunks)")
        ->check(setting_check("batch-size"))
        ->capture_default_str();
    sub->add_option("--chat-template", a->catalog.chat_template,
                    "chat template for every model (chatml, llama3, ...; default: each model's own)");
    sub->add_option("--api-key", a->http.api_key, "require 'Authorization: Bearer KEY' (all but /health)")
        ->envname("STRATA_API_KEY");
    sub->add_option("--max-body", a->http.max_body_bytes, "largest request body in bytes; larger gets 413")
        ->check(CLI::Range(size_t{1024}, size_t{1} << 30))
        ->capture_default_str();
    sub->add_option("--timeout", a->http.read_timeout_s,
                    "seconds a client may take to send a request, or to take a piece of the reply")
        ->check(CLI::Range(1, 3600))
        ->capture_default_str();
    sub->add_option("--idle-timeout", a->http.idle_timeout_s,
                    "seconds an idle keep-alive connection stays open")
        ->check(CLI::Range(1, 3600))
        ->capture_default_str();
    sub->add_option("--http-threads", a->http_threads,
                    "connections served at once (default: slots + queue + 4; each waiting request holds one)")
        ->check(CLI::Range(0, 1 << 16));
    return [a, sub, model_opt, variant_opt]() -> int {
        a->http.write_timeout_s = a->http.read_timeout_s;
        return serve(*a, model_sources(*a, *sub, model_opt, variant_opt));
    };
}

}  // namespace strata::server
