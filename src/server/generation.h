// What both API dialects do once they have read a request: render the prompt, submit it to the model's
// engine, and record the request in the metrics when it ends.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "chat/chat_template.h"
#include "engine/engine.h"
#include "server/request_stream.h"
#include "server/server_context.h"

namespace edgellm::server {

// What the conversation store keeps of a request besides its reply (server/conversation_store.h).
struct ExchangeInfo {
  std::string request_id;   // the id the client sees ("" where the dialect has none)
  std::string key;          // the API key's name
  std::string client;       // the client's address
  std::string input;        // the request's messages or prompt, as JSON text
  int64_t arrival_ms = 0;   // Unix milliseconds
};

struct Generation {
  ServedModel* model = nullptr;
  std::string route;            // for metrics, e.g. "/v1/chat/completions"
  EngineRequest request;        // prompt tokens, sampling, limits (callbacks are set by start())
  bool split_reasoning = false;       // return the reasoning (Qwen3's <think> block) apart from the answer
  bool starts_in_reasoning = false;   // the prompt already opened the think block
  std::shared_ptr<RateLease> lease;   // the request's rate limits: charged its generated tokens at the end
  ExchangeInfo exchange;              // for the conversation store, when the server has one
  // Set by start():
  uint64_t id = 0;
  std::shared_ptr<RequestStream> stream;
};

// What a chat request adds to the model's chat options.
struct ChatPromptOptions {
  std::optional<bool> enable_thinking;       // Qwen3's thinking switch (nullopt: the template's default)
  nlohmann::ordered_json tools;              // tool definitions for the template (null: none)
  nlohmann::ordered_json template_kwargs;    // chat_template_kwargs (an object, or null)
};

// The prompt tokens of a conversation with the model's chat template. *thinking_open says whether the
// rendered prompt ends inside an opened think block. Errors throw RequestError (param "messages"; tools
// with a model that has no template of its own: param "tools").
std::vector<int32_t> chat_prompt_tokens(const ServedModel& model, const std::vector<ChatMessage>& messages,
                                        const ChatPromptOptions& options, bool* thinking_open);
// The prompt tokens of a completion prompt (BOS added if the model wants it; special-token texts stay text).
std::vector<int32_t> completion_prompt_tokens(const ServedModel& model, const std::string& prompt);

// Whether the model's template is a reasoning one whose output carries a <think> block (Qwen3).
bool has_reasoning_template(const ServedModel& model);

// Submits g.request to the model's engine (with the server's timeout) and sets g.id and g.stream; when
// the request ends its latencies and finish reason go to the metrics. The reply passes the output filters;
// with a conversation store, the finished exchange is written (and its commit awaited) before the stream
// reports its end to the route. Errors throw RequestError: a full
// queue (503), a prompt that does not fit the context (400, naming both numbers), an unknown adapter,
// a server that is shutting down (503).
void start_generation(ServerContext& ctx, Generation& g);

// OpenAI/Ollama finish reasons from the engine's: "stop", "content_filter" (an output filter ended the
// reply), or "length" for a limit (max tokens, context, timeout, a cancelled request).
std::string api_finish_reason(const std::string& engine_reason);

// Declares the metrics the routes record and the engine statistics read at scrape time.
void declare_serving_metrics(ServerContext& ctx);

}  // namespace edgellm::server
