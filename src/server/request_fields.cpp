#include "server/request_fields.h"

#include <cmath>
#include <sstream>

namespace edgellm::server {

std::string quote(const std::string& text) {
  std::string out;
  out.reserve(text.size() + 2);
  out.push_back('\'');
  out.append(text);
  out.push_back('\'');
  return out;
}

std::string json_type_name(const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::null: return "null";
    case nlohmann::json::value_t::object: return "an object";
    case nlohmann::json::value_t::array: return "an array";
    case nlohmann::json::value_t::string: return "a string";
    case nlohmann::json::value_t::boolean: return "a boolean";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float: return "a number";
    default: return "something else";
  }
}

nlohmann::json parse_json_object(const std::string& body) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(body);
  } catch (const nlohmann::json::parse_error& e) {
    bad_request("", std::string("the request body is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) bad_request("", "the request body must be a JSON object, got " + json_type_name(j));
  return j;
}

Fields::Fields(const nlohmann::json& object, std::string path) : object_(object), path_(std::move(path)) {
  if (!object_.is_object()) bad_request(path_, quote(path_) + " must be an object, got " + json_type_name(object_));
}

std::string Fields::path(const std::string& name) const { return path_.empty() ? name : path_ + "." + name; }

const nlohmann::json* Fields::raw(const std::string& name) const {
  const auto it = object_.find(name);
  if (it == object_.end() || it->is_null()) return nullptr;
  return &*it;
}

bool Fields::has(const std::string& name) const { return raw(name) != nullptr; }

namespace {

std::string format_number(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

}  // namespace

std::optional<double> Fields::number(const std::string& name, double min, double max) const {
  const nlohmann::json* v = raw(name);
  if (v == nullptr) return std::nullopt;
  if (!v->is_number()) bad_request(path(name), quote(path(name)) + " must be a number, got " + json_type_name(*v));
  const double d = v->get<double>();
  if (!std::isfinite(d) || d < min || d > max) {
    bad_request(path(name), quote(path(name)) + " must be between " + format_number(min) + " and " +
                                format_number(max) + ", got " + format_number(d));
  }
  return d;
}

std::optional<int64_t> Fields::integer(const std::string& name, int64_t min, int64_t max) const {
  const nlohmann::json* v = raw(name);
  if (v == nullptr) return std::nullopt;
  int64_t i = 0;
  if (v->is_number_integer()) {
    i = v->get<int64_t>();
  } else if (v->is_number_unsigned()) {
    const uint64_t u = v->get<uint64_t>();
    i = u > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(u);
  } else if (v->is_number_float() && std::floor(v->get<double>()) == v->get<double>() &&
             std::fabs(v->get<double>()) < 9e15) {
    i = static_cast<int64_t>(v->get<double>());  // 16.0 is an integer in JSON's eyes
  } else {
    bad_request(path(name), quote(path(name)) + " must be an integer, got " +
                                (v->is_number() ? "a fractional number" : json_type_name(*v)));
  }
  if (i < min || i > max) {
    bad_request(path(name), quote(path(name)) + " must be between " + std::to_string(min) + " and " +
                                std::to_string(max) + ", got " + std::to_string(i));
  }
  return i;
}

std::optional<bool> Fields::boolean(const std::string& name) const {
  const nlohmann::json* v = raw(name);
  if (v == nullptr) return std::nullopt;
  if (!v->is_boolean()) bad_request(path(name), quote(path(name)) + " must be true or false, got " + json_type_name(*v));
  return v->get<bool>();
}

std::optional<std::string> Fields::string(const std::string& name) const {
  const nlohmann::json* v = raw(name);
  if (v == nullptr) return std::nullopt;
  if (!v->is_string()) bad_request(path(name), quote(path(name)) + " must be a string, got " + json_type_name(*v));
  return v->get<std::string>();
}

}  // namespace edgellm::server
