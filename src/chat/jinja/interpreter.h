// Runs a parsed Jinja template (chat/jinja/parser.h) with Python's semantics as jinja2 gives them to
// transformers' chat templates: Undefined for missing names and attributes (an error only when an undefined
// value is used further), scoping of for loops and macros, `loop.*`, namespaces, the filters, tests and
// string/dict methods of chat templates (chat/jinja/builtins.h), and transformers' immutable sandbox (lists
// and dicts cannot be modified).
//
// Hostile templates stop with an error, never hang or crash: the number of evaluation steps, the output
// size and the depth of macro calls are bounded (RenderLimits).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "chat/jinja/ast.h"
#include "chat/jinja/value.h"
#include "util/expected.h"

namespace edgellm::jinja {

struct RenderLimits {
  // Expression evaluations and statements executed: a real template with a long conversation and tools takes
  // tens of thousands; this stops a runaway one within about a second.
  int64_t max_steps = 2'000'000;
  size_t max_output_bytes = size_t{32} << 20;
  int max_call_depth = 100;                 // nested macro calls (recursion)
};

class Interpreter {
 public:
  explicit Interpreter(RenderLimits limits = {}) : limits_(limits) {}

  // Renders `body` with `globals` (the template's variables: messages, tools, bos_token, ...; the builtin
  // functions range, namespace, dict, raise_exception and strftime_now are added).
  Expected<Text> render(const Body& body, const Object& globals);

  // Calls a callable value (a macro, a builtin, a bound method).
  Expected<Value> call(const Value& fn, CallArgs& args);
  // Counts one step against the budget; fails when it is spent.
  Status step();

 private:
  using Scope = std::unordered_map<std::string, Value>;
  enum class Flow { kNormal, kBreak, kContinue };

  Expected<Flow> exec(const Body& body, Text& out);
  Expected<Flow> exec_node(const Node& node, Text& out);
  Expected<Flow> exec_for(const Node& node, Text& out);
  Expected<Value> eval(const Expr& e);
  Expected<Value> eval_binary(const Expr& e);
  Expected<Value> eval_call(const Expr& e);
  Expected<CallArgs> eval_args(const Expr& e);  // children[1..] and kwargs of a call, filter or test
  Expected<Value> get_attr(const Value& obj, const std::string& name, const Expr& at);
  Expected<Value> get_item(const Value& obj, const Value& key, const Expr& at);
  Status assign(const std::vector<std::string>& targets, const Value& value, const Expr* at);
  Value lookup(const std::string& name) const;
  void set_local(const std::string& name, Value value);
  Value make_macro(const Node& node);
  Status append_output(Text& out, const Text& piece);

  RenderLimits limits_;
  int64_t steps_ = 0;
  int call_depth_ = 0;
  std::vector<Scope*> scopes_;  // innermost last; [0] holds the globals
};

// "template line L, column C: message"
Error template_error(int line, int col, const std::string& message);

}  // namespace edgellm::jinja
