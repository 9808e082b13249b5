// JSON Schema -> GBNF: a grammar whose every match is JSON valid against the schema, for OpenAI's
// response_format json_schema, Ollama's format, and the arguments of a forced tool call.
//
// Covered: type (one or a list), properties / required / additionalProperties (false, true or a schema),
// items / prefixItems / minItems / maxItems, minLength / maxLength, enum, const, anyOf / oneOf, allOf of
// objects, $ref into #/$defs or #/definitions (recursion allowed), nullable types. Properties come in the
// schema's order; optional ones may be left out. Ignored, so not enforced: numeric bounds (minimum, maximum,
// multipleOf), format, and annotations (title, description, examples, default). Rejected with an error
// naming the keyword and where it is: pattern, patternProperties, not, if/then/else, dependentSchemas and
// unknown types or $ref targets.
#pragma once

#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/expected.h"

namespace edgellm {

// Builds the rules for one or more schemas into one grammar (a tool-call grammar holds one per tool). Rules
// for JSON's primitives (json-string, json-ws, ...) are shared; each schema's own rules are named after it.
class JsonSchemaGrammar {
 public:
  // Adds the rules matching `schema`; returns the name of its top rule (derived from `name`, made unique).
  // Errors name the unsupported keyword and its place, e.g. "json_schema: #/properties/zip: 'pattern' is not
  // supported".
  Expected<std::string> add(const nlohmann::ordered_json& schema, const std::string& name);
  // The whitespace rule's name (between tokens; at most a few spaces and newlines, so a model cannot pad forever).
  std::string ws();
  // Every rule added so far, as GBNF.
  std::string rules() const;

 private:
  struct Context;
  Expected<std::string> visit(const nlohmann::ordered_json& schema, const std::string& name, const std::string& path,
                              Context& ctx);
  Expected<std::string> visit_object(const nlohmann::ordered_json& schema, const std::string& name,
                                     const std::string& path, Context& ctx);
  Expected<std::string> visit_array(const nlohmann::ordered_json& schema, const std::string& name,
                                    const std::string& path, Context& ctx);
  std::string primitive(const std::string& type);
  std::string unique_name(const std::string& base);
  std::string add_rule(const std::string& base, const std::string& body);

  std::vector<std::pair<std::string, std::string>> rules_;  // name, body, in the order added
  std::set<std::string> names_;
};

// A whole grammar: root ::= the schema's value.
Expected<std::string> json_schema_to_gbnf(const nlohmann::ordered_json& schema);

// Any JSON object (OpenAI response_format {"type": "json_object"}, Ollama format "json").
std::string json_object_gbnf();

// `text` as a GBNF literal ("..." with escapes).
std::string gbnf_literal(const std::string& text);

}  // namespace edgellm
