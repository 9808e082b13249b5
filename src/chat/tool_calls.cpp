#include "chat/tool_calls.h"

#include <algorithm>

namespace edgellm {
namespace {

constexpr std::string_view kOpen = "<tool_call>";
constexpr std::string_view kClose = "</tool_call>";
constexpr std::string_view kPythonTag = "<|python_tag|>";

bool contains(std::string_view text, std::string_view needle) { return text.find(needle) != std::string_view::npos; }

std::string_view trim(std::string_view s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  const size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::optional<nlohmann::ordered_json> parse_json(std::string_view text) {
  try {
    return nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

// {"name": "f", "arguments": {...}} (or "parameters"; arguments given as a JSON string are parsed).
std::optional<ToolCall> call_from_json(const nlohmann::ordered_json& j) {
  if (!j.is_object()) return std::nullopt;
  const auto name = j.find("name");
  if (name == j.end() || !name->is_string() || name->get<std::string>().empty()) return std::nullopt;
  ToolCall call;
  call.name = name->get<std::string>();
  for (const char* key : {"arguments", "parameters"}) {
    const auto args = j.find(key);
    if (args == j.end()) continue;
    if (args->is_object()) {
      call.arguments = *args;
    } else if (args->is_string()) {
      auto parsed = parse_json(args->get<std::string>());
      if (!parsed || !parsed->is_object()) return std::nullopt;
      call.arguments = std::move(*parsed);
    } else if (!args->is_null()) {
      return std::nullopt;
    }
    break;
  }
  return call;
}

// <function=f>\n<parameter=p>\nvalue\n</parameter>...</function>
std::optional<ToolCall> call_from_xml(std::string_view body) {
  body = trim(body);
  constexpr std::string_view kFn = "<function=";
  if (body.substr(0, kFn.size()) != kFn) return std::nullopt;
  const size_t name_end = body.find('>');
  if (name_end == std::string_view::npos) return std::nullopt;
  ToolCall call;
  call.name = std::string(trim(body.substr(kFn.size(), name_end - kFn.size())));
  if (call.name.empty()) return std::nullopt;
  std::string_view rest = body.substr(name_end + 1);
  const size_t fn_end = rest.rfind("</function>");
  if (fn_end == std::string_view::npos) return std::nullopt;
  if (!trim(rest.substr(fn_end + 11)).empty()) return std::nullopt;
  rest = rest.substr(0, fn_end);
  constexpr std::string_view kParam = "<parameter=";
  for (;;) {
    rest = trim(rest);
    if (rest.empty()) break;
    if (rest.substr(0, kParam.size()) != kParam) return std::nullopt;
    const size_t pname_end = rest.find('>');
    if (pname_end == std::string_view::npos) return std::nullopt;
    const std::string pname(trim(rest.substr(kParam.size(), pname_end - kParam.size())));
    const size_t close = rest.find("</parameter>", pname_end);
    if (pname.empty() || close == std::string_view::npos) return std::nullopt;
    std::string_view value = rest.substr(pname_end + 1, close - pname_end - 1);
    if (!value.empty() && value.front() == '\n') value.remove_prefix(1);
    if (!value.empty() && value.back() == '\n') value.remove_suffix(1);
    // Numbers, booleans, null, objects and arrays as JSON; anything else is the string itself.
    auto parsed = parse_json(value);
    if (parsed && !parsed->is_string()) {
      call.arguments[pname] = std::move(*parsed);
    } else {
      call.arguments[pname] = std::string(value);
    }
    rest = rest.substr(close + 12);
  }
  return call;
}

std::optional<ToolCall> parse_block(ToolCallFormat format, std::string_view inner) {
  if (format == ToolCallFormat::kQwenXml) {
    if (auto xml = call_from_xml(inner)) return xml;
  }
  // Qwen3.5 models sometimes write JSON inside <tool_call> and Hermes-format models never write XML: try both.
  if (auto j = parse_json(trim(inner))) return call_from_json(*j);
  if (format == ToolCallFormat::kHermes) return call_from_xml(inner);
  return std::nullopt;
}

// The whole reply as Llama's JSON calls, or nothing.
std::optional<std::vector<ToolCall>> parse_llama(std::string_view reply) {
  reply = trim(reply);
  if (reply.substr(0, kPythonTag.size()) == kPythonTag) reply = trim(reply.substr(kPythonTag.size()));
  if (reply.empty() || reply.front() != '{') return std::nullopt;
  std::vector<ToolCall> calls;
  // Several calls are separated by ';' between objects; split at top-level ';' outside strings.
  size_t start = 0;
  int depth = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i <= reply.size(); ++i) {
    if (i < reply.size()) {
      const char c = reply[i];
      if (in_string) {
        if (escaped) {
          escaped = false;
        } else if (c == '\\') {
          escaped = true;
        } else if (c == '"') {
          in_string = false;
        }
        continue;
      }
      if (c == '"') in_string = true;
      if (c == '{' || c == '[') ++depth;
      if (c == '}' || c == ']') --depth;
      if (!(c == ';' && depth == 0)) continue;
    }
    auto j = parse_json(trim(reply.substr(start, i - start)));
    if (!j) return std::nullopt;
    auto call = call_from_json(*j);
    if (!call) return std::nullopt;
    calls.push_back(std::move(*call));
    start = i + 1;
  }
  return calls;
}

// Length of the longest suffix of `text` that is a proper prefix of `marker`.
size_t partial_marker(std::string_view text, std::string_view marker) {
  for (size_t k = std::min(text.size(), marker.size() - 1); k > 0; --k) {
    if (text.substr(text.size() - k) == marker.substr(0, k)) return k;
  }
  return 0;
}

}  // namespace

const char* tool_call_format_name(ToolCallFormat format) {
  switch (format) {
    case ToolCallFormat::kNone: return "none";
    case ToolCallFormat::kHermes: return "hermes";
    case ToolCallFormat::kQwenXml: return "qwen-xml";
    case ToolCallFormat::kLlamaJson: return "llama-json";
  }
  return "?";
}

ToolCallFormat tool_call_format_for_template(std::string_view source) {
  if (contains(source, "<function=") && contains(source, "<parameter=")) return ToolCallFormat::kQwenXml;
  if (contains(source, "<tool_call>")) return ToolCallFormat::kHermes;
  if (contains(source, "<|python_tag|>") || contains(source, "\"parameters\": dictionary of argument name")) {
    return ToolCallFormat::kLlamaJson;
  }
  return ToolCallFormat::kNone;
}

ParsedReply parse_tool_calls(ToolCallFormat format, std::string_view reply, std::string_view id_prefix) {
  ToolCallStream stream(format, std::string(id_prefix));
  ToolCallStream::Output a = stream.feed(reply);
  ToolCallStream::Output b = stream.finish();
  ParsedReply out;
  out.content = a.text + b.text;
  out.calls = std::move(a.calls);
  for (auto& c : b.calls) out.calls.push_back(std::move(c));
  if (!out.calls.empty()) out.content = std::string(trim(out.content));
  return out;
}

ToolCallStream::Output ToolCallStream::feed(std::string_view piece) {
  Output out;
  if (format_ == ToolCallFormat::kNone) {
    out.text = std::string(piece);
    return out;
  }
  pending_ += piece;
  if (format_ == ToolCallFormat::kLlamaJson) {
    if (llama_call_) return out;  // the reply is a call: read it whole at the end
    if (leading_) {
      const std::string_view t = trim(pending_);
      if (t.empty()) return out;
      if (t.front() == '{' || t.substr(0, kPythonTag.size()) == kPythonTag) {
        llama_call_ = true;
        return out;
      }
      if (std::string_view(kPythonTag).substr(0, t.size()) == t) return out;  // maybe the tag, still coming
      leading_ = false;
    }
    out.text = std::move(pending_);
    pending_.clear();
    return out;
  }
  for (;;) {
    if (!in_call_) {
      const size_t at = pending_.find(kOpen);
      if (at != std::string::npos) {
        out.text += pending_.substr(0, at);
        pending_.erase(0, at);
        in_call_ = true;
        continue;
      }
      const size_t keep = partial_marker(pending_, kOpen);
      out.text += pending_.substr(0, pending_.size() - keep);
      pending_.erase(0, pending_.size() - keep);
      break;
    }
    const size_t end = pending_.find(kClose);
    if (end == std::string::npos) break;
    const std::string block = pending_.substr(0, end + kClose.size());
    pending_.erase(0, end + kClose.size());
    in_call_ = false;
    auto call = parse_block(format_, std::string_view(block).substr(kOpen.size(), end - kOpen.size()));
    if (call) {
      call->id = id_prefix_ + std::to_string(n_calls_++);
      out.calls.push_back(std::move(*call));
    } else {
      out.text += block;  // not a call after all: the model's text as written
    }
  }
  return out;
}

ToolCallStream::Output ToolCallStream::finish() {
  Output out;
  if (format_ == ToolCallFormat::kLlamaJson && llama_call_) {
    if (auto calls = parse_llama(pending_)) {
      for (auto& c : *calls) {
        c.id = id_prefix_ + std::to_string(n_calls_++);
        out.calls.push_back(std::move(c));
      }
    } else {
      out.text = pending_;
    }
    pending_.clear();
    return out;
  }
  if (in_call_) {
    // The reply ended inside <tool_call> (the model stopped at its end-of-turn token before the closing tag).
    if (auto call = parse_block(format_, std::string_view(pending_).substr(kOpen.size()))) {
      call->id = id_prefix_ + std::to_string(n_calls_++);
      out.calls.push_back(std::move(*call));
      pending_.clear();
      in_call_ = false;
      return out;
    }
  }
  out.text = std::move(pending_);
  pending_.clear();
  in_call_ = false;
  return out;
}

}  // namespace edgellm
