// What constrains a reply, from the fields each dialect uses, as GBNF for the engine (grammar/):
//   OpenAI   "response_format": {"type": "json_object"} | {"type": "json_schema", "json_schema": {"schema": ...}}
//            "tool_choice": "required" | {"type": "function", "function": {"name"}}  (a forced call)
//   llama.cpp's extensions (also accepted by edgellm): "grammar": "<GBNF>", "json_schema": {...}
//   Ollama   "format": "json" | {JSON Schema}
// At most one may be given; the grammar is compiled against the model's vocabulary here, so that a bad
// grammar or schema is a 400 naming the field and the line, column or schema keyword.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "chat/tool_call_grammar.h"
#include "engine/engine.h"
#include "server/server_context.h"
#include "server/tool_fields.h"

namespace edgellm::server {

struct ReplyGrammar {
  std::string gbnf;   // "" when the request has no constraint
  std::string field;  // the field it came from, for errors
};

// The OpenAI request's constraint: response_format, grammar or json_schema. `ordered` is the body in the
// client's key order (a schema's properties are written in that order).
ReplyGrammar openai_reply_grammar(const nlohmann::ordered_json& ordered);

// Ollama's "format" ("" when absent or "").
std::string ollama_reply_grammar(const nlohmann::ordered_json& ordered);

// A forced call's grammar for the model's tool-call format; a 400 naming "tool_choice" when the model's
// template has no tool-call syntax.
std::string forced_call_grammar(const ServedModel& model, const nlohmann::ordered_json& tools,
                                const ToolChoiceField& choice, bool parallel, bool starts_in_reasoning);

// Compiles `gbnf` (unless empty) into r.grammar; a bad grammar is a 400 for `param`.
void set_reply_grammar(const ServedModel& model, const std::string& gbnf, const std::string& param, EngineRequest& r);

}  // namespace edgellm::server
