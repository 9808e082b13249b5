#include "server/serve_config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <filesystem>
#include <tuple>
#include <functional>
#include <limits>
#include <cstdio>
#include <map>
#include <optional>
#include <sstream>

namespace edgellm::server {
namespace {

// Walks the parsed file, collecting every error with its position.
class ConfigReader {
 public:
  ConfigReader(std::string path, ServeSettings* settings) : path_(std::move(path)), s_(settings) {}

  void read(const toml::table& root) {
    for (auto&& [key, node] : root) {
      const std::string name(key.str());
      if (name == "model") {
        read_models(node);
      } else if (name == "server") {
        read_table(node, "server", server_fields());
      } else if (name == "engine") {
        read_table(node, "engine", engine_fields());
      } else if (name == "auth") {
        read_table(node, "auth", auth_fields());
      } else if (name == "filters") {
        read_table(node, "filters",
                   {{"max_prompt_chars", int_field(&s_->filters.max_prompt_chars, 0, int64_t{1} << 32)},
                    {"max_prompt_tokens", int_field(&s_->filters.max_prompt_tokens, 0, int64_t{1} << 32)},
                    {"max_messages", int_field(&s_->filters.max_messages, 0, int64_t{1} << 32)},
                    {"block", [this](const toml::node& n, const std::string&) { read_block_rules(n); }}});
      } else if (name == "policy") {
        read_policy(node);
      } else if (name == "store") {
        read_table(node, "store", store_fields());
      } else if (name == "limits") {
        read_table(node, "limits",
                   {{"key", [this](const toml::node& n, const std::string&) {
                       read_table(n, "limits.key", limit_fields(&s_->limits.per_key));
                     }},
                    {"address", [this](const toml::node& n, const std::string&) {
                       read_table(n, "limits.address", limit_fields(&s_->limits.per_address));
                     }}});
      } else {
        error(key.source(),
              "unknown setting '" + name +
                  "' (the file has [[model]], [server], [engine], [auth], [limits], [[policy]], [filters] and [store])");
      }
    }
  }

  void error(const toml::source_region& where, const std::string& message) {
    errors_.push_back({where.begin.line, where.begin.column,
                       path_ + ":" + std::to_string(where.begin.line) + ":" + std::to_string(where.begin.column) +
                           ": " + message});
  }
  // In the order of the file (tables are walked in key order).
  std::vector<std::string> errors() const {
    auto sorted = errors_;
    std::stable_sort(sorted.begin(), sorted.end(), [](const Located& a, const Located& b) {
      return std::tie(a.line, a.column) < std::tie(b.line, b.column);
    });
    std::vector<std::string> out;
    for (const Located& e : sorted) out.push_back(e.text);
    return out;
  }

 private:
  using Field = std::function<void(const toml::node&, const std::string& where)>;
  using Fields = std::map<std::string, Field>;

  void read_table(const toml::node& node, const std::string& table, const Fields& fields) {
    const toml::table* t = node.as_table();
    if (t == nullptr) {
      error(node.source(), "'" + table + "' must be a table ([" + table + "])");
      return;
    }
    for (auto&& [key, value] : *t) {
      const std::string name(key.str());
      const auto it = fields.find(name);
      if (it == fields.end()) {
        std::string known;
        for (const auto& [k, f] : fields) known += (known.empty() ? "" : ", ") + k;
        error(key.source(), "unknown setting '" + name + "' in [" + table + "] (known: " + known + ")");
        continue;
      }
      it->second(value, "[" + table + "] " + name);
    }
  }

  Field string_field(std::string* out) {
    return [this, out](const toml::node& n, const std::string& where) {
      if (const auto v = n.value_exact<std::string>()) {
        *out = *v;
      } else {
        error(n.source(), where + " must be a string in quotes");
      }
    };
  }
  Field strings_field(std::vector<std::string>* out) {
    return [this, out](const toml::node& n, const std::string& where) {
      const toml::array* a = n.as_array();
      std::vector<std::string> values;
      bool ok = a != nullptr;
      if (ok) {
        for (const toml::node& v : *a) {
          const auto text = v.value_exact<std::string>();
          if (!text || text->empty()) ok = false;
          if (text) values.push_back(*text);
        }
      }
      if (!ok) {
        error(n.source(), where + " must be a list of strings in quotes: [\"127.0.0.1\"]");
        return;
      }
      *out = std::move(values);
    };
  }
  Field bool_field(bool* out) {
    return [this, out](const toml::node& n, const std::string& where) {
      if (const auto v = n.value_exact<bool>()) {
        *out = *v;
      } else {
        error(n.source(), where + " must be true or false");
      }
    };
  }
  template <class Int>
  Field int_field(Int* out, int64_t lo, int64_t hi) {
    return [this, out, lo, hi](const toml::node& n, const std::string& where) {
      const auto v = n.value_exact<int64_t>();
      if (!v || *v < lo || *v > hi) {
        error(n.source(), where + " must be a whole number from " + std::to_string(lo) + " to " + std::to_string(hi));
        return;
      }
      *out = static_cast<Int>(*v);
    };
  }
  Field seconds_field(double* out) {
    return [this, out](const toml::node& n, const std::string& where) {
      std::optional<double> v;
      if (const auto i = n.value_exact<int64_t>()) v = static_cast<double>(*i);
      if (const auto f = n.value_exact<double>()) v = *f;
      if (!v || !(*v >= 0 && *v <= 1e7)) {
        error(n.source(), where + " must be a number of seconds from 0 to 1e7 (0: none)");
        return;
      }
      *out = *v;
    };
  }

  Fields server_fields() {
    return {{"host", string_field(&s_->host)},
            {"port", int_field(&s_->port, 0, 65535)},
            {"insecure", bool_field(&s_->insecure)},
            {"max_body", int_field(&s_->max_body, 1024, int64_t{1} << 32)},
            {"timeout", seconds_field(&s_->timeout)},
            {"threads", int_field(&s_->threads, 0, 1024)},
            {"require_signature", string_field(&s_->require_signature)},
            {"key_file", string_field(&s_->key_file)},
            {"trusted_proxies", strings_field(&s_->trusted_proxies)}};
  }
  Fields engine_fields() {
    return {{"parallel", int_field(&s_->parallel, 1, 256)},
            {"ctx", int_field(&s_->ctx, 2, int64_t{1} << 22)},
            {"kv_mem_mib", int_field(&s_->kv_mem_mib, 0, int64_t{1} << 30)},
            {"kv_type",
             [this](const toml::node& n, const std::string& where) {
               const auto v = n.value_exact<std::string>();
               if (!v || (*v != "f16" && *v != "q8_0")) {
                 error(n.source(), where + " must be \"f16\" or \"q8_0\"");
                 return;
               }
               s_->kv_type = *v;
             }},
            {"queue", int_field(&s_->queue, 1, 100000)},
            {"prefill_chunk", int_field(&s_->prefill_chunk, 1, 16384)},
            {"block_size",
             [this](const toml::node& n, const std::string& where) {
               const auto v = n.value_exact<int64_t>();
               if (!v || (*v != 16 && *v != 32)) {
                 error(n.source(), where + " must be 16 or 32");
                 return;
               }
               s_->block_size = static_cast<int>(*v);
             }},
            {"prefix_cache", bool_field(&s_->prefix_cache)}};
  }
  std::map<std::string, Field> store_fields() {
    return {{"path", string_field(&s_->db)},
            {"retention_days", int_field(&s_->store_retention_days, 0, 100000)},
            {"max_mb", int_field(&s_->store_max_mb, 0, int64_t{1} << 30)},
            {"quota_mb", int_field(&s_->store_quota_mb, 0, int64_t{1} << 30)},
            {"synchronous",
             [this](const toml::node& n, const std::string& where) {
               const auto v = n.value_exact<std::string>();
               if (!v || (*v != "full" && *v != "normal")) {
                 error(n.source(), where + " must be \"full\" (a commit survives a power cut) or \"normal\" (a "
                                           "process kill)");
                 return;
               }
               s_->store_synchronous_full = *v == "full";
             }}};
  }
  Field rate_field(double* out, const char* unit) {
    return [this, out, unit](const toml::node& n, const std::string& where) {
      std::optional<double> v;
      if (const auto i = n.value_exact<int64_t>()) v = static_cast<double>(*i);
      if (const auto f = n.value_exact<double>()) v = *f;
      if (!v || !(*v >= 0 && *v <= 1e9)) {
        error(n.source(), where + " must be a number of " + unit + " (0: no limit)");
        return;
      }
      *out = *v;
    };
  }
  Fields limit_fields(RateLimit* limit) {
    return {{"requests_per_second", rate_field(&limit->requests_per_second, "requests per second")},
            {"burst", rate_field(&limit->burst, "requests let through at once")},
            {"tokens_per_minute", rate_field(&limit->tokens_per_minute, "generated tokens per minute")},
            {"concurrent", int_field(&limit->concurrent, 0, 100000)}};
  }
  Fields auth_fields() {
    return {{"api_keys_file", string_field(&s_->api_keys_file)},
            {"key", [this](const toml::node& n, const std::string&) { read_keys(n); }}};
  }

  void read_models(const toml::node& node) {
    const toml::array* models = node.as_array();
    if (models == nullptr) {
      error(node.source(), "'model' must be an array of tables: [[model]] with path = \"...\"");
      return;
    }
    // The file's models replace the defaults (there are none) but add to nothing: the command line's -m,
    // when given, replaces them all.
    for (const toml::node& m : *models) {
      const toml::table* t = m.as_table();
      if (t == nullptr) {
        error(m.source(), "each model must be a table: [[model]] with path = \"...\"");
        continue;
      }
      ServeSettings::Model model;
      bool has_path = false;
      for (auto&& [key, value] : *t) {
        const std::string name(key.str());
        if (name == "path" || name == "alias") {
          const auto v = value.value_exact<std::string>();
          if (!v || v->empty()) {
            error(value.source(), "[[model]] " + name + " must be a non-empty string in quotes");
            continue;
          }
          (name == "path" ? model.path : model.alias) = *v;
          has_path = has_path || name == "path";
        } else {
          error(key.source(), "unknown setting '" + name + "' in [[model]] (known: path, alias)");
        }
      }
      if (!has_path) {
        error(m.source(), "[[model]] needs path = \"...\" (a GGUF file or a Hugging Face directory)");
        continue;
      }
      s_->models.push_back(std::move(model));
    }
  }

  void read_block_rules(const toml::node& node) {
    const toml::array* rules = node.as_array();
    if (rules == nullptr) {
      error(node.source(), "'filters.block' must be an array of tables: [[filters.block]] with name, words or regex, "
                           "and reason");
      return;
    }
    for (const toml::node& r : *rules) {
      const toml::table* t = r.as_table();
      if (t == nullptr) {
        error(r.source(), "each filter rule must be a table: [[filters.block]]");
        continue;
      }
      BlockRule rule;
      bool ok = true;
      for (auto&& [field, value] : *t) {
        const std::string name(field.str());
        if (name == "name" || name == "reason" || name == "regex") {
          const auto v = value.value_exact<std::string>();
          if (!v || v->empty()) {
            error(value.source(), "[[filters.block]] " + name + " must be a non-empty string in quotes");
            ok = false;
            continue;
          }
          (name == "name" ? rule.name : name == "reason" ? rule.reason : rule.regex) = *v;
        } else if (name == "words") {
          const toml::array* words = value.as_array();
          if (words == nullptr || words->empty()) {
            error(value.source(), "[[filters.block]] words must be a list of words: words = [\"bomb\", \"炸弹\"]");
            ok = false;
            continue;
          }
          for (const toml::node& w : *words) {
            const auto v = w.value_exact<std::string>();
            if (!v || v->empty()) {
              error(w.source(), "[[filters.block]] words must be non-empty strings");
              ok = false;
              continue;
            }
            rule.words.push_back(*v);
          }
        } else if (name == "applies_to") {
          const toml::array* where = value.as_array();
          bool input = false, output = false, valid = where != nullptr && !where->empty();
          if (valid) {
            for (const toml::node& w : *where) {
              const auto v = w.value_exact<std::string>();
              if (v && *v == "input") {
                input = true;
              } else if (v && *v == "output") {
                output = true;
              } else {
                valid = false;
              }
            }
          }
          if (!valid) {
            error(value.source(), "[[filters.block]] applies_to must list \"input\", \"output\" or both: "
                                  "applies_to = [\"input\", \"output\"]");
            ok = false;
            continue;
          }
          rule.on_input = input;
          rule.on_output = output;
        } else {
          error(field.source(), "unknown setting '" + name +
                                    "' in [[filters.block]] (known: name, words, regex, reason, applies_to)");
          ok = false;
        }
      }
      if (!ok) continue;
      if (rule.name.empty() || rule.reason.empty()) {
        error(r.source(), "[[filters.block]] needs a name and the reason the client is told");
        continue;
      }
      if (rule.words.empty() == rule.regex.empty()) {
        error(r.source(), "[[filters.block]] '" + rule.name + "' needs either words or regex (one of them)");
        continue;
      }
      // The pattern compiled now, so that its error points at this rule.
      InputFilterConfig one;
      one.block.push_back(rule);
      const auto compiled = InputFilters::compile(one);
      if (!compiled.ok()) {
        error(r.source(), compiled.error().message);
        continue;
      }
      s_->filters.block.push_back(std::move(rule));
    }
  }

  void read_policy(const toml::node& node) {
    const toml::array* rules = node.as_array();
    if (rules == nullptr) {
      error(node.source(), "'policy' must be an array of tables: [[policy]] with max_tokens (and from, to, keys)");
      return;
    }
    for (const toml::node& r : *rules) {
      const toml::table* t = r.as_table();
      if (t == nullptr) {
        error(r.source(), "each policy must be a table: [[policy]] with max_tokens (and from, to, keys)");
        continue;
      }
      PolicyRule rule;
      bool has_max = false, has_from = false, has_to = false, ok = true;
      for (auto&& [field, value] : *t) {
        const std::string name(field.str());
        if (name == "from" || name == "to") {
          const auto v = value.value_exact<std::string>();
          const int minute = v ? parse_clock_time(*v) : -1;
          if (minute < 0) {
            error(value.source(), "[[policy]] " + name + " must be a local time \"HH:MM\" from 00:00 to 24:00");
            ok = false;
            continue;
          }
          (name == "from" ? rule.from_minute : rule.to_minute) = minute;
          (name == "from" ? has_from : has_to) = true;
        } else if (name == "max_tokens") {
          const auto v = value.value_exact<int64_t>();
          if (!v || *v < 1 || *v > 1000000) {
            error(value.source(), "[[policy]] max_tokens must be a whole number from 1 to 1000000");
            ok = false;
            continue;
          }
          rule.max_tokens = static_cast<int32_t>(*v);
          has_max = true;
        } else if (name == "keys") {
          const toml::array* keys = value.as_array();
          if (keys == nullptr) {
            error(value.source(), "[[policy]] keys must be a list of key names: keys = [\"kitchen\"]");
            ok = false;
            continue;
          }
          for (const toml::node& k : *keys) {
            const auto v = k.value_exact<std::string>();
            if (!v || !ApiKeys::valid_name(*v)) {
              error(k.source(), "[[policy]] keys must hold key names (1-64 of A-Z a-z 0-9 . _ -)");
              ok = false;
              continue;
            }
            rule.keys.push_back(*v);
          }
        } else {
          error(field.source(), "unknown setting '" + name + "' in [[policy]] (known: from, to, max_tokens, keys)");
          ok = false;
        }
      }
      if (has_from != has_to) {
        error(r.source(), "[[policy]] needs both from and to (or neither: all day)");
        continue;
      }
      if (has_from && rule.from_minute == rule.to_minute) {
        error(r.source(), "[[policy]] from and to are the same time: an empty window (leave both out for all day)");
        continue;
      }
      if (!has_max) {
        error(r.source(), "[[policy]] needs max_tokens");
        continue;
      }
      if (!ok) continue;
      const auto clock = [](int minute) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%02d:%02d", minute / 60, minute % 60);
        return std::string(buf);
      };
      rule.name = std::to_string(s_->policy.size() + 1) + " (" +
                  (has_from ? clock(rule.from_minute) + "-" + clock(rule.to_minute) : std::string("all day")) + ")";
      s_->policy.push_back(std::move(rule));
    }
  }

  void read_keys(const toml::node& node) {
    const toml::array* keys = node.as_array();
    if (keys == nullptr) {
      error(node.source(), "'auth.key' must be an array of tables: [[auth.key]] with name and hash");
      return;
    }
    for (const toml::node& k : *keys) {
      const toml::table* t = k.as_table();
      if (t == nullptr) {
        error(k.source(), "each key must be a table: [[auth.key]] with name = \"...\" and hash = \"sha256:...\"");
        continue;
      }
      ApiKey key;
      bool has_name = false, has_hash = false;
      for (auto&& [field, value] : *t) {
        const std::string name(field.str());
        const auto v = value.value_exact<std::string>();
        if (name == "name") {
          if (!v || !ApiKeys::valid_name(*v)) {
            error(value.source(), "[[auth.key]] name must be 1-64 characters of A-Z a-z 0-9 . _ -");
            continue;
          }
          key.name = *v;
          has_name = true;
        } else if (name == "hash") {
          if (!v || !ApiKeys::parse_hash(*v, &key.sha256)) {
            error(value.source(), "[[auth.key]] hash must be \"sha256:\" and 64 hex digits, as `edgellm keys add` "
                                  "prints it (never the key itself)");
            continue;
          }
          has_hash = true;
        } else {
          error(field.source(), "unknown setting '" + name + "' in [[auth.key]] (known: name, hash)");
        }
      }
      if (!has_name || !has_hash) {
        error(k.source(), "[[auth.key]] needs both name and hash");
        continue;
      }
      s_->key_hashes.push_back(std::move(key));
    }
  }

  struct Located {
    uint32_t line, column;
    std::string text;
  };
  std::string path_;
  ServeSettings* s_;
  std::vector<Located> errors_;
};

std::string config_lines(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& l : lines) out += (out.empty() ? "" : "\n") + l;
  return out;
}

}  // namespace

Status read_serve_config(const std::string& path, ServeSettings* settings) {
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    std::string message(e.description());
    if (where.line == 0) {  // not a syntax error: the file itself
      return make_error(ErrorCode::kIo, path + ": " + message);
    }
    return make_error(ErrorCode::kInvalidArgument, path + ":" + std::to_string(where.line) + ":" +
                                                       std::to_string(where.column) + ": " + message);
  }
  // Models given in the file replace none given on the command line yet (that comes after).
  ConfigReader reader(path, settings);
  reader.read(root);
  const std::vector<std::string> errors = reader.errors();
  if (!errors.empty()) return make_error(ErrorCode::kInvalidArgument, config_lines(errors));
  return {};
}

Status check_serve_settings(const ServeSettings& s) {
  std::vector<std::string> errors;
  if (s.models.empty()) errors.push_back("no model to serve: give -m MODEL or a [[model]] table with its path");
  for (size_t i = 0; i < s.models.size(); ++i) {
    std::error_code ec;
    if (!std::filesystem::exists(s.models[i].path, ec)) {
      errors.push_back("model " + s.models[i].path + " does not exist (a GGUF file or a Hugging Face directory)");
    }
    for (size_t j = 0; j < i; ++j) {
      const std::string& a = s.models[i].alias;
      if (!a.empty() && a == s.models[j].alias) errors.push_back("two models with the alias '" + a + "'");
    }
  }
  if (s.port < 0 || s.port > 65535) errors.push_back("port " + std::to_string(s.port) + " is not 0-65535");
  if (s.host.empty()) errors.push_back("an empty host address");
  auto keys = load_api_keys(s);
  if (!keys.ok()) errors.push_back(keys.error().message);
  for (const PolicyRule& rule : s.policy) {
    for (const std::string& name : rule.keys) {
      const bool known = keys.ok() && std::any_of(keys->keys().begin(), keys->keys().end(),
                                                  [&](const ApiKey& k) { return k.name == name; });
      if (keys.ok() && !known) {
        errors.push_back("policy rule " + rule.name + " names the key '" + name + "', which is not among the API keys");
      }
    }
  }
  if (keys.ok() && keys->empty() && !s.insecure && !is_loopback_host(s.host)) {
    errors.push_back("listening on " + s.host +
                     " without API keys would let anyone on the network use the model: add keys (`edgellm keys add "
                     "NAME --file keys.txt`, then --api-keys-file keys.txt or [auth] api_keys_file) or pass "
                     "--insecure ([server] insecure = true)");
  }
  if (!errors.empty()) return make_error(ErrorCode::kInvalidArgument, config_lines(errors));
  return {};
}

Expected<ApiKeys> load_api_keys(const ServeSettings& s) {
  ApiKeys keys;
  for (const ApiKey& k : s.key_hashes) EDGELLM_TRY(keys.add(k));
  if (!s.api_keys_file.empty()) {
    EDGELLM_ASSIGN_OR_RETURN(auto file_keys, ApiKeys::read_file(s.api_keys_file));
    for (ApiKey& k : file_keys) {
      const Status st = keys.add(std::move(k));
      if (!st.ok()) return make_error(ErrorCode::kInvalidArgument, s.api_keys_file + ": " + st.error().message);
    }
  }
  for (size_t i = 0; i < s.plain_keys.size(); ++i) {
    EDGELLM_TRY(keys.add_plain("cli-" + std::to_string(i + 1), s.plain_keys[i]));
  }
  return keys;
}

bool is_loopback_host(const std::string& host) {
  if (host == "localhost" || host == "::1" || host == "[::1]" || host == "ip6-localhost") return true;
  // 127.0.0.0/8, written as a dotted quad.
  if (host.rfind("127.", 0) != 0) return false;
  int parts = 0;
  std::stringstream ss(host);
  std::string part;
  while (std::getline(ss, part, '.')) {
    if (part.empty() || part.size() > 3 || part.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(part) > 255) {
      return false;
    }
    ++parts;
  }
  return parts == 4;
}

}  // namespace edgellm::server
