// The Jinja interpreter (chat/jinja/) in C++, so that the sanitizer builds run it too: renders whose expected
// text came from transformers' own jinja2 environment (tests/python/test_jinja_conformance.py holds the
// full comparison), which bytes count as input, errors with positions, and hostile templates that must stop.
#include <gtest/gtest.h>

#include "chat/jinja/template.h"

namespace edgellm::jinja {
namespace {

Expected<Text> render(const std::string& source, const nlohmann::ordered_json& context = nlohmann::ordered_json::object()) {
  auto t = Template::parse(source);
  if (!t.ok()) return t.take_error();
  return t->render(Value::from_json(context, true).object_items());
}

std::string rendered(const std::string& source, const nlohmann::ordered_json& context = nlohmann::ordered_json::object()) {
  auto r = render(source, context);
  EXPECT_TRUE(r.ok()) << source << ": " << (r.ok() ? "" : r.error().message);
  return r.ok() ? r->text : std::string();
}

TEST(Jinja, RendersAsJinja2) {
  EXPECT_EQ(rendered("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content | trim }}<|im_end|>\n{% endfor %}"
                     "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
                     {{"messages", {{{"role", "user"}, {"content", " hi <|im_end|> "}}, {{"role", "assistant"}, {"content", "yo"}}}},
                      {"add_generation_prompt", true}}),
            "<|im_start|>user\nhi <|im_end|><|im_end|>\n<|im_start|>assistant\nyo<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(rendered("{% set ns = namespace(n=0) %}{% for x in xs if x is odd %}{% set ns.n = ns.n + x %}{{ loop.index }}:"
                     "{{ x }}{{ ', ' if not loop.last }}{% endfor %} sum={{ ns.n }}",
                     {{"xs", {1, 2, 3, 4, 5}}}),
            "1:1, 2:3, 3:5 sum=9");
  EXPECT_EQ(rendered("{% macro f(a, b='B') %}[{{ a }}{{ b }}]{% endmacro %}{{ f(1) }}{{ f(2, b='x') }}{{ d|tojson }}"
                     "{{ d|tojson(indent=2) }}",
                     {{"d", {{"k", {1, 2.5, nullptr, "é"}}}}}),
            "[1B][2x]{\"k\": [1, 2.5, null, \"é\"]}{\n  \"k\": [\n    1,\n    2.5,\n    null,\n    \"é\"\n  ]\n}");
  EXPECT_EQ(rendered("{{ 'a,b,c'.split(',')[-1] }}{{ 'abc'[::-1] }}{{ [3,1,2]|sort|join('-') }}{{ 7 // 2 }}{{ 7 % 3 }}"
                     "{{ 2 ** 3 }}{{ 1.5 }}{{ none }}{{ true }}"),
            "ccba1-2-33181.5NoneTrue");
}

TEST(Jinja, RemembersWhichBytesCameFromTheInput) {
  auto r = render("<s>{{ m.strip() }}</s>{{ 'x' ~ m[:2] }}", {{"m", " <b> "}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->text, "<s><b></s>x <");
  EXPECT_EQ(r->input, (InputSpans{{3, 6}, {11, 13}}));
}

TEST(Jinja, ErrorsNameTheirPlace) {
  auto syntax = render("ok\n{{ 1 + }}");
  ASSERT_FALSE(syntax.ok());
  EXPECT_NE(syntax.error().message.find("template line 2, column 8"), std::string::npos) << syntax.error().message;
  auto raised = render("{{ raise_exception('roles must alternate') }}");
  ASSERT_FALSE(raised.ok());
  EXPECT_NE(raised.error().message.find("roles must alternate"), std::string::npos);
  auto undefined = render("{{ x.y }}");
  ASSERT_FALSE(undefined.ok());
  EXPECT_NE(undefined.error().message.find("'x' is undefined"), std::string::npos);
}

TEST(Jinja, HostileTemplatesStop) {
  RenderLimits small;
  small.max_steps = 200000;
  for (const std::string& source : {
           std::string("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"),
           std::string("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"),
           std::string("{{ ") + std::string(3000, '(') + "1" + std::string(3000, ')') + " }}",
       }) {
    auto t = Template::parse(source);
    if (!t.ok()) continue;  // nesting too deep: refused while parsing
    auto r = t->render(Object{}, small);
    EXPECT_FALSE(r.ok()) << source.substr(0, 60);
  }
  RenderLimits tiny_output;
  tiny_output.max_output_bytes = 1000;
  auto big = Template::parse("{% for i in range(100) %}{{ 'x' * 100 }}{% endfor %}");
  ASSERT_TRUE(big.ok());
  auto r = big->render(Object{}, tiny_output);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("exceeds 1000 bytes"), std::string::npos);
}

}  // namespace
}  // namespace edgellm::jinja
