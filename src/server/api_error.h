// A request the server refuses, and how each dialect says so: OpenAI's
// {"error": {"message", "type", "param", "code"}} and Ollama's {"error": "message"}.
#pragma once

#include <stdexcept>
#include <string>

#include "util/expected.h"

namespace edgellm::server {

struct ApiError {
  int status = 400;
  std::string message;
  std::string param;                            // the request field at fault, "" if none
  std::string type = "invalid_request_error";   // OpenAI's error type
  std::string code;                             // OpenAI's error code, "" if none
  int retry_after_seconds = 0;                  // 429: the Retry-After header
};

// Thrown while reading a request (server/request_fields.h) and caught by the route, which answers with
// the error in its dialect. Never escapes a route.
class RequestError : public std::runtime_error {
 public:
  explicit RequestError(ApiError error) : std::runtime_error(error.message), error_(std::move(error)) {}
  const ApiError& error() const { return error_; }

 private:
  ApiError error_;
};

// 400 naming `param`.
[[noreturn]] inline void bad_request(std::string param, std::string message) {
  ApiError e;
  e.message = std::move(message);
  e.param = std::move(param);
  throw RequestError(std::move(e));
}

// The HTTP status and OpenAI type of an engine/runtime error: a full queue is 503 (try again), a prompt
// that does not fit 400, an unknown adapter 404, anything unexpected 500.
ApiError api_error_from(const Error& error, const std::string& param = {});

std::string openai_error_body(const ApiError& error);
std::string ollama_error_body(const ApiError& error);

}  // namespace edgellm::server
