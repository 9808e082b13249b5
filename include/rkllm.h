/*
 * rkllm.h - source-compatible RKLLM runtime API, implemented by edgellm (librkllmrt.so).
 *
 * An application written for the vendor's RKLLM runtime (v1.3.0 API) builds unchanged against this
 * header and runs a GGUF file or a Hugging Face model directory given as `model_path`:
 *
 *   RKLLMParam p = rkllm_createDefaultParam();
 *   p.model_path = "qwen2.5-0.5b-instruct-q8_0.gguf";
 *   p.max_new_tokens = 256;
 *   p.max_context_len = 2048;
 *   RKLLMCallback cb = {0};
 *   cb.result_callback = on_result;           // NORMAL pieces, then FINISH or ERROR
 *   LLMHandle h = NULL;
 *   if (rkllm_init(&h, &p, &cb) != 0) return 1;
 *   RKLLMInput in; memset(&in, 0, sizeof in);
 *   in.role = "user"; in.input_type = RKLLM_INPUT_PROMPT; in.prompt_input = "Hello!";
 *   RKLLMInferParam ip; memset(&ip, 0, sizeof ip);
 *   ip.mode = RKLLM_INFER_GENERATE; ip.keep_history = 1;
 *   rkllm_run(h, &in, &ip, NULL);
 *   rkllm_destroy(h);
 *
 * Names, values, member order and types follow the vendor's public v1.3.0 header as described in
 * ../shared/specs/rkllm-api.md (sizes on LP64: RKLLMParam 184, RKLLMInput 160, RKLLMInferParam 40,
 * RKLLMResult 72 bytes; tests/rkllm_abi_test.c checks every member offset). Unlike the vendor's header
 * this one also compiles as C (C99 with GNU anonymous unions, or C11).
 *
 * Older API generations
 *  - rkllm_run(handle, &input, &infer_params, userdata), the form of the vendor's examples since 1.1,
 *    is the only form of rkllm_run: the 4-argument signature did not change, so old and new code call
 *    the same function.
 *  - rkllm_init took a bare callback before 1.3.0 (`rkllm_init(&h, &p, callback)`). C has no
 *    overloading, so in C only the 1.3.0 form (RKLLMCallback*) exists, as the spec's baseline says.
 *    In C++ two inline overloads also accept the 1.2.x callback (`int(RKLLMResult*, void*,
 *    LLMCallState)`) and the 1.1.x one (returning void). Define RKLLM_NO_LEGACY_INIT before including
 *    this header to leave them out (they make `rkllm_init(&h, &p, NULL)` ambiguous in C++).
 *  - Struct layouts are those of 1.3.0 only (1.1/1.2 had other members, e.g. img_start in RKLLMParam).
 *
 * Return values: 0 on success, -1 on failure (as the vendor's guide documents); the failure is
 * printed to stderr ("E RKLLM: ...") like the vendor runtime logs, and kept for
 * rkllm_edgellm_last_error(). rkllm_is_running returns 1 while a run is active (1.3.0 semantics).
 *
 * Threading: one run at a time per handle. rkllm_abort and rkllm_is_running may be called from any
 * thread at any time. rkllm_run calls the callback on the calling thread, rkllm_run_async on a
 * thread of the handle's own. Several handles (each loads its model) may run in parallel.
 *
 * What edgellm does differently (everything else behaves as the spec describes):
 *  - NPU/SoC settings are accepted and ignored: base_domain_id, embed_flash.
 *    enabled_cpus_num is the number of compute threads (0 = one per CPU of the mask, or one per core of
 *    the fastest cluster without a mask); enabled_cpus_mask, when not 0, pins them to those CPUs,
 *    fastest first (CPUs the process may not use are skipped; none left: any CPU, with a warning).
 *  - n_batch > 1 (up to 64) runs the sequences through edgellm's serving engine: rkllm_run takes an
 *    array of n_batch inputs, every engine step reads the weights once for all of them, and the
 *    callback gets an array of n_batch results per step: a sequence that produced a token has its text
 *    and token_id, a finished one text NULL and token_id -1, one still reading its prompt text "" and
 *    token_id -1; FINISH comes once all have ended, each result with that sequence's perf. Each
 *    sequence keeps its own conversation (keep_history); rkllm_get_kv_cache_size writes n_batch sizes;
 *    rkllm_clear_kv_cache ranges clear whole sequences (start 0). Logits/hidden-state modes and prompt
 *    caches take one sequence (n_batch 1).
 *  - Not supported, rejected with -1 and a message: n_batch > 64, use_cross_attn, mirostat other than 0/1/2,
 *    RKLLM_INPUT_EMBED and RKLLM_INPUT_MULTIMODAL input, function calling with n_batch > 1 or with a
 *    replaced chat template, rkllm_set_cross_attn_params, tokenizer/embedding callbacks are never called (the model files
 *    carry their own tokenizer and embeddings), rkllm_clear_kv_cache ranges that do not reach the end
 *    of the cache.
 *  - RKLLM_RUN_WAITING is never sent: NORMAL text is always complete UTF-8. NORMAL pieces may hold
 *    more than one token, `token_id` is -1 (n_batch > 1: the token's id), and special tokens are always left out of `text`
 *    (skip_special_token is treated as true). NUL bytes a model generates are dropped from `text`
 *    (a C string).
 *  - FINISH carries text "" and the run's perf figures; ERROR carries the error message as text.
 *    rkllm_abort (and a callback returning 1) end the run with FINISH, keeping the partial answer.
 *  - n_keep is not used: edgellm does not shift the context. When a keep_history conversation
 *    outgrows max_context_len, its oldest whole rounds are dropped (the system prompt is kept).
 *  - GET_LAST_HIDDEN_LAYER / GET_LOGITS report the last input token only (num_tokens = 1); hidden
 *    states are taken after the final norm. These modes never keep history.
 *  - A saved prompt cache holds the whole KV cache after the run (prompt and answer); loading it
 *    reuses its longest common prefix with later inputs, as the vendor's does.
 */
#ifndef _RKLLM_H_
#define _RKLLM_H_

#ifdef __cplusplus
#include <cstddef>
#include <cstdint>
#else
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* CPU masks for RKLLMExtendParam.enabled_cpus_mask. */
#define CPU0 (1 << 0)
#define CPU1 (1 << 1)
#define CPU2 (1 << 2)
#define CPU3 (1 << 3)
#define CPU4 (1 << 4)
#define CPU5 (1 << 5)
#define CPU6 (1 << 6)
#define CPU7 (1 << 7)

/* A runtime instance: one model and its KV cache. */
typedef void* LLMHandle;

/* What a result callback reports. */
typedef enum {
  RKLLM_RUN_NORMAL = 0,  /* `text` holds the next piece of the answer */
  RKLLM_RUN_WAITING = 1, /* vendor: incomplete UTF-8 so far; edgellm never sends it */
  RKLLM_RUN_FINISH = 2,  /* the run ended; `perf` is valid */
  RKLLM_RUN_ERROR = 3    /* the run failed; `text` holds the message (edgellm) */
} LLMCallState;

typedef enum {
  RKLLM_INPUT_PROMPT = 0,    /* text, wrapped in the chat template */
  RKLLM_INPUT_TOKEN = 1,     /* token ids, used verbatim */
  RKLLM_INPUT_EMBED = 2,     /* input embeddings (not supported by edgellm) */
  RKLLM_INPUT_MULTIMODAL = 3 /* text with image/video embeddings (not supported by edgellm) */
} RKLLMInputType;

typedef enum {
  RKLLM_INFER_GENERATE = 0,              /* generate text */
  RKLLM_INFER_GET_LAST_HIDDEN_LAYER = 1, /* only prefill; report the last hidden state */
  RKLLM_INFER_GET_LOGITS = 2             /* only prefill; report the logits */
} RKLLMInferMode;

/* 120 bytes on every ABI. */
typedef struct {
  int32_t base_domain_id;     /* NPU memory domain (ignored) */
  int8_t embed_flash;         /* keep embeddings in flash (ignored: weights are mmapped anyway) */
  int8_t enabled_cpus_num;    /* compute threads; 0 = see above */
  uint32_t enabled_cpus_mask; /* OR of CPUn: the CPUs the threads are pinned to; 0 = any */
  uint8_t n_batch;            /* parallel sequences (0 or 1: one; up to 64 through the serving engine) */
  int8_t use_cross_attn;      /* cross-attention decoder (not supported) */
  uint8_t reserved[104];
} RKLLMExtendParam;

typedef struct {
  const char* model_path;  /* a GGUF file or a Hugging Face model directory */
  int32_t max_context_len; /* KV cache positions, fixed at init; <= 0: min(4096, training context) */
  int32_t max_new_tokens;  /* per-run cap on generated tokens; <= 0: 256 */
  int32_t top_k;
  int32_t n_keep;          /* not used (see above) */
  float top_p;
  float temperature;
  float repeat_penalty;
  float frequency_penalty;
  float presence_penalty;
  int32_t mirostat;        /* 0 off, 1 Mirostat, 2 Mirostat 2.0 */
  float mirostat_tau;
  float mirostat_eta;
  bool skip_special_token;
  bool ignore_eos_token;   /* keep generating past EOS / end-of-turn tokens */
  bool is_async;           /* not needed: rkllm_run_async works either way */
  RKLLMExtendParam extend_param;
} RKLLMParam;

typedef struct {
  const char* lora_adapter_path; /* PEFT directory or GGUF adapter */
  const char* lora_adapter_name; /* key for RKLLMLoraParam */
  float scale;                   /* strength of the adapter's delta */
} RKLLMLoraAdapter;

typedef struct {
  float* embed;    /* [n_tokens][hidden], row-major */
  size_t n_tokens;
} RKLLMEmbedInput;

typedef struct {
  int32_t* input_ids;
  size_t n_tokens;
} RKLLMTokenInput;

typedef struct {
  char* prompt; /* text with <image> / <video> placeholders */
  struct {
    float* image_embed; /* [n_image][n_image_tokens][hidden] */
    size_t n_image_tokens;
    size_t n_image;
    const char* image_start;
    const char* image_end;
    const char* image_content;
    size_t image_width;
    size_t image_height;
  } image;
  struct {
    float* video_embed; /* [n_video][n_frame_per_video][n_frame_tokens][hidden] */
    size_t n_frame_tokens;
    size_t n_frame_per_video;
    size_t n_video;
    const char* video_start;
    const char* video_end;
    const char* video_content;
    size_t frame_width;
    size_t frame_height;
  } video;
} RKLLMMultiModalInput;

typedef struct {
  const char* role;     /* "user" (NULL or "" also mean "user"), or "tool": prompt_input holds function results */
  bool enable_thinking; /* Qwen3 thinking switch (built-in template only) */
  RKLLMInputType input_type;
  /* GNU C99 / C11 anonymous union: members are accessed directly (in.prompt_input). */
  __extension__ union {
    const char* prompt_input;
    RKLLMEmbedInput embed_input;
    RKLLMTokenInput token_input;
    RKLLMMultiModalInput multimodal_input;
  };
} RKLLMInput;

typedef struct {
  const char* lora_adapter_name; /* an adapter loaded with rkllm_load_lora */
} RKLLMLoraParam;

typedef struct {
  int save_prompt_cache;         /* 1: save the KV cache after this run */
  const char* prompt_cache_path; /* NULL: "./prompt_cache.bin" */
} RKLLMPromptCacheParam;

typedef struct {
  float* encoder_k_cache; /* [layers][tokens][kv_heads][head_dim] */
  float* encoder_v_cache; /* [layers][kv_heads][head_dim][tokens] */
  float* encoder_mask;    /* [tokens] */
  int32_t* encoder_pos;   /* [tokens] */
  int num_tokens;
} RKLLMCrossAttnParam;

typedef struct {
  int32_t top_k;
  float top_p;
  float temperature;
  float repeat_penalty;
  float frequency_penalty;
  float presence_penalty;
  int32_t mirostat; /* 0 off, 1 Mirostat, 2 Mirostat 2.0 */
  float mirostat_tau;
  float mirostat_eta;
} RKLLMSamplingParam;

typedef struct {
  RKLLMInferMode mode;
  RKLLMLoraParam* lora_params;                 /* NULL: no adapter */
  RKLLMPromptCacheParam* prompt_cache_params;  /* NULL: do not save */
  RKLLMSamplingParam* sampling_params;         /* NULL: the init parameters */
  int keep_history;                            /* 1: multi-turn; 0: each run is a new conversation */
  int32_t max_new_tokens;                      /* > 0 overrides the init value for this run */
} RKLLMInferParam;

typedef struct {
  const float* hidden_states; /* [num_tokens][embd_size]; valid inside the callback only */
  int embd_size;
  int num_tokens;
} RKLLMResultLastHiddenLayer;

typedef struct {
  const float* logits; /* [num_tokens][vocab_size]; valid inside the callback only */
  int vocab_size;
  int num_tokens;
} RKLLMResultLogits;

typedef struct {
  float prefill_time_ms;
  int prefill_tokens;   /* tokens actually prefilled (cached prefixes are not counted) */
  float generate_time_ms;
  int generate_tokens;
  float memory_usage_mb; /* peak resident set size of the process */
} RKLLMPerfStat;

typedef struct {
  const char* text; /* never NULL */
  int32_t token_id; /* -1: edgellm does not report token ids */
  RKLLMResultLastHiddenLayer last_hidden_layer;
  RKLLMResultLogits logits;
  RKLLMPerfStat perf;
} RKLLMResult;

/* Return 0 to continue, 1 to stop this run (the KV cache and, with keep_history, the partial answer
 * are kept), 2 to drop the current output buffer (treated as 0: edgellm's buffers are reused). */
typedef int (*LLMResultCallback)(RKLLMResult* result, void* userdata, LLMCallState state);
/* Only for models without a tokenizer; edgellm never calls it. */
typedef int (*LLMTokenizerCallback)(void* userdata, const char* text, int32_t text_len, int32_t* tokens,
                                    int32_t n_tokens_max);
/* Only for models without an embedding table; edgellm never calls it. */
typedef int (*LLMGetEmbedCallback)(void* userdata, int32_t* tokens, uint64_t num_tokens, void* embed, uint64_t len);

typedef struct {
  LLMResultCallback result_callback;
  void* result_userdata; /* passed to result_callback unless rkllm_run gets a non-NULL userdata */
  LLMTokenizerCallback tokenizer_callback;
  void* tokenizer_userdata;
  LLMGetEmbedCallback embed_callback;
  void* embed_userdata;
} RKLLMCallback;

/* Defaults: top_k 40, top_p 0.9, temperature 0.8, repeat_penalty 1.1, penalties 0, mirostat 0
 * (tau 5.0, eta 0.1), n_keep -1, n_batch 1, enabled_cpus_num 4; everything else 0/NULL/false. */
RKLLMParam rkllm_createDefaultParam(void);

/* Loads param->model_path and allocates a KV cache of max_context_len positions. The callback struct
 * is copied. On failure *handle is NULL and -1 is returned. */
int rkllm_init(LLMHandle* handle, RKLLMParam* param, RKLLMCallback* callback);

/* Loads a LoRA adapter under lora_adapter_name; a run selects it with RKLLMInferParam.lora_params
 * and applies it with the adapter's `scale`. */
int rkllm_load_lora(LLMHandle handle, RKLLMLoraAdapter* lora_adapter);

/* Loads a prompt cache written by a run with save_prompt_cache = 1 (for the same model: a cache of
 * another model is rejected). Later inputs reuse its longest common prefix. */
int rkllm_load_prompt_cache(LLMHandle handle, const char* prompt_cache_path);
/* Drops the loaded prompt cache (clears the KV cache). */
int rkllm_release_prompt_cache(LLMHandle handle);

/* Waits for an asynchronous run (abort it first to hurry it), then frees everything. */
int rkllm_destroy(LLMHandle handle);

/* Runs one input synchronously; the callback gets NORMAL pieces, then FINISH or ERROR exactly once.
 * Returns 0 when the run finished (also after rkllm_abort), -1 on error. A non-NULL userdata is
 * passed to the callback instead of RKLLMCallback.result_userdata. */
int rkllm_run(LLMHandle handle, RKLLMInput* rkllm_input, RKLLMInferParam* rkllm_infer_params, void* userdata);
/* As rkllm_run, but returns at once; the callback runs on another thread. The input is copied, so
 * it need not outlive the call. -1 if a run is active or the arguments are invalid. */
int rkllm_run_async(LLMHandle handle, RKLLMInput* rkllm_input, RKLLMInferParam* rkllm_infer_params, void* userdata);

/* Any thread: stops the active run within one decoding step. */
int rkllm_abort(LLMHandle handle);
/* Any thread: 1 while a run is active, else 0. */
int rkllm_is_running(LLMHandle handle);

/* start_pos and end_pos NULL: forgets the conversation; keep_system_prompt = 1 keeps the system
 * prompt's KV entries. Else arrays of one range [start_pos[0], end_pos[0]) to drop; edgellm supports
 * only ranges reaching the end of the cache. */
int rkllm_clear_kv_cache(LLMHandle handle, int keep_system_prompt, int* start_pos, int* end_pos);
/* Writes the number of cached positions to cache_sizes[0] (one sequence). */
int rkllm_get_kv_cache_size(LLMHandle handle, int* cache_sizes);

/* Replaces the model's chat template for PROMPT input: system_prompt once at the start of the
 * context, then prompt_prefix + text + prompt_postfix per turn. All three empty: back to the model's
 * own template (edgellm extension). */
int rkllm_set_chat_template(LLMHandle handle, const char* system_prompt, const char* prompt_prefix,
                            const char* prompt_postfix);
/* Function calling: `tools` is a JSON array of OpenAI-style function schemas ([{"type": "function",
 * "function": {"name", "description", "parameters"}}]) shown to the model by its own chat template, with
 * `system_prompt` as the conversation's system message (NULL or "": none). The model writes its calls in the
 * text (Qwen: <tool_call>{"name": ..., "arguments": {...}}</tool_call>); the application runs them and
 * calls rkllm_run with role "tool" and prompt_input a JSON array of results (each a string, or an object
 * with "content" and optional "name" / "tool_call_id"; any other text is one result). The results join the
 * round that asked for them and the model answers. tool_response_str: NULL or "tool_response" (the
 * template decides how results are wrapped). `tools` NULL or "" removes the tools. */
int rkllm_set_function_tools(LLMHandle handle, const char* system_prompt, const char* tools,
                             const char* tool_response_str);
/* Not supported by edgellm: returns -1. */
int rkllm_set_cross_attn_params(LLMHandle handle, RKLLMCrossAttnParam* cross_attn_params);

/* edgellm extension: the message of the last failure on `handle`, or with a NULL handle the last
 * failure on this thread of a call without a valid handle (rkllm_init). Never NULL; a copy, valid
 * until the next rkllm_edgellm_last_error call on the same thread. Any thread. */
const char* rkllm_edgellm_last_error(LLMHandle handle);

/* edgellm extension behind the C++ rkllm_init overloads below: init with a 1.1.x-style callback
 * that returns nothing (the run always continues). */
typedef void (*LLMResultCallbackV11)(RKLLMResult* result, void* userdata, LLMCallState state);
int rkllm_edgellm_init_v11(LLMHandle* handle, RKLLMParam* param, LLMResultCallbackV11 callback);

#ifdef __cplusplus
} /* extern "C" */

#ifndef RKLLM_NO_LEGACY_INIT
/* 1.1.x - 1.2.x init with a bare result callback (see the note at the top). */
inline int rkllm_init(LLMHandle* handle, RKLLMParam* param, LLMResultCallback callback) {
  RKLLMCallback cb = {};
  cb.result_callback = callback;
  return rkllm_init(handle, param, &cb);
}
inline int rkllm_init(LLMHandle* handle, RKLLMParam* param, LLMResultCallbackV11 callback) {
  return rkllm_edgellm_init_v11(handle, param, callback);
}
#endif /* RKLLM_NO_LEGACY_INIT */
#endif /* __cplusplus */

#endif /* _RKLLM_H_ */
