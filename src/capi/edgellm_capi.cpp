// The C API (include/edgellm/edgellm.h) over the C++ runtime. Every entry point catches everything:
// no exception crosses the boundary; failures become a status plus a per-handle message.
#include "edgellm/edgellm.h"

#include <cstring>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "capi/capi_internal.h"
#include "runtime/loaded_model.h"
#include "runtime/session.h"

struct edgellm_session {
  edgellm_model* owner = nullptr;
  std::unique_ptr<edgellm::Session> session;
  std::string last_error;
  edgellm::GenerationStats last_stats;
  std::thread worker;             // asynchronous run, if any
  edgellm_status async_status = EDGELLM_OK;
  std::mutex async_mu;            // guards worker start/join
};

namespace edgellm::capi {
std::string& thread_error() {
  thread_local std::string message;
  return message;
}
}  // namespace edgellm::capi

namespace {

using namespace edgellm::capi;

enum class RunKind { kChat, kRespond, kComplete, kGenerate };

// One synchronous run with the callback protocol: TEXT pieces, then FINISH or ERROR exactly once.
edgellm_status run(edgellm_session* s, RunKind kind, const std::string& input, const edgellm_generate_params* params,
                   edgellm_callback callback, void* user_data) {
  return guarded(s->last_error, [&]() -> edgellm_status {
    auto options = to_cpp(params);
    auto report_error = [&](const edgellm::Error& e) {
      if (callback) callback(EDGELLM_EVENT_ERROR, e.message.c_str(), e.message.size(), user_data);
      return fail(s->last_error, e);
    };
    if (!options.ok()) return report_error(options.error());
    edgellm::TextCallback on_text = [&](std::string_view text) {
      return callback ? callback(EDGELLM_EVENT_TEXT, text.data(), text.size(), user_data) == 0 : true;
    };
    edgellm::ToolCallCallback on_call = [&](const edgellm::ToolCall& call) {
      if (!callback) return true;
      const std::string j =
          nlohmann::ordered_json{{"id", call.id}, {"name", call.name}, {"arguments", call.arguments}}.dump();
      return callback(EDGELLM_EVENT_TOOL_CALL, j.c_str(), j.size(), user_data) == 0;
    };
    edgellm::Expected<edgellm::GenerationStats> stats = edgellm::make_error(ErrorCode::kInternal, "");
    switch (kind) {
      case RunKind::kChat: stats = s->session->chat(input, *options, on_text, on_call); break;
      case RunKind::kRespond: stats = s->session->respond(*options, on_text, on_call); break;
      case RunKind::kComplete:
        stats = s->session->complete(input, params->allow_special != 0, *options, on_text);
        break;
      case RunKind::kGenerate: stats = s->session->generate(*options, on_text); break;
    }
    if (!stats.ok()) return report_error(stats.error());
    s->last_stats = std::move(*stats);
    if (s->last_stats.finish_reason == "aborted") {
      const edgellm::Error aborted{ErrorCode::kAborted, "generation aborted"};
      return report_error(aborted);
    }
    if (callback) callback(EDGELLM_EVENT_FINISH, s->last_stats.text.c_str(), s->last_stats.text.size(), user_data);
    return EDGELLM_OK;
  });
}

edgellm_status start_async(edgellm_session* s, RunKind kind, const char* input, const edgellm_generate_params* params,
                           edgellm_callback callback, void* user_data) {
  if (!s) return EDGELLM_ERROR_INVALID_ARGUMENT;
  if ((!input && kind != RunKind::kRespond) || !params) {
    return fail(s->last_error, EDGELLM_ERROR_INVALID_ARGUMENT, "input or params is NULL");
  }
  std::lock_guard<std::mutex> lock(s->async_mu);
  if (s->session->is_running() || (s->worker.joinable() && s->async_status == EDGELLM_ERROR_BUSY)) {
    return fail(s->last_error, EDGELLM_ERROR_BUSY, "the session is already running a request");
  }
  if (s->worker.joinable()) s->worker.join();
  s->async_status = EDGELLM_ERROR_BUSY;  // "running" until the worker stores its result
  std::string text(input ? input : "");
  std::vector<std::string> stops;
  for (int32_t i = 0; i < params->n_stop_strings && params->stop_strings; ++i) {
    stops.emplace_back(params->stop_strings[i] ? params->stop_strings[i] : "");
  }
  edgellm_generate_params copy = *params;
  // The caller's strings may be gone by the time the worker reads them: keep copies.
  std::optional<std::string> lora = params->lora_name ? std::optional<std::string>(params->lora_name) : std::nullopt;
  std::optional<std::string> grammar = params->grammar ? std::optional<std::string>(params->grammar) : std::nullopt;
  std::optional<std::string> schema = params->json_schema ? std::optional<std::string>(params->json_schema) : std::nullopt;
  std::optional<std::string> tool_choice =
      params->tool_choice ? std::optional<std::string>(params->tool_choice) : std::nullopt;
  s->worker = std::thread([s, kind, text = std::move(text), copy, stops = std::move(stops), lora = std::move(lora),
                           grammar = std::move(grammar), schema = std::move(schema), tool_choice = std::move(tool_choice), callback,
                           user_data]() mutable {
    copy.tool_choice = tool_choice ? tool_choice->c_str() : nullptr;
    copy.lora_name = lora ? lora->c_str() : nullptr;
    copy.grammar = grammar ? grammar->c_str() : nullptr;
    copy.json_schema = schema ? schema->c_str() : nullptr;
    std::vector<const char*> stop_ptrs;
    for (const auto& st : stops) stop_ptrs.push_back(st.c_str());
    copy.stop_strings = stop_ptrs.empty() ? nullptr : stop_ptrs.data();
    const edgellm_status st = run(s, kind, text, &copy, callback, user_data);
    std::lock_guard<std::mutex> lock(s->async_mu);
    s->async_status = st;
  });
  return EDGELLM_OK;
}

}  // namespace

extern "C" {

const char* edgellm_status_name(edgellm_status status) {
  switch (status) {
    case EDGELLM_OK: return "ok";
    case EDGELLM_ERROR_INVALID_ARGUMENT: return "invalid argument";
    case EDGELLM_ERROR_IO: return "i/o error";
    case EDGELLM_ERROR_FORMAT: return "format error";
    case EDGELLM_ERROR_UNSUPPORTED: return "unsupported";
    case EDGELLM_ERROR_NOT_FOUND: return "not found";
    case EDGELLM_ERROR_OUT_OF_MEMORY: return "out of memory";
    case EDGELLM_ERROR_CONTEXT_FULL: return "context full";
    case EDGELLM_ERROR_ABORTED: return "aborted";
    case EDGELLM_ERROR_BUSY: return "busy";
    case EDGELLM_ERROR_INTERNAL: return "internal error";
  }
  return "unknown status";
}

const char* edgellm_last_error(void) { return thread_error().c_str(); }
const char* edgellm_version(void) { return EDGELLM_VERSION; }

edgellm_model_params edgellm_model_default_params(void) {
  edgellm_model_params p{};
  p.n_threads = 0;
  p.prefetch = 0;
  p.check_memory = 1;
  p.chat_template = nullptr;
  p.pin_threads = 0;
  p.cpu_mask = 0;
  p.require_signature = nullptr;
  p.key_file = nullptr;
  return p;
}

edgellm_status edgellm_model_load(const char* path, const edgellm_model_params* params, edgellm_model** out_model) {
  return guarded(thread_error(), [&]() -> edgellm_status {
    if (out_model) *out_model = nullptr;
    if (!path || !out_model) return fail(thread_error(), EDGELLM_ERROR_INVALID_ARGUMENT, "path or out_model is NULL");
    const edgellm_model_params p = params ? *params : edgellm_model_default_params();
    if (p.n_threads < 0 || p.n_threads > 1024) {
      return fail(thread_error(), EDGELLM_ERROR_INVALID_ARGUMENT, "n_threads " + std::to_string(p.n_threads) + " is out of range");
    }
    edgellm::LoadOptions options;
    options.n_threads = p.n_threads;
    options.pin_threads = p.pin_threads != 0;
    for (int cpu = 0; cpu < 64; ++cpu) {
      if (p.cpu_mask >> cpu & 1u) options.cpus.push_back(cpu);
    }
    options.prefetch = p.prefetch != 0;
    options.check_memory = p.check_memory != 0;
    if (p.chat_template) options.chat_template_name = p.chat_template;
    if (p.require_signature) options.require_signature = p.require_signature;
    if (p.key_file) options.key_file = p.key_file;
    auto loaded = edgellm::LoadedModel::load(path, options);
    if (!loaded.ok()) return fail(thread_error(), loaded.error());
    auto* m = new edgellm_model;
    m->model = std::move(*loaded);
    *out_model = m;
    return EDGELLM_OK;
  });
}

void edgellm_model_free(edgellm_model* model) { delete model; }

const char* edgellm_model_last_error(const edgellm_model* model) { return model ? model->last_error.c_str() : ""; }

edgellm_status edgellm_model_get_info(const edgellm_model* model, edgellm_model_info* info) {
  if (!model || !info) return EDGELLM_ERROR_INVALID_ARGUMENT;
  const auto& c = model->model->config();
  info->architecture = edgellm::arch_name(c.arch);
  info->chat_template = model->model->chat_template().name().c_str();
  info->has_chat_template = model->model->chat_template().origin() != edgellm::ChatTemplateOrigin::kFallback;
  info->n_vocab = static_cast<int32_t>(c.n_vocab);
  info->n_embd = static_cast<int32_t>(c.n_embd);
  info->n_layer = static_cast<int32_t>(c.n_layer);
  info->n_head = static_cast<int32_t>(c.n_head);
  info->n_head_kv = static_cast<int32_t>(c.n_head_kv);
  info->n_ctx_train = static_cast<int32_t>(c.n_ctx_train);
  info->weight_bytes = model->model->model().weight_bytes();
  return EDGELLM_OK;
}

edgellm_status edgellm_model_load_lora(edgellm_model* model, const char* path, const char* name) {
  if (!model) return fail(thread_error(), EDGELLM_ERROR_INVALID_ARGUMENT, "model is NULL");
  return guarded(model->last_error, [&]() -> edgellm_status {
    if (!path || !name) return fail(model->last_error, EDGELLM_ERROR_INVALID_ARGUMENT, "path or name is NULL");
    const auto st = model->model->load_lora(name, path);
    return st.ok() ? EDGELLM_OK : fail(model->last_error, st.error());
  });
}

edgellm_status edgellm_session_set_lora(edgellm_session* session, const char* name, float scale) {
  if (!session) return EDGELLM_ERROR_INVALID_ARGUMENT;
  return guarded(session->last_error, [&]() -> edgellm_status {
    if (session->session->is_running()) return fail(session->last_error, EDGELLM_ERROR_BUSY, "the session is busy");
    const auto st = session->session->set_lora(name ? name : "", scale);
    return st.ok() ? EDGELLM_OK : fail(session->last_error, st.error());
  });
}

edgellm_status edgellm_tokenize(edgellm_model* model, const char* text, size_t text_len, int32_t allow_special,
                                int32_t* ids, size_t capacity, size_t* n_ids) {
  if (!model) return EDGELLM_ERROR_INVALID_ARGUMENT;
  return guarded(model->last_error, [&]() -> edgellm_status {
    if ((!text && text_len > 0) || !n_ids) {
      return fail(model->last_error, EDGELLM_ERROR_INVALID_ARGUMENT, "text or n_ids is NULL");
    }
    auto tokens = model->model->tokenizer().encode(std::string_view(text ? text : "", text_len), allow_special != 0);
    if (!tokens.ok()) return fail(model->last_error, tokens.error());
    *n_ids = tokens->size();
    if (tokens->size() > capacity || (!ids && !tokens->empty())) {
      return fail(model->last_error, EDGELLM_ERROR_INVALID_ARGUMENT,
                  "the ids buffer holds " + std::to_string(capacity) + ", " + std::to_string(tokens->size()) + " needed");
    }
    std::copy(tokens->begin(), tokens->end(), ids);
    return EDGELLM_OK;
  });
}

edgellm_status edgellm_detokenize(edgellm_model* model, const int32_t* ids, size_t n_ids, char* text, size_t capacity,
                                  size_t* n_bytes) {
  if (!model) return EDGELLM_ERROR_INVALID_ARGUMENT;
  return guarded(model->last_error, [&]() -> edgellm_status {
    if ((!ids && n_ids > 0) || !n_bytes) {
      return fail(model->last_error, EDGELLM_ERROR_INVALID_ARGUMENT, "ids or n_bytes is NULL");
    }
    const int64_t n_vocab = model->model->config().n_vocab;
    for (size_t i = 0; i < n_ids; ++i) {
      if (ids[i] < 0 || ids[i] >= n_vocab) {
        return fail(model->last_error, EDGELLM_ERROR_INVALID_ARGUMENT,
                    "token id " + std::to_string(ids[i]) + " at index " + std::to_string(i) + " is out of range");
      }
    }
    const std::string out = model->model->tokenizer().decode(std::vector<int32_t>(ids, ids + n_ids));
    *n_bytes = out.size();
    if (!text || capacity < out.size() + 1) {
      return fail(model->last_error, EDGELLM_ERROR_INVALID_ARGUMENT,
                  "the text buffer holds " + std::to_string(capacity) + " bytes, " + std::to_string(out.size() + 1) +
                      " needed");
    }
    std::memcpy(text, out.data(), out.size());
    text[out.size()] = '\0';
    return EDGELLM_OK;
  });
}

edgellm_sampling_params edgellm_sampling_default_params(const edgellm_model* model) {
  return to_c(model ? model->model->default_sampling() : edgellm::SamplingParams{});
}

edgellm_status edgellm_sampling_preset(const char* name, edgellm_sampling_params* out) {
  return guarded(thread_error(), [&]() -> edgellm_status {
    if (!name || !out) return fail(thread_error(), EDGELLM_ERROR_INVALID_ARGUMENT, "name or out is NULL");
    auto preset = edgellm::sampling_preset(name);
    if (!preset.ok()) return fail(thread_error(), preset.error());
    *out = to_c(*preset);
    return EDGELLM_OK;
  });
}

edgellm_generate_params edgellm_generate_default_params(const edgellm_model* model) {
  edgellm_generate_params p{};
  p.sampling = edgellm_sampling_default_params(model);
  p.max_new_tokens = 256;
  p.lora_name = nullptr;
  p.lora_scale = 1.0f;
  return p;
}

edgellm_session_params edgellm_session_default_params(void) {
  edgellm_session_params p{};
  p.n_ctx = 0;
  p.kv_type = EDGELLM_KV_F16;
  p.max_batch = 0;
  return p;
}

edgellm_status edgellm_session_create(edgellm_model* model, const edgellm_session_params* params,
                                      edgellm_session** out_session) {
  if (!model) return fail(thread_error(), EDGELLM_ERROR_INVALID_ARGUMENT, "model is NULL");
  return guarded(model->last_error, [&]() -> edgellm_status {
    if (out_session) *out_session = nullptr;
    if (!out_session) return fail(model->last_error, EDGELLM_ERROR_INVALID_ARGUMENT, "out_session is NULL");
    const edgellm_session_params p = params ? *params : edgellm_session_default_params();
    int kv_type = 0;  // read as an int: a C caller may store any value in the enum field
    static_assert(sizeof(p.kv_type) == sizeof(kv_type));
    std::memcpy(&kv_type, &p.kv_type, sizeof kv_type);
    if (p.n_ctx < 0) return fail(model->last_error, EDGELLM_ERROR_INVALID_ARGUMENT, "session params: n_ctx < 0");
    if (p.max_batch < 0) {
      return fail(model->last_error, EDGELLM_ERROR_INVALID_ARGUMENT, "session params: max_batch < 0");
    }
    if (kv_type != EDGELLM_KV_F16 && kv_type != EDGELLM_KV_F32 && kv_type != EDGELLM_KV_Q8_0) {
      return fail(model->last_error, EDGELLM_ERROR_INVALID_ARGUMENT,
                  "session params: kv_type " + std::to_string(kv_type) +
                      " is not EDGELLM_KV_F16, EDGELLM_KV_F32 or EDGELLM_KV_Q8_0");
    }
    if (p.history_max_rounds < 0 || p.history_max_tokens < 0) {
      return fail(model->last_error, EDGELLM_ERROR_INVALID_ARGUMENT,
                  "session params: history_max_rounds and history_max_tokens must be >= 0");
    }
    edgellm::SessionOptions options;
    const int64_t train_ctx = model->model->config().n_ctx_train;
    options.n_ctx = p.n_ctx > 0 ? p.n_ctx : std::min<int64_t>(4096, train_ctx > 0 ? train_ctx : 4096);
    options.kv_type = kv_type == EDGELLM_KV_F32    ? edgellm::DType::kF32
                      : kv_type == EDGELLM_KV_Q8_0 ? edgellm::DType::kQ8_0
                                                   : edgellm::DType::kF16;
    options.max_batch = p.max_batch > 0 ? p.max_batch : 64;
    auto session = edgellm::Session::create(model->model, options);
    if (!session.ok()) return fail(model->last_error, session.error());
    auto* s = new edgellm_session;
    s->owner = model;
    s->session = std::move(*session);
    s->session->set_history_limit({p.history_max_rounds, p.history_max_tokens});
    *out_session = s;
    return EDGELLM_OK;
  });
}

void edgellm_session_free(edgellm_session* session) {
  if (!session) return;
  {
    std::lock_guard<std::mutex> lock(session->async_mu);
  }
  if (session->worker.joinable()) session->worker.join();
  delete session;
}

const char* edgellm_session_last_error(const edgellm_session* session) {
  return session ? session->last_error.c_str() : "";
}

edgellm_status edgellm_session_chat(edgellm_session* session, const char* user_message,
                                    const edgellm_generate_params* params, edgellm_callback callback, void* user_data) {
  if (!session) return EDGELLM_ERROR_INVALID_ARGUMENT;
  if (session->session->is_running()) return fail(session->last_error, EDGELLM_ERROR_BUSY, "the session is busy");
  if (!user_message) return run(session, RunKind::kRespond, "", params, callback, user_data);
  return run(session, RunKind::kChat, user_message, params, callback, user_data);
}

edgellm_status edgellm_session_complete(edgellm_session* session, const char* prompt,
                                        const edgellm_generate_params* params, edgellm_callback callback,
                                        void* user_data) {
  if (!session) return EDGELLM_ERROR_INVALID_ARGUMENT;
  if (!prompt) return fail(session->last_error, EDGELLM_ERROR_INVALID_ARGUMENT, "prompt is NULL");
  if (session->session->is_running()) return fail(session->last_error, EDGELLM_ERROR_BUSY, "the session is busy");
  return run(session, RunKind::kComplete, prompt, params, callback, user_data);
}

edgellm_status edgellm_session_prefill(edgellm_session* session, const int32_t* tokens, size_t n_tokens) {
  if (!session) return EDGELLM_ERROR_INVALID_ARGUMENT;
  return guarded(session->last_error, [&]() -> edgellm_status {
    if (!tokens || n_tokens == 0) return fail(session->last_error, EDGELLM_ERROR_INVALID_ARGUMENT, "no tokens");
    auto r = session->session->prefill(std::vector<int32_t>(tokens, tokens + n_tokens));
    if (!r.ok()) return fail(session->last_error, r.error());
    session->last_stats = {};
    session->last_stats.prompt_tokens = static_cast<int64_t>(n_tokens);
    session->last_stats.prefill_tokens = *r;
    session->last_stats.reused_tokens = static_cast<int64_t>(n_tokens) - *r;
    return EDGELLM_OK;
  });
}

edgellm_status edgellm_session_generate(edgellm_session* session, const edgellm_generate_params* params,
                                        edgellm_callback callback, void* user_data) {
  if (!session) return EDGELLM_ERROR_INVALID_ARGUMENT;
  return run(session, RunKind::kGenerate, "", params, callback, user_data);
}

edgellm_status edgellm_session_chat_async(edgellm_session* session, const char* user_message,
                                          const edgellm_generate_params* params, edgellm_callback callback,
                                          void* user_data) {
  return start_async(session, user_message ? RunKind::kChat : RunKind::kRespond, user_message, params, callback,
                     user_data);
}

edgellm_status edgellm_session_complete_async(edgellm_session* session, const char* prompt,
                                              const edgellm_generate_params* params, edgellm_callback callback,
                                              void* user_data) {
  return start_async(session, RunKind::kComplete, prompt, params, callback, user_data);
}

edgellm_status edgellm_session_wait(edgellm_session* session) {
  if (!session) return EDGELLM_ERROR_INVALID_ARGUMENT;
  std::thread worker;
  {
    std::lock_guard<std::mutex> lock(session->async_mu);
    worker = std::move(session->worker);
  }
  if (worker.joinable()) worker.join();
  std::lock_guard<std::mutex> lock(session->async_mu);
  const edgellm_status st = session->async_status;
  session->async_status = EDGELLM_OK;
  return st;
}

void edgellm_session_abort(edgellm_session* session) {
  if (!session) return;
  // Session::abort sets a flag that only the end of a run clears, so an abort while nothing runs
  // would stop the next run at its first step. Forward it only while a run is in flight: running,
  // or an asynchronous run started but not yet finished (async_status is BUSY until it ends).
  bool async_in_flight = false;
  {
    std::lock_guard<std::mutex> lock(session->async_mu);
    async_in_flight = session->async_status == EDGELLM_ERROR_BUSY;
  }
  if (async_in_flight || session->session->is_running()) session->session->abort();
}

int32_t edgellm_session_is_running(const edgellm_session* session) {
  return session && session->session->is_running() ? 1 : 0;
}

edgellm_status edgellm_session_set_system_prompt(edgellm_session* session, const char* system_prompt) {
  if (!session) return EDGELLM_ERROR_INVALID_ARGUMENT;
  session->session->set_system_prompt(system_prompt ? system_prompt : "");
  return EDGELLM_OK;
}

edgellm_status edgellm_session_set_thinking(edgellm_session* session, int32_t enable) {
  if (!session) return EDGELLM_ERROR_INVALID_ARGUMENT;
  if (enable < -1 || enable > 1) {
    return fail(session->last_error, EDGELLM_ERROR_INVALID_ARGUMENT, "enable must be -1, 0 or 1");
  }
  edgellm::ChatOptions o = session->session->chat_options();
  o.enable_thinking = enable < 0 ? std::nullopt : std::optional<bool>(enable == 1);
  session->session->set_chat_options(o);
  return EDGELLM_OK;
}

edgellm_status edgellm_session_set_history_limit(edgellm_session* session, int32_t max_rounds, int32_t max_tokens) {
  if (!session) return EDGELLM_ERROR_INVALID_ARGUMENT;
  if (max_rounds < 0 || max_tokens < 0) {
    return fail(session->last_error, EDGELLM_ERROR_INVALID_ARGUMENT, "history limits must be >= 0");
  }
  session->session->set_history_limit({max_rounds, max_tokens});
  return EDGELLM_OK;
}

int32_t edgellm_session_history_size(const edgellm_session* session) {
  return session ? static_cast<int32_t>(session->session->history().size()) : 0;
}

edgellm_status edgellm_session_history_message(const edgellm_session* session, int32_t index, const char** role,
                                               const char** content) {
  if (!session || !role || !content) return EDGELLM_ERROR_INVALID_ARGUMENT;
  const auto& h = session->session->history();
  if (index < 0 || index >= static_cast<int32_t>(h.size())) return EDGELLM_ERROR_INVALID_ARGUMENT;
  *role = h[static_cast<size_t>(index)].role.c_str();
  *content = h[static_cast<size_t>(index)].content.c_str();
  return EDGELLM_OK;
}

edgellm_status edgellm_session_add_message(edgellm_session* session, const char* role, const char* content) {
  if (!session) return EDGELLM_ERROR_INVALID_ARGUMENT;
  if (!role || !content) return fail(session->last_error, EDGELLM_ERROR_INVALID_ARGUMENT, "role or content is NULL");
  const std::string r(role);
  if (r != "system" && r != "user" && r != "assistant" && r != "tool") {
    return fail(session->last_error, EDGELLM_ERROR_INVALID_ARGUMENT, "unknown role '" + r + "'");
  }
  if (session->session->is_running()) return fail(session->last_error, EDGELLM_ERROR_BUSY, "the session is busy");
  if (r == "system") {
    session->session->set_system_prompt(content);
    return EDGELLM_OK;
  }
  auto history = session->session->history();
  edgellm::ChatMessage message;
  message.role = r;
  message.content = content;
  history.push_back(std::move(message));
  session->session->set_history(std::move(history));
  return EDGELLM_OK;
}

edgellm_status edgellm_session_set_tools(edgellm_session* session, const char* tools_json, int32_t read_calls) {
  if (!session) return EDGELLM_ERROR_INVALID_ARGUMENT;
  return guarded(session->last_error, [&]() -> edgellm_status {
    if (session->session->is_running()) return fail(session->last_error, EDGELLM_ERROR_BUSY, "the session is busy");
    nlohmann::ordered_json tools = nullptr;
    if (tools_json != nullptr && tools_json[0] != '\0') {
      tools = nlohmann::ordered_json::parse(tools_json, nullptr, /*allow_exceptions=*/false);
      if (tools.is_discarded() || !tools.is_array()) {
        return fail(session->last_error, EDGELLM_ERROR_INVALID_ARGUMENT, "tools: not a JSON array");
      }
      for (size_t i = 0; i < tools.size(); ++i) {
        const auto& t = tools[i];
        const bool named = t.is_object() && t.contains("function") && t["function"].is_object() &&
                           t["function"].contains("name") && t["function"]["name"].is_string() &&
                           !t["function"]["name"].get<std::string>().empty();
        if (!named) {
          return fail(session->last_error, EDGELLM_ERROR_INVALID_ARGUMENT,
                      "tools[" + std::to_string(i) + "]: expected {\"type\": \"function\", \"function\": {\"name\": ...}}");
        }
      }
      if (tools.empty()) tools = nullptr;
    }
    edgellm::ChatOptions o = session->session->chat_options();
    o.tools = std::move(tools);
    session->session->set_chat_options(o);
    session->session->set_read_tool_calls(read_calls != 0);
    return EDGELLM_OK;
  });
}

edgellm_status edgellm_session_add_tool_result(edgellm_session* session, const char* tool_call_id, const char* name,
                                               const char* content) {
  if (!session) return EDGELLM_ERROR_INVALID_ARGUMENT;
  if (!content) return fail(session->last_error, EDGELLM_ERROR_INVALID_ARGUMENT, "content is NULL");
  if (session->session->is_running()) return fail(session->last_error, EDGELLM_ERROR_BUSY, "the session is busy");
  return guarded(session->last_error, [&]() -> edgellm_status {
    edgellm::ChatMessage m;
    m.role = "tool";
    m.content = content;
    if (tool_call_id) m.tool_call_id = tool_call_id;
    if (name) m.name = name;
    session->session->add_message(std::move(m));
    return EDGELLM_OK;
  });
}

edgellm_status edgellm_session_reset(edgellm_session* session) {
  if (!session) return EDGELLM_ERROR_INVALID_ARGUMENT;
  if (session->session->is_running()) return fail(session->last_error, EDGELLM_ERROR_BUSY, "the session is busy");
  session->session->clear_history();
  session->session->trim(0);
  return EDGELLM_OK;
}

edgellm_status edgellm_session_trim(edgellm_session* session, int32_t n_keep) {
  if (!session) return EDGELLM_ERROR_INVALID_ARGUMENT;
  if (n_keep < 0) return fail(session->last_error, EDGELLM_ERROR_INVALID_ARGUMENT, "n_keep must be >= 0");
  if (session->session->is_running()) return fail(session->last_error, EDGELLM_ERROR_BUSY, "the session is busy");
  session->session->trim(n_keep);
  return EDGELLM_OK;
}

int32_t edgellm_session_n_cached(const edgellm_session* session) {
  return session ? static_cast<int32_t>(session->session->cached_tokens().size()) : 0;
}

edgellm_status edgellm_session_save_state(edgellm_session* session, const char* path) {
  if (!session) return EDGELLM_ERROR_INVALID_ARGUMENT;
  return guarded(session->last_error, [&]() -> edgellm_status {
    if (!path) return fail(session->last_error, EDGELLM_ERROR_INVALID_ARGUMENT, "path is NULL");
    const auto st = session->session->save_state(path);
    return st.ok() ? EDGELLM_OK : fail(session->last_error, st.error());
  });
}

edgellm_status edgellm_session_load_state(edgellm_session* session, const char* path) {
  if (!session) return EDGELLM_ERROR_INVALID_ARGUMENT;
  return guarded(session->last_error, [&]() -> edgellm_status {
    if (!path) return fail(session->last_error, EDGELLM_ERROR_INVALID_ARGUMENT, "path is NULL");
    if (session->session->is_running()) return fail(session->last_error, EDGELLM_ERROR_BUSY, "the session is busy");
    const auto st = session->session->load_state(path);
    return st.ok() ? EDGELLM_OK : fail(session->last_error, st.error());
  });
}

edgellm_status edgellm_session_get_logits(const edgellm_session* session, const float** logits, int32_t* n_vocab) {
  if (!session || !logits || !n_vocab) return EDGELLM_ERROR_INVALID_ARGUMENT;
  *logits = session->session->last_logits().data();
  *n_vocab = static_cast<int32_t>(session->session->last_logits().size());
  return EDGELLM_OK;
}

edgellm_status edgellm_session_get_hidden(const edgellm_session* session, const float** hidden, int32_t* n_embd) {
  if (!session || !hidden || !n_embd) return EDGELLM_ERROR_INVALID_ARGUMENT;
  *hidden = session->session->last_hidden().data();
  *n_embd = static_cast<int32_t>(session->session->last_hidden().size());
  return EDGELLM_OK;
}

edgellm_status edgellm_session_get_perf(const edgellm_session* session, edgellm_perf* perf) {
  if (!session || !perf) return EDGELLM_ERROR_INVALID_ARGUMENT;
  const auto& s = session->last_stats;
  perf->prompt_tokens = s.prompt_tokens;
  perf->reused_tokens = s.reused_tokens;
  perf->prefill_tokens = s.prefill_tokens;
  perf->prefill_ms = s.prefill_ms;
  perf->decode_tokens = s.decode_tokens;
  perf->decode_ms = s.decode_ms;
  perf->peak_rss_bytes = s.peak_rss_bytes;
  perf->finish_reason = s.finish_reason.c_str();
  perf->verify_steps = s.verify_steps;
  perf->draft_tokens = s.draft_tokens;
  perf->accepted_tokens = s.accepted_tokens;
  return EDGELLM_OK;
}

}  // extern "C"
