#include "grammar/json_schema_grammar.h"

#include <map>

namespace edgellm {

namespace {

using ojson = nlohmann::ordered_json;

// JSON's own syntax (RFC 8259), with bounded whitespace (one space, or a newline and indentation) and digit runs so that a constrained model cannot
// produce an endless number or padding.
const std::map<std::string, std::string>& primitive_bodies() {
  static const std::map<std::string, std::string> bodies = {
      {"json-ws", "(\" \" | \"\\n\" [ \\t]{0,20})?"},  // compact or pretty-printed, never unbounded
      {"json-char", "[^\"\\\\\\x00-\\x1F] | \"\\\\\" ([\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4})"},
      {"json-string", "\"\\\"\" json-char* \"\\\"\""},
      {"json-integer", "\"-\"? (\"0\" | [1-9] [0-9]{0,15})"},
      {"json-number", "\"-\"? (\"0\" | [1-9] [0-9]{0,15}) (\".\" [0-9]{1,16})? ([eE] [-+]? [0-9]{1,3})?"},
      {"json-boolean", "\"true\" | \"false\""},
      {"json-null", "\"null\""},
      {"json-value", "json-object | json-array | json-string | json-number | json-boolean | json-null"},
      {"json-object",
       "\"{\" json-ws (json-string json-ws \":\" json-ws json-value json-ws (\",\" json-ws json-string json-ws \":\" "
       "json-ws json-value json-ws)*)? \"}\""},
      {"json-array", "\"[\" json-ws (json-value json-ws (\",\" json-ws json-value json-ws)*)? \"]\""},
  };
  return bodies;
}

// Which primitives a primitive's body refers to.
const std::map<std::string, std::vector<std::string>>& primitive_deps() {
  static const std::map<std::string, std::vector<std::string>> deps = {
      {"json-string", {"json-char"}},
      {"json-value", {"json-object", "json-array", "json-string", "json-number", "json-boolean", "json-null"}},
      {"json-object", {"json-ws", "json-string", "json-value"}},
      {"json-array", {"json-ws", "json-value"}},
  };
  return deps;
}

std::string sanitize(const std::string& name) {
  std::string out;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
    out += ok ? c : '-';
  }
  return out.empty() ? std::string("schema") : out;
}

Error schema_error(const std::string& path, const std::string& what) {
  return make_error(ErrorCode::kInvalidArgument, "json_schema: " + path + ": " + what);
}

}  // namespace

std::string gbnf_literal(const std::string& text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20) {
      static const char* hex = "0123456789ABCDEF";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

struct JsonSchemaGrammar::Context {
  const ojson* root;
  std::map<std::string, std::string> refs;  // "$ref" value -> rule name
  int depth = 0;
};

std::string JsonSchemaGrammar::unique_name(const std::string& base) {
  std::string name = sanitize(base);
  if (names_.count(name) != 0 || name.rfind("json-", 0) == 0 || name == "root") {
    for (int i = 2;; ++i) {
      const std::string candidate = name + "-" + std::to_string(i);
      if (names_.count(candidate) == 0) {
        name = candidate;
        break;
      }
    }
  }
  names_.insert(name);
  return name;
}

std::string JsonSchemaGrammar::add_rule(const std::string& base, const std::string& body) {
  const std::string name = unique_name(base);
  rules_.emplace_back(name, body);
  return name;
}

std::string JsonSchemaGrammar::primitive(const std::string& type) {
  const std::string name = type.rfind("json-", 0) == 0 ? type : "json-" + type;
  if (names_.count(name) != 0) return name;
  names_.insert(name);
  rules_.emplace_back(name, primitive_bodies().at(name));
  auto deps = primitive_deps().find(name);
  if (deps != primitive_deps().end()) {
    for (const auto& d : deps->second) primitive(d);
  }
  return name;
}

std::string JsonSchemaGrammar::ws() { return primitive("json-ws"); }

std::string JsonSchemaGrammar::rules() const {
  std::string out;
  for (const auto& [name, body] : rules_) out += name + " ::= " + body + "\n";
  return out;
}

Expected<std::string> JsonSchemaGrammar::add(const ojson& schema, const std::string& name) {
  Context ctx{&schema, {}, 0};
  return visit(schema, name, "#", ctx);
}

Expected<std::string> JsonSchemaGrammar::visit(const ojson& schema, const std::string& name, const std::string& path,
                                               Context& ctx) {
  if (++ctx.depth > 64) return schema_error(path, "nested more than 64 levels deep");
  struct DepthGuard {
    Context& c;
    ~DepthGuard() { --c.depth; }
  } guard{ctx};

  if (schema.is_boolean()) {
    if (!schema.get<bool>()) return schema_error(path, "the schema 'false' allows no value");
    return primitive("value");
  }
  if (!schema.is_object()) return schema_error(path, "a schema must be an object or a boolean, got " + schema.dump());
  for (const char* kw : {"pattern", "patternProperties", "not", "if", "then", "else", "dependentSchemas", "contains",
                         "unevaluatedProperties", "unevaluatedItems", "propertyNames"}) {
    if (schema.contains(kw)) return schema_error(path, std::string("'") + kw + "' is not supported");
  }
  if (schema.contains("uniqueItems") && schema["uniqueItems"] == true) {
    return schema_error(path, "'uniqueItems': true is not supported");
  }

  if (auto ref = schema.find("$ref"); ref != schema.end()) {
    if (!ref->is_string()) return schema_error(path + "/$ref", "must be a string");
    const std::string target = ref->get<std::string>();
    if (auto known = ctx.refs.find(target); known != ctx.refs.end()) return known->second;
    if (target.rfind("#", 0) != 0) return schema_error(path + "/$ref", "only references into this schema (#/...) are supported, got '" + target + "'");
    const ojson* resolved = nullptr;
    try {
      const auto pointer = nlohmann::ordered_json::json_pointer(target.substr(1));
      if (ctx.root->contains(pointer)) resolved = &ctx.root->at(pointer);
    } catch (const nlohmann::json::exception&) {
    }
    if (resolved == nullptr) return schema_error(path + "/$ref", "'" + target + "' does not point into the schema");
    const std::string base = target.substr(target.find_last_of('/') + 1);
    const std::string rule = unique_name(base);
    ctx.refs[target] = rule;
    EDGELLM_ASSIGN_OR_RETURN(const std::string body, visit(*resolved, base + "-def", target, ctx));
    rules_.emplace_back(rule, body);
    return rule;
  }
  if (auto c = schema.find("const"); c != schema.end()) return add_rule(name, gbnf_literal(c->dump()));
  if (auto e = schema.find("enum"); e != schema.end()) {
    if (!e->is_array() || e->empty()) return schema_error(path + "/enum", "must be a non-empty array");
    std::string body;
    for (const auto& v : *e) body += (body.empty() ? "" : " | ") + gbnf_literal(v.dump());
    return add_rule(name, body);
  }
  for (const char* kw : {"anyOf", "oneOf"}) {
    if (auto alts = schema.find(kw); alts != schema.end()) {
      if (!alts->is_array() || alts->empty()) return schema_error(path + "/" + kw, "must be a non-empty array");
      std::string body;
      for (size_t i = 0; i < alts->size(); ++i) {
        EDGELLM_ASSIGN_OR_RETURN(const std::string r, visit((*alts)[i], name + "-" + std::to_string(i),
                                                             path + "/" + kw + "/" + std::to_string(i), ctx));
        body += (body.empty() ? "" : " | ") + r;
      }
      return add_rule(name, body);
    }
  }
  if (auto all = schema.find("allOf"); all != schema.end()) {
    if (!all->is_array() || all->empty()) return schema_error(path + "/allOf", "must be a non-empty array");
    if (all->size() == 1) return visit((*all)[0], name, path + "/allOf/0", ctx);
    // Objects only: their properties and required lists merged.
    ojson merged = {{"type", "object"}, {"properties", ojson::object()}, {"required", ojson::array()}};
    for (size_t i = 0; i < all->size(); ++i) {
      const ojson* part = &(*all)[i];
      if (part->contains("$ref") && (*part)["$ref"].is_string()) {
        const std::string target = (*part)["$ref"].get<std::string>();
        try {
          part = &ctx.root->at(nlohmann::ordered_json::json_pointer(target.substr(1)));
        } catch (const nlohmann::json::exception&) {
          return schema_error(path + "/allOf/" + std::to_string(i), "'" + target + "' does not point into the schema");
        }
      }
      if (!part->is_object() || !part->contains("properties")) {
        return schema_error(path + "/allOf/" + std::to_string(i), "allOf is supported for object schemas only");
      }
      for (const auto& [k, v] : (*part)["properties"].items()) merged["properties"][k] = v;
      if (part->contains("required")) {
        for (const auto& r : (*part)["required"]) merged["required"].push_back(r);
      }
    }
    return visit(merged, name, path, ctx);
  }

  ojson type = schema.contains("type") ? schema["type"] : ojson();
  if (type.is_array()) {
    if (type.empty()) return schema_error(path + "/type", "must not be empty");
    std::string body;
    for (const auto& t : type) {
      ojson one = schema;
      one["type"] = t;
      EDGELLM_ASSIGN_OR_RETURN(const std::string r, visit(one, name + "-" + (t.is_string() ? t.get<std::string>() : "t"), path, ctx));
      body += (body.empty() ? "" : " | ") + r;
    }
    return add_rule(name, body);
  }
  if (type.is_null()) {
    if (schema.contains("properties")) type = "object";
    else if (schema.contains("items") || schema.contains("prefixItems")) type = "array";
    else return primitive("value");
  }
  if (!type.is_string()) return schema_error(path + "/type", "must be a string or an array of strings");
  const std::string t = type.get<std::string>();
  if (t == "object") return visit_object(schema, name, path, ctx);
  if (t == "array") return visit_array(schema, name, path, ctx);
  if (t == "string") {
    const bool has_min = schema.contains("minLength"), has_max = schema.contains("maxLength");
    if (!has_min && !has_max) return primitive("string");
    const ojson min = schema.value("minLength", ojson(0u));
    const ojson max = schema.value("maxLength", ojson(0u));
    if (!min.is_number_unsigned() || !max.is_number_unsigned()) {
      return schema_error(path, "minLength and maxLength must be non-negative integers");
    }
    const uint64_t lo = min.get<uint64_t>();
    if (lo > 10000 || (has_max && max.get<uint64_t>() > 10000)) return schema_error(path, "string lengths above 10000 are not supported");
    if (has_max && max.get<uint64_t>() < lo) return schema_error(path, "maxLength is below minLength");
    primitive("char");
    const std::string count = has_max ? "{" + std::to_string(lo) + "," + std::to_string(max.get<uint64_t>()) + "}"
                                      : "{" + std::to_string(lo) + ",}";
    // One rule per length range, shared by every string with it: their token masks are computed once.
    const std::string shared = "json-string-" + std::to_string(lo) + "-" + (has_max ? std::to_string(max.get<uint64_t>()) : std::string("more"));
    if (names_.count(shared) == 0) {
      names_.insert(shared);
      rules_.emplace_back(shared, "\"\\\"\" json-char" + count + " \"\\\"\"");
    }
    return shared;
  }
  if (t == "integer" || t == "number" || t == "boolean" || t == "null") return primitive(t);
  return schema_error(path + "/type", "unknown type '" + t + "'");
}

Expected<std::string> JsonSchemaGrammar::visit_object(const ojson& schema, const std::string& name,
                                                      const std::string& path, Context& ctx) {
  const std::string w = ws();
  const ojson props = schema.contains("properties") ? schema["properties"] : ojson::object();
  if (!props.is_object()) return schema_error(path + "/properties", "must be an object");
  std::set<std::string> required;
  if (schema.contains("required")) {
    if (!schema["required"].is_array()) return schema_error(path + "/required", "must be an array");
    for (const auto& r : schema["required"]) {
      if (!r.is_string()) return schema_error(path + "/required", "must hold strings");
      if (!props.contains(r.get<std::string>())) {
        return schema_error(path + "/required", "'" + r.get<std::string>() + "' is required but not among the properties");
      }
      required.insert(r.get<std::string>());
    }
  }
  // Extra members: allowed when additionalProperties says so, or by default when there are no properties.
  std::string extra;
  const ojson additional = schema.contains("additionalProperties") ? schema["additionalProperties"] : ojson();
  if ((additional.is_null() && props.empty()) || additional == true) {
    extra = primitive("string") + " " + w + " \":\" " + w + " " + primitive("value");
  } else if (additional.is_object()) {
    EDGELLM_ASSIGN_OR_RETURN(const std::string v, visit(additional, name + "-additional", path + "/additionalProperties", ctx));
    extra = primitive("string") + " " + w + " \":\" " + w + " " + v;
  }

  std::vector<std::string> keys, values;
  for (const auto& [key, sub] : props.items()) {
    EDGELLM_ASSIGN_OR_RETURN(const std::string v, visit(sub, name + "-" + key, path + "/properties/" + key, ctx));
    keys.push_back(key);
    values.push_back(gbnf_literal(ojson(key).dump()) + " " + w + " \":\" " + w + " " + v);
  }
  // first_i: members i.. when none has been written yet; after_i: when one has (so each needs a comma).
  std::string after = extra.empty() ? "" : "(\",\" " + w + " " + extra + " " + w + ")*";
  std::string first = extra.empty() ? "" : "(" + extra + " " + w + " " + after + ")?";
  for (size_t i = keys.size(); i-- > 0;) {
    std::string after_rule;
    if (!after.empty()) after_rule.append(" ").append(add_rule(name + "-after-" + keys[i], after));
    const std::string first_rule_body = first.empty() ? "" : first;
    std::string new_first, new_after;
    if (required.count(keys[i]) != 0) {
      new_first = values[i] + " " + w + after_rule;
      new_after = "\",\" " + w + " " + values[i] + " " + w + after_rule;
    } else {
      new_first = values[i] + " " + w + after_rule + " | " + (first_rule_body.empty() ? "" : add_rule(name + "-rest-" + keys[i], first_rule_body));
      new_after = "\",\" " + w + " " + values[i] + " " + w + after_rule + " | " + (after.empty() ? "" : add_rule(name + "-skip-" + keys[i], after));
    }
    first = new_first;
    after = new_after;
  }
  const std::string members = first.empty() ? "" : " " + add_rule(name + "-members", first);
  return add_rule(name, "\"{\" " + w + members + " \"}\"");
}

Expected<std::string> JsonSchemaGrammar::visit_array(const ojson& schema, const std::string& name,
                                                     const std::string& path, Context& ctx) {
  const std::string w = ws();
  std::vector<std::string> prefix;
  if (schema.contains("prefixItems")) {
    const ojson& p = schema["prefixItems"];
    if (!p.is_array()) return schema_error(path + "/prefixItems", "must be an array");
    for (size_t i = 0; i < p.size(); ++i) {
      EDGELLM_ASSIGN_OR_RETURN(const std::string r, visit(p[i], name + "-" + std::to_string(i), path + "/prefixItems/" + std::to_string(i), ctx));
      prefix.push_back(r);
    }
  }
  std::string item;
  const ojson items = schema.contains("items") ? schema["items"] : ojson(true);
  if (items != false) {
    EDGELLM_ASSIGN_OR_RETURN(item, visit(items, name + "-item", path + "/items", ctx));
  }
  auto count = [&](const char* key, int64_t fallback) -> Expected<int64_t> {
    if (!schema.contains(key)) return fallback;
    if (!schema[key].is_number_unsigned()) return schema_error(path + "/" + key, "must be a non-negative integer");
    const auto v = schema[key].get<uint64_t>();
    if (v > 1000) return schema_error(path + "/" + key, "counts above 1000 are not supported");
    return static_cast<int64_t>(v);
  };
  EDGELLM_ASSIGN_OR_RETURN(const int64_t min_items, count("minItems", 0));
  EDGELLM_ASSIGN_OR_RETURN(const int64_t max_items, count("maxItems", -1));
  if (max_items >= 0 && max_items < min_items) return schema_error(path, "maxItems is below minItems");
  if (!prefix.empty() && static_cast<int64_t>(prefix.size()) < min_items && item.empty()) {
    return schema_error(path, "minItems exceeds the prefixItems and no further items are allowed");
  }
  // Prefix items are all written; further items follow `items`, within the remaining min/max.
  std::string body = "\"[\" " + w;
  for (size_t i = 0; i < prefix.size(); ++i) body += (i == 0 ? " " : " \",\" " + w + " ") + prefix[i] + " " + w;
  const int64_t rest_min = std::max<int64_t>(0, min_items - static_cast<int64_t>(prefix.size()));
  const int64_t rest_max = max_items < 0 ? -1 : std::max<int64_t>(0, max_items - static_cast<int64_t>(prefix.size()));
  if (!item.empty() && rest_max != 0) {
    const std::string sep = "\",\" " + w + " " + item + " " + w;
    if (prefix.empty()) {
      // first item, then (rest_min-1 .. rest_max-1) more; the whole list optional when rest_min == 0
      const std::string more_min = std::to_string(std::max<int64_t>(0, rest_min - 1));
      const std::string more = rest_max < 0 ? "{" + more_min + ",}" : "{" + more_min + "," + std::to_string(rest_max - 1) + "}";
      const std::string list = item + " " + w + " (" + sep + ")" + more;
      body += rest_min == 0 ? " (" + list + ")?" : " " + list;
    } else {
      const std::string more = rest_max < 0 ? "{" + std::to_string(rest_min) + ",}"
                                            : "{" + std::to_string(rest_min) + "," + std::to_string(rest_max) + "}";
      body += " (" + sep + ")" + more;
    }
  }
  return add_rule(name, body + " \"]\"");
}

Expected<std::string> json_schema_to_gbnf(const ojson& schema) {
  JsonSchemaGrammar g;
  EDGELLM_ASSIGN_OR_RETURN(const std::string top, g.add(schema, "schema"));
  return "root ::= " + top + "\n" + g.rules();
}

std::string json_object_gbnf() {
  JsonSchemaGrammar g;
  auto top = g.add(ojson{{"type", "object"}}, "object");
  return "root ::= " + *top + "\n" + g.rules();
}

}  // namespace edgellm
