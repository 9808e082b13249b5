#include "server/routes.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "util/log.h"

namespace edgellm::server {

void send_json(httplib::Response& res, const nlohmann::json& body, int status) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json");
}

void send_error(httplib::Response& res, Dialect dialect, const ApiError& error) {
  res.status = error.status;
  res.set_content(dialect == Dialect::kOpenAI ? openai_error_body(error) : ollama_error_body(error),
                  "application/json");
  if (error.status == 503) res.set_header("Retry-After", "1");
  if (error.status == 401) res.set_header("WWW-Authenticate", "Bearer");
  if (error.status == 429) res.set_header("Retry-After", std::to_string(std::max(1, error.retry_after_seconds)));
}

std::string authenticate(ServerContext& ctx, const httplib::Request& req) {
  const std::shared_ptr<const ApiKeys> keys = ctx.keys();
  if (keys->empty()) return {};
  const std::string header = req.get_header_value("Authorization");
  const std::string_view token = bearer_token(header);
  if (const std::string* name = keys->find(token)) return *name;
  const char* reason = token.empty() ? "missing" : "invalid";
  ctx.metrics().add("edgellm_auth_failures_total", {reason});
  EDGELLM_LOG_WARN("serve: %s %s from %s: %s API key", req.method.c_str(), req.path.c_str(),
                   client_address(ctx, req).c_str(),
                   reason);
  ApiError e;
  e.status = 401;  // type: the default, invalid_request_error (as OpenAI answers)
  e.code = "invalid_api_key";
  e.message = token.empty() ? "this server needs an API key: send it as `Authorization: Bearer KEY`"
                            : "the API key is not valid";
  throw RequestError(std::move(e));
}

std::string client_address(const ServerContext& ctx, const httplib::Request& req) {
  const std::vector<std::string>& proxies = ctx.options().trusted_proxies;
  const auto trusted = [&](const std::string& a) {
    return std::find(proxies.begin(), proxies.end(), a) != proxies.end();
  };
  if (proxies.empty() || !trusted(req.remote_addr)) return req.remote_addr;
  // X-Forwarded-For: client, proxy1, proxy2 (each proxy appends the address it got the request from).
  const std::string header = req.get_header_value("X-Forwarded-For");
  std::string client = req.remote_addr;
  size_t end = header.size();
  while (end > 0) {
    const size_t comma = header.rfind(',', end - 1);
    const size_t begin = comma == std::string::npos ? 0 : comma + 1;
    std::string hop = header.substr(begin, end - begin);
    hop.erase(0, hop.find_first_not_of(" \t"));
    hop.erase(hop.find_last_not_of(" \t") + 1);
    if (hop.empty() || hop.size() > 64) break;
    client = hop;
    if (!trusted(hop)) break;
    if (comma == std::string::npos) break;
    end = comma;
  }
  return client;
}

std::shared_ptr<RateLease> admit(ServerContext& ctx, const std::string& client, const std::string& key) {
  const std::shared_ptr<RateLimiter> limiter = ctx.limiter();
  if (!limiter->limits().any()) return nullptr;
  RateLimiter::Refusal refusal;
  auto lease = limiter->admit(key, client, RateClock::now(), &refusal);
  if (lease) return lease;
  ctx.metrics().add("edgellm_rate_limited_total", {refusal.scope, refusal.limit});
  const double seconds = std::max(1.0, std::ceil(refusal.retry_after_seconds));
  ApiError e;
  e.status = 429;
  e.type = "rate_limit_error";
  e.code = "rate_limit_exceeded";
  char retry[64];
  std::snprintf(retry, sizeof retry, "; retry after %.0f s", seconds);
  e.message = refusal.message + retry;
  e.retry_after_seconds = static_cast<int>(std::min(seconds, 86400.0));
  throw RequestError(std::move(e));
}

void apply_time_policy(ServerContext& ctx, const RequestScope& scope, EngineRequest& request, httplib::Response& res,
                       int minute_of_day) {
  const std::shared_ptr<const std::vector<PolicyRule>> rules = ctx.policy();
  const PolicyRule* rule = find_policy(*rules, minute_of_day, scope.key);
  if (rule == nullptr) return;
  const int32_t asked = request.max_new_tokens;
  request.max_new_tokens = std::min(asked, rule->max_tokens);
  res.set_header("X-Edgellm-Policy", "max_tokens=" + std::to_string(rule->max_tokens) + "; rule=" + rule->name +
                                         (asked > rule->max_tokens ? "; capped from " + std::to_string(asked) : ""));
  ctx.metrics().add("edgellm_policy_applied_total", {rule->name, asked > rule->max_tokens ? "capped" : "within"});
}

std::vector<std::string> user_texts(const std::vector<ChatMessage>& messages) {
  std::vector<std::string> texts;
  for (const ChatMessage& m : messages) {
    if (m.role == "user" || m.role == "system") texts.push_back(m.content);
  }
  return texts;
}

void check_input_filters(ServerContext& ctx, const std::vector<std::string>& texts, int64_t n_messages,
                         int64_t n_prompt_tokens, const std::string& param) {
  const std::shared_ptr<const InputFilters> filters = ctx.filters();
  const InputFilterConfig& c = filters->config();
  if (!c.any()) return;
  const auto refuse = [&](const std::string& rule, std::string message) {
    ctx.metrics().add("edgellm_filter_blocks_total", {rule});
    ApiError e;
    e.code = "input_filtered";
    e.param = param;
    e.message = std::move(message);
    throw RequestError(std::move(e));
  };
  if (c.max_messages > 0 && n_messages > c.max_messages) {
    refuse("max_messages", "the request has " + std::to_string(n_messages) + " messages; this server takes at most " +
                               std::to_string(c.max_messages));
  }
  int64_t chars = 0;
  for (const std::string& t : texts) chars += utf8_length(t);
  if (c.max_prompt_chars > 0 && chars > c.max_prompt_chars) {
    refuse("max_prompt_chars", "the input has " + std::to_string(chars) + " characters; this server takes at most " +
                                   std::to_string(c.max_prompt_chars));
  }
  if (c.max_prompt_tokens > 0 && n_prompt_tokens > c.max_prompt_tokens) {
    refuse("max_prompt_tokens", "the prompt has " + std::to_string(n_prompt_tokens) +
                                    " tokens; this server takes at most " + std::to_string(c.max_prompt_tokens));
  }
  for (const std::string& t : texts) {
    if (const BlockRule* rule = filters->find_blocked(t)) {
      EDGELLM_LOG_INFO("serve: input blocked by filter rule '%s'", rule->name.c_str());
      refuse(rule->name, "the input was refused: " + rule->reason);
    }
  }
}

httplib::Server::Handler route(ServerContext& ctx, const std::string& name, Dialect dialect, bool needs_models,
                               RouteBody body) {
  return [&ctx, name, dialect, needs_models, body = std::move(body)](const httplib::Request& req,
                                                                     httplib::Response& res) {
    RequestScope scope;
    scope.client = client_address(ctx, req);
    scope.arrival_ms = unix_now_ms();
    try {
      scope.key = authenticate(ctx, req);
      scope.lease = admit(ctx, scope.client, scope.key);
      if (needs_models && !ctx.ready()) {
        ApiError e;
        e.status = 503;
        e.type = "server_error";
        e.code = "loading";
        e.message = "the model is still loading";
        throw RequestError(std::move(e));
      }
      body(req, res, scope);
    } catch (const RequestError& e) {
      send_error(res, dialect, e.error());
    } catch (const std::exception& e) {
      EDGELLM_LOG_ERROR("serve: %s: %s", name.c_str(), e.what());
      ApiError err;
      err.status = 500;
      err.type = "server_error";
      err.message = std::string("internal error: ") + e.what();
      send_error(res, dialect, err);
    }
    // A stream's status is set when its headers go out, after the route returns: it is 200.
    const int status = res.status == -1 ? 200 : res.status;
    ctx.metrics().add("edgellm_requests_total", {name, scope.model, std::to_string(status), scope.key});
  };
}

namespace {

struct StreamState {
  ServerContext* ctx = nullptr;
  Generation g;
  std::unique_ptr<StreamFormatter> formatter;
  bool started = false;
  bool finished = false;
  std::chrono::steady_clock::time_point last_write = std::chrono::steady_clock::now();

  // The client has gone: the engine ends the request at its next token, or now if it is still queued.
  void client_gone() {
    if (finished) return;
    g.stream->client_gone();
    g.model->engine->cancel(g.id);
    finished = true;
  }
};

constexpr std::chrono::milliseconds kPoll(200);
constexpr std::chrono::seconds kKeepalive(5);

}  // namespace

void stream_generation(ServerContext& ctx, httplib::Response& res, const std::string& content_type, Generation g,
                       std::unique_ptr<StreamFormatter> formatter) {
  auto st = std::make_shared<StreamState>();
  st->ctx = &ctx;
  st->g = std::move(g);
  st->formatter = std::move(formatter);
  res.set_header("Cache-Control", "no-cache");
  ctx.stream_opened();
  res.set_chunked_content_provider(
      content_type,
      [st](size_t /*offset*/, httplib::DataSink& sink) {
        const auto write = [&](const std::string& s) {
          if (s.empty()) return true;
          st->last_write = std::chrono::steady_clock::now();
          return sink.write(s.data(), s.size());
        };
        if (!st->started) {
          st->started = true;
          if (!write(st->formatter->start())) {
            st->client_gone();
            return false;
          }
        }
        StreamToken token;
        switch (st->g.stream->next(&token, kPoll)) {
          case RequestStream::Next::kToken:
            if (!write(st->formatter->token(token))) {
              st->client_gone();
              return false;
            }
            return true;
          case RequestStream::Next::kTimeout: {
            if (!sink.is_writable()) {
              st->client_gone();
              return false;
            }
            if (std::chrono::steady_clock::now() - st->last_write >= kKeepalive &&
                !write(st->formatter->keepalive())) {
              st->client_gone();
              return false;
            }
            return true;
          }
          case RequestStream::Next::kDone:
            write(st->formatter->finish(st->g.stream->result()));
            st->finished = true;
            sink.done();
            return true;
        }
        return true;
      },
      [st](bool /*success*/) {
        // The connection ended (done, or the client went away, or the server stopped) before the
        // request did: cancel it so that its KV blocks are freed.
        st->client_gone();
        st->ctx->stream_closed();
      });
}

}  // namespace edgellm::server
