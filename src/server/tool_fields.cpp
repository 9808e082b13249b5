#include "server/tool_fields.h"

#include "server/api_error.h"
#include "server/request_fields.h"

namespace edgellm::server {

using nlohmann::json;
using nlohmann::ordered_json;

nlohmann::ordered_json read_tools(const ordered_json& body) {
  const auto it = body.find("tools");
  if (it == body.end() || it->is_null()) return nullptr;
  if (!it->is_array()) bad_request("tools", "'tools' must be an array, got " + std::string(it->type_name()));
  if (it->empty()) return nullptr;
  for (size_t i = 0; i < it->size(); ++i) {
    const std::string path = "tools[" + std::to_string(i) + "]";
    const ordered_json& t = (*it)[i];
    if (!t.is_object()) bad_request(path, quote(path) + " must be an object");
    const auto type = t.find("type");
    if (type != t.end() && !(type->is_string() && type->get<std::string>() == "function")) {
      bad_request(path + ".type", quote(path + ".type") + " must be 'function'");
    }
    const auto fn = t.find("function");
    if (fn == t.end() || !fn->is_object()) bad_request(path + ".function", quote(path + ".function") + " is required");
    const auto name = fn->find("name");
    if (name == fn->end() || !name->is_string() || name->get<std::string>().empty()) {
      bad_request(path + ".function.name", quote(path + ".function.name") + " must be a non-empty string");
    }
    const auto params = fn->find("parameters");
    if (params != fn->end() && !params->is_null() && !params->is_object()) {
      bad_request(path + ".function.parameters", quote(path + ".function.parameters") + " must be a JSON Schema object");
    }
  }
  return *it;
}

nlohmann::ordered_json read_message_tool_calls(const ordered_json& body, size_t index) {
  const auto& m = body["messages"][index];
  const auto it = m.find("tool_calls");
  if (it == m.end() || it->is_null()) return nullptr;
  const std::string path = "messages[" + std::to_string(index) + "].tool_calls";
  if (!it->is_array()) bad_request(path, quote(path) + " must be an array");
  ordered_json calls = *it;
  for (size_t i = 0; i < calls.size(); ++i) {
    const std::string p = path + "[" + std::to_string(i) + "]";
    ordered_json& call = calls[i];
    if (!call.is_object()) bad_request(p, quote(p) + " must be an object");
    ordered_json* fn = call.contains("function") ? &call["function"] : &call;
    if (!fn->is_object() || !fn->contains("name") || !(*fn)["name"].is_string()) {
      bad_request(p + ".function.name", quote(p + ".function.name") + " must be a string");
    }
    auto args = fn->find("arguments");
    if (args != fn->end() && args->is_string()) {
      try {
        auto parsed = ordered_json::parse(args->get<std::string>());
        if (parsed.is_object()) *args = std::move(parsed);
      } catch (const json::parse_error&) {
        bad_request(p + ".function.arguments", quote(p + ".function.arguments") + " is not valid JSON");
      }
    }
  }
  return calls;
}

ToolChoiceField read_tool_choice(const json& body, const ordered_json& tools) {
  ToolChoiceField out;
  const auto it = body.find("tool_choice");
  if (it == body.end() || it->is_null()) return out;
  if (it->is_string()) {
    const std::string v = it->get<std::string>();
    if (v == "auto") return out;
    if (v == "none") {
      out.choice = ToolChoice::kNone;
      return out;
    }
    if (v == "required") {
      if (!tools.is_array()) bad_request("tool_choice", "'tool_choice': 'required' needs 'tools'");
      out.choice = ToolChoice::kRequired;
      return out;
    }
    bad_request("tool_choice", "'tool_choice' must be 'auto', 'none', 'required' or a function, got '" + v + "'");
  }
  if (it->is_object()) {
    const Fields f(*it, "tool_choice");
    std::string name;
    if (const json* fn = f.raw("function")) name = Fields(*fn, "tool_choice.function").string("name").value_or("");
    if (name.empty()) bad_request("tool_choice.function.name", "'tool_choice.function.name' is required");
    bool known = false;
    if (tools.is_array()) {
      for (const auto& t : tools) known = known || t["function"]["name"] == name;
    }
    if (!known) bad_request("tool_choice", "'tool_choice' names '" + name + "', which is not among 'tools'");
    out.choice = ToolChoice::kNamed;
    out.name = name;
    return out;
  }
  bad_request("tool_choice", "'tool_choice' must be a string or an object");
}

json openai_tool_calls(const std::vector<ToolCall>& calls, int first_index, bool with_index) {
  json out = json::array();
  for (size_t i = 0; i < calls.size(); ++i) {
    json c = {{"id", calls[i].id},
              {"type", "function"},
              {"function", {{"name", calls[i].name}, {"arguments", calls[i].arguments.dump()}}}};
    if (with_index) c["index"] = first_index + static_cast<int>(i);
    out.push_back(std::move(c));
  }
  return out;
}

json ollama_tool_calls(const std::vector<ToolCall>& calls) {
  json out = json::array();
  for (const ToolCall& c : calls) {
    out.push_back({{"function", {{"name", c.name}, {"arguments", json::parse(c.arguments.dump())}}}});
  }
  return out;
}

}  // namespace edgellm::server
