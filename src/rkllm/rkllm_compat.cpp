// The RKLLM-compatible runtime API (include/rkllm.h) over edgellm's C API (include/edgellm/edgellm.h).
//
// One LLMHandle owns one model and one session (n_batch > 1: an engine instead, rkllm_batch.cpp). PROMPT input goes through the session's chat (the
// model's template) or, after rkllm_set_chat_template, through plain completion of the transcript
// the custom prefix/postfix build. keep_history maps onto the session's history: a run that must
// start a new conversation limits the history to its own round, so the KV cache of the shared prefix
// (the system prompt) is reused, as the vendor runtime does since 1.2.0.
//
// Callback protocol: edgellm's TEXT events become RKLLM_RUN_NORMAL; edgellm's FINISH/ERROR are held
// back and replaced, after the edgellm call returns, by one RKLLM FINISH (with perf) or ERROR, so
// post-run steps (saving a prompt cache) are done before the application hears the run has ended.
#include "rkllm.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "edgellm/edgellm.h"
#include "rkllm/rkllm_handle.h"

// The layouts the vendor's header has (rkllm-api.md §4); tests/rkllm_abi_test.c checks each member.
static_assert(sizeof(RKLLMExtendParam) == 120);
#if UINTPTR_MAX == 0xFFFFFFFFFFFFFFFFu
static_assert(sizeof(RKLLMParam) == 184 && sizeof(RKLLMInput) == 160 && sizeof(RKLLMInferParam) == 40 &&
              sizeof(RKLLMResult) == 72 && sizeof(RKLLMMultiModalInput) == 144 && sizeof(RKLLMCallback) == 48 &&
              sizeof(RKLLMCrossAttnParam) == 40);
#else
static_assert(sizeof(RKLLMParam) == 176 && sizeof(RKLLMInput) == 84 && sizeof(RKLLMInferParam) == 24 &&
              sizeof(RKLLMResult) == 52 && sizeof(RKLLMMultiModalInput) == 72 && sizeof(RKLLMCallback) == 24 &&
              sizeof(RKLLMCrossAttnParam) == 20);
#endif
static_assert(sizeof(RKLLMSamplingParam) == 36 && sizeof(RKLLMPerfStat) == 20);

namespace {

using namespace rkllm_compat;

// Checks one RKLLMInput (sequence `index` of the run) and copies it.
int read_input(Handle& h, const RKLLMInput& input, int index, bool keep_history, RunInput* out) {
  const std::string where = h.n_batch > 1 ? "rkllm_run: input " + std::to_string(index) + ": " : "rkllm_run: ";
  // C callers may store any int in these enum fields; read them as ints so that an unknown value is an
  // error message, not undefined behaviour.
  const int input_type = raw_enum(input.input_type);
  out->enable_thinking = input.enable_thinking;
  const bool tool_role = input.role && std::strcmp(input.role, "tool") == 0;
  if (input.role && input.role[0] != '\0' && std::strcmp(input.role, "user") != 0 && !tool_role) {
    return fail(h.last_error, where + "role '" + input.role + "' is not supported (\"user\", or \"tool\" for function results)");
  }
  if (tool_role) {
    if (raw_enum(input.input_type) != RKLLM_INPUT_PROMPT) {
      return fail(h.last_error, where + "role \"tool\" needs RKLLM_INPUT_PROMPT (the results as text)");
    }
    if (h.n_batch > 1) return fail(h.last_error, where + "role \"tool\" is not supported with n_batch > 1");
    if (h.custom_template) {
      return fail(h.last_error, where + "role \"tool\" needs the model's own chat template (not rkllm_set_chat_template)");
    }
    if (!h.has_tools) return fail(h.last_error, where + "role \"tool\" needs tools (rkllm_set_function_tools) first");
    out->tool_results = true;
  }
  switch (input_type) {
    case RKLLM_INPUT_PROMPT:
      if (!input.prompt_input) return fail(h.last_error, where + "prompt_input is NULL");
      out->prompt = input.prompt_input;
      break;
    case RKLLM_INPUT_TOKEN:
      if (!input.token_input.input_ids || input.token_input.n_tokens == 0) {
        return fail(h.last_error, where + "token_input has no tokens (input_ids NULL or n_tokens 0)");
      }
      out->tokens.assign(input.token_input.input_ids, input.token_input.input_ids + input.token_input.n_tokens);
      if (keep_history) {
        return fail(h.last_error, where + "RKLLM_INPUT_TOKEN with keep_history = 1 is not supported by edgellm; "
                                          "pass the whole token sequence with keep_history = 0 (its cached prefix "
                                          "is reused)");
      }
      break;
    case RKLLM_INPUT_EMBED:
      return fail(h.last_error, where + "RKLLM_INPUT_EMBED is not supported by edgellm (use prompt or token input)");
    case RKLLM_INPUT_MULTIMODAL:
      return fail(h.last_error, where + "RKLLM_INPUT_MULTIMODAL is not supported by edgellm (text-only models)");
    default:
      return fail(h.last_error, where + "unknown input_type " + std::to_string(input_type));
  }
  out->input_type = static_cast<RKLLMInputType>(input_type);
  return kOk;
}

// Checks the caller's structs and copies them into an owned request: one input, or an array of
// n_batch. Everything rejected here is a plain -1 without a callback: no run has started.
int make_request(Handle& h, const RKLLMInput* input, const RKLLMInferParam* infer, void* userdata, RunRequest* out) {
  if (!input) return fail(h.last_error, "rkllm_run: rkllm_input is NULL");
  if (!infer) return fail(h.last_error, "rkllm_run: rkllm_infer_params is NULL");
  RunRequest& r = *out;
  r.userdata = userdata;
  r.keep_history = infer->keep_history != 0;
  r.inputs.resize(static_cast<size_t>(h.n_batch));
  for (int i = 0; i < h.n_batch; ++i) {
    if (read_input(h, input[i], i, r.keep_history, &r.inputs[static_cast<size_t>(i)]) != kOk) return kFail;
  }
  const int mode = raw_enum(infer->mode);
  if (mode != RKLLM_INFER_GENERATE && mode != RKLLM_INFER_GET_LAST_HIDDEN_LAYER && mode != RKLLM_INFER_GET_LOGITS) {
    return fail(h.last_error, "rkllm_run: unknown mode " + std::to_string(mode));
  }
  r.mode = static_cast<RKLLMInferMode>(mode);
  if (h.n_batch > 1 && r.mode != RKLLM_INFER_GENERATE) {
    return fail(h.last_error, "rkllm_run: logits and hidden-state modes take one sequence (n_batch is " +
                                  std::to_string(h.n_batch) + ")");
  }
  if (infer->lora_params) {
    const char* name = infer->lora_params->lora_adapter_name;
    if (!name) return fail(h.last_error, "rkllm_run: lora_params->lora_adapter_name is NULL");
    if (name[0] != '\0' && h.lora_scales.count(name) == 0) {
      std::string loaded;
      for (const auto& [n, scale] : h.lora_scales) loaded += (loaded.empty() ? "" : ", ") + n;
      return fail(h.last_error, std::string("rkllm_run: no LoRA adapter named '") + name +
                                    "' (loaded: " + (loaded.empty() ? "none" : loaded) + ")");
    }
    r.lora_name = name;
  }
  if (infer->prompt_cache_params && infer->prompt_cache_params->save_prompt_cache) {
    if (h.n_batch > 1) {
      return fail(h.last_error, "rkllm_run: save_prompt_cache takes one sequence (n_batch is " +
                                    std::to_string(h.n_batch) + "); the engine shares common prefixes by itself");
    }
    r.save_prompt_cache = true;
    const char* path = infer->prompt_cache_params->prompt_cache_path;
    r.prompt_cache_path = path && path[0] ? path : kDefaultPromptCachePath;
  }
  if (infer->sampling_params) {
    const RKLLMSamplingParam& sp = *infer->sampling_params;
    if (check_mirostat(h.last_error, "rkllm_run", sp.mirostat, sp.mirostat_tau, sp.mirostat_eta) != kOk) return kFail;
    r.sampling = sp;
  }
  r.max_new_tokens = infer->max_new_tokens;
  return kOk;
}

}  // namespace

namespace rkllm_compat {

ErrorSlot& thread_error_slot() {
  thread_local ErrorSlot slot;
  return slot;
}

int deliver(Handle& h, RKLLMResult* result, void* userdata, LLMCallState state) {
  if (h.v11_callback) {
    h.v11_callback(result, userdata, state);
    return 0;
  }
  return h.callbacks.result_callback ? h.callbacks.result_callback(result, userdata, state) : 0;
}

struct TextRelay {
  Handle* handle;
  void* userdata;
  std::string reply;  // the NORMAL pieces so far
};

// edgellm TEXT -> RKLLM NORMAL. The application's 1 (pause) or any other value except 0 and 2 (free
// the output buffer, nothing to do here) stops the run; FINISH/ERROR are sent by run_request.
int32_t relay_text(edgellm_event event, const char* text, size_t text_len, void* user_data) {
  if (event != EDGELLM_EVENT_TEXT) return 0;
  auto* relay = static_cast<TextRelay*>(user_data);
  // RKLLMResult.text is a C string: a generated U+0000 would cut the piece short, so NUL bytes
  // are dropped and the rest of the piece is kept.
  std::string piece(text, text_len);
  piece.erase(std::remove(piece.begin(), piece.end(), '\0'), piece.end());
  relay->reply += piece;
  RKLLMResult result{};
  result.text = piece.c_str();
  result.token_id = -1;
  const int answer = deliver(*relay->handle, &result, relay->userdata, RKLLM_RUN_NORMAL);
  return answer == 0 || answer == 2 ? 0 : 1;
}

// The figures of the session's last edgellm call.
RKLLMPerfStat perf_of(const Handle& h) {
  edgellm_perf p{};
  RKLLMPerfStat out{};
  if (edgellm_session_get_perf(h.session, &p) != EDGELLM_OK) return out;
  out.prefill_time_ms = static_cast<float>(p.prefill_ms);
  out.prefill_tokens = static_cast<int>(p.prefill_tokens);
  out.generate_time_ms = static_cast<float>(p.decode_ms);
  out.generate_tokens = static_cast<int>(p.decode_tokens);
  out.memory_usage_mb = static_cast<float>(static_cast<double>(p.peak_rss_bytes) / (1024.0 * 1024.0));
  return out;
}

int report_error(Handle& h, void* userdata, const std::string& message) {
  fail(h.last_error, message);
  RKLLMResult result{};
  result.text = message.c_str();
  result.token_id = -1;
  deliver(h, &result, userdata, RKLLM_RUN_ERROR);
  return kFail;
}

edgellm_generate_params generate_params_of(const Handle& h, const RunRequest& r) {
  edgellm_generate_params gp = edgellm_generate_default_params(h.model);
  gp.sampling = h.sampling;
  if (r.sampling) {
    const RKLLMSamplingParam& s = *r.sampling;
    gp.sampling = sampling_from(h.sampling, s.top_k, s.top_p, s.temperature, s.repeat_penalty, s.frequency_penalty,
                                s.presence_penalty, s.mirostat, s.mirostat_tau, s.mirostat_eta);
  }
  const bool generating = r.mode == RKLLM_INFER_GENERATE;
  gp.max_new_tokens = !generating ? 0 : r.max_new_tokens > 0 ? r.max_new_tokens : h.max_new_tokens;
  gp.ignore_stop_tokens = h.ignore_eos ? 1 : 0;
  if (r.lora_name) {
    gp.lora_name = r.lora_name->c_str();
    const auto it = h.lora_scales.find(*r.lora_name);
    gp.lora_scale = it != h.lora_scales.end() ? it->second : 1.0f;
  } else {
    gp.lora_name = "";  // a run without lora_params uses no adapter
  }
  return gp;
}

}  // namespace rkllm_compat

namespace {

using namespace rkllm_compat;

// The text completion sees with a custom chat template: the system prompt once at the start of the
// context, then prefix + text + postfix per turn, appended to the transcript with keep_history.
std::string custom_template_text(const Handle& h, const RunRequest& r) {
  std::string text = r.keep_history && !h.transcript.empty() ? h.transcript : h.system_prompt;
  return text + h.prompt_prefix + r.inputs[0].prompt + h.prompt_postfix;
}

// Function results of a role "tool" input: a JSON array (each element a text, or an object whose "content"
// is the result, with optional "name" / "tool_call_id"), or anything else as one result text.
edgellm_status add_tool_results(Handle& h, const std::string& text) {
  const auto results = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (results.is_discarded() || !results.is_array()) {
    return edgellm_session_add_tool_result(h.session, nullptr, nullptr, text.c_str());
  }
  for (const auto& r : results) {
    std::string content, name, id;
    if (r.is_string()) {
      content = r.get<std::string>();
    } else if (r.is_object() && r.contains("content")) {
      content = r["content"].is_string() ? r["content"].get<std::string>() : r["content"].dump();
      if (r.contains("name") && r["name"].is_string()) name = r["name"].get<std::string>();
      if (r.contains("tool_call_id") && r["tool_call_id"].is_string()) id = r["tool_call_id"].get<std::string>();
    } else {
      content = r.dump();
    }
    const edgellm_status st = edgellm_session_add_tool_result(h.session, id.empty() ? nullptr : id.c_str(),
                                                              name.empty() ? nullptr : name.c_str(), content.c_str());
    if (st != EDGELLM_OK) return st;
  }
  return EDGELLM_OK;
}

// One run of one sequence, synchronously, on the calling thread: exactly one FINISH or ERROR.
int run_request(Handle& h, const RunRequest& r) {
  if (h.n_batch > 1) return run_batch_request(h, r);
  void* userdata = r.userdata ? r.userdata : h.callbacks.result_userdata;
  const RunInput& in = r.inputs[0];
  edgellm_generate_params gp = generate_params_of(h, r);
  const bool generating = r.mode == RKLLM_INFER_GENERATE;
  // Logits / hidden-state runs are one-off prefills: never part of the conversation.
  const bool keep_history = r.keep_history && generating;

  TextRelay relay{&h, userdata, {}};
  edgellm_status st = EDGELLM_OK;
  std::string custom_text;
  // Token input is two edgellm calls; the prefill's figures are kept for the FINISH perf.
  std::optional<RKLLMPerfStat> token_prefill;
  if (in.input_type == RKLLM_INPUT_TOKEN) {
    const auto start = std::chrono::steady_clock::now();
    st = edgellm_session_prefill(h.session, in.tokens.data(), in.tokens.size());
    if (st == EDGELLM_OK) {
      token_prefill = perf_of(h);
      token_prefill->prefill_time_ms =
          std::chrono::duration<float, std::milli>(std::chrono::steady_clock::now() - start).count();
    }
    if (st == EDGELLM_OK && generating) st = edgellm_session_generate(h.session, &gp, relay_text, &relay);
  } else if (h.custom_template) {
    custom_text = custom_template_text(h, r);
    gp.allow_special = 1;  // the prefix and postfix hold the template's special tokens
    st = edgellm_session_complete(h.session, custom_text.c_str(), &gp, relay_text, &relay);
  } else {
    if (edgellm_session_set_thinking(h.session, in.enable_thinking ? 1 : 0) != EDGELLM_OK) {
      return report_error(h, userdata, with_session_error(h, "rkllm_run"));
    }
    // A new conversation keeps only its own round: the old rounds leave the history, while the KV
    // cache of the common prefix (system prompt, template header) is reused.
    const bool fresh = !keep_history || h.discard_history;
    edgellm_session_set_history_limit(h.session, fresh ? 1 : 0, 0);
    if (in.tool_results) {
      // The results join the round that asked for them (its user message and the reply with the calls), and
      // the model answers.
      st = add_tool_results(h, in.prompt);
      if (st == EDGELLM_OK) st = edgellm_session_chat(h.session, nullptr, &gp, relay_text, &relay);
    } else {
      st = edgellm_session_chat(h.session, in.prompt.c_str(), &gp, relay_text, &relay);
    }
    edgellm_session_set_history_limit(h.session, 0, 0);
  }
  if (st != EDGELLM_OK && st != EDGELLM_ERROR_ABORTED) return report_error(h, userdata, with_session_error(h, "rkllm_run"));

  // The conversation as the next run sees it.
  if (in.input_type == RKLLM_INPUT_TOKEN) {
    h.discard_history = true;
    h.transcript.clear();
  } else if (h.custom_template) {
    // The reply as the NORMAL pieces carried it; the next turn's prefix follows it directly.
    h.transcript = keep_history ? custom_text + relay.reply : std::string();
  } else {
    h.discard_history = !keep_history;
  }

  RKLLMResult result{};
  result.text = "";
  result.token_id = -1;
  std::vector<float> logits_copy;
  if (!generating) {
    // One NORMAL result with the requested buffer, then FINISH.
    const float* data = nullptr;
    int32_t n = 0;
    const bool logits = r.mode == RKLLM_INFER_GET_LOGITS;
    const edgellm_status got = logits ? edgellm_session_get_logits(h.session, &data, &n)
                                      : edgellm_session_get_hidden(h.session, &data, &n);
    if (got != EDGELLM_OK || !data || n <= 0) {
      return report_error(h, userdata, "rkllm_run: no logits or hidden state after the prefill");
    }
    if (logits) {
      result.logits = RKLLMResultLogits{data, n, 1};
    } else {
      result.last_hidden_layer = RKLLMResultLastHiddenLayer{data, n, 1};
    }
    deliver(h, &result, userdata, RKLLM_RUN_NORMAL);
    result.logits = RKLLMResultLogits{};
    result.last_hidden_layer = RKLLMResultLastHiddenLayer{};
  }
  if (r.save_prompt_cache && edgellm_session_save_state(h.session, r.prompt_cache_path.c_str()) != EDGELLM_OK) {
    return report_error(h, userdata, with_session_error(h, "rkllm_run: saving the prompt cache"));
  }
  result.perf = perf_of(h);
  if (token_prefill) {
    result.perf.prefill_tokens = token_prefill->prefill_tokens;
    result.perf.prefill_time_ms = token_prefill->prefill_time_ms;
  }
  if (h.log_level >= 1) {
    std::fprintf(stderr, "I RKLLM: prefill %d tokens %.1f ms, generate %d tokens %.1f ms (%.1f tokens/s), peak %.1f MB\n",
                 result.perf.prefill_tokens, result.perf.prefill_time_ms, result.perf.generate_tokens,
                 result.perf.generate_time_ms,
                 result.perf.generate_time_ms > 0 ? 1000.0 * result.perf.generate_tokens / result.perf.generate_time_ms : 0.0,
                 result.perf.memory_usage_mb);
  }
  if (h.log_level >= 2) std::fprintf(stderr, "I RKLLM: kv cache %d positions\n", edgellm_session_n_cached(h.session));
  deliver(h, &result, userdata, RKLLM_RUN_FINISH);
  return kOk;
}

// Claims the handle for one run; false (with the message set) if one is active.
bool claim(Handle& h) {
  // Under batch_mu, so that rkllm_abort (n_batch > 1) sees `running` and the run's id change together.
  std::lock_guard<std::mutex> lock(h.batch_mu);
  bool expected = false;
  if (!h.running.compare_exchange_strong(expected, true)) {
    fail(h.last_error, "rkllm_run: a run is already active on this handle");
    return false;
  }
  ++h.run_id;
  return true;
}

int init_handle(LLMHandle* handle, RKLLMParam* param, const RKLLMCallback* callbacks, LLMResultCallbackV11 v11) {
  return guarded(thread_error_slot(), [&]() -> int {
    if (!handle) return fail(thread_error_slot(), "rkllm_init: handle is NULL");
    *handle = nullptr;
    if (!param) return fail(thread_error_slot(), "rkllm_init: param is NULL");
    if (!param->model_path || !param->model_path[0]) return fail(thread_error_slot(), "rkllm_init: model_path is not set");
    if (param->extend_param.n_batch > 64) {
      return fail(thread_error_slot(), "rkllm_init: n_batch " + std::to_string(param->extend_param.n_batch) +
                                      " is more than edgellm's 64 sequences per handle");
    }
    if (param->extend_param.use_cross_attn != 0) {
      return fail(thread_error_slot(), "rkllm_init: use_cross_attn is not supported by edgellm");
    }
    if (check_mirostat(thread_error_slot(), "rkllm_init", param->mirostat, param->mirostat_tau, param->mirostat_eta) != kOk) {
      return kFail;
    }
    if (param->max_context_len < 0) {
      return fail(thread_error_slot(), "rkllm_init: max_context_len " + std::to_string(param->max_context_len) + " is negative");
    }
    if (param->extend_param.enabled_cpus_num < 0) {
      return fail(thread_error_slot(), "rkllm_init: enabled_cpus_num " +
                                      std::to_string(param->extend_param.enabled_cpus_num) + " is negative");
    }

    auto h = std::make_unique<Handle>();
    if (callbacks) h->callbacks = *callbacks;
    h->v11_callback = v11;
    if (const char* level = std::getenv("RKLLM_LOG_LEVEL")) h->log_level = std::atoi(level);

    edgellm_model_params mp = edgellm_model_default_params();
    mp.n_threads = param->extend_param.enabled_cpus_num;
    mp.cpu_mask = param->extend_param.enabled_cpus_mask;
    if (edgellm_model_load(param->model_path, &mp, &h->model) != EDGELLM_OK) {
      return fail(thread_error_slot(), std::string("rkllm_init: ") + edgellm_last_error());
    }
    h->n_batch = std::max<int>(1, param->extend_param.n_batch);
    if (h->n_batch > 1) {
      // n_batch sequences through the serving engine: one KV pool, every step one pass over the weights.
      if (init_batch(*h, *param) != kOk) {
        edgellm_model_free(h->model);
        return kFail;
      }
    } else {
      edgellm_session_params sp = edgellm_session_default_params();
      sp.n_ctx = param->max_context_len;
      if (edgellm_session_create(h->model, &sp, &h->session) != EDGELLM_OK) {
        std::string message = std::string("rkllm_init: ") + edgellm_model_last_error(h->model);
        edgellm_model_free(h->model);
        return fail(thread_error_slot(), std::move(message));
      }
    }
    h->sampling = sampling_from(edgellm_sampling_default_params(h->model), param->top_k, param->top_p,
                                param->temperature, param->repeat_penalty, param->frequency_penalty,
                                param->presence_penalty, param->mirostat, param->mirostat_tau, param->mirostat_eta);
    h->max_new_tokens = param->max_new_tokens > 0 ? param->max_new_tokens : kDefaultMaxNewTokens;
    h->ignore_eos = param->ignore_eos_token;
    if (h->log_level >= 1) {
      edgellm_model_info info{};
      edgellm_model_get_info(h->model, &info);
      std::fprintf(stderr, "I RKLLM: edgellm %s, model %s (%s, chat template %s), max_context_len %d, n_batch %d\n",
                   edgellm_version(), param->model_path, info.architecture, info.chat_template,
                   param->max_context_len, h->n_batch);
    }
    *handle = h.release();
    return kOk;
  });
}

}  // namespace

extern "C" {

RKLLMParam rkllm_createDefaultParam(void) {
  RKLLMParam p{};
  p.top_k = 40;
  p.n_keep = -1;
  p.top_p = 0.9f;
  p.temperature = 0.8f;
  p.repeat_penalty = 1.1f;
  p.frequency_penalty = 0.0f;
  p.presence_penalty = 0.0f;
  p.mirostat = 0;
  p.mirostat_tau = 5.0f;
  p.mirostat_eta = 0.1f;
  p.extend_param.n_batch = 1;
  p.extend_param.enabled_cpus_num = 4;
  return p;
}

int rkllm_init(LLMHandle* handle, RKLLMParam* param, RKLLMCallback* callback) {
  return init_handle(handle, param, callback, nullptr);
}

int rkllm_edgellm_init_v11(LLMHandle* handle, RKLLMParam* param, LLMResultCallbackV11 callback) {
  return init_handle(handle, param, nullptr, callback);
}

int rkllm_load_lora(LLMHandle handle, RKLLMLoraAdapter* lora_adapter) {
  if (!handle) return fail(thread_error_slot(), "rkllm_load_lora: handle is NULL");
  Handle& h = *as_handle(handle);
  return guarded(h.last_error, [&]() -> int {
    if (!lora_adapter || !lora_adapter->lora_adapter_path || !lora_adapter->lora_adapter_name ||
        !lora_adapter->lora_adapter_name[0]) {
      return fail(h.last_error, "rkllm_load_lora: lora_adapter, its path or its name is NULL or empty");
    }
    if (edgellm_model_load_lora(h.model, lora_adapter->lora_adapter_path, lora_adapter->lora_adapter_name) !=
        EDGELLM_OK) {
      return fail(h.last_error, std::string("rkllm_load_lora: ") + edgellm_model_last_error(h.model));
    }
    h.lora_scales[lora_adapter->lora_adapter_name] = lora_adapter->scale;
    return kOk;
  });
}

int rkllm_load_prompt_cache(LLMHandle handle, const char* prompt_cache_path) {
  if (!handle) return fail(thread_error_slot(), "rkllm_load_prompt_cache: handle is NULL");
  Handle& h = *as_handle(handle);
  return guarded(h.last_error, [&]() -> int {
    if (!prompt_cache_path) return fail(h.last_error, "rkllm_load_prompt_cache: prompt_cache_path is NULL");
    if (h.running.load()) return fail(h.last_error, "rkllm_load_prompt_cache: a run is active on this handle");
    if (h.n_batch > 1) {
      return fail(h.last_error, "rkllm_load_prompt_cache: prompt caches take one sequence (n_batch is " +
                                    std::to_string(h.n_batch) + "); the engine shares common prefixes by itself");
    }
    if (edgellm_session_load_state(h.session, prompt_cache_path) != EDGELLM_OK) {
      return fail(h.last_error, with_session_error(h, "rkllm_load_prompt_cache"));
    }
    return kOk;
  });
}

int rkllm_release_prompt_cache(LLMHandle handle) {
  if (!handle) return fail(thread_error_slot(), "rkllm_release_prompt_cache: handle is NULL");
  Handle& h = *as_handle(handle);
  if (h.running.load()) return fail(h.last_error, "rkllm_release_prompt_cache: a run is active on this handle");
  if (h.n_batch > 1) return kOk;  // none can have been loaded
  if (edgellm_session_trim(h.session, 0) != EDGELLM_OK) {
    return fail(h.last_error, with_session_error(h, "rkllm_release_prompt_cache"));
  }
  return kOk;
}

int rkllm_destroy(LLMHandle handle) {
  if (!handle) return fail(thread_error_slot(), "rkllm_destroy: handle is NULL");
  Handle* h = as_handle(handle);
  std::thread worker;
  {
    std::lock_guard<std::mutex> lock(h->mu);
    worker = std::move(h->worker);
  }
  if (worker.joinable()) worker.join();
  edgellm_engine_free(h->engine);
  edgellm_session_free(h->session);
  edgellm_model_free(h->model);
  delete h;
  return kOk;
}

int rkllm_run(LLMHandle handle, RKLLMInput* rkllm_input, RKLLMInferParam* rkllm_infer_params, void* userdata) {
  if (!handle) return fail(thread_error_slot(), "rkllm_run: handle is NULL");
  Handle& h = *as_handle(handle);
  return guarded(h.last_error, [&]() -> int {
    RunRequest request;
    if (make_request(h, rkllm_input, rkllm_infer_params, userdata, &request) != kOk) return kFail;
    if (!claim(h)) return kFail;
    struct Release {
      std::atomic<bool>& running;
      ~Release() { running.store(false); }
    } release{h.running};
    return run_request(h, request);
  });
}

int rkllm_run_async(LLMHandle handle, RKLLMInput* rkllm_input, RKLLMInferParam* rkllm_infer_params, void* userdata) {
  if (!handle) return fail(thread_error_slot(), "rkllm_run_async: handle is NULL");
  Handle& h = *as_handle(handle);
  return guarded(h.last_error, [&]() -> int {
    RunRequest request;
    if (make_request(h, rkllm_input, rkllm_infer_params, userdata, &request) != kOk) return kFail;
    std::lock_guard<std::mutex> lock(h.mu);
    if (!claim(h)) return kFail;
    if (h.worker.joinable()) h.worker.join();  // the previous run has ended: `running` was false
    h.worker = std::thread([&h, request = std::move(request)]() {
      guarded(h.last_error, [&]() -> int { return run_request(h, request); });
      h.running.store(false);
    });
    return kOk;
  });
}

int rkllm_abort(LLMHandle handle) {
  if (!handle) return fail(thread_error_slot(), "rkllm_abort: handle is NULL");
  Handle& h = *as_handle(handle);
  if (h.n_batch > 1) {
    abort_batch(h);
  } else if (h.running.load()) {
    edgellm_session_abort(h.session);
  }
  return kOk;
}

int rkllm_is_running(LLMHandle handle) { return handle && as_handle(handle)->running.load() ? 1 : 0; }

int rkllm_clear_kv_cache(LLMHandle handle, int keep_system_prompt, int* start_pos, int* end_pos) {
  if (!handle) return fail(thread_error_slot(), "rkllm_clear_kv_cache: handle is NULL");
  Handle& h = *as_handle(handle);
  if (h.running.load()) return fail(h.last_error, "rkllm_clear_kv_cache: a run is active on this handle");
  if ((start_pos == nullptr) != (end_pos == nullptr)) {
    return fail(h.last_error, "rkllm_clear_kv_cache: start_pos and end_pos must both be NULL or both be set");
  }
  if (h.n_batch > 1) return clear_batch(h, keep_system_prompt, start_pos, end_pos);
  if (start_pos) {
    const int n_cached = edgellm_session_n_cached(h.session);
    const int start = start_pos[0], end = end_pos[0];
    if (start >= end) return kOk;  // the vendor skips ranges with start >= end
    if (start < 0 || end < n_cached) {
      return fail(h.last_error, "rkllm_clear_kv_cache: range [" + std::to_string(start) + ", " + std::to_string(end) +
                                    ") is not supported: edgellm drops only ranges reaching the end of the cache (" +
                                    std::to_string(n_cached) + " positions)");
    }
    edgellm_session_trim(h.session, start);
    return kOk;
  }
  h.transcript.clear();
  h.discard_history = true;
  // Keeping the system prompt needs no work: the next run reuses the cached prefix it shares with
  // the old conversation, which is the system prompt (and the template's fixed header).
  if (!keep_system_prompt && edgellm_session_reset(h.session) != EDGELLM_OK) {
    return fail(h.last_error, with_session_error(h, "rkllm_clear_kv_cache"));
  }
  return kOk;
}

int rkllm_get_kv_cache_size(LLMHandle handle, int* cache_sizes) {
  if (!handle) return fail(thread_error_slot(), "rkllm_get_kv_cache_size: handle is NULL");
  Handle& h = *as_handle(handle);
  if (!cache_sizes) return fail(h.last_error, "rkllm_get_kv_cache_size: cache_sizes is NULL");
  if (h.n_batch > 1) {
    for (int i = 0; i < h.n_batch; ++i) cache_sizes[i] = h.slots[static_cast<size_t>(i)].kv_tokens;
    return kOk;
  }
  cache_sizes[0] = edgellm_session_n_cached(h.session);
  return kOk;
}

int rkllm_set_chat_template(LLMHandle handle, const char* system_prompt, const char* prompt_prefix,
                            const char* prompt_postfix) {
  if (!handle) return fail(thread_error_slot(), "rkllm_set_chat_template: handle is NULL");
  Handle& h = *as_handle(handle);
  return guarded(h.last_error, [&]() -> int {
    if (!system_prompt || !prompt_prefix || !prompt_postfix) {
      return fail(h.last_error, "rkllm_set_chat_template: system_prompt, prompt_prefix or prompt_postfix is NULL");
    }
    if (h.running.load()) return fail(h.last_error, "rkllm_set_chat_template: a run is active on this handle");
    h.system_prompt = system_prompt;
    h.prompt_prefix = prompt_prefix;
    h.prompt_postfix = prompt_postfix;
    h.custom_template = !(h.system_prompt.empty() && h.prompt_prefix.empty() && h.prompt_postfix.empty());
    h.transcript.clear();
    h.discard_history = true;
    for (BatchSlot& slot : h.slots) slot = BatchSlot{};
    return kOk;
  });
}

int rkllm_set_function_tools(LLMHandle handle, const char* system_prompt, const char* tools,
                             const char* tool_response_str) {
  if (!handle) return fail(thread_error_slot(), "rkllm_set_function_tools: handle is NULL");
  Handle& h = *as_handle(handle);
  return guarded(h.last_error, [&]() -> int {
    if (h.running.load()) return fail(h.last_error, "rkllm_set_function_tools: a run is active on this handle");
    const bool clearing = tools == nullptr || tools[0] == '\0';
    if (!clearing && h.n_batch > 1) {
      return fail(h.last_error, "rkllm_set_function_tools: function calling is not supported with n_batch > 1");
    }
    if (!clearing && h.custom_template) {
      return fail(h.last_error, "rkllm_set_function_tools: tools are shown by the model's own chat template, which "
                                "rkllm_set_chat_template replaced");
    }
    // The model's template wraps results in its own tag (Qwen: <tool_response>); another tag cannot be honoured.
    if (tool_response_str && tool_response_str[0] != '\0' && std::strcmp(tool_response_str, "tool_response") != 0) {
      return fail(h.last_error, std::string("rkllm_set_function_tools: tool_response_str '") + tool_response_str +
                                    "': the model's chat template decides how results are wrapped (use \"tool_response\" or NULL)");
    }
    if (edgellm_session_set_tools(h.session, clearing ? nullptr : tools, /*read_calls=*/0) != EDGELLM_OK) {
      return fail(h.last_error, with_session_error(h, "rkllm_set_function_tools"));
    }
    if (edgellm_session_set_system_prompt(h.session, system_prompt ? system_prompt : "") != EDGELLM_OK) {
      return fail(h.last_error, with_session_error(h, "rkllm_set_function_tools"));
    }
    h.has_tools = !clearing;
    return kOk;
  });
}

int rkllm_set_cross_attn_params(LLMHandle handle, RKLLMCrossAttnParam* cross_attn_params) {
  ErrorSlot& slot = handle ? as_handle(handle)->last_error : thread_error_slot();
  return fail(slot, "rkllm_set_cross_attn_params: cross-attention decoders are not supported by edgellm");
}

const char* rkllm_edgellm_last_error(LLMHandle handle) {
  // What this thread last got from here (its pointer stays valid until then).
  thread_local std::string returned;
  returned = handle ? as_handle(handle)->last_error.get() : thread_error_slot().get();
  return returned.c_str();
}

}  // extern "C"
