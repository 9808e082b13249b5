#include "server/reply_grammar.h"

#include "grammar/json_schema_grammar.h"
#include "server/api_error.h"

namespace edgellm::server {

namespace {

using ojson = nlohmann::ordered_json;

std::string schema_grammar(const ojson& schema, const std::string& param) {
  auto gbnf = json_schema_to_gbnf(schema);
  if (!gbnf.ok()) bad_request(param, "'" + param + "': " + gbnf.error().message);
  return *gbnf;
}

}  // namespace

ReplyGrammar openai_reply_grammar(const ojson& ordered) {
  std::string gbnf, from;
  auto take = [&](const std::string& field, std::string g) {
    if (!from.empty()) bad_request(field, "'" + field + "' and '" + from + "' both constrain the reply: give one");
    from = field;
    gbnf = std::move(g);
  };
  if (auto rf = ordered.find("response_format"); rf != ordered.end() && !rf->is_null()) {
    if (!rf->is_object()) bad_request("response_format", "'response_format' must be an object");
    const ojson type = rf->value("type", ojson("text"));
    if (type == "json_object") {
      take("response_format", json_object_gbnf());
    } else if (type == "json_schema") {
      const auto js = rf->find("json_schema");
      if (js == rf->end() || !js->is_object()) {
        bad_request("response_format.json_schema", "'response_format.json_schema' is required for type 'json_schema'");
      }
      const auto schema = js->find("schema");
      if (schema == js->end()) {
        bad_request("response_format.json_schema.schema", "'response_format.json_schema.schema' is required");
      }
      take("response_format", schema_grammar(*schema, "response_format.json_schema.schema"));
    } else if (type != "text") {
      bad_request("response_format.type",
                  "'response_format.type' must be 'text', 'json_object' or 'json_schema', got " + type.dump());
    }
  }
  if (auto g = ordered.find("grammar"); g != ordered.end() && !g->is_null()) {
    if (!g->is_string()) bad_request("grammar", "'grammar' must be a string (GBNF)");
    if (!g->get<std::string>().empty()) take("grammar", g->get<std::string>());
  }
  if (auto js = ordered.find("json_schema"); js != ordered.end() && !js->is_null()) {
    take("json_schema", schema_grammar(*js, "json_schema"));
  }
  return {gbnf, from};
}

std::string ollama_reply_grammar(const ojson& ordered) {
  const auto format = ordered.find("format");
  if (format == ordered.end() || format->is_null()) return "";
  if (format->is_string()) {
    const std::string f = format->get<std::string>();
    if (f.empty()) return "";
    if (f == "json") return json_object_gbnf();
    bad_request("format", "'format' must be \"json\" or a JSON Schema object, got \"" + f + "\"");
  }
  if (!format->is_object()) bad_request("format", "'format' must be \"json\" or a JSON Schema object");
  return schema_grammar(*format, "format");
}

std::string forced_call_grammar(const ServedModel& model, const ojson& tools, const ToolChoiceField& choice,
                                bool parallel, bool starts_in_reasoning) {
  ToolCallGrammarOptions o;
  o.only_name = choice.choice == ToolChoice::kNamed ? choice.name : "";
  o.parallel = parallel;
  o.starts_in_reasoning = starts_in_reasoning;
  auto gbnf = tool_call_gbnf(model.model->chat_template().tool_call_format(), tools, o);
  if (!gbnf.ok()) bad_request("tool_choice", "'tool_choice' forces a call, but " + gbnf.error().message);
  return *gbnf;
}

void set_reply_grammar(const ServedModel& model, const std::string& gbnf, const std::string& param, EngineRequest& r) {
  if (gbnf.empty()) return;
  auto compiled = model.model->compile_grammar(gbnf);
  if (!compiled.ok()) bad_request(param, "'" + param + "': " + compiled.error().message);
  r.grammar = std::move(*compiled);
}

}  // namespace edgellm::server
