// Reading function calls out of a model's reply, in the format its chat template taught it:
//   kHermes    <tool_call>\n{"name": "f", "arguments": {...}}\n</tool_call>   Qwen2.5, Qwen3, Hermes 2/3
//   kQwenXml   <tool_call>\n<function=f>\n<parameter=p>\nvalue\n</parameter>\n</function>\n</tool_call>
//              Qwen3-Coder, Qwen3.5
//   kLlamaJson the whole reply is {"name": "f", "parameters": {...}} (optionally after <|python_tag|>;
//              several separated by ';'), Llama 3.1 / 3.2
// A call that does not parse stays text: the client sees what the model wrote, never a made-up call.
//
// ToolCallStream does the same on a reply as it streams: text that cannot be part of a call goes out at
// once; text that may begin one is held back until it is clearly text or the call is complete, and a call is
// emitted once, whole.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace edgellm {

enum class ToolCallFormat { kNone, kHermes, kQwenXml, kLlamaJson };
const char* tool_call_format_name(ToolCallFormat format);

// The format a chat template's source teaches (kNone when it has no tool-call syntax).
ToolCallFormat tool_call_format_for_template(std::string_view jinja_source);

struct ToolCall {
  std::string name;
  nlohmann::ordered_json arguments = nlohmann::ordered_json::object();  // an object
  std::string id;  // "call_<n>" unique within a reply, filled by the reader
};

struct ParsedReply {
  std::string content;           // the text outside the calls, as written
  std::vector<ToolCall> calls;   // in order
};

// Splits a whole reply. Call ids are "call_<index>" unless `id_prefix` says otherwise.
ParsedReply parse_tool_calls(ToolCallFormat format, std::string_view reply, std::string_view id_prefix = "call_");

class ToolCallStream {
 public:
  explicit ToolCallStream(ToolCallFormat format, std::string id_prefix = "call_")
      : format_(format), id_prefix_(std::move(id_prefix)) {}

  struct Output {
    std::string text;              // text to show now (may be empty)
    std::vector<ToolCall> calls;   // calls completed by this piece
  };
  Output feed(std::string_view piece);
  // The end of the reply: whatever was held back, as text or calls.
  Output finish();
  int calls_emitted() const { return n_calls_; }

 private:
  ToolCallFormat format_;
  std::string id_prefix_;
  std::string pending_;   // held back: a possible start of a call, or an unfinished call
  bool in_call_ = false;  // pending_ starts with an opening tag
  bool leading_ = true;   // nothing but whitespace emitted so far (Llama's reply-is-a-call form)
  bool llama_call_ = false;
  int n_calls_ = 0;
};

}  // namespace edgellm
