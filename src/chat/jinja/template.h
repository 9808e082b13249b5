// A chat template in Jinja, parsed once and rendered many times (thread-safe: render() keeps its state on
// the stack). See chat/jinja/parser.h for the syntax, interpreter.h for the semantics and limits.
#pragma once

#include <memory>
#include <string_view>

#include "chat/jinja/ast.h"
#include "chat/jinja/interpreter.h"
#include "chat/jinja/value.h"
#include "util/expected.h"

namespace edgellm::jinja {

class Template {
 public:
  // Syntax errors name the line and column.
  static Expected<Template> parse(std::string_view source);

  // Renders with `globals` as the template's variables. Errors name the line and column, or carry the
  // message of raise_exception().
  Expected<Text> render(const Object& globals, const RenderLimits& limits = {}) const;

 private:
  std::shared_ptr<const Body> body_;
};

}  // namespace edgellm::jinja
