/* libstrata: the C API of strata. Models and chat sessions behind opaque handles, so that programs in any
 * language (C, Python's ctypes, ...) can load several models and let them talk.
 *
 * - Every function that can fail returns a strata_status (STRATA_OK = 0, errors < 0) and records a message
 *   that strata_last_error() returns (per thread). No C++ exception ever crosses this boundary.
 * - Opening one file twice shares it: one mapping and one set of weights (a process-wide registry keyed by the
 *   file's canonical path); each session has its own plan (--layer-spec), KV cache, sampler and history.
 * - A session is used by one thread at a time, except strata_session_abort(), which any thread (or a signal
 *   handler) may call while another thread generates.
 * - Strings are UTF-8 and NUL-terminated. Strings returned by the library stay valid until the next call on
 *   the same handle (or, for strata_last_error, on the same thread).
 */
#ifndef STRATA_H
#define STRATA_H

#include <stddef.h>

#if defined(STRATA_BUILDING_LIBRARY)
#define STRATA_API __attribute__((visibility("default")))
#else
#define STRATA_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef enum strata_status {
    STRATA_OK = 0,
    STRATA_INTERRUPTED = 1,       /* the reply was stopped by strata_session_abort(); it stays in the history */
    STRATA_ERR_INVALID_ARG = -1,  /* a null handle, an unknown option, a bad value */
    STRATA_ERR_LOAD = -2,         /* the model file could not be opened or read */
    STRATA_ERR_RUNTIME = -3,      /* the turn failed (message too long for the context, ...) */
    STRATA_ERR_INTERNAL = -4      /* anything else (out of memory, a bug) */
} strata_status;

typedef struct strata_model strata_model;
typedef struct strata_session strata_session;

/* Receives the reply as it grows: piece holds len bytes (whole UTF-8 characters) and a NUL after them. A model
 * can produce U+0000 (a byte token), so a piece or a reply may hold a NUL byte inside: use len, and
 * strata_session_last_reply_size() for a whole reply, where that matters. */
typedef void (*strata_piece_fn)(void* user_data, const char* piece, size_t len);
/* Called once a reply ends: status as returned, text = the whole message as kept in the history
 * (strata_session_last_reply_size() bytes). */
typedef void (*strata_end_fn)(void* user_data, int status, const char* text);

STRATA_API const char* strata_version(void);
/* The message of the last failed call on this thread ("" when none). */
STRATA_API const char* strata_last_error(void);

/* Opens (or shares, when already open) a model file. tokenizer_path: for llama2.c checkpoints, else NULL. */
STRATA_API int strata_model_open(const char* path, const char* tokenizer_path, strata_model** out);
/* Releases this handle; the mapping goes when no handle or session uses the file any more. NULL is fine. */
STRATA_API void strata_model_close(strata_model* model);
/* Architecture, dimensions, layers, parameters, chat template ... as a JSON object. */
STRATA_API const char* strata_model_info_json(strata_model* model);

/* A chat session over model, configured by argv-style options (argv[0] is an option, not a program name):
 *   --layer-spec S  -c/--ctx-size N  -t/--threads N  -b/--batch-size N
 *   --temp T  --top-k K  --top-p P  --min-p P  --repeat-penalty R  --repeat-last-n N  -s/--seed S
 *   --system TEXT  --ai-prefix TEXT  --reversed-role  --chat-template NAME  -n/--n-predict/--max-new-tokens N
 *   --ctx-overflow shift|restart|error
 * Values are taken verbatim (no C-escape processing); a value outside its range is STRATA_ERR_INVALID_ARG
 * with a message naming the option and what is valid. -c 0 is the model's training context (default: that,
 * at most 4096); -t above the hardware threads runs on the hardware threads; --seed -1 (the default) draws a
 * random seed (strata_session_stats_json shows it); -n -1 generates until the end of text or context.
 * The session keeps the model alive. */
STRATA_API int strata_session_new(strata_model* model, int argc, const char* const* argv, strata_session** out);
STRATA_API void strata_session_free(strata_session* session);

/* Human input, then the model's reply streamed through on_piece (the ai-prefix first) and ended by on_end.
 * Either callback may be NULL. Returns STRATA_OK, STRATA_INTERRUPTED or an error (the history unchanged). */
STRATA_API int strata_session_send(strata_session* session, const char* text, strata_piece_fn on_piece,
                                   strata_end_fn on_end, void* user_data);
/* Appends suffix (may be "" or NULL) to the model's last message and generates more into it. */
STRATA_API int strata_session_continue(strata_session* session, const char* suffix, strata_piece_fn on_piece,
                                       strata_end_fn on_end, void* user_data);
/* Adds a message without generating: role is "user", "assistant" or "system". */
STRATA_API int strata_session_add_message(strata_session* session, const char* role, const char* text);
/* Thread- and signal-safe: stops the generation in progress before its next token. */
STRATA_API void strata_session_abort(strata_session* session);
/* Clears the history. system_prompt: NULL keeps the current one, "" removes it, else replaces it. */
STRATA_API int strata_session_restart(strata_session* session, const char* system_prompt);
/* Every following reply starts with prefix ("" or NULL: none). */
STRATA_API int strata_session_set_ai_prefix(strata_session* session, const char* prefix);
STRATA_API int strata_session_set_max_new_tokens(strata_session* session, int n);
/* The model's last message (as kept in the history), or "" when none. */
STRATA_API const char* strata_session_last_reply(strata_session* session);
/* Its length in bytes: larger than strlen() when the model produced a NUL byte (U+0000). 0 for NULL. Leaves the
 * string strata_session_last_reply() returned valid. */
STRATA_API size_t strata_session_last_reply_size(strata_session* session);
/* Context use, messages, turns, the last turn's token counts and speed, KV bytes, the seed in use (drawn at
 * random unless -s gave one) and the threads, as a JSON object. */
STRATA_API const char* strata_session_stats_json(strata_session* session);

/* ---- the logit lens: what each plan step would predict ------------------------------------------------ */

/* One row of strata_lens: after plan step `step` (running file layer `layer`; a repeated layer gives one row
 * per step) at prompt position `position`, the model's final norm and output head applied to the residual
 * stream. Pointers are valid during the callback only. */
typedef struct strata_lens_row {
    int step, layer, position;
    int input_token;         /* the prompt token at position (the row predicts the token after it) */
    int target;              /* the token the full model predicts here: its last step's top-1 */
    int target_rank;         /* 1: the lens's top token */
    float target_prob;
    double entropy;          /* of the lens distribution, nats */
    double kl;               /* KL(final || lens), nats; 0 at the last step */
    double kl_reference;     /* with --compare: KL(the compared spec's final || lens), else -1 */
    int top_k;
    const int* top_ids;      /* (top_k) most probable first */
    const float* top_probs;  /* (top_k) */
    int dim;
    const float* residual;   /* (dim) the residual stream after the step */
    int n_vocab;
    const float* logits;     /* (n_vocab) the lens logits; after the last step, the model's output logits */
} strata_lens_row;
typedef void (*strata_lens_fn)(void* user_data, const strata_lens_row* row);

/* Runs the prompt (BOS added where the model wants one; special tokens such as <|im_start|> parsed) through
 * the plan once, on the CPU, and applies the lens after every step. Options, argv-style as for sessions:
 *   --layer-spec S  --top-k K (default 5)  --positions last|all (default last)
 *   --compare SPEC ('base': all layers)  -c/--ctx-size N  -t/--threads N  -b/--batch-size N
 * on_row (may be NULL): once per (step, position) of the --layer-spec plan, steps in order for each position
 * (the --compare plan's rows are in the JSON only). json_out (may be NULL): the report in the JSON schema of
 * `strata lens -o json`, valid until the next call on this model handle.
 * Sessions are untouched: their forward passes never pay for the lens. */
STRATA_API int strata_lens(strata_model* model, const char* prompt, int argc, const char* const* argv,
                           strata_lens_fn on_row, void* user_data, const char** json_out);

#ifdef __cplusplus
}
#endif

#endif /* STRATA_H */
