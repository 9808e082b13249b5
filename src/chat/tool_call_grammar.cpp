#include "chat/tool_call_grammar.h"

#include <set>

#include "grammar/json_schema_grammar.h"

namespace edgellm {

namespace {

using ojson = nlohmann::ordered_json;

const ojson& parameters_of(const ojson& tool) {
  static const ojson kNoParameters = {{"type", "object"}, {"properties", ojson::object()}};
  const ojson& fn = tool["function"];
  if (fn.contains("parameters") && fn["parameters"].is_object()) return fn["parameters"];
  return kNoParameters;
}

// Qwen3-Coder / Qwen3.5: <function=name>\n(<parameter=p>\nvalue\n</parameter>\n)*</function>. String values
// are plain text (no '<'); others are JSON of their schema.
Expected<std::string> xml_function(JsonSchemaGrammar& json, const std::string& name, const ojson& params,
                                   const std::string& rule) {
  std::string body = gbnf_literal("<function=" + name + ">\n");
  const ojson props = params.contains("properties") && params["properties"].is_object() ? params["properties"]
                                                                                          : ojson::object();
  std::set<std::string> required;
  if (params.contains("required") && params["required"].is_array()) {
    for (const auto& r : params["required"]) {
      if (r.is_string()) required.insert(r.get<std::string>());
    }
  }
  for (const auto& [key, schema] : props.items()) {
    std::string value;
    if (schema.is_object() && schema.value("type", ojson()) == "string" && !schema.contains("enum")) {
      // Plain text up to the closing tag, within the schema's length bounds.
      const ojson min = schema.value("minLength", ojson(0u)), max = schema.value("maxLength", ojson());
      if (!min.is_number_unsigned() || (!max.is_null() && !max.is_number_unsigned()) ||
          min.get<uint64_t>() > 10000 || (max.is_number_unsigned() && max.get<uint64_t>() > 10000)) {
        return make_error(ErrorCode::kInvalidArgument, "json_schema: #/properties/" + key +
                                                           ": minLength and maxLength must be integers in [0, 10000]");
      }
      value = "[^<]{" + std::to_string(min.get<uint64_t>()) + "," +
              (max.is_null() ? std::string() : std::to_string(max.get<uint64_t>())) + "}";
    } else {
      EDGELLM_ASSIGN_OR_RETURN(value, json.add(schema, rule + "-" + key));
    }
    const std::string param = gbnf_literal("<parameter=" + key + ">\n") + " " + value + " " +
                              gbnf_literal("\n</parameter>\n");
    body += required.count(key) != 0 ? " " + param : " (" + param + ")?";
  }
  return body + " " + gbnf_literal("</function>\n");
}

}  // namespace

Expected<std::string> tool_call_gbnf(ToolCallFormat format, const ojson& tools, const ToolCallGrammarOptions& options) {
  if (format == ToolCallFormat::kNone) {
    return make_error(ErrorCode::kUnsupported,
                      "the model's chat template has no tool-call format, so a call cannot be forced");
  }
  if (!tools.is_array() || tools.empty()) return make_error(ErrorCode::kInvalidArgument, "no tools to call");
  JsonSchemaGrammar json;
  const std::string ws = json.ws();
  std::string calls;  // alternatives, one per callable tool
  for (size_t i = 0; i < tools.size(); ++i) {
    const ojson& tool = tools[i];
    const std::string name = tool["function"].value("name", "");
    if (!options.only_name.empty() && name != options.only_name) continue;
    const std::string rule = "call-" + std::to_string(i);
    std::string alt;
    if (format == ToolCallFormat::kQwenXml) {
      auto fn = xml_function(json, name, parameters_of(tool), rule);
      if (!fn.ok()) return make_error(fn.error().code, "tools[" + std::to_string(i) + "] ('" + name + "'): " + fn.error().message);
      alt = *fn;
    } else {
      auto args = json.add(parameters_of(tool), rule + "-arguments");
      if (!args.ok()) return make_error(args.error().code, "tools[" + std::to_string(i) + "] ('" + name + "'): " + args.error().message);
      const char* args_key = format == ToolCallFormat::kLlamaJson ? "parameters" : "arguments";
      alt = "\"{\" " + ws + " " + gbnf_literal("\"name\"") + " " + ws + " \":\" " + ws + " " +
            gbnf_literal(ojson(name).dump()) + " " + ws + " \",\" " + ws + " " + gbnf_literal(std::string("\"") + args_key + "\"") +
            " " + ws + " \":\" " + ws + " " + *args + " " + ws + " \"}\"";
    }
    calls += (calls.empty() ? "" : " | ") + alt;
  }
  if (calls.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "no tool is named '" + options.only_name + "'");
  }
  std::string root, block;
  switch (format) {
    case ToolCallFormat::kHermes:
      block = "\"<tool_call>\\n\" call \"\\n</tool_call>\"";
      root = options.parallel ? "call-block (\"\\n\" call-block)*" : "call-block";
      break;
    case ToolCallFormat::kQwenXml:
      block = "\"<tool_call>\\n\" call \"</tool_call>\"";
      root = options.parallel ? "call-block (\"\\n\" call-block)*" : "call-block";
      break;
    default:  // kLlamaJson: the reply is the call; several are separated by ';'
      block = "call";
      root = options.parallel ? "call-block (\"; \" call-block)*" : "call-block";
      break;
  }
  std::string out;
  if (options.starts_in_reasoning) {
    out = "root ::= reasoning \"</think>\" \"\\n\"{0,2} " + root + "\n" + "reasoning ::= ([^<] | \"<\" [^/])*\n";
  } else {
    out = "root ::= " + root + "\n";
  }
  out += "call-block ::= " + block + "\n";
  out += "call ::= " + calls + "\n";
  return out + json.rules();
}

}  // namespace edgellm
