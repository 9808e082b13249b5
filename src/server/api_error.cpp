#include "server/api_error.h"

#include <nlohmann/json.hpp>

namespace edgellm::server {

ApiError api_error_from(const Error& error, const std::string& param) {
  ApiError e;
  e.message = error.message;
  e.param = param;
  switch (error.code) {
    case ErrorCode::kBusy:
      e.status = 503;
      e.type = "server_error";
      e.code = "server_busy";
      e.param.clear();
      break;
    case ErrorCode::kContextFull:
      e.status = 400;
      e.code = "context_length_exceeded";
      break;
    case ErrorCode::kNotFound:
      e.status = 404;
      e.code = "not_found";
      break;
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kUnsupported:
      e.status = 400;
      break;
    case ErrorCode::kAborted:
      e.status = 503;
      e.type = "server_error";
      e.code = "shutting_down";
      e.param.clear();
      break;
    default:
      e.status = 500;
      e.type = "server_error";
      e.param.clear();
      break;
  }
  return e;
}

std::string openai_error_body(const ApiError& error) {
  nlohmann::json body = {{"error",
                          {{"message", error.message},
                           {"type", error.type},
                           {"param", error.param.empty() ? nlohmann::json(nullptr) : nlohmann::json(error.param)},
                           {"code", error.code.empty() ? nlohmann::json(nullptr) : nlohmann::json(error.code)}}}};
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string ollama_error_body(const ApiError& error) {
  return nlohmann::json({{"error", error.message}}).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace edgellm::server
