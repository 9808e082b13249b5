#include "chat/jinja/interpreter.h"

#include <cmath>

#include "chat/jinja/builtins.h"

namespace edgellm::jinja {

Error template_error(int line, int col, const std::string& message) {
  return Error(ErrorCode::kInvalidArgument,
               "template line " + std::to_string(line) + ", column " + std::to_string(col) + ": " + message);
}

namespace {

Error at(const Expr& e, const std::string& message) { return template_error(e.line, e.col, message); }

// Errors raised below a position (by builtins, or deeper expressions) get the position once.
Error located(const Expr& e, const Error& inner) {
  if (inner.message.rfind("template line ", 0) == 0) return inner;
  return at(e, inner.message);
}

std::string undefined_message(const Value& v) {
  return v.undefined_name().empty() ? "a value is undefined" : "'" + v.undefined_name() + "' is undefined";
}

}  // namespace

Status Interpreter::step() {
  if (++steps_ > limits_.max_steps) {
    return Error(ErrorCode::kInvalidArgument, "the template ran for more than " + std::to_string(limits_.max_steps) +
                                                  " steps (a loop that does not end?)");
  }
  return {};
}

Status Interpreter::append_output(Text& out, const Text& piece) {
  if (out.text.size() + piece.text.size() > limits_.max_output_bytes) {
    return Error(ErrorCode::kInvalidArgument,
                 "the template's output exceeds " + std::to_string(limits_.max_output_bytes) + " bytes");
  }
  out.append(piece);
  return {};
}

Expected<Text> Interpreter::render(const Body& body, const Object& globals) {
  Scope global;
  Object with_builtins;
  add_builtin_globals(with_builtins);
  for (const auto& [k, v] : with_builtins.items) global[k] = v;
  for (const auto& [k, v] : globals.items) global[k] = v;
  scopes_ = {&global};
  steps_ = 0;
  call_depth_ = 0;
  Text out;
  auto flow = exec(body, out);
  scopes_.clear();
  if (!flow.ok()) return flow.take_error();
  return out;
}

Value Interpreter::lookup(const std::string& name) const {
  for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
    auto found = (*it)->find(name);
    if (found != (*it)->end()) return found->second;
  }
  return Value::undefined(name);
}

void Interpreter::set_local(const std::string& name, Value value) { (*scopes_.back())[name] = std::move(value); }

Expected<Interpreter::Flow> Interpreter::exec(const Body& body, Text& out) {
  for (const NodePtr& node : body) {
    EDGELLM_ASSIGN_OR_RETURN(Flow flow, exec_node(*node, out));
    if (flow != Flow::kNormal) return flow;
  }
  return Flow::kNormal;
}

Status Interpreter::assign(const std::vector<std::string>& targets, const Value& value, const Expr* e) {
  if (targets.size() == 1) {
    set_local(targets[0], value);
    return {};
  }
  EDGELLM_ASSIGN_OR_RETURN(Array items, iterate(value));
  if (items.size() != targets.size()) {
    const std::string message = "cannot unpack " + std::to_string(items.size()) + " values into " +
                                std::to_string(targets.size()) + " names";
    return e ? at(*e, message) : Error(ErrorCode::kInvalidArgument, message);
  }
  for (size_t i = 0; i < targets.size(); ++i) set_local(targets[i], items[i]);
  return {};
}

Expected<Interpreter::Flow> Interpreter::exec_node(const Node& node, Text& out) {
  EDGELLM_TRY(step());
  switch (node.kind) {
    case Node::Kind::kText:
      EDGELLM_TRY(append_output(out, Text::literal(node.text)));
      return Flow::kNormal;
    case Node::Kind::kOutput: {
      EDGELLM_ASSIGN_OR_RETURN(Value v, eval(*node.expr));
      EDGELLM_TRY(append_output(out, v.to_text()));
      return Flow::kNormal;
    }
    case Node::Kind::kIf:
      for (const auto& [cond, branch] : node.branches) {
        bool take = true;
        if (cond) {
          EDGELLM_ASSIGN_OR_RETURN(Value c, eval(*cond));
          take = c.truthy();
        }
        if (take) return exec(branch, out);
      }
      return Flow::kNormal;
    case Node::Kind::kFor: return exec_for(node, out);
    case Node::Kind::kSet: {
      EDGELLM_ASSIGN_OR_RETURN(Value v, eval(*node.expr));
      if (node.targets.empty()) return Flow::kNormal;  // {% do ... %}
      if (node.attr_target) {
        Value ns = lookup(node.targets[0]);
        if (!ns.is_object() || !ns.object_items().is_namespace) {
          return template_error(node.line, node.col, "cannot assign the attribute '" + node.targets[1] + "' of '" +
                                                         node.targets[0] + "': it is not a namespace()");
        }
        ns.object_items().set(node.targets[1], std::move(v));
        return Flow::kNormal;
      }
      EDGELLM_TRY(assign(node.targets, v, node.expr.get()));
      return Flow::kNormal;
    }
    case Node::Kind::kSetBlock: {
      Text captured;
      EDGELLM_TRY(exec(node.body, captured));
      set_local(node.targets[0], Value::string(std::move(captured)));
      return Flow::kNormal;
    }
    case Node::Kind::kMacro:
      set_local(node.text, make_macro(node));
      return Flow::kNormal;
    case Node::Kind::kCallBlock: {
      // `caller()` renders the block's body with the call block's parameters.
      const Node* block = &node;
      Scope* defining = scopes_.back();
      Value caller = Value::callable("caller", [this, block, defining](Interpreter&, CallArgs& args) -> Expected<Value> {
        Scope local;
        for (size_t i = 0; i < block->params.size(); ++i) {
          const Value* given = args.get(i, block->params[i].first);
          if (given) {
            local[block->params[i].first] = *given;
          } else if (block->params[i].second) {
            EDGELLM_ASSIGN_OR_RETURN(local[block->params[i].first], eval(*block->params[i].second));
          }
        }
        scopes_.push_back(defining);
        scopes_.push_back(&local);
        Text body;
        auto flow = exec(block->body, body);
        scopes_.pop_back();
        scopes_.pop_back();
        if (!flow.ok()) return flow.take_error();
        return Value::string(std::move(body));
      });
      Scope with_caller;
      with_caller["caller"] = caller;
      scopes_.push_back(&with_caller);
      auto result = eval_call(*node.expr);
      scopes_.pop_back();
      if (!result.ok()) return result.take_error();
      EDGELLM_TRY(append_output(out, result->to_text()));
      return Flow::kNormal;
    }
    case Node::Kind::kFilterBlock: {
      Text captured;
      EDGELLM_TRY(exec(node.body, captured));
      // Re-run the filter chain with the captured text in place of the placeholder.
      std::vector<const Expr*> chain;
      for (const Expr* e = node.filter.get(); e && e->kind == Expr::Kind::kFilter; e = e->children[0].get()) {
        chain.push_back(e);
      }
      Value v = Value::string(std::move(captured));
      for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
        EDGELLM_ASSIGN_OR_RETURN(CallArgs args, eval_args(**it));
        auto r = apply_filter(*this, (*it)->name, v, args);
        if (!r.ok()) return located(**it, r.error());
        v = std::move(*r);
      }
      EDGELLM_TRY(append_output(out, v.to_text()));
      return Flow::kNormal;
    }
    case Node::Kind::kBreak: return Flow::kBreak;
    case Node::Kind::kContinue: return Flow::kContinue;
  }
  return Flow::kNormal;
}

Expected<Interpreter::Flow> Interpreter::exec_for(const Node& node, Text& out) {
  EDGELLM_ASSIGN_OR_RETURN(Value iterable, eval(*node.expr));
  if (iterable.is_none() || iterable.kind() == Value::Kind::kBool || iterable.is_number() || iterable.is_callable()) {
    return at(*node.expr, std::string("'") + iterable.type_name() + "' object is not iterable");
  }
  auto all = iterate(iterable);
  if (!all.ok()) return located(*node.expr, all.error());
  Array items = std::move(*all);

  Scope scope;
  scopes_.push_back(&scope);
  struct Pop {
    std::vector<Scope*>& s;
    ~Pop() { s.pop_back(); }
  } pop{scopes_};

  // The loop filter (`for x in xs if cond`) runs first, so that loop.length and loop.last count what is kept.
  if (node.filter) {
    Array kept;
    for (const Value& item : items) {
      EDGELLM_TRY(step());
      EDGELLM_TRY(assign(node.targets, item, node.expr.get()));
      EDGELLM_ASSIGN_OR_RETURN(Value keep, eval(*node.filter));
      if (keep.truthy()) kept.push_back(item);
    }
    items = std::move(kept);
  }
  if (items.empty()) {
    scopes_.pop_back();
    auto flow = exec(node.else_body, out);
    scopes_.push_back(&scope);
    return flow;
  }
  const int64_t n = static_cast<int64_t>(items.size());
  for (int64_t i = 0; i < n; ++i) {
    EDGELLM_TRY(step());
    scope.clear();  // as jinja2: what the body set does not carry into the next iteration
    EDGELLM_TRY(assign(node.targets, items[static_cast<size_t>(i)], node.expr.get()));
    Object loop;
    loop.set("index", Value::integer(i + 1));
    loop.set("index0", Value::integer(i));
    loop.set("revindex", Value::integer(n - i));
    loop.set("revindex0", Value::integer(n - i - 1));
    loop.set("first", Value::boolean(i == 0));
    loop.set("last", Value::boolean(i == n - 1));
    loop.set("length", Value::integer(n));
    loop.set("depth", Value::integer(1));
    loop.set("depth0", Value::integer(0));
    loop.set("previtem", i > 0 ? items[static_cast<size_t>(i - 1)] : Value::undefined("loop.previtem"));
    loop.set("nextitem", i + 1 < n ? items[static_cast<size_t>(i + 1)] : Value::undefined("loop.nextitem"));
    loop.set("cycle", Value::callable("loop.cycle", [i](Interpreter&, CallArgs& args) -> Expected<Value> {
      if (args.positional.empty()) return Error(ErrorCode::kInvalidArgument, "loop.cycle() needs at least one value");
      return args.positional[static_cast<size_t>(i) % args.positional.size()];
    }));
    scope["loop"] = Value::object(std::move(loop));
    EDGELLM_ASSIGN_OR_RETURN(Flow flow, exec(node.body, out));
    if (flow == Flow::kBreak) break;
  }
  return Flow::kNormal;
}

Value Interpreter::make_macro(const Node& node) {
  const Node* macro = &node;
  Scope* globals = scopes_.front();
  return Value::callable(node.text, [this, macro, globals](Interpreter&, CallArgs& args) -> Expected<Value> {
    if (call_depth_ >= limits_.max_call_depth) {
      return template_error(macro->line, macro->col,
                            "macro '" + macro->text + "' nested deeper than " + std::to_string(limits_.max_call_depth) +
                                " calls (endless recursion?)");
    }
    if (args.positional.size() > macro->params.size()) {
      return template_error(macro->line, macro->col, "macro '" + macro->text + "' takes " +
                                                         std::to_string(macro->params.size()) + " arguments, got " +
                                                         std::to_string(args.positional.size()));
    }
    Scope local;
    for (size_t i = 0; i < macro->params.size(); ++i) {
      const auto& [name, def] = macro->params[i];
      if (const Value* given = args.get(i, name)) {
        local[name] = *given;
      } else if (def) {
        EDGELLM_ASSIGN_OR_RETURN(local[name], eval(*def));
      } else {
        local[name] = Value::undefined(name);
      }
    }
    for (const auto& [k, v] : args.keyword) {
      bool known = false;
      for (const auto& p : macro->params) known = known || p.first == k;
      if (!known && k != "caller") {
        return template_error(macro->line, macro->col, "macro '" + macro->text + "' has no parameter '" + k + "'");
      }
    }
    // A call block's `caller` reaches the macro through the calling scope.
    Value caller = lookup("caller");
    if (!caller.is_undefined() && local.find("caller") == local.end()) local["caller"] = caller;
    std::vector<Scope*> saved = std::move(scopes_);
    scopes_ = {globals, &local};
    ++call_depth_;
    Text out;
    auto flow = exec(macro->body, out);
    --call_depth_;
    scopes_ = std::move(saved);
    if (!flow.ok()) return flow.take_error();
    return Value::string(std::move(out));
  });
}

Expected<Value> Interpreter::call(const Value& fn, CallArgs& args) {
  if (!fn.is_callable()) {
    return Error(ErrorCode::kInvalidArgument,
                 fn.is_undefined() ? undefined_message(fn) : std::string("'") + fn.type_name() + "' object is not callable");
  }
  return fn.callable_fn()(*this, args);
}

Expected<Value> Interpreter::get_attr(const Value& obj, const std::string& name, const Expr& e) {
  if (obj.is_undefined()) return at(e, undefined_message(obj) + " (reading its attribute '" + name + "')");
  Value method;
  if (obj.is_object()) {
    const Object& o = obj.object_items();
    if (!o.is_namespace && bound_method(obj, name, &method)) return method;
    if (const Value* v = o.find(name)) return *v;
    return Value::undefined(name);
  }
  if (bound_method(obj, name, &method)) return method;
  return Value::undefined(name);
}

Expected<Value> Interpreter::get_item(const Value& obj, const Value& key, const Expr& e) {
  if (obj.is_undefined()) return at(e, undefined_message(obj) + " (reading an item)");
  if (obj.is_object()) {
    if (key.is_string()) {
      if (const Value* v = obj.object_items().find(key.as_string())) return *v;
      Value method;
      if (bound_method(obj, key.as_string(), &method)) return method;
      return Value::undefined(key.as_string());
    }
    return Value::undefined(key.repr());
  }
  if (obj.is_array() || obj.is_string()) {
    if (key.kind() != Value::Kind::kInt && key.kind() != Value::Kind::kBool) {
      if (key.is_string() && obj.is_string()) {
        Value method;
        if (bound_method(obj, key.as_string(), &method)) return method;
      }
      return at(e, std::string(obj.type_name()) + " indices must be integers, not " + key.type_name());
    }
    EDGELLM_ASSIGN_OR_RETURN(int64_t n, length_of(obj));
    int64_t i = key.kind() == Value::Kind::kBool ? (key.as_bool() ? 1 : 0) : key.as_int();
    if (i < 0) i += n;
    if (i < 0 || i >= n) return Value::undefined(obj.type_name() + std::string(" index out of range"));
    if (obj.is_array()) return obj.array_items()[static_cast<size_t>(i)];
    return Value::string(slice_text(obj.as_text(), true, i, true, i + 1, 1));
  }
  return Value::undefined(key.repr());
}

Expected<CallArgs> Interpreter::eval_args(const Expr& e) {
  CallArgs args;
  for (size_t i = 1; i < e.children.size(); ++i) {
    EDGELLM_ASSIGN_OR_RETURN(Value a, eval(*e.children[i]));
    args.positional.push_back(std::move(a));
  }
  for (const auto& [k, x] : e.kwargs) {
    EDGELLM_ASSIGN_OR_RETURN(Value a, eval(*x));
    args.keyword.emplace_back(k, std::move(a));
  }
  return args;
}

Expected<Value> Interpreter::eval_call(const Expr& e) {
  EDGELLM_ASSIGN_OR_RETURN(CallArgs args, eval_args(e));
  EDGELLM_ASSIGN_OR_RETURN(Value fn, eval(*e.children[0]));
  auto result = call(fn, args);
  if (!result.ok()) return located(e, result.error());
  return result;
}

Expected<Value> Interpreter::eval_binary(const Expr& e) {
  EDGELLM_ASSIGN_OR_RETURN(Value a, eval(*e.children[0]));
  EDGELLM_ASSIGN_OR_RETURN(Value b, eval(*e.children[1]));
  const std::string& op = e.name;
  const auto type_error = [&]() {
    return at(e, "unsupported operand types for " + op + ": '" + a.type_name() + "' and '" + b.type_name() + "'");
  };
  if (op == "==") return Value::boolean(a == b);
  if (op == "!=") return Value::boolean(!(a == b));
  if (op == "<" || op == "<=" || op == ">" || op == ">=") {
    auto c = compare_values(a, b);
    if (!c.ok()) return located(e, c.error());
    const int r = *c;
    return Value::boolean(op == "<" ? r < 0 : op == "<=" ? r <= 0 : op == ">" ? r > 0 : r >= 0);
  }
  if (op == "in") {
    bool found = false;
    if (b.is_string()) {
      if (!a.is_string()) return at(e, std::string("'in <string>' requires a string on the left, not ") + a.type_name());
      found = b.as_string().find(a.as_string()) != std::string::npos;
    } else if (b.is_array()) {
      for (const Value& x : b.array_items()) found = found || x == a;
    } else if (b.is_object()) {
      found = a.is_string() && b.object_items().find(a.as_string()) != nullptr;
    } else if (!b.is_undefined()) {
      return at(e, std::string("argument of type '") + b.type_name() + "' is not iterable");
    }
    return Value::boolean(e.negated ? !found : found);
  }
  if (op == "~") {
    Text t = a.to_text();
    t.append(b.to_text());
    return Value::string(std::move(t));
  }
  const bool numbers = (a.is_number() || a.kind() == Value::Kind::kBool) && (b.is_number() || b.kind() == Value::Kind::kBool);
  const auto num = [](const Value& v) { return v.kind() == Value::Kind::kBool ? (v.as_bool() ? 1.0 : 0.0) : v.as_double(); };
  const auto as_int = [](const Value& v) { return v.kind() == Value::Kind::kBool ? (v.as_bool() ? 1 : 0) : v.as_int(); };
  const bool ints = numbers && a.kind() != Value::Kind::kFloat && b.kind() != Value::Kind::kFloat;
  if (op == "+") {
    if (ints) {
      int64_t r = 0;
      if (!__builtin_add_overflow(as_int(a), as_int(b), &r)) return Value::integer(r);
      return Value::number(num(a) + num(b));
    }
    if (numbers) return Value::number(num(a) + num(b));
    if (a.is_string() && b.is_string()) {
      Text t = a.as_text();
      t.append(b.as_text());
      return Value::string(std::move(t));
    }
    if (a.is_array() && b.is_array()) {
      Array r = a.array_items();
      for (const Value& x : b.array_items()) r.push_back(x);
      return Value::array(std::move(r));
    }
    return type_error();
  }
  if (op == "-") {
    if (ints) {
      int64_t r = 0;
      if (!__builtin_sub_overflow(as_int(a), as_int(b), &r)) return Value::integer(r);
      return Value::number(num(a) - num(b));
    }
    if (numbers) return Value::number(num(a) - num(b));
    return type_error();
  }
  if (op == "*") {
    if (ints) {
      int64_t r = 0;
      if (!__builtin_mul_overflow(as_int(a), as_int(b), &r)) return Value::integer(r);
      return Value::number(num(a) * num(b));
    }
    if (numbers) return Value::number(num(a) * num(b));
    const Value* seq = a.is_string() || a.is_array() ? &a : b.is_string() || b.is_array() ? &b : nullptr;
    const Value* count = seq == &a ? &b : &a;
    if (seq && (count->kind() == Value::Kind::kInt || count->kind() == Value::Kind::kBool)) {
      const int64_t times = std::max<int64_t>(0, as_int(*count));
      EDGELLM_ASSIGN_OR_RETURN(int64_t len, length_of(*seq));
      if (times * std::max<int64_t>(len, 1) > static_cast<int64_t>(limits_.max_output_bytes)) {
        return at(e, "repetition too large");
      }
      if (seq->is_string()) {
        Text t;
        for (int64_t i = 0; i < times; ++i) t.append(seq->as_text());
        return Value::string(std::move(t));
      }
      Array r;
      for (int64_t i = 0; i < times; ++i) {
        for (const Value& x : seq->array_items()) r.push_back(x);
      }
      return Value::array(std::move(r));
    }
    return type_error();
  }
  if (!numbers) return type_error();
  if (op == "/") {
    if (num(b) == 0) return at(e, "division by zero");
    return Value::number(num(a) / num(b));
  }
  if (op == "//" || op == "%") {
    if (num(b) == 0) return at(e, op == "//" ? "integer division by zero" : "modulo by zero");
    if (ints) {
      const int64_t x = as_int(a), y = as_int(b);
      int64_t q = x / y, r = x % y;
      if (r != 0 && ((r < 0) != (y < 0))) {
        --q;
        r += y;
      }
      return Value::integer(op == "//" ? q : r);
    }
    const double x = num(a), y = num(b);
    const double q = std::floor(x / y);
    return Value::number(op == "//" ? q : x - q * y);
  }
  if (op == "**") {
    if (ints && as_int(b) >= 0) {
      const double r = std::pow(num(a), num(b));
      if (std::fabs(r) < 9.2e18) return Value::integer(static_cast<int64_t>(std::llround(r)));
    }
    return Value::number(std::pow(num(a), num(b)));
  }
  return at(e, "unknown operator " + op);
}

Expected<Value> Interpreter::eval(const Expr& e) {
  EDGELLM_TRY(step());
  switch (e.kind) {
    case Expr::Kind::kLiteral: return e.literal;
    case Expr::Kind::kName: return lookup(e.name);
    case Expr::Kind::kList:
    case Expr::Kind::kTuple: {
      Array items;
      for (const auto& c : e.children) {
        EDGELLM_ASSIGN_OR_RETURN(Value v, eval(*c));
        items.push_back(std::move(v));
      }
      return e.kind == Expr::Kind::kTuple ? Value::tuple(std::move(items)) : Value::array(std::move(items));
    }
    case Expr::Kind::kDict: {
      Object o;
      for (size_t i = 0; i + 1 < e.children.size(); i += 2) {
        EDGELLM_ASSIGN_OR_RETURN(Value k, eval(*e.children[i]));
        EDGELLM_ASSIGN_OR_RETURN(Value v, eval(*e.children[i + 1]));
        if (!k.is_string()) return at(*e.children[i], "dict keys must be strings here");
        if (k.as_text().has_input()) o.keys_from_input = true;
        o.set(k.as_string(), std::move(v));
      }
      return Value::object(std::move(o));
    }
    case Expr::Kind::kAttr: {
      EDGELLM_ASSIGN_OR_RETURN(Value obj, eval(*e.children[0]));
      return get_attr(obj, e.name, e);
    }
    case Expr::Kind::kSubscript: {
      EDGELLM_ASSIGN_OR_RETURN(Value obj, eval(*e.children[0]));
      EDGELLM_ASSIGN_OR_RETURN(Value key, eval(*e.children[1]));
      return get_item(obj, key, e);
    }
    case Expr::Kind::kSlice: {
      EDGELLM_ASSIGN_OR_RETURN(Value obj, eval(*e.children[0]));
      int64_t parts[3] = {0, 0, 1};
      bool has[3] = {false, false, false};
      for (int i = 0; i < 3; ++i) {
        if (!e.children[static_cast<size_t>(i) + 1]) continue;
        EDGELLM_ASSIGN_OR_RETURN(Value p, eval(*e.children[static_cast<size_t>(i) + 1]));
        if (p.is_none()) continue;
        if (p.kind() != Value::Kind::kInt) return at(e, "slice indices must be integers or None");
        parts[i] = p.as_int();
        has[i] = true;
      }
      if (has[2] && parts[2] == 0) return at(e, "slice step cannot be zero");
      if (obj.is_string()) {
        return Value::string(slice_text(obj.as_text(), has[0], parts[0], has[1], parts[1], has[2] ? parts[2] : 1));
      }
      if (!obj.is_array()) {
        if (obj.is_undefined()) return at(e, undefined_message(obj) + " (slicing it)");
        return at(e, std::string("'") + obj.type_name() + "' object is not subscriptable");
      }
      const Array& a = obj.array_items();
      const int64_t step = has[2] ? parts[2] : 1;
      const auto [start, stop] = slice_bounds(static_cast<int64_t>(a.size()), has[0], parts[0], has[1], parts[1], step);
      Array r;
      for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) r.push_back(a[static_cast<size_t>(i)]);
      return Value::array(std::move(r));
    }
    case Expr::Kind::kCall: return eval_call(e);
    case Expr::Kind::kFilter: {
      EDGELLM_ASSIGN_OR_RETURN(Value input, eval(*e.children[0]));
      EDGELLM_ASSIGN_OR_RETURN(CallArgs args, eval_args(e));
      auto r = apply_filter(*this, e.name, input, args);
      if (!r.ok()) return located(e, r.error());
      return r;
    }
    case Expr::Kind::kTest: {
      EDGELLM_ASSIGN_OR_RETURN(Value input, eval(*e.children[0]));
      EDGELLM_ASSIGN_OR_RETURN(CallArgs args, eval_args(e));
      auto r = apply_test(*this, e.name, input, args);
      if (!r.ok()) return located(e, r.error());
      return Value::boolean(e.negated ? !*r : *r);
    }
    case Expr::Kind::kNeg:
    case Expr::Kind::kPos: {
      EDGELLM_ASSIGN_OR_RETURN(Value v, eval(*e.children[0]));
      if (v.kind() == Value::Kind::kInt) return Value::integer(e.kind == Expr::Kind::kNeg ? -v.as_int() : v.as_int());
      if (v.kind() == Value::Kind::kFloat) return Value::number(e.kind == Expr::Kind::kNeg ? -v.as_double() : v.as_double());
      return at(e, std::string("bad operand type for unary ") + (e.kind == Expr::Kind::kNeg ? "-" : "+") + ": '" +
                       v.type_name() + "'");
    }
    case Expr::Kind::kNot: {
      EDGELLM_ASSIGN_OR_RETURN(Value v, eval(*e.children[0]));
      return Value::boolean(!v.truthy());
    }
    case Expr::Kind::kAnd: {
      EDGELLM_ASSIGN_OR_RETURN(Value a, eval(*e.children[0]));
      if (!a.truthy()) return a;
      return eval(*e.children[1]);
    }
    case Expr::Kind::kOr: {
      EDGELLM_ASSIGN_OR_RETURN(Value a, eval(*e.children[0]));
      if (a.truthy()) return a;
      return eval(*e.children[1]);
    }
    case Expr::Kind::kTernary: {
      EDGELLM_ASSIGN_OR_RETURN(Value c, eval(*e.children[1]));
      if (c.truthy()) return eval(*e.children[0]);
      if (e.children[2]) return eval(*e.children[2]);
      return Value::undefined();
    }
    case Expr::Kind::kBinary: return eval_binary(e);
  }
  return at(e, "unknown expression");
}

}  // namespace edgellm::jinja
