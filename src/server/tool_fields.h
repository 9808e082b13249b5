// Function calling in both HTTP dialects: reading tool definitions and the calls and results in a
// conversation, and writing the calls a reply holds (chat/tool_calls.h reads them from the text).
//   OpenAI: "tools": [{"type": "function", "function": {"name", "description", "parameters"}}],
//           "tool_choice": "auto" | "none" | "required" | {"type": "function", "function": {"name"}},
//           assistant "tool_calls": [{"id", "type": "function", "function": {"name", "arguments": "<JSON text>"}}],
//           {"role": "tool", "tool_call_id", "content"}; finish_reason "tool_calls".
//   Ollama: the same "tools"; "tool_calls": [{"function": {"name", "arguments": {...}}}].
// The request body is read a second time as ordered JSON so that tool definitions and arguments keep the key
// order the client wrote, which is how transformers renders them.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "chat/chat_template.h"
#include "chat/tool_calls.h"

namespace edgellm::server {

// The body's "tools", checked (an array of {"type": "function", "function": {"name": non-empty string, ...}});
// null when absent or empty. Errors throw RequestError naming the field.
nlohmann::ordered_json read_tools(const nlohmann::ordered_json& body);

// messages[i].tool_calls from the ordered body (null when absent); arguments given as JSON text are parsed
// into objects, as the templates expect. Errors throw RequestError naming the field.
nlohmann::ordered_json read_message_tool_calls(const nlohmann::ordered_json& body, size_t index);

enum class ToolChoice { kAuto, kNone, kRequired, kNamed };
struct ToolChoiceField {
  ToolChoice choice = ToolChoice::kAuto;
  std::string name;  // kNamed
};
// "tool_choice". kRequired and kNamed force a call (server/reply_grammar.h builds its grammar); a named
// function that is not among the tools, or "required" without tools, is a 400.
ToolChoiceField read_tool_choice(const nlohmann::json& body, const nlohmann::ordered_json& tools);

// Calls as OpenAI writes them in a message (arguments as JSON text) and in a streamed delta (with "index").
nlohmann::json openai_tool_calls(const std::vector<ToolCall>& calls, int first_index = 0, bool with_index = false);
// Calls as Ollama writes them (arguments as an object).
nlohmann::json ollama_tool_calls(const std::vector<ToolCall>& calls);

}  // namespace edgellm::server
