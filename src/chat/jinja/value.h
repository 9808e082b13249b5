// Values of edgellm's Jinja interpreter: what Python gives a chat template — None, booleans, integers,
// floats, strings, lists and dicts (insertion-ordered, shared by reference as Python's are), callables
// (macros, builtins, bound methods) and Jinja's Undefined.
//
// Strings remember which of their bytes came from the conversation (message content, tool definitions and
// calls): a rendered prompt must never turn such text into special tokens (chat/chat_template.h), however
// the template concatenates it with its own literals.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/expected.h"

namespace edgellm::jinja {

// [begin, end) byte ranges of a string that came from the input, ascending and disjoint.
using InputSpans = std::vector<std::pair<size_t, size_t>>;

// A string and the parts of it that came from the conversation.
struct Text {
  std::string text;
  InputSpans input;

  static Text literal(std::string s) { return Text{std::move(s), {}}; }
  static Text from_input(std::string s);  // every byte from the input
  bool has_input() const { return !input.empty(); }
  void append(const Text& other);
  // Bytes [begin, end) of this text, with their spans.
  Text slice(size_t begin, size_t end) const;
  // The same marking applied to a derived string: all input if this text has any input, else none.
  Text derived(std::string s) const;
};

class Value;
class Interpreter;
using Array = std::vector<Value>;

struct Object {
  std::vector<std::pair<std::string, Value>> items;  // insertion order, as Python's dict
  bool keys_from_input = false;  // keys came from the conversation (tool parameter names, ...)
  bool is_namespace = false;     // namespace(): attributes may be assigned with `set ns.x = ...`

  const Value* find(std::string_view key) const;
  Value* find(std::string_view key);
  void set(const std::string& key, Value value);
};

// Arguments of a call: positional, then keyword.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
  const Value* get(size_t index, std::string_view name) const;  // positional index or keyword name
};

using NativeFn = std::function<Expected<Value>(Interpreter&, CallArgs&)>;

class Value {
 public:
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kArray, kObject, kCallable };

  Value() = default;  // Undefined
  static Value undefined(std::string name = {});
  static Value none();
  static Value boolean(bool b);
  static Value integer(int64_t i);
  static Value number(double f);
  static Value string(Text t);
  static Value string(std::string s) { return string(Text::literal(std::move(s))); }
  static Value array(Array items = {});
  static Value tuple(Array items);  // an array that prints as Python's tuple: ('a', 1)
  bool is_tuple() const { return tuple_; }
  static Value object(Object o = {});
  static Value callable(std::string name, NativeFn fn);
  // A JSON value as the template sees it; strings (and object keys) marked as input when `from_input`.
  // ordered_json keeps the keys in the order they were written, as Python's json.loads does (tool
  // definitions render in their own order); nlohmann::json has them sorted.
  static Value from_json(const nlohmann::ordered_json& j, bool from_input);
  static Value from_json(const nlohmann::json& j, bool from_input);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_number() const { return kind_ == Kind::kInt || kind_ == Kind::kFloat; }
  bool is_array() const { return kind_ == Kind::kArray; }
  bool is_object() const { return kind_ == Kind::kObject; }
  bool is_callable() const { return kind_ == Kind::kCallable; }

  bool as_bool() const { return b_; }
  int64_t as_int() const { return i_; }
  double as_double() const { return kind_ == Kind::kInt ? static_cast<double>(i_) : f_; }
  const Text& as_text() const { return *s_; }
  const std::string& as_string() const { return s_->text; }
  Array& array_items() const { return *a_; }
  Object& object_items() const { return *o_; }
  const std::string& callable_name() const { return fn_->first; }
  const NativeFn& callable_fn() const { return fn_->second; }
  const std::string& undefined_name() const { return undefined_name_; }

  bool truthy() const;  // Python's truth value; Undefined is false
  // str(): what `{{ x }}` prints (Python's str: None, True, 1.5, ['a', 1], {'k': 'v'}). Undefined is "".
  Text to_text() const;
  // repr(), for the insides of lists and dicts.
  std::string repr() const;
  // JSON as Python's json.dumps with ensure_ascii=False (transformers' tojson).
  Expected<std::string> to_json(std::optional<int> indent, bool sort_keys, const std::string& item_sep,
                                const std::string& key_sep) const;
  const char* type_name() const;  // Python's: "NoneType", "str", "list", "dict", ...

  bool same_identity(const Value& other) const;  // `is sameas`
  friend bool operator==(const Value& a, const Value& b);

 private:
  Kind kind_ = Kind::kUndefined;
  bool tuple_ = false;
  bool b_ = false;
  int64_t i_ = 0;
  double f_ = 0;
  std::shared_ptr<const Text> s_;
  std::shared_ptr<Array> a_;
  std::shared_ptr<Object> o_;
  std::shared_ptr<const std::pair<std::string, NativeFn>> fn_;
  std::string undefined_name_;
};

// Python's float formatting for str()/repr(): the shortest text that reads back the same ("1.0", "0.1",
// "1e+16", "inf", "nan").
std::string python_float(double f);

}  // namespace edgellm::jinja
