/* The C API from C (not C++): two sessions on one file (shared), a streamed turn, continue with a suffix,
 * restart with a system prompt, statistics and model info as JSON, errors as codes plus messages, abort
 * from another thread, and the logit lens through its row callback.
 * Usage: c_api_test MODEL.gguf (exit 77 = skipped: the model is missing). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/api/strata.h"

static int failures = 0;
#define CHECK(cond)                                                                              \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "%s:%d: CHECK failed: %s (last error: %s)\n", __FILE__, __LINE__, #cond, \
                    strata_last_error());                                                        \
            failures++;                                                                          \
        }                                                                                        \
    } while (0)

struct collect {
    char text[8192];
    size_t len;
    int pieces;
    int ended;
    int end_status;
    atomic_int started;
};

static void on_piece(void* user, const char* piece, size_t len) {
    struct collect* c = (struct collect*)user;
    if (strlen(piece) != len) failures++;
    if (c->len + len < sizeof c->text) {
        memcpy(c->text + c->len, piece, len);
        c->len += len;
        c->text[c->len] = 0;
    }
    c->pieces++;
    atomic_store(&c->started, 1);
}

static void on_end(void* user, int status, const char* text) {
    struct collect* c = (struct collect*)user;
    c->ended++;
    c->end_status = status;
    (void)text;
}

struct abort_job {
    strata_session* session;
    struct collect* c;
};

struct lens_rows {
    int rows, last_step, bad;
    int max_step;
    double last_kl;
};

/* The lens callback: every row well formed; remembers the largest step and the last step's KL. */
static void on_lens_row(void* user, const strata_lens_row* r) {
    struct lens_rows* l = (struct lens_rows*)user;
    l->rows++;
    if (r->top_k != 3 || r->dim != 576 || r->n_vocab <= 0 || !r->residual || !r->logits ||
        r->target_rank < 1 || r->top_probs[0] < r->top_probs[1] || r->kl < 0 || r->entropy < 0 ||
        r->kl_reference < 0)
        l->bad++;
    if (r->step > l->max_step) l->max_step = r->step;
    if (r->step == l->last_step) {
        l->last_kl = r->kl;
        /* after the last step the lens logits are the output: their top token is the target */
        int best = 0;
        for (int i = 1; i < r->n_vocab; ++i)
            if (r->logits[i] > r->logits[best]) best = i;
        if (best != r->target || r->top_ids[0] != r->target) l->bad++;
    }
}

static void* abort_later(void* arg) {
    struct abort_job* job = (struct abort_job*)arg;
    while (!atomic_load(&job->c->started)) usleep(1000);
    strata_session_abort(job->session);
    return NULL;
}

int main(int argc, char** argv) {
    if (argc < 2 || access(argv[1], R_OK) != 0) {
        fprintf(stderr, "skipped: no model file\n");
        return 77;
    }
    strata_model *m1 = NULL, *m2 = NULL, *bad = NULL;
    CHECK(strata_model_open(argv[1], NULL, &m1) == STRATA_OK);
    CHECK(strata_model_open(argv[1], NULL, &m2) == STRATA_OK);
    if (!m1 || !m2) return 1;

    /* Errors: codes and messages, never a crash. */
    CHECK(strata_model_open("/nonexistent/model.gguf", NULL, &bad) == STRATA_ERR_LOAD);
    CHECK(bad == NULL);
    CHECK(strstr(strata_last_error(), "/nonexistent/model.gguf") != NULL);
    strata_session* s_bad = NULL;
    const char* bad_opts[] = {"--no-such-option", "1"};
    CHECK(strata_session_new(m1, 2, bad_opts, &s_bad) == STRATA_ERR_INVALID_ARG);
    CHECK(strstr(strata_last_error(), "--no-such-option") != NULL);
    const char* bad_spec[] = {"--layer-spec", "0:99"};
    CHECK(strata_session_new(m1, 2, bad_spec, &s_bad) < 0);
    CHECK(strata_session_send(NULL, "hi", NULL, NULL, NULL) == STRATA_ERR_INVALID_ARG);
    CHECK(strata_session_last_reply_size(NULL) == 0);
    CHECK(strata_model_info_json(m1)[0] == '{');
    CHECK(strstr(strata_model_info_json(m1), "\"arch\":\"llama\"") != NULL);

    /* The logit lens: one row per step (the last position), the duplicated layers' steps included. */
    const char* lens_opts[] = {"--layer-spec", "0:20,10:30", "--top-k", "3", "-t", "2", "--compare", "base"};
    struct lens_rows lr;
    memset(&lr, 0, sizeof lr);
    lr.last_step = 39;
    lr.last_kl = -1;
    const char* lens_json = NULL;
    CHECK(strata_lens(m1, "The capital of France is", 8, lens_opts, on_lens_row, &lr, &lens_json) ==
          STRATA_OK);
    CHECK(lr.rows == 40 && lr.max_step == 39 && lr.bad == 0 && lr.last_kl == 0);
    CHECK(lens_json && strstr(lens_json, "\"steps\"") && strstr(lens_json, "\"reference\""));
    const char* bad_positions[] = {"--positions", "some"};
    CHECK(strata_lens(m1, "hi", 2, bad_positions, NULL, NULL, NULL) == STRATA_ERR_INVALID_ARG);
    CHECK(strstr(strata_last_error(), "positions") != NULL);
    const char* bad_top_k[] = {"--top-k", "0"};
    CHECK(strata_lens(m1, "hi", 2, bad_top_k, NULL, NULL, NULL) == STRATA_ERR_INVALID_ARG);
    CHECK(strata_lens(NULL, "hi", 0, NULL, NULL, NULL, NULL) == STRATA_ERR_INVALID_ARG);

    const char* opts_a[] = {"--temp", "0", "--max-new-tokens", "6", "-c", "256", "-t", "2"};
    const char* opts_b[] = {"--temp", "0", "--max-new-tokens", "400", "-c", "512", "-t", "2",
                            "--layer-spec", "0:24", "--system", "You are terse."};
    strata_session *a = NULL, *b = NULL;
    CHECK(strata_session_new(m1, 8, opts_a, &a) == STRATA_OK);
    CHECK(strata_session_new(m2, 12, opts_b, &b) == STRATA_OK);
    if (!a || !b) return 1;
    /* The handles can go: the sessions keep the model. */
    strata_model_close(m1);
    strata_model_close(m2);

    struct collect c;
    memset(&c, 0, sizeof c);
    CHECK(strata_session_send(a, "What is the capital of France?", on_piece, on_end, &c) == STRATA_OK);
    CHECK(c.pieces > 0 && c.ended == 1 && c.end_status == STRATA_OK);
    CHECK(strcmp(strata_session_last_reply(a), c.text) == 0);
    const char* reply = strata_session_last_reply(a);
    CHECK(strata_session_last_reply_size(a) == c.len && c.len == strlen(c.text));
    CHECK(strcmp(reply, c.text) == 0); /* still valid after the size call */

    /* Continue with a suffix: the message grows by the suffix and more text. */
    char before[8192];
    snprintf(before, sizeof before, "%s", strata_session_last_reply(a));
    memset(&c, 0, sizeof c);
    CHECK(strata_session_continue(a, " Also,", on_piece, on_end, &c) == STRATA_OK);
    const char* after = strata_session_last_reply(a);
    CHECK(strncmp(after, before, strlen(before)) == 0);
    CHECK(strstr(after, " Also,") != NULL);
    CHECK(strstr(strata_session_stats_json(a), "\"turns\":2") != NULL);

    /* ai-prefix, then restart with a system prompt. */
    CHECK(strata_session_set_ai_prefix(a, "Sure!") == STRATA_OK);
    memset(&c, 0, sizeof c);
    CHECK(strata_session_send(a, "Say hi.", on_piece, NULL, &c) == STRATA_OK);
    CHECK(strncmp(strata_session_last_reply(a), "Sure!", 5) == 0);
    CHECK(strata_session_restart(a, "You are a pirate.") == STRATA_OK);
    CHECK(strstr(strata_session_stats_json(a), "\"messages\":1") != NULL);
    CHECK(strata_session_continue(a, "x", NULL, NULL, NULL) == STRATA_ERR_INVALID_ARG);

    /* Abort from another thread: the reply stops early, is kept, and the status says so. */
    memset(&c, 0, sizeof c);
    struct abort_job job = {b, &c};
    pthread_t th;
    pthread_create(&th, NULL, abort_later, &job);
    const int st = strata_session_send(b, "Write a long story about a dragon.", on_piece, on_end, &c);
    pthread_join(th, NULL);
    CHECK(st == STRATA_INTERRUPTED);
    CHECK(c.end_status == STRATA_INTERRUPTED);
    CHECK(strstr(strata_session_stats_json(b), "\"last_interrupted\":true") != NULL);
    CHECK(strstr(strata_session_stats_json(b), "\"steps\":24") != NULL);
    CHECK(strstr(strata_session_stats_json(b), "\"last_generated_tokens\":400") == NULL);

    strata_session_free(a);
    strata_session_free(b);
    strata_session_free(NULL);
    strata_model_close(NULL);
    if (failures) fprintf(stderr, "%d failure(s)\n", failures);
    else printf("c_api_test: all checks passed\n");
    return failures ? 1 : 0;
}
