#include "chat/jinja/template.h"

#include "chat/jinja/parser.h"

namespace edgellm::jinja {

Expected<Template> Template::parse(std::string_view source) {
  EDGELLM_ASSIGN_OR_RETURN(Body body, parse_template(source));
  Template t;
  t.body_ = std::make_shared<const Body>(std::move(body));
  return t;
}

Expected<Text> Template::render(const Object& globals, const RenderLimits& limits) const {
  Interpreter interpreter(limits);
  return interpreter.render(*body_, globals);
}

}  // namespace edgellm::jinja
