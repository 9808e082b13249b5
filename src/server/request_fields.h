// Typed, range-checked fields of a JSON request body. Every problem throws RequestError naming the
// field by its path ("options.temperature", "messages[2].content"). Fields a reader does not ask for
// are ignored, as OpenAI does with unknown fields. A field that is present but null counts as absent.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "server/api_error.h"

namespace edgellm::server {

// The body as a JSON object. Errors: not JSON (nlohmann's message, with the byte position; it also
// rejects invalid UTF-8), or not an object.
nlohmann::json parse_json_object(const std::string& body);

class Fields {
 public:
  // `object` must be a JSON object; `path` is its place in the request ("" for the body itself).
  Fields(const nlohmann::json& object, std::string path);

  bool has(const std::string& name) const;
  const nlohmann::json* raw(const std::string& name) const;
  std::optional<double> number(const std::string& name, double min, double max) const;
  std::optional<int64_t> integer(const std::string& name, int64_t min, int64_t max) const;
  std::optional<bool> boolean(const std::string& name) const;
  std::optional<std::string> string(const std::string& name) const;
  // The path of a field, for messages: "options.top_k".
  std::string path(const std::string& name) const;

 private:
  const nlohmann::json& object_;
  std::string path_;
};

// 'text' in quotes, for messages.
std::string quote(const std::string& text);

// A JSON value's type for messages: "a string", "a number", "an array", ...
std::string json_type_name(const nlohmann::json& value);

}  // namespace edgellm::server
