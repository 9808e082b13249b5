// The grammar of a forced function call (OpenAI tool_choice "required" or a named function): the reply is
// one call (or several, when parallel calls are allowed) in the format the model's chat template taught it,
// with arguments valid against the tool's JSON Schema. chat/tool_calls.h reads the calls back.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "chat/tool_calls.h"
#include "util/expected.h"

namespace edgellm {

struct ToolCallGrammarOptions {
  std::string only_name;          // "" : any of the tools; else exactly this function
  bool parallel = true;           // one or more calls (else exactly one)
  bool starts_in_reasoning = false;  // the prompt opened a <think> block: the reply finishes it first
};

// `tools` as the chat template receives them ([{"type": "function", "function": {"name", "parameters"}}]).
// Errors: kUnsupported when the format is kNone (the template has no tool-call syntax), kInvalidArgument
// naming the tool whose parameters schema cannot be turned into a grammar.
Expected<std::string> tool_call_gbnf(ToolCallFormat format, const nlohmann::ordered_json& tools,
                                     const ToolCallGrammarOptions& options);

}  // namespace edgellm
