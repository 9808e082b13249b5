#include "server/generation.h"

#include <chrono>

#include "runtime/prompt_tokens.h"
#include "server/api_error.h"
#include "util/log.h"

namespace edgellm::server {

namespace {

// How long a response's end waits for its row to be committed before it goes out anyway (a stalled disk
// must not hang the client; the row is still written when the disk comes back).
constexpr std::chrono::seconds kStoreWait(10);

void record_result(Metrics& m, const std::string& route, const std::string& model, const RequestResult& r) {
  m.add("edgellm_request_finish_total", {model, r.finish_reason});
  if (r.finish_reason == "content_filter") m.add("edgellm_output_filter_blocks_total", {r.error});
  m.observe("edgellm_request_queue_seconds", {model}, r.queue_ms / 1000.0);
  m.observe("edgellm_request_duration_seconds", {route, model}, r.total_ms / 1000.0);
  if (r.generated_tokens > 0) m.observe("edgellm_time_to_first_token_seconds", {model}, r.ttft_ms / 1000.0);
  if (r.generated_tokens > 1) {
    m.observe("edgellm_time_per_output_token_seconds", {model},
              (r.total_ms - r.ttft_ms) / 1000.0 / static_cast<double>(r.generated_tokens - 1));
  }
}

}  // namespace

std::vector<int32_t> chat_prompt_tokens(const ServedModel& model, const std::vector<ChatMessage>& messages,
                                        const ChatPromptOptions& request, bool* thinking_open) {
  ChatOptions options = model.model->chat_options();
  if (request.enable_thinking) options.enable_thinking = request.enable_thinking;
  options.tools = request.tools;
  options.template_kwargs = request.template_kwargs;
  const bool with_tools = options.tools.is_array() && !options.tools.empty();
  auto rendered = model.model->chat_template().render(messages, options);
  if (!rendered.ok()) {
    ApiError e = api_error_from(rendered.error(),
                                with_tools && !model.model->chat_template().renders_model_template() ? "tools" : "messages");
    throw RequestError(std::move(e));
  }
  if (thinking_open) {
    const std::string text = rendered->text();
    const std::string open = "<think>\n";
    *thinking_open = text.size() >= open.size() && text.compare(text.size() - open.size(), open.size(), open) == 0;
  }
  auto tokens = chat_tokens(*model.model, messages, options);
  if (!tokens.ok()) throw RequestError(api_error_from(tokens.error(), "messages"));
  return std::move(*tokens);
}

std::vector<int32_t> completion_prompt_tokens(const ServedModel& model, const std::string& prompt) {
  auto tokens = completion_tokens(*model.model, prompt, /*allow_special=*/false);
  if (!tokens.ok()) throw RequestError(api_error_from(tokens.error(), "prompt"));
  return std::move(*tokens);
}

bool has_reasoning_template(const ServedModel& model) {
  return std::string(model.model->chat_template().name()) == "qwen3";
}

void start_generation(ServerContext& ctx, Generation& g) {
  if (ctx.shutting_down()) {
    ApiError e;
    e.status = 503;
    e.type = "server_error";
    e.code = "shutting_down";
    e.message = "the server is shutting down";
    throw RequestError(std::move(e));
  }
  if (g.request.timeout_seconds == 0) g.request.timeout_seconds = ctx.options().timeout_seconds;
  g.stream = std::make_shared<RequestStream>();
  if (ConversationStore* store = ctx.store()) {
    g.stream->on_complete([store, info = g.exchange, model = g.model->alias, route = g.route](
                              const RequestResult& r, const std::string& sent, bool client_waits) {
      Exchange e;
      e.request_id = info.request_id;
      e.time_ms = info.arrival_ms;
      e.key = info.key;
      e.client = info.client;
      e.model = model;
      e.route = route;
      e.messages = info.input;
      e.reply = sent;
      e.finish_reason = r.finish_reason;
      e.prompt_tokens = r.prompt_tokens;
      e.generated_tokens = r.generated_tokens;
      e.ttft_ms = r.ttft_ms;
      e.total_ms = r.total_ms;
      std::future<bool> committed = store->submit(std::move(e));
      if (client_waits && committed.wait_for(kStoreWait) != std::future_status::ready) {
        EDGELLM_LOG_WARN("serve: the conversation store took over %llds to commit an exchange; answering anyway",
                         static_cast<long long>(kStoreWait.count()));
      }
    });
  }
  g.stream->attach(
      g.request,
      [&ctx, model = g.model->alias, route = g.route, lease = g.lease](const RequestResult& r) {
        record_result(ctx.metrics(), route, model, r);
        if (lease) lease->finish(r.generated_tokens);
      },
      ctx.filters());
  auto id = g.model->engine->submit(std::move(g.request));
  if (!id.ok()) {
    throw RequestError(api_error_from(id.error(), id.error().code == ErrorCode::kContextFull ? "messages" : ""));
  }
  g.id = *id;
}

std::string api_finish_reason(const std::string& engine_reason) {
  if (engine_reason == "stop" || engine_reason == "content_filter") return engine_reason;
  return "length";
}


void declare_serving_metrics(ServerContext& ctx) {
  Metrics& m = ctx.metrics();
  m.declare_counter("edgellm_requests_total",
                    "HTTP requests answered, by route, model, status code and API key name (empty when the server "
                    "has no keys).",
                    {"route", "model", "status", "key"});
  m.declare_counter("edgellm_rate_limited_total",
                    "Requests refused (429) for a rate limit, by scope (key, address) and limit (requests, tokens, "
                    "concurrent).",
                    {"scope", "limit"});
  m.declare_counter("edgellm_policy_applied_total",
                    "Generation requests a time-of-day policy rule applied to, by rule and whether it cut the "
                    "request's max tokens (capped) or not (within).",
                    {"rule", "result"});
  m.declare_counter("edgellm_filter_blocks_total",
                    "Requests refused (400) by an input filter, by rule (a [[filters.block]] name, or max_messages, "
                    "max_prompt_chars, max_prompt_tokens).",
                    {"rule"});
  m.declare_counter("edgellm_output_filter_blocks_total",
                    "Replies ended by an output filter rule (finish reason content_filter), by rule.", {"rule"});
  m.declare_collected("edgellm_store_writes_total",
                      "Exchanges written to the conversation store (ok) or not written (failed: a full disk, an I/O "
                      "error; the request still answered).",
                      "counter", [&ctx]() {
                        std::vector<Sample> out;
                        if (ConversationStore* store = ctx.store()) {
                          out.push_back({{{"result", "ok"}}, static_cast<double>(store->rows_written())});
                          out.push_back({{{"result", "failed"}}, static_cast<double>(store->rows_failed())});
                        }
                        return out;
                      });
  m.declare_collected("edgellm_store_pruned_total", "Exchanges the store's retention deleted (by age or size).",
                      "counter", [&ctx]() {
                        std::vector<Sample> out;
                        if (ConversationStore* store = ctx.store()) {
                          out.push_back({{}, static_cast<double>(store->rows_pruned())});
                        }
                        return out;
                      });
  m.declare_counter("edgellm_auth_failures_total",
                    "Requests refused for a missing or invalid API key (401), by reason.", {"reason"});
  m.declare_counter("edgellm_request_finish_total",
                    "Generation requests that ended, by model and reason (stop, length, context, cancelled, "
                    "timeout, error).",
                    {"model", "reason"});
  m.declare_histogram("edgellm_request_queue_seconds", "Time from arrival to the first engine step.",
                      latency_buckets_seconds(), {"model"});
  m.declare_histogram("edgellm_time_to_first_token_seconds", "Time from arrival to the first generated token.",
                      latency_buckets_seconds(), {"model"});
  m.declare_histogram("edgellm_time_per_output_token_seconds", "Mean time between generated tokens of a request.",
                      {0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5}, {"model"});
  m.declare_histogram("edgellm_request_duration_seconds", "Time from arrival to the last token.",
                      latency_buckets_seconds(), {"route", "model"});
  // Engine statistics, read when scraped.
  auto per_model = [&ctx](auto value) {
    return [&ctx, value]() {
      std::vector<Sample> out;
      if (!ctx.ready()) return out;
      for (const auto& model : ctx.models()) {
        const EngineStats s = model->engine->stats();
        out.push_back({{{"model", model->alias}}, static_cast<double>(value(s))});
      }
      return out;
    };
  };
  m.declare_collected("edgellm_queue_depth", "Requests waiting for a slot.", "gauge",
                      per_model([](const EngineStats& s) { return s.n_waiting; }));
  m.declare_collected("edgellm_running_sequences", "Requests in the engine's steps.", "gauge",
                      per_model([](const EngineStats& s) { return s.n_running; }));
  m.declare_collected("edgellm_kv_blocks_used", "KV blocks held by running requests.", "gauge",
                      per_model([](const EngineStats& s) { return s.kv_blocks_used; }));
  m.declare_collected("edgellm_kv_blocks_cached", "KV blocks nobody holds that keep a cached prompt prefix.", "gauge",
                      per_model([](const EngineStats& s) { return s.kv_blocks_cached; }));
  m.declare_collected("edgellm_kv_pool_blocks", "KV blocks of the pool (its whole budget).", "gauge",
                      per_model([](const EngineStats& s) { return s.kv_blocks_total; }));
  m.declare_collected("edgellm_kv_pool_bytes", "Bytes of the KV pool.", "gauge",
                      per_model([](const EngineStats& s) { return s.kv_bytes; }));
  m.declare_collected("edgellm_prefix_cache_hits_total", "KV blocks taken from the prefix cache.", "counter",
                      per_model([](const EngineStats& s) { return s.prefix_cache_hits; }));
  m.declare_collected("edgellm_preemptions_total", "Requests paused to free KV memory (recomputed later).", "counter",
                      per_model([](const EngineStats& s) { return s.preemptions; }));
  m.declare_collected("edgellm_prompt_tokens_total", "Prompt tokens of finished requests.", "counter",
                      per_model([](const EngineStats& s) { return s.prompt_tokens; }));
  m.declare_collected("edgellm_prompt_cached_tokens_total", "Prompt tokens whose KV came from the prefix cache.",
                      "counter", per_model([](const EngineStats& s) { return s.cached_prompt_tokens; }));
  m.declare_collected("edgellm_generated_tokens_total", "Generated tokens of finished requests.", "counter",
                      per_model([](const EngineStats& s) { return s.generated_tokens; }));
  m.declare_collected("edgellm_engine_steps_total", "Engine steps (one pass over the weights each).", "counter",
                      per_model([](const EngineStats& s) { return s.steps; }));
}

}  // namespace edgellm::server
