#include "chat/jinja/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace edgellm::jinja {

// ---- Text ----

Text Text::from_input(std::string s) {
  Text t{std::move(s), {}};
  if (!t.text.empty()) t.input.emplace_back(0, t.text.size());
  return t;
}

void Text::append(const Text& other) {
  const size_t base = text.size();
  text += other.text;
  for (auto [b, e] : other.input) {
    if (!input.empty() && input.back().second == base + b) {
      input.back().second = base + e;  // adjacent: one span
    } else {
      input.emplace_back(base + b, base + e);
    }
  }
}

Text Text::slice(size_t begin, size_t end) const {
  Text out{text.substr(begin, end - begin), {}};
  for (auto [b, e] : input) {
    const size_t lo = std::max(b, begin), hi = std::min(e, end);
    if (lo < hi) out.input.emplace_back(lo - begin, hi - begin);
  }
  return out;
}

Text Text::derived(std::string s) const { return has_input() ? from_input(std::move(s)) : literal(std::move(s)); }

// ---- Object, CallArgs ----

const Value* Object::find(std::string_view key) const {
  for (const auto& [k, v] : items) {
    if (k == key) return &v;
  }
  return nullptr;
}

Value* Object::find(std::string_view key) {
  for (auto& [k, v] : items) {
    if (k == key) return &v;
  }
  return nullptr;
}

void Object::set(const std::string& key, Value value) {
  if (Value* v = find(key)) {
    *v = std::move(value);
  } else {
    items.emplace_back(key, std::move(value));
  }
}

const Value* CallArgs::get(size_t index, std::string_view name) const {
  if (index < positional.size()) return &positional[index];
  for (const auto& [k, v] : keyword) {
    if (k == name) return &v;
  }
  return nullptr;
}

// ---- Value ----

Value Value::undefined(std::string name) {
  Value v;
  v.undefined_name_ = std::move(name);
  return v;
}

Value Value::none() {
  Value v;
  v.kind_ = Kind::kNone;
  return v;
}

Value Value::boolean(bool b) {
  Value v;
  v.kind_ = Kind::kBool;
  v.b_ = b;
  return v;
}

Value Value::integer(int64_t i) {
  Value v;
  v.kind_ = Kind::kInt;
  v.i_ = i;
  return v;
}

Value Value::number(double f) {
  Value v;
  v.kind_ = Kind::kFloat;
  v.f_ = f;
  return v;
}

Value Value::string(Text t) {
  Value v;
  v.kind_ = Kind::kString;
  v.s_ = std::make_shared<const Text>(std::move(t));
  return v;
}

Value Value::array(Array items) {
  Value v;
  v.kind_ = Kind::kArray;
  v.a_ = std::make_shared<Array>(std::move(items));
  return v;
}

Value Value::tuple(Array items) {
  Value v = array(std::move(items));
  v.tuple_ = true;
  return v;
}

Value Value::object(Object o) {
  Value v;
  v.kind_ = Kind::kObject;
  v.o_ = std::make_shared<Object>(std::move(o));
  return v;
}

Value Value::callable(std::string name, NativeFn fn) {
  Value v;
  v.kind_ = Kind::kCallable;
  v.fn_ = std::make_shared<const std::pair<std::string, NativeFn>>(std::move(name), std::move(fn));
  return v;
}

namespace {

template <typename Json>
Value value_from_json(const Json& j, bool from_input) {
  using value_t = nlohmann::json::value_t;
  switch (j.type()) {
    case value_t::null: return Value::none();
    case value_t::boolean: return Value::boolean(j.template get<bool>());
    case value_t::number_integer: return Value::integer(j.template get<int64_t>());
    case value_t::number_unsigned: {
      const auto u = j.template get<uint64_t>();
      return u <= static_cast<uint64_t>(INT64_MAX) ? Value::integer(static_cast<int64_t>(u))
                                                   : Value::number(static_cast<double>(u));
    }
    case value_t::number_float: return Value::number(j.template get<double>());
    case value_t::string: {
      std::string s = j.template get<std::string>();
      return Value::string(from_input ? Text::from_input(std::move(s)) : Text::literal(std::move(s)));
    }
    case value_t::array: {
      Array items;
      for (const auto& e : j) items.push_back(value_from_json(e, from_input));
      return Value::array(std::move(items));
    }
    case value_t::object: {
      Object o;
      o.keys_from_input = from_input;
      for (const auto& [k, e] : j.items()) o.items.emplace_back(k, value_from_json(e, from_input));
      return Value::object(std::move(o));
    }
    default: return Value::none();
  }
}

}  // namespace

Value Value::from_json(const nlohmann::ordered_json& j, bool from_input) { return value_from_json(j, from_input); }
Value Value::from_json(const nlohmann::json& j, bool from_input) { return value_from_json(j, from_input); }

bool Value::truthy() const {
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNone: return false;
    case Kind::kBool: return b_;
    case Kind::kInt: return i_ != 0;
    case Kind::kFloat: return f_ != 0.0;
    case Kind::kString: return !s_->text.empty();
    case Kind::kArray: return !a_->empty();
    case Kind::kObject: return o_->is_namespace || !o_->items.empty();
    case Kind::kCallable: return true;
  }
  return false;
}

std::string python_float(double f) {
  if (std::isnan(f)) return "nan";
  if (std::isinf(f)) return f > 0 ? "inf" : "-inf";
  if (f == 0) return std::signbit(f) ? "-0.0" : "0.0";
  // Shortest round-trip digits, then Python's repr layout: fixed for 1e-4 <= |f| < 1e16, else exponent.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, f, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  const size_t e_pos = sci.find('e');
  std::string mantissa = sci.substr(0, e_pos);
  const int exponent = std::stoi(sci.substr(e_pos + 1));
  const bool negative = mantissa[0] == '-';
  if (negative) mantissa.erase(0, 1);
  std::string digits;
  for (char c : mantissa) {
    if (c != '.') digits += c;
  }
  std::string out;
  if (exponent >= -4 && exponent < 16) {
    if (exponent >= 0) {
      if (static_cast<int>(digits.size()) <= exponent + 1) {
        out = digits + std::string(static_cast<size_t>(exponent + 1) - digits.size(), '0') + ".0";
      } else {
        out = digits.substr(0, static_cast<size_t>(exponent + 1)) + "." + digits.substr(static_cast<size_t>(exponent + 1));
      }
    } else {
      out = "0." + std::string(static_cast<size_t>(-exponent - 1), '0') + digits;
    }
  } else {
    out = digits.substr(0, 1);
    if (digits.size() > 1) out.append(".").append(digits, 1);
    char exp_buf[16];
    std::snprintf(exp_buf, sizeof exp_buf, "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
    out += exp_buf;
  }
  return negative ? "-" + out : out;
}

namespace {

std::string python_str_repr(const std::string& s) {
  const bool use_double = s.find('\'') != std::string::npos && s.find('"') == std::string::npos;
  const char quote = use_double ? '"' : '\'';
  std::string out(1, quote);
  for (unsigned char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == static_cast<unsigned char>(quote)) {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += quote;
  return out;
}

void json_string(const std::string& s, std::string& out) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

Status json_value(const Value& v, std::optional<int> indent, bool sort_keys, const std::string& item_sep,
                  const std::string& key_sep, int depth, std::string& out) {
  if (depth > 512) return make_error(ErrorCode::kInvalidArgument, "tojson: nesting deeper than 512");
  const auto newline = [&](int level) {
    if (!indent) return;
    out += '\n';
    out.append(static_cast<size_t>(*indent * level), ' ');
  };
  switch (v.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone: out += "null"; return {};
    case Value::Kind::kBool: out += v.as_bool() ? "true" : "false"; return {};
    case Value::Kind::kInt: out += std::to_string(v.as_int()); return {};
    case Value::Kind::kFloat: {
      const double f = v.as_double();
      if (std::isnan(f)) {
        out += "NaN";
      } else if (std::isinf(f)) {
        out += f > 0 ? "Infinity" : "-Infinity";
      } else {
        out += python_float(f);
      }
      return {};
    }
    case Value::Kind::kString: json_string(v.as_string(), out); return {};
    case Value::Kind::kArray: {
      const Array& a = v.array_items();
      if (a.empty()) {
        out += "[]";
        return {};
      }
      out += '[';
      for (size_t i = 0; i < a.size(); ++i) {
        if (i) out += item_sep;
        newline(depth + 1);
        EDGELLM_TRY(json_value(a[i], indent, sort_keys, item_sep, key_sep, depth + 1, out));
      }
      newline(depth);
      out += ']';
      return {};
    }
    case Value::Kind::kObject: {
      std::vector<const std::pair<std::string, Value>*> items;
      for (const auto& kv : v.object_items().items) items.push_back(&kv);
      if (sort_keys) {
        std::stable_sort(items.begin(), items.end(), [](auto* a, auto* b) { return a->first < b->first; });
      }
      if (items.empty()) {
        out += "{}";
        return {};
      }
      out += '{';
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += item_sep;
        newline(depth + 1);
        json_string(items[i]->first, out);
        out += key_sep;
        EDGELLM_TRY(json_value(items[i]->second, indent, sort_keys, item_sep, key_sep, depth + 1, out));
      }
      newline(depth);
      out += '}';
      return {};
    }
    case Value::Kind::kCallable:
      return make_error(ErrorCode::kInvalidArgument, "tojson: a function is not JSON serializable");
  }
  return {};
}

}  // namespace

Text Value::to_text() const {
  switch (kind_) {
    case Kind::kUndefined: return Text{};
    case Kind::kString: return *s_;
    default: {
      std::string r = kind_ == Kind::kNone ? "None" : repr();
      bool input = false;
      if (kind_ == Kind::kArray || kind_ == Kind::kObject) input = true;  // their strings may be input
      return input ? Text::from_input(std::move(r)) : Text::literal(std::move(r));
    }
  }
}

std::string Value::repr() const {
  switch (kind_) {
    case Kind::kUndefined: return "";
    case Kind::kNone: return "None";
    case Kind::kBool: return b_ ? "True" : "False";
    case Kind::kInt: return std::to_string(i_);
    case Kind::kFloat: return python_float(f_);
    case Kind::kString: return python_str_repr(s_->text);
    case Kind::kArray: {
      std::string out = tuple_ ? "(" : "[";
      for (size_t i = 0; i < a_->size(); ++i) out += (i ? ", " : "") + (*a_)[i].repr();
      if (tuple_ && a_->size() == 1) out += ",";
      return out + (tuple_ ? ")" : "]");
    }
    case Kind::kObject: {
      if (o_->is_namespace) return "<Namespace>";
      std::string out = "{";
      bool first = true;
      for (const auto& [k, v] : o_->items) {
        out += (first ? "" : ", ") + python_str_repr(k) + ": " + v.repr();
        first = false;
      }
      return out + "}";
    }
    case Kind::kCallable: return "<function " + fn_->first + ">";
  }
  return "";
}

Expected<std::string> Value::to_json(std::optional<int> indent, bool sort_keys, const std::string& item_sep,
                                     const std::string& key_sep) const {
  std::string out;
  EDGELLM_TRY(json_value(*this, indent, sort_keys, item_sep, key_sep, 0, out));
  return out;
}

const char* Value::type_name() const {
  switch (kind_) {
    case Kind::kUndefined: return "Undefined";
    case Kind::kNone: return "NoneType";
    case Kind::kBool: return "bool";
    case Kind::kInt: return "int";
    case Kind::kFloat: return "float";
    case Kind::kString: return "str";
    case Kind::kArray: return "list";
    case Kind::kObject: return o_->is_namespace ? "Namespace" : "dict";
    case Kind::kCallable: return "function";
  }
  return "?";
}

bool Value::same_identity(const Value& other) const {
  if (kind_ != other.kind_) return false;
  switch (kind_) {
    case Kind::kArray: return a_ == other.a_;
    case Kind::kObject: return o_ == other.o_;
    case Kind::kCallable: return fn_ == other.fn_;
    default: return *this == other;
  }
}

bool operator==(const Value& a, const Value& b) {
  const bool a_num = a.is_number() || a.kind() == Value::Kind::kBool;
  const bool b_num = b.is_number() || b.kind() == Value::Kind::kBool;
  if (a_num && b_num) {
    const double x = a.kind() == Value::Kind::kBool ? (a.as_bool() ? 1.0 : 0.0) : a.as_double();
    const double y = b.kind() == Value::Kind::kBool ? (b.as_bool() ? 1.0 : 0.0) : b.as_double();
    if (a.kind() == Value::Kind::kInt && b.kind() == Value::Kind::kInt) return a.as_int() == b.as_int();
    return x == y;
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone: return true;
    case Value::Kind::kString: return a.as_string() == b.as_string();
    case Value::Kind::kArray: {
      const Array &x = a.array_items(), &y = b.array_items();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i) {
        if (!(x[i] == y[i])) return false;
      }
      return true;
    }
    case Value::Kind::kObject: {
      const Object &x = a.object_items(), &y = b.object_items();
      if (x.items.size() != y.items.size()) return false;
      for (const auto& [k, v] : x.items) {
        const Value* w = y.find(k);
        if (!w || !(v == *w)) return false;
      }
      return true;
    }
    case Value::Kind::kCallable: return a.same_identity(b);
    default: return false;
  }
}

}  // namespace edgellm::jinja
