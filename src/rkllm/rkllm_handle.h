// Internal to src/rkllm/: the handle behind an LLMHandle and what its translation units share
// (rkllm_compat.cpp: the entry points and single-sequence runs; rkllm_batch.cpp: n_batch > 1 runs).
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "edgellm/edgellm.h"
#include "rkllm.h"

namespace rkllm_compat {

inline constexpr int kOk = 0;
inline constexpr int kFail = -1;
inline constexpr int32_t kDefaultMaxNewTokens = 256;  // when RKLLMParam.max_new_tokens <= 0
inline constexpr const char* kDefaultPromptCachePath = "./prompt_cache.bin";

// The message of a handle's last failure. Written by the application's thread and by an async run's
// thread, so it sits behind a mutex and is read as a copy.
class ErrorSlot {
 public:
  void set(std::string message) {
    std::lock_guard<std::mutex> lock(mu_);
    message_ = std::move(message);
  }
  std::string get() const {
    std::lock_guard<std::mutex> lock(mu_);
    return message_;
  }

 private:
  mutable std::mutex mu_;
  std::string message_;  // guarded by mu_
};

// Errors of calls without a usable handle (rkllm_init), per thread like edgellm_last_error.
ErrorSlot& thread_error_slot();

// A run's input and parameters, owned: rkllm_run_async copies the caller's structs into this, since
// the caller may reuse them as soon as the call returns.
struct RunInput {
  RKLLMInputType input_type = RKLLM_INPUT_PROMPT;
  bool enable_thinking = false;
  std::string prompt;
  std::vector<int32_t> tokens;
  bool tool_results = false;  // role "tool": `prompt` holds function results (a JSON array, or one text)
};

struct RunRequest {
  std::vector<RunInput> inputs;  // one per sequence: n_batch of them
  RKLLMInferMode mode = RKLLM_INFER_GENERATE;
  bool keep_history = false;
  std::optional<std::string> lora_name;
  bool save_prompt_cache = false;
  std::string prompt_cache_path;
  std::optional<RKLLMSamplingParam> sampling;
  int32_t max_new_tokens = 0;
  void* userdata = nullptr;
};

// One sequence of an n_batch > 1 handle: the conversation its next keep_history run continues.
struct BatchSlot {
  std::vector<std::pair<std::string, std::string>> history;  // (role, content), model template
  std::string transcript;  // custom template
  int kv_tokens = 0;       // prompt + reply tokens of its last run (rkllm_get_kv_cache_size)
};

struct Handle {
  edgellm_model* model = nullptr;
  edgellm_session* session = nullptr;
  RKLLMCallback callbacks{};
  LLMResultCallbackV11 v11_callback = nullptr;  // set instead of callbacks.result_callback by the 1.1 init
  edgellm_sampling_params sampling{};           // from RKLLMParam
  int32_t max_new_tokens = kDefaultMaxNewTokens;
  bool ignore_eos = false;
  int log_level = 0;                            // RKLLM_LOG_LEVEL

  // The next chat run starts a new conversation (keeps only its own round): set after keep_history=0
  // runs, token-input runs and rkllm_clear_kv_cache; cleared by a successful keep_history=1 run.
  bool discard_history = false;
  // rkllm_set_chat_template: used instead of the model's template when set.
  bool custom_template = false;
  std::string system_prompt, prompt_prefix, prompt_postfix;
  bool has_tools = false;  // rkllm_set_function_tools gave tools (shown by the model's own template)
  std::string transcript;  // custom template, keep_history=1: everything said so far
  std::map<std::string, float> lora_scales;  // adapter name -> scale given to rkllm_load_lora

  // n_batch > 1 (rkllm_batch.cpp): the engine that runs the sequences together, and per sequence its
  // conversation.
  int n_batch = 1;
  edgellm_engine* engine = nullptr;
  std::vector<BatchSlot> slots;
  std::mutex batch_mu;                     // guards the two below (rkllm_abort comes from other threads)
  std::vector<uint64_t> batch_requests;    // guarded by batch_mu: the running batch's engine requests
  uint64_t run_id = 0;                     // guarded by batch_mu: counts the runs (claim())
  uint64_t aborted_run = 0;                // guarded by batch_mu: the run rkllm_abort stopped

  ErrorSlot last_error;
  std::mutex mu;                    // guards worker and claiming `running`
  std::atomic<bool> running{false};
  std::thread worker;               // the rkllm_run_async run, if any
};

inline Handle* as_handle(LLMHandle h) { return static_cast<Handle*>(h); }

// Logs like the vendor runtime ("E RKLLM: ...") and keeps the message for rkllm_edgellm_last_error.
inline int fail(ErrorSlot& slot, std::string message) {
  std::fprintf(stderr, "E RKLLM: %s\n", message.c_str());
  slot.set(std::move(message));
  return kFail;
}

// Runs `body`, turning any exception into a failure: nothing throws across the C API.
template <class Fn>
inline int guarded(ErrorSlot& slot, Fn&& body) {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return fail(slot, "out of memory");
  } catch (const std::exception& e) {
    return fail(slot, std::string("internal error: ") + e.what());
  } catch (...) {
    return fail(slot, "internal error");
  }
}

inline std::string with_session_error(const Handle& h, const char* what) {
  return std::string(what) + ": " + edgellm_session_last_error(h.session);
}

// Mirostat settings are checked before a run starts (the other sampling values are checked by the run).
inline int check_mirostat(ErrorSlot& slot, const char* where, int32_t mirostat, float tau, float eta) {
  if (mirostat < 0 || mirostat > 2) {
    return fail(slot, std::string(where) + ": mirostat " + std::to_string(mirostat) + " must be 0 (off), 1 or 2");
  }
  if (mirostat != 0 && !(std::isfinite(tau) && tau > 0.0f && std::isfinite(eta) && eta >= 0.0f)) {
    return fail(slot, std::string(where) + ": mirostat_tau must be > 0 and mirostat_eta >= 0 (got " +
                          std::to_string(tau) + ", " + std::to_string(eta) + ")");
  }
  return kOk;
}

inline edgellm_sampling_params sampling_from(const edgellm_sampling_params& base, int32_t top_k, float top_p,
                                      float temperature, float repeat_penalty, float frequency_penalty,
                                      float presence_penalty, int32_t mirostat, float mirostat_tau,
                                      float mirostat_eta) {
  edgellm_sampling_params s = base;
  s.mirostat = mirostat;
  s.mirostat_tau = mirostat_tau;
  s.mirostat_eta = mirostat_eta;
  s.top_k = top_k;
  s.top_p = top_p;
  s.temperature = temperature;
  s.repetition_penalty = repeat_penalty;
  s.frequency_penalty = frequency_penalty;
  s.presence_penalty = presence_penalty;
  return s;
}

template <typename Enum>
inline int raw_enum(const Enum& field) {
  static_assert(sizeof(Enum) == sizeof(int));
  int value = 0;
  std::memcpy(&value, &field, sizeof value);
  return value;
}

// Delivers one result (or, with n_batch > 1, an array of n_batch) to the application's callback (1.3 or
// 1.1 style). Returns the callback's answer.
int deliver(Handle& h, RKLLMResult* result, void* userdata, LLMCallState state);
// The one ERROR of a run: logged, kept, and sent to the callback.
int report_error(Handle& h, void* userdata, const std::string& message);
// The sampling and generation settings of a run (the handle's, overridden by the run's).
edgellm_generate_params generate_params_of(const Handle& h, const RunRequest& r);

// rkllm_batch.cpp: n_batch > 1.
int init_batch(Handle& h, const RKLLMParam& param);
int run_batch_request(Handle& h, const RunRequest& r);
void abort_batch(Handle& h);
int clear_batch(Handle& h, int keep_system_prompt, const int* start_pos, const int* end_pos);

}  // namespace rkllm_compat
