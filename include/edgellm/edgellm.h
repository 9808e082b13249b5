/*
 * edgellm.h - the edgellm runtime C API.
 *
 * Load a Qwen-family or Llama model (a GGUF file or a Hugging Face directory), open sessions on it
 * (each with its own KV cache and chat history), and generate text token by token through a callback.
 *
 *   edgellm_model* model;
 *   edgellm_model_params mp = edgellm_model_default_params();
 *   if (edgellm_model_load("model.gguf", &mp, &model) != EDGELLM_OK) puts(edgellm_last_error());
 *   edgellm_session* s;
 *   edgellm_session_params sp = edgellm_session_default_params();
 *   edgellm_session_create(model, &sp, &s);
 *   edgellm_generate_params gp = edgellm_generate_default_params(model);
 *   edgellm_session_chat(s, "Hello!", &gp, on_text, NULL);
 *   edgellm_session_free(s);
 *   edgellm_model_free(model);
 *
 * Serving many requests at once: an edgellm_engine batches every running request into one pass over
 * the weights per step (continuous batching over a paged KV pool shared by all requests, with prefix
 * caching); requests are submitted from any thread and stream through their own callback.
 *
 * Conventions
 *  - Every fallible function returns an edgellm_status; EDGELLM_OK is 0. The message of the last
 *    failure is kept per handle (edgellm_model_last_error, edgellm_session_last_error) and, for calls
 *    without a handle (loading), per thread (edgellm_last_error). Messages name the file, key, tensor
 *    or parameter at fault. No C++ exception ever crosses this API.
 *  - Text is UTF-8. Strings returned by the API are owned by it and valid until the next call on the
 *    same handle (or, for edgellm_last_error, the next failing call on the same thread).
 *  - Thread safety: a model may be shared by any number of sessions and threads. A session is used by
 *    one thread at a time, except edgellm_session_abort and edgellm_session_is_running, which may be
 *    called from any thread at any time.
 *  - Sizes and ids use fixed-width integer types; booleans are int32_t 0/1.
 */
#ifndef EDGELLM_EDGELLM_H_
#define EDGELLM_EDGELLM_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EDGELLM_API __attribute__((visibility("default")))

/* ---- status codes ---- */
typedef enum edgellm_status {
  EDGELLM_OK = 0,
  EDGELLM_ERROR_INVALID_ARGUMENT = 1, /* bad parameter, NULL pointer, invalid UTF-8, unknown name */
  EDGELLM_ERROR_IO = 2,               /* a file could not be opened, read or written */
  EDGELLM_ERROR_FORMAT = 3,           /* a file is malformed or corrupted */
  EDGELLM_ERROR_UNSUPPORTED = 4,      /* well-formed but not supported (architecture, type) */
  EDGELLM_ERROR_NOT_FOUND = 5,        /* a required file, key or tensor is missing */
  EDGELLM_ERROR_OUT_OF_MEMORY = 6,    /* not enough memory; the message says how much is needed */
  EDGELLM_ERROR_CONTEXT_FULL = 7,     /* the request does not fit the session's context */
  EDGELLM_ERROR_ABORTED = 8,          /* stopped by edgellm_session_abort */
  EDGELLM_ERROR_BUSY = 9,             /* the session is already running a request */
  EDGELLM_ERROR_INTERNAL = 10         /* a bug in edgellm */
} edgellm_status;

/* A short name for a status ("ok", "invalid argument", ...). Never NULL. */
EDGELLM_API const char* edgellm_status_name(edgellm_status status);

/* The message of the last failing call on this thread that had no handle to store it (model load). */
EDGELLM_API const char* edgellm_last_error(void);

/* edgellm's version, e.g. "0.1.0". */
EDGELLM_API const char* edgellm_version(void);

/* ---- models ---- */
typedef struct edgellm_model edgellm_model;

typedef struct edgellm_model_params {
  int32_t n_threads;           /* threads for the forward pass; 0 = one per core of the fastest cluster
                                  (the big cores of a big.LITTLE board; every core elsewhere), or one per
                                  CPU of cpu_mask when that is set */
  int32_t prefetch;            /* 1: read all weights at load (preload); 0: page them in on use (mmap) */
  int32_t check_memory;        /* 1: refuse to load when the weights exceed available memory */
  const char* chat_template;   /* NULL or "": from the model; else a name such as "qwen2.5", "llama3" */
  int32_t pin_threads;         /* 1: pin thread i to the i-th fastest CPU the process may use (thread 0 is
                                  the thread that runs generation, pinned when it first does) */
  uint64_t cpu_mask;           /* 0: any CPU; else bit n = CPU n: the threads are pinned to these CPUs,
                                  fastest first (CPUs outside the process's affinity mask are skipped) */
  const char* require_signature; /* a minisign public key file: load only a model whose MODEL.minisig verifies
                                    with it (edgellm sign / minisign -S). NULL or "": the environment variable
                                    EDGELLM_REQUIRE_SIGNATURE if set (also for RKLLM applications), else none */
  const char* key_file;        /* the key file of an encrypted model (edgellm encrypt). NULL or "": the environment's
                                  EDGELLM_MODEL_KEY_FILE, EDGELLM_MODEL_KEY or $CREDENTIALS_DIRECTORY/edgellm-model-key
                                  (also for RKLLM applications). Plain models ignore it */
} edgellm_model_params;

EDGELLM_API edgellm_model_params edgellm_model_default_params(void);

/* Loads a GGUF file or a Hugging Face model directory. On failure *out_model is NULL and
 * edgellm_last_error() says why. */
EDGELLM_API edgellm_status edgellm_model_load(const char* path, const edgellm_model_params* params,
                                              edgellm_model** out_model);
/* Frees the model. All its sessions must be freed first. NULL is ignored. */
EDGELLM_API void edgellm_model_free(edgellm_model* model);
EDGELLM_API const char* edgellm_model_last_error(const edgellm_model* model);

typedef struct edgellm_model_info {
  const char* architecture; /* "llama", "qwen", "qwen2", "qwen3", "qwen35" */
  const char* chat_template; /* the chat template family in use, e.g. "qwen3" */
  int32_t has_chat_template; /* 1 if the model file carries a chat template (or one was named at load) */
  int32_t n_vocab;
  int32_t n_embd;
  int32_t n_layer;
  int32_t n_head;
  int32_t n_head_kv;
  int32_t n_ctx_train;
  uint64_t weight_bytes;
} edgellm_model_info;
/* Fills *info; the strings live as long as the model. */
EDGELLM_API edgellm_status edgellm_model_get_info(const edgellm_model* model, edgellm_model_info* info);

/* ---- LoRA adapters ---- */
/* Loads a LoRA adapter (a PEFT directory with adapter_config.json + adapter_model.safetensors, or a GGUF
 * adapter) under `name`. It is applied at run time, without merging, by sessions that select it. Errors:
 * shapes that do not fit the model, a name already in use. */
EDGELLM_API edgellm_status edgellm_model_load_lora(edgellm_model* model, const char* path, const char* name);

/* ---- tokens ---- */
/* Encodes UTF-8 text. Special-token texts become control tokens only if allow_special. Writes up to
 * `capacity` ids to `ids` and the full count to *n_ids; if capacity is too small, returns
 * EDGELLM_ERROR_INVALID_ARGUMENT with *n_ids set to the count needed (ids may be NULL to ask). */
EDGELLM_API edgellm_status edgellm_tokenize(edgellm_model* model, const char* text, size_t text_len,
                                            int32_t allow_special, int32_t* ids, size_t capacity,
                                            size_t* n_ids);
/* Decodes ids to UTF-8 (invalid sequences become U+FFFD). Writes up to `capacity` bytes plus a NUL;
 * *n_bytes receives the full length (without NUL). Too small a buffer: as edgellm_tokenize. */
EDGELLM_API edgellm_status edgellm_detokenize(edgellm_model* model, const int32_t* ids, size_t n_ids,
                                              char* text, size_t capacity, size_t* n_bytes);

/* ---- sampling ---- */
typedef struct edgellm_sampling_params {
  float temperature;        /* <= 0: greedy */
  int32_t top_k;            /* <= 0: off */
  float top_p;              /* >= 1: off */
  float min_p;              /* <= 0: off */
  float typical_p;          /* >= 1: off */
  float repetition_penalty; /* 1: off */
  float frequency_penalty;  /* 0: off */
  float presence_penalty;   /* 0: off */
  int32_t penalty_last_n;   /* window of recent tokens the penalties look at; -1: whole context */
  uint64_t seed;
  int32_t mirostat;         /* 0: off; 1 or 2: Mirostat / Mirostat 2.0, replacing top-k/typical/top-p/min-p */
  float mirostat_tau;       /* target surprise in bits (> 0; default 5) */
  float mirostat_eta;       /* learning rate (>= 0; default 0.1) */
} edgellm_sampling_params;

/* The model's defaults (its generation_config, as stored in the GGUF), else edgellm's. */
EDGELLM_API edgellm_sampling_params edgellm_sampling_default_params(const edgellm_model* model);
/* Named presets: "qa" (temperature 0.3, top_p 0.9), "creative" (0.8, 0.95), "code" (0.5, 0.85),
 * "greedy". Unknown name: EDGELLM_ERROR_INVALID_ARGUMENT. */
EDGELLM_API edgellm_status edgellm_sampling_preset(const char* name, edgellm_sampling_params* out);

typedef struct edgellm_generate_params {
  edgellm_sampling_params sampling;
  int32_t max_new_tokens;          /* 0 = only prefill */
  const char* const* stop_strings; /* extra stop strings (the model's end-of-turn tokens always stop) */
  int32_t n_stop_strings;
  int32_t ignore_stop_tokens;      /* 1: do not stop at EOS / end-of-turn tokens */
  int32_t allow_special;           /* completion prompts: parse special-token texts (chat input never) */
  const char* lora_name;           /* NULL: keep the session's adapter; "": none; else a loaded adapter */
  float lora_scale;                /* strength of lora_name (1 = as trained) */
  /* Constrained output (at most one of the two; NULL: none). The output then always matches: generation
     ends once the grammar is complete. Errors (a malformed grammar or schema) name the line and column or the
     schema keyword. */
  const char* grammar;             /* GBNF text, as llama.cpp's grammars (root rule "root") */
  const char* json_schema;         /* a JSON Schema (text); the output is one JSON value valid against it */
  /* Chat with tools (edgellm_session_set_tools): NULL or "auto" (the model decides), "none", "required" (a
     call is forced), or a function's name (that call is forced). */
  const char* tool_choice;
  /* Speculative decoding with prompt lookup: up to this many tokens drafted from the context (what followed
     the latest earlier occurrence of its last tokens) and verified in one forward step, the number adapted
     to how many are accepted; 0 (default): off, at most 32. The output is that of plain decoding (greedy:
     the same tokens; sampled: the same distribution); it pays off when replies repeat their input
     (summaries, edits, answers quoting a document). Hybrid models (Qwen3.5) decode plainly. */
  int32_t lookup;
} edgellm_generate_params;

EDGELLM_API edgellm_generate_params edgellm_generate_default_params(const edgellm_model* model);

/* ---- sessions ---- */
typedef struct edgellm_session edgellm_session;

/* KV cache element type. Q8_0 (ggml's 32-value blocks with an f16 scale, 8.5 bits a value) takes 53% of
   F16's memory for long contexts on small boards; it needs a head size that is a multiple of 32. */
typedef enum edgellm_kv_type { EDGELLM_KV_F16 = 0, EDGELLM_KV_F32 = 1, EDGELLM_KV_Q8_0 = 2 } edgellm_kv_type;

typedef struct edgellm_session_params {
  int32_t n_ctx;        /* KV cache positions; 0 = min(4096, the model's training context) */
  edgellm_kv_type kv_type;
  int32_t max_batch;    /* tokens per prefill step; 0 = 64 */
  int32_t history_max_rounds;  /* chat: keep at most this many rounds (0 = no limit) */
  int32_t history_max_tokens;  /* chat: keep the history under this many tokens (0 = fit the context) */
} edgellm_session_params;

EDGELLM_API edgellm_session_params edgellm_session_default_params(void);
EDGELLM_API edgellm_status edgellm_session_create(edgellm_model* model, const edgellm_session_params* params,
                                                  edgellm_session** out_session);
/* Frees the session; waits for an asynchronous run to finish (abort it first to hurry it). */
EDGELLM_API void edgellm_session_free(edgellm_session* session);
EDGELLM_API const char* edgellm_session_last_error(const edgellm_session* session);

/* What the callback receives. */
typedef enum edgellm_event {
  EDGELLM_EVENT_TEXT = 0,   /* `text` holds the next piece of generated text (complete UTF-8) */
  EDGELLM_EVENT_FINISH = 1, /* generation ended normally; `text` holds the whole reply */
  EDGELLM_EVENT_ERROR = 2,  /* generation failed; `text` holds the error message */
  /* chat with tools: the reply called a function; `text` is the call as JSON,
     {"id": "call_0", "name": "set_light", "arguments": {...}}, delivered once the call is complete */
  EDGELLM_EVENT_TOOL_CALL = 3
} edgellm_event;

/* Called from the generating thread. Return 0 to continue, non-zero to stop generation (the call then
 * ends with EDGELLM_OK and finish reason "callback"). FINISH or ERROR comes exactly once per run. */
typedef int32_t (*edgellm_callback)(edgellm_event event, const char* text, size_t text_len, void* user_data);

/* Chat: adds a user message to the session's history, generates the reply with the chat template,
 * and adds the reply to the history. Only the new part of the conversation is prefilled.
 * user_message NULL: no new message; the assistant's next turn is generated for the history as it stands
 * (after tool results were added with edgellm_session_add_tool_result). */
EDGELLM_API edgellm_status edgellm_session_chat(edgellm_session* session, const char* user_message,
                                                const edgellm_generate_params* params, edgellm_callback callback,
                                                void* user_data);
/* Completion: generates after `prompt` (BOS added if the model wants it), reusing cached tokens of a
 * matching prefix. Does not touch the chat history. */
EDGELLM_API edgellm_status edgellm_session_complete(edgellm_session* session, const char* prompt,
                                                    const edgellm_generate_params* params,
                                                    edgellm_callback callback, void* user_data);
/* Token level: make the cache hold exactly `tokens` (prefix reuse), then generate. */
EDGELLM_API edgellm_status edgellm_session_prefill(edgellm_session* session, const int32_t* tokens, size_t n_tokens);
EDGELLM_API edgellm_status edgellm_session_generate(edgellm_session* session, const edgellm_generate_params* params,
                                                    edgellm_callback callback, void* user_data);

/* Asynchronous chat/completion: starts the run on a background thread and returns at once
 * (EDGELLM_ERROR_BUSY if one is running). The callback is called from that thread. */
EDGELLM_API edgellm_status edgellm_session_chat_async(edgellm_session* session, const char* user_message,
                                                      const edgellm_generate_params* params,
                                                      edgellm_callback callback, void* user_data);
EDGELLM_API edgellm_status edgellm_session_complete_async(edgellm_session* session, const char* prompt,
                                                          const edgellm_generate_params* params,
                                                          edgellm_callback callback, void* user_data);
/* Waits for an asynchronous run; returns its status (EDGELLM_OK if none was running). */
EDGELLM_API edgellm_status edgellm_session_wait(edgellm_session* session);
/* Any thread: stops the running request within one forward step. */
EDGELLM_API void edgellm_session_abort(edgellm_session* session);
EDGELLM_API int32_t edgellm_session_is_running(const edgellm_session* session);

/* Selects the session's LoRA adapter (NULL or "" = none) and its scale; changing it clears the KV cache. */
EDGELLM_API edgellm_status edgellm_session_set_lora(edgellm_session* session, const char* name, float scale);

/* Chat history. */
EDGELLM_API edgellm_status edgellm_session_set_system_prompt(edgellm_session* session, const char* system_prompt);
/* Qwen3 thinking switch for chat: 1 on, 0 off, -1 the template's default. */
EDGELLM_API edgellm_status edgellm_session_set_thinking(edgellm_session* session, int32_t enable);
EDGELLM_API edgellm_status edgellm_session_set_history_limit(edgellm_session* session, int32_t max_rounds,
                                                             int32_t max_tokens);
/* Number of messages in the history, and message i (role "user"/"assistant", content; owned by the session). */
EDGELLM_API int32_t edgellm_session_history_size(const edgellm_session* session);
EDGELLM_API edgellm_status edgellm_session_history_message(const edgellm_session* session, int32_t index,
                                                           const char** role, const char** content);
/* Appends a message ("system", "user", "assistant" or "tool") to the history without generating, e.g. to
 * restore a saved conversation. The next chat call prefills what is not cached yet. */
EDGELLM_API edgellm_status edgellm_session_add_message(edgellm_session* session, const char* role, const char* content);
/* Function calling. `tools_json` is an OpenAI-style array, [{"type": "function", "function": {"name",
 * "description", "parameters": {JSON Schema}}}], shown to the model by its chat template (NULL or "" removes
 * them). With read_calls = 1 chat replies are read for calls in the template's format (Qwen2.5/Qwen3/Hermes
 * <tool_call> JSON, Qwen3-Coder/Qwen3.5 XML, Llama 3.1 JSON): text outside calls comes as TEXT events, each
 * call as one TOOL_CALL event, and the history keeps the turn with its calls. With read_calls = 0 the calls
 * stay in the text. Errors: invalid JSON or a tool without a function name (naming it). */
EDGELLM_API edgellm_status edgellm_session_set_tools(edgellm_session* session, const char* tools_json,
                                                     int32_t read_calls);
/* Adds a function's result to the history (role "tool"); tool_call_id and name may be NULL. Then
 * edgellm_session_chat(session, NULL, ...) lets the model answer with it. */
EDGELLM_API edgellm_status edgellm_session_add_tool_result(edgellm_session* session, const char* tool_call_id,
                                                           const char* name, const char* content);
/* Clears the history and the KV cache. */
EDGELLM_API edgellm_status edgellm_session_reset(edgellm_session* session);
/* KV cache: keep only the first n_keep cached tokens (0 clears it); the history is unchanged. A hybrid model
 * (Qwen3.5) restores its linear-attention state from the latest snapshot at or before n_keep and runs the
 * tokens after it again, so this may take a prefill's time (docs/qwen35.md). */
EDGELLM_API edgellm_status edgellm_session_trim(edgellm_session* session, int32_t n_keep);
EDGELLM_API int32_t edgellm_session_n_cached(const edgellm_session* session);

/* Prompt cache: save the KV state of the cached tokens to a file and load it (checked against the
 * model's weights digest: a file made for another model is rejected). */
EDGELLM_API edgellm_status edgellm_session_save_state(edgellm_session* session, const char* path);
EDGELLM_API edgellm_status edgellm_session_load_state(edgellm_session* session, const char* path);

/* The logits after the last cached token ([n_vocab]) and the final hidden state ([n_embd], after the
 * output norm), valid until the next call on the session. */
EDGELLM_API edgellm_status edgellm_session_get_logits(const edgellm_session* session, const float** logits,
                                                      int32_t* n_vocab);
EDGELLM_API edgellm_status edgellm_session_get_hidden(const edgellm_session* session, const float** hidden,
                                                      int32_t* n_embd);

/* Performance figures of the last run on the session. */
typedef struct edgellm_perf {
  int64_t prompt_tokens;  /* tokens of the full prompt sequence */
  int64_t reused_tokens;  /* of those, already in the KV cache */
  int64_t prefill_tokens; /* tokens actually prefilled */
  double prefill_ms;
  int64_t decode_tokens;
  double decode_ms;
  uint64_t peak_rss_bytes;
  const char* finish_reason; /* "stop", "length", "callback", "aborted", "context", or "" */
  /* Speculative decoding (edgellm_generate_params.lookup): forward steps that verified a draft, the tokens
     drafted, and of those the accepted. */
  int64_t verify_steps;
  int64_t draft_tokens;
  int64_t accepted_tokens;
} edgellm_perf;
EDGELLM_API edgellm_status edgellm_session_get_perf(const edgellm_session* session, edgellm_perf* perf);

/* ---- serving engine: many requests on one model ----
 * One engine thread runs steps over all running requests: each step reads the weights once for the
 * next token of every decoding request and a chunk of every prompt being prefilled. KV memory comes in
 * blocks from one budget; full blocks of a prompt prefix are shared with later requests that start the
 * same way (a system prompt, a conversation's earlier turns). When memory runs out the most recently
 * admitted request is paused, recomputed later, and loses nothing. A request's tokens do not depend
 * on what runs beside it (greedy output equals running it alone).
 * Thread safety: submit, cancel and get_stats may be called from any thread at any time. */
typedef struct edgellm_engine edgellm_engine;

typedef struct edgellm_engine_params {
  int32_t max_parallel;    /* requests decoded together (the rest wait in the queue); default 4 */
  int32_t n_ctx;           /* positions per request, prompt + reply; 0 = min(4096, the training context) */
  edgellm_kv_type kv_type;
  int64_t kv_mem_bytes;    /* KV budget for all requests; 0 = max_parallel full contexts, at most 3/4 of the
                              available memory; it must hold at least one full context */
  int32_t block_size;      /* positions per KV block: 16 (default) or 32 */
  int32_t prefill_chunk;   /* tokens per step (prompt chunks plus the others' decode tokens); default 256 */
  int32_t max_queue;       /* requests waiting at most; more are refused with EDGELLM_ERROR_BUSY; default 64 */
  int32_t prefix_cache;    /* 1 (default): share the KV blocks of common prompt prefixes */
} edgellm_engine_params;

EDGELLM_API edgellm_engine_params edgellm_engine_default_params(void);
/* Starts an engine on a model (the model must outlive it). Errors: bad parameters, a KV budget that
 * cannot hold one context or exceeds the available memory (the message says how much is needed). */
EDGELLM_API edgellm_status edgellm_engine_create(edgellm_model* model, const edgellm_engine_params* params,
                                                 edgellm_engine** out_engine);
/* Stops the engine: requests still queued or running end with finish reason "cancelled" (their FINISH
 * event is delivered), then the engine thread is joined. NULL is ignored. */
EDGELLM_API void edgellm_engine_free(edgellm_engine* engine);
EDGELLM_API const char* edgellm_engine_last_error(const edgellm_engine* engine);

typedef struct edgellm_chat_message {
  const char* role;    /* "system", "user" or "assistant" */
  const char* content;
} edgellm_chat_message;

/* One request. Exactly one input: `messages` (a conversation, rendered with the model's chat template
 * and its generation prompt), `prompt` (completion text; special-token texts parsed if
 * params.allow_special) or `tokens` (ids as they are). The structure and its strings are copied. */
typedef struct edgellm_request {
  const edgellm_chat_message* messages;
  int32_t n_messages;
  const char* prompt;
  const int32_t* tokens;
  size_t n_tokens;
  int32_t enable_thinking;         /* chat input, Qwen3: 1 on, 0 off, -1 the template's default */
  edgellm_generate_params params;  /* lora_name NULL or "": no adapter */
  double timeout_seconds;          /* from submit to finish; 0 = none */
} edgellm_request;

/* A request's figures, in its FINISH or ERROR event. */
typedef struct edgellm_request_stats {
  const char* finish_reason;  /* "stop", "length", "context", "cancelled", "timeout", "error" */
  int64_t prompt_tokens;
  int64_t cached_tokens;      /* prompt tokens whose KV came from the prefix cache */
  int64_t generated_tokens;
  int32_t n_preemptions;      /* times it was paused for memory and recomputed */
  double queue_ms;            /* submit -> first step */
  double ttft_ms;             /* submit -> first token */
  double total_ms;            /* submit -> finish */
} edgellm_request_stats;

typedef struct edgellm_request_event {
  uint64_t request_id;
  edgellm_event type;     /* TEXT: one generated token; FINISH: ended (any reason but "error"); ERROR */
  const char* text;       /* TEXT: the text it made printable (may be empty); FINISH: the whole reply;
                             ERROR: the message. NUL-terminated; valid during the call only */
  size_t text_len;
  int32_t token;          /* TEXT: the token id, or -1 for held-back text flushed at the end */
  uint64_t step;          /* TEXT: the engine step that produced it (equal for tokens of one step) */
  const edgellm_request_stats* stats;  /* FINISH and ERROR */
} edgellm_request_event;

/* Called on the engine's thread: keep it short. For TEXT, return non-zero to cancel the request. */
typedef int32_t (*edgellm_request_callback)(const edgellm_request_event* event, void* user_data);

/* Queues a request; *out_id (may be NULL) receives its id. On success exactly one FINISH or ERROR event
 * follows. Errors, with no event: an invalid request or parameters, a prompt that does not fit n_ctx
 * (EDGELLM_ERROR_CONTEXT_FULL), an unknown adapter, a full queue (EDGELLM_ERROR_BUSY). */
EDGELLM_API edgellm_status edgellm_engine_submit(edgellm_engine* engine, const edgellm_request* request,
                                                 edgellm_request_callback callback, void* user_data,
                                                 uint64_t* out_id);
/* Ends a request at the next step (finish reason "cancelled"); nothing if it has already finished. */
EDGELLM_API edgellm_status edgellm_engine_cancel(edgellm_engine* engine, uint64_t request_id);

typedef struct edgellm_engine_stats {
  int64_t n_waiting, n_running;
  int64_t kv_blocks_total, kv_blocks_used, kv_blocks_cached, kv_block_size;
  uint64_t kv_bytes;
  int64_t requests_submitted, requests_finished;
  int64_t prompt_tokens, cached_prompt_tokens, generated_tokens;
  int64_t preemptions, steps;
} edgellm_engine_stats;
EDGELLM_API edgellm_status edgellm_engine_get_stats(const edgellm_engine* engine, edgellm_engine_stats* stats);

#ifdef __cplusplus
}
#endif

#endif /* EDGELLM_EDGELLM_H_ */
