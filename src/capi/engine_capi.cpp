// The serving engine's C API (include/edgellm/edgellm.h, edgellm_engine_*) over engine/engine.h.
#include <mutex>
#include <string>
#include <vector>

#include "capi/capi_internal.h"
#include "engine/engine.h"
#include "runtime/prompt_tokens.h"

struct edgellm_engine {
  std::shared_ptr<edgellm::LoadedModel> model;
  std::unique_ptr<edgellm::Engine> engine;
  mutable std::mutex error_mu;
  std::string last_error;       // guarded by error_mu (submit may be called from several threads)
  mutable std::string returned;  // what edgellm_engine_last_error last returned
};

namespace {

using namespace edgellm::capi;

edgellm_status engine_fail(edgellm_engine* e, edgellm_status status, std::string message) {
  std::lock_guard<std::mutex> lock(e->error_mu);
  e->last_error = std::move(message);
  return status;
}

edgellm_status engine_fail(edgellm_engine* e, const edgellm::Error& error) {
  return engine_fail(e, to_status(error.code), error.message);
}

// The token sequence of a request's one input.
edgellm::Expected<std::vector<int32_t>> request_tokens(const edgellm::LoadedModel& model, const edgellm_request& r) {
  const int n_inputs = (r.n_messages > 0 || r.messages != nullptr) + (r.prompt != nullptr) + (r.tokens != nullptr);
  if (n_inputs != 1) {
    return edgellm::make_error(ErrorCode::kInvalidArgument,
                               "request: give exactly one of messages, prompt and tokens (got " +
                                   std::to_string(n_inputs) + ")");
  }
  if (r.tokens != nullptr) {
    if (r.n_tokens == 0) return edgellm::make_error(ErrorCode::kInvalidArgument, "request: n_tokens is 0");
    return std::vector<int32_t>(r.tokens, r.tokens + r.n_tokens);
  }
  if (r.prompt != nullptr) return edgellm::completion_tokens(model, r.prompt, r.params.allow_special != 0);
  if (r.messages == nullptr || r.n_messages <= 0) {
    return edgellm::make_error(ErrorCode::kInvalidArgument, "request: messages is NULL or n_messages is not positive");
  }
  std::vector<edgellm::ChatMessage> messages;
  for (int32_t i = 0; i < r.n_messages; ++i) {
    const edgellm_chat_message& m = r.messages[i];
    if (m.role == nullptr || m.content == nullptr) {
      return edgellm::make_error(ErrorCode::kInvalidArgument,
                                 "request: messages[" + std::to_string(i) + "] has a NULL role or content");
    }
    edgellm::ChatMessage message;
    message.role = m.role;
    message.content = m.content;
    messages.push_back(std::move(message));
  }
  edgellm::ChatOptions options = model.chat_options();
  if (r.enable_thinking == 0 || r.enable_thinking == 1) options.enable_thinking = r.enable_thinking == 1;
  return edgellm::chat_tokens(model, messages, options);
}

edgellm_request_stats to_c(const edgellm::RequestResult& r) {
  edgellm_request_stats s{};
  s.finish_reason = nullptr;  // set by the caller to a string that outlives the event
  s.prompt_tokens = r.prompt_tokens;
  s.cached_tokens = r.cached_tokens;
  s.generated_tokens = r.generated_tokens;
  s.n_preemptions = r.n_preemptions;
  s.queue_ms = r.queue_ms;
  s.ttft_ms = r.ttft_ms;
  s.total_ms = r.total_ms;
  return s;
}

}  // namespace

extern "C" {

edgellm_engine_params edgellm_engine_default_params(void) {
  const edgellm::EngineOptions o;
  edgellm_engine_params p{};
  p.max_parallel = o.max_parallel;
  p.n_ctx = 0;
  p.kv_type = EDGELLM_KV_F16;
  p.kv_mem_bytes = 0;
  p.block_size = o.block_size;
  p.prefill_chunk = static_cast<int32_t>(o.prefill_chunk);
  p.max_queue = static_cast<int32_t>(o.max_queue);
  p.prefix_cache = 1;
  return p;
}

edgellm_status edgellm_engine_create(edgellm_model* model, const edgellm_engine_params* params,
                                     edgellm_engine** out_engine) {
  if (!out_engine) return fail(thread_error(), EDGELLM_ERROR_INVALID_ARGUMENT, "out_engine is NULL");
  *out_engine = nullptr;
  if (!model) return fail(thread_error(), EDGELLM_ERROR_INVALID_ARGUMENT, "model is NULL");
  return guarded(model->last_error, [&]() -> edgellm_status {
    const edgellm_engine_params p = params ? *params : edgellm_engine_default_params();
    edgellm::EngineOptions o;
    o.max_parallel = p.max_parallel;
    const int64_t train_ctx = model->model->config().n_ctx_train;
    if (p.n_ctx < 0) return fail(model->last_error, EDGELLM_ERROR_INVALID_ARGUMENT, "engine params: n_ctx < 0");
    o.n_ctx = p.n_ctx > 0 ? p.n_ctx : std::min<int64_t>(4096, train_ctx > 0 ? train_ctx : 4096);
    switch (p.kv_type) {
      case EDGELLM_KV_F16: o.kv_type = edgellm::DType::kF16; break;
      case EDGELLM_KV_F32: o.kv_type = edgellm::DType::kF32; break;
      case EDGELLM_KV_Q8_0: o.kv_type = edgellm::DType::kQ8_0; break;
      default:
        return fail(model->last_error, EDGELLM_ERROR_INVALID_ARGUMENT,
                    "engine params: kv_type " + std::to_string(static_cast<int>(p.kv_type)) + " is unknown");
    }
    o.kv_mem_bytes = p.kv_mem_bytes;
    o.block_size = p.block_size;
    o.prefill_chunk = p.prefill_chunk;
    o.max_queue = p.max_queue;
    o.prefix_cache = p.prefix_cache != 0;
    auto engine = edgellm::Engine::create(model->model, o);
    if (!engine.ok()) return fail(model->last_error, engine.error());
    auto* e = new edgellm_engine;
    e->model = model->model;
    e->engine = std::move(*engine);
    *out_engine = e;
    return EDGELLM_OK;
  });
}

void edgellm_engine_free(edgellm_engine* engine) { delete engine; }

const char* edgellm_engine_last_error(const edgellm_engine* engine) {
  if (!engine) return "";
  std::lock_guard<std::mutex> lock(engine->error_mu);
  engine->returned = engine->last_error;
  return engine->returned.c_str();
}

edgellm_status edgellm_engine_submit(edgellm_engine* engine, const edgellm_request* request,
                                     edgellm_request_callback callback, void* user_data, uint64_t* out_id) {
  if (!engine) return EDGELLM_ERROR_INVALID_ARGUMENT;
  std::string scratch;
  edgellm_status status = guarded(scratch, [&]() -> edgellm_status {
    if (!request) return engine_fail(engine, EDGELLM_ERROR_INVALID_ARGUMENT, "request is NULL");
    auto tokens = request_tokens(*engine->model, *request);
    if (!tokens.ok()) return engine_fail(engine, tokens.error());
    auto options = to_cpp(&request->params);
    if (!options.ok()) return engine_fail(engine, options.error());
    edgellm::EngineRequest r;
    r.prompt = std::move(*tokens);
    r.sampling = options->sampling;
    r.max_new_tokens = options->max_new_tokens;
    r.stop_strings = options->stop_strings;
    r.ignore_stop_tokens = options->ignore_stop_tokens;
    r.lora_name = options->lora_name.value_or("");
    r.lora_scale = options->lora_scale;
    r.timeout_seconds = request->timeout_seconds;
    if (!options->grammar.empty()) {
      auto grammar = engine->model->compile_grammar(options->grammar);
      if (!grammar.ok()) return engine_fail(engine, grammar.error());
      r.grammar = std::move(*grammar);
    }
    if (callback) {
      r.on_token = [callback, user_data](const edgellm::TokenEvent& t) {
        const std::string text(t.text);  // NUL-terminated for C
        edgellm_request_event ev{};
        ev.request_id = t.request_id;
        ev.type = EDGELLM_EVENT_TEXT;
        ev.text = text.c_str();
        ev.text_len = text.size();
        ev.token = t.token;
        ev.step = t.step;
        return callback(&ev, user_data) == 0;
      };
      r.on_done = [callback, user_data](const edgellm::RequestResult& res) {
        edgellm_request_stats stats = to_c(res);
        stats.finish_reason = res.finish_reason.c_str();
        edgellm_request_event ev{};
        ev.request_id = res.id;
        const bool error = res.finish_reason == "error";
        ev.type = error ? EDGELLM_EVENT_ERROR : EDGELLM_EVENT_FINISH;
        ev.text = error ? res.error.c_str() : res.text.c_str();
        ev.text_len = error ? res.error.size() : res.text.size();
        ev.token = -1;
        ev.stats = &stats;
        callback(&ev, user_data);
      };
    }
    auto id = engine->engine->submit(std::move(r));
    if (!id.ok()) return engine_fail(engine, id.error());
    if (out_id) *out_id = *id;
    return EDGELLM_OK;
  });
  if (status != EDGELLM_OK && !scratch.empty()) engine_fail(engine, status, scratch);
  return status;
}

edgellm_status edgellm_engine_cancel(edgellm_engine* engine, uint64_t request_id) {
  if (!engine) return EDGELLM_ERROR_INVALID_ARGUMENT;
  engine->engine->cancel(request_id);
  return EDGELLM_OK;
}

edgellm_status edgellm_engine_get_stats(const edgellm_engine* engine, edgellm_engine_stats* stats) {
  if (!engine || !stats) return EDGELLM_ERROR_INVALID_ARGUMENT;
  const edgellm::EngineStats s = engine->engine->stats();
  stats->n_waiting = s.n_waiting;
  stats->n_running = s.n_running;
  stats->kv_blocks_total = s.kv_blocks_total;
  stats->kv_blocks_used = s.kv_blocks_used;
  stats->kv_blocks_cached = s.kv_blocks_cached;
  stats->kv_block_size = s.kv_block_size;
  stats->kv_bytes = s.kv_bytes;
  stats->requests_submitted = s.requests_submitted;
  stats->requests_finished = s.requests_finished;
  stats->prompt_tokens = s.prompt_tokens;
  stats->cached_prompt_tokens = s.cached_prompt_tokens;
  stats->generated_tokens = s.generated_tokens;
  stats->preemptions = s.preemptions;
  stats->steps = s.steps;
  return EDGELLM_OK;
}

}  // extern "C"
