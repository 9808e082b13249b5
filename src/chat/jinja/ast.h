// The syntax tree of a Jinja template (chat/jinja/parser.h builds it, chat/jinja/interpreter.h runs it).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chat/jinja/value.h"

namespace edgellm::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;
using KeywordArgs = std::vector<std::pair<std::string, ExprPtr>>;

struct Expr {
  enum class Kind {
    kLiteral,    // literal
    kName,       // name
    kList,       // [children...]
    kTuple,      // (children...)
    kDict,       // {children[2i]: children[2i+1]}
    kAttr,       // children[0].name
    kSubscript,  // children[0][children[1]]
    kSlice,      // children[0][children[1]:children[2]:children[3]] (null parts absent)
    kCall,       // children[0](children[1..], kwargs)
    kFilter,     // children[0] | name(children[1..], kwargs)
    kTest,       // children[0] is [not] name(children[1..])
    kNeg,        // -children[0]
    kPos,        // +children[0]
    kNot,        // not children[0]
    kBinary,     // children[0] name children[1]: + - * / // % ** ~ == != < <= > >= in (negated: not in)
    kAnd,        // children[0] and children[1]
    kOr,         // children[0] or children[1]
    kTernary,    // children[0] if children[1] else children[2] (absent else: undefined)
  };
  Kind kind = Kind::kLiteral;
  int line = 0, col = 0;
  Value literal;
  std::string name;
  bool negated = false;
  std::vector<ExprPtr> children;  // entries may be null (slice parts, a ternary without else)
  KeywordArgs kwargs;
};

struct Node;
using NodePtr = std::unique_ptr<Node>;
using Body = std::vector<NodePtr>;

struct Node {
  enum class Kind {
    kText,        // text
    kOutput,      // {{ expr }}
    kIf,          // branches: (condition or null for else, body)
    kFor,         // for targets in expr [if filter]: body [else: else_body]
    kSet,         // set targets = expr; attr_target: set targets[0].targets[1] = expr
    kSetBlock,    // set targets[0] %} body {% endset
    kMacro,       // macro name(params) body
    kCallBlock,   // call[(params)] expr: body is `caller`
    kFilterBlock, // filter name(args) body
    kBreak,
    kContinue,
  };
  Kind kind = Kind::kText;
  int line = 0, col = 0;
  std::string text;                // kText; macro name; filter name
  ExprPtr expr;                    // output, set value, for iterable, call expression
  ExprPtr filter;                  // for ... if filter; filter block's call (a kFilter on a placeholder)
  std::vector<std::pair<ExprPtr, Body>> branches;
  std::vector<std::string> targets;
  bool attr_target = false;
  Body body, else_body;
  std::vector<std::pair<std::string, ExprPtr>> params;  // macro / call-block parameters with defaults
};

}  // namespace edgellm::jinja
