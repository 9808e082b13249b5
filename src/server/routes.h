// The HTTP side of `edgellm serve`: the route wrapper every endpoint goes through (errors in the route's
// dialect, request counting, 503 while models load), the streaming of a generation, and the two
// dialects' endpoints.
#pragma once

#include <httplib.h>

#include <functional>
#include <memory>
#include <string>

#include "server/api_error.h"
#include "server/generation.h"
#include "server/server_context.h"

namespace edgellm::server {

enum class Dialect { kOpenAI, kOllama };

// Writes `error` in the dialect's shape with its status.
void send_error(httplib::Response& res, Dialect dialect, const ApiError& error);
void send_json(httplib::Response& res, const nlohmann::json& body, int status = 200);

// The name of the API key the request presents ("" when the server has no keys). Throws RequestError
// (401, counted in edgellm_auth_failures_total) when keys are on and the request has none or a wrong one.
std::string authenticate(ServerContext& ctx, const httplib::Request& req);

// What the route wrapper knows of a request and hands its body: the model it was for (the body sets it:
// metrics label), the API key's name, and its rate-limit lease (the generation the body starts holds it
// until the request ends).
struct RequestScope {
  std::string model;
  std::string key;
  std::shared_ptr<RateLease> lease;
  std::string client;        // the client's address
  int64_t arrival_ms = 0;    // Unix milliseconds
  // What the conversation store keeps of a generation request, besides its reply.
  ExchangeInfo exchange(std::string request_id, std::string input) const {
    return {std::move(request_id), key, client, std::move(input), arrival_ms};
  }
};

// Applies the time-of-day policy (server/time_policy.h) to a generation about to start: caps
// request.max_new_tokens, says so in the X-Edgellm-Policy header, counts it in edgellm_policy_applied_total.
// `minute_of_day` is the local time (tests pass their own).
void apply_time_policy(ServerContext& ctx, const RequestScope& scope, EngineRequest& request, httplib::Response& res,
                       int minute_of_day = local_minute_of_day());

// The user-written texts of a request (user and system messages, or a completion prompt) against the
// input filters (server/input_filters.h): throws RequestError 400 (code "input_filtered") naming the limit
// or the rule's public reason, counted in edgellm_filter_blocks_total{rule}.
void check_input_filters(ServerContext& ctx, const std::vector<std::string>& texts, int64_t n_messages,
                         int64_t n_prompt_tokens, const std::string& param);
// The texts of a chat the filters look at: user and system messages.
std::vector<std::string> user_texts(const std::vector<ChatMessage>& messages);

// The client's address: the connection's, or, when that is a trusted proxy (--trusted-proxy, nginx in
// front of a fleet), the last address in X-Forwarded-For that is not itself a trusted proxy.
std::string client_address(const ServerContext& ctx, const httplib::Request& req);

// A route's body: it may throw RequestError.
using RouteBody = std::function<void(const httplib::Request& req, httplib::Response& res, RequestScope& scope)>;

// Wraps a body: the API key is checked first (authenticate()), then the rate limits (429 with Retry-After,
// counted in edgellm_rate_limited_total{scope, limit}), RequestError and any other exception become
// the dialect's error response (500 for the unexpected), and every answer is counted in
// edgellm_requests_total{route, model, status, key}. With needs_models, 503 while the models are still loading.
httplib::Server::Handler route(ServerContext& ctx, const std::string& name, Dialect dialect, bool needs_models,
                               RouteBody body);

// How a dialect writes a generation's stream: what goes before the first token, each token, the end.
class StreamFormatter {
 public:
  virtual ~StreamFormatter() = default;
  virtual std::string start() { return {}; }
  virtual std::string token(const StreamToken& token) = 0;
  virtual std::string finish(const RequestResult& result) = 0;
  // Written when nothing else was for a while, to notice a client that has gone (SSE comments); "" if
  // the format has no such thing.
  virtual std::string keepalive() { return {}; }
};

// Answers with a chunked stream of the generation started in `g`. A client that goes away mid-stream
// gets its request cancelled (its KV blocks freed, finish reason "cancelled" in the metrics).
void stream_generation(ServerContext& ctx, httplib::Response& res, const std::string& content_type, Generation g,
                       std::unique_ptr<StreamFormatter> formatter);

void register_openai_routes(httplib::Server& http, ServerContext& ctx);
void register_ollama_routes(httplib::Server& http, ServerContext& ctx);

}  // namespace edgellm::server
