// Reading function calls from scripted replies in each family's format (chat/tool_calls.h): whole replies,
// the same replies streamed in every split, malformed calls (they stay text), and format detection.
#include <gtest/gtest.h>

#include "chat/tool_calls.h"

namespace edgellm {
namespace {

ParsedReply streamed(ToolCallFormat format, const std::string& reply, size_t chunk) {
  ToolCallStream stream(format);
  ParsedReply out;
  for (size_t i = 0; i < reply.size(); i += chunk) {
    auto o = stream.feed(std::string_view(reply).substr(i, chunk));
    out.content += o.text;
    for (auto& c : o.calls) out.calls.push_back(std::move(c));
  }
  auto o = stream.finish();
  out.content += o.text;
  for (auto& c : o.calls) out.calls.push_back(std::move(c));
  return out;
}

// Whole and streamed in 1, 2, 3, 7-byte pieces: the same calls, the same text (the whole-reply reader also
// trims the text around calls).
ParsedReply read_every_way(ToolCallFormat format, const std::string& reply) {
  ParsedReply whole = parse_tool_calls(format, reply);
  for (size_t chunk : {1, 2, 3, 7}) {
    ParsedReply s = streamed(format, reply, chunk);
    EXPECT_EQ(s.calls.size(), whole.calls.size()) << "chunk " << chunk;
    for (size_t i = 0; i < std::min(s.calls.size(), whole.calls.size()); ++i) {
      EXPECT_EQ(s.calls[i].name, whole.calls[i].name);
      EXPECT_EQ(s.calls[i].arguments, whole.calls[i].arguments);
      EXPECT_EQ(s.calls[i].id, whole.calls[i].id);
    }
    if (whole.calls.empty()) {
      EXPECT_EQ(s.content, whole.content) << "chunk " << chunk;
    }
  }
  return whole;
}

TEST(ToolCalls, HermesSingleAndParallel) {
  auto r = read_every_way(ToolCallFormat::kHermes,
                          "Let me check.\n<tool_call>\n{\"name\": \"get_temperature\", \"arguments\": {\"room\": "
                          "\"kitchen\", \"unit\": \"C\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"turn_on\", "
                          "\"arguments\": {\"light\": \"hall\"}}\n</tool_call>");
  ASSERT_EQ(r.calls.size(), 2u);
  EXPECT_EQ(r.content, "Let me check.");
  EXPECT_EQ(r.calls[0].name, "get_temperature");
  EXPECT_EQ(r.calls[0].arguments.dump(), R"({"room":"kitchen","unit":"C"})");  // key order kept
  EXPECT_EQ(r.calls[0].id, "call_0");
  EXPECT_EQ(r.calls[1].name, "turn_on");
  EXPECT_EQ(r.calls[1].id, "call_1");
}

TEST(ToolCalls, HermesArgumentsAsStringAndUnclosedAtTheEnd) {
  auto r = read_every_way(ToolCallFormat::kHermes,
                          "<tool_call>\n{\"name\": \"f\", \"arguments\": \"{\\\"x\\\": 1}\"}");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0].arguments["x"], 1);
  EXPECT_EQ(r.content, "");
}

TEST(ToolCalls, MalformedCallsStayText) {
  for (const std::string& reply : {
           std::string("<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": }\n</tool_call>"),  // bad JSON
           std::string("<tool_call>\n{\"arguments\": {}}\n</tool_call>"),                        // no name
           std::string("<tool_call>\n[1, 2]\n</tool_call> after"),                               // not an object
           std::string("I will use <tool_call but not really"),                                  // not the tag
           std::string("<tool_call>\n{\"name\": \"f\""),                                          // cut off
       }) {
    auto r = read_every_way(ToolCallFormat::kHermes, reply);
    EXPECT_TRUE(r.calls.empty()) << reply;
    EXPECT_EQ(r.content, reply) << "the model's text is kept as written";
  }
}

TEST(ToolCalls, TextAroundAndBetweenCallsStreamsAtOnce) {
  ToolCallStream stream(ToolCallFormat::kHermes);
  EXPECT_EQ(stream.feed("The answer is 4").text, "The answer is 4");
  EXPECT_EQ(stream.feed(". <tool").text, ". ");  // "<tool" may begin a call: held back
  auto o = stream.feed("box> is not a tag");
  EXPECT_EQ(o.text, "<toolbox> is not a tag");
  EXPECT_EQ(stream.feed("<tool_call>{\"name\": \"f\", \"arguments\": {}}").text, "");
  o = stream.feed("</tool_call>");
  ASSERT_EQ(o.calls.size(), 1u);
  EXPECT_EQ(o.calls[0].name, "f");
  EXPECT_EQ(stream.finish().text, "");
}

TEST(ToolCalls, QwenXml) {
  auto r = read_every_way(ToolCallFormat::kQwenXml,
                          "<tool_call>\n<function=set_thermostat>\n<parameter=room>\nliving room\n</parameter>\n"
                          "<parameter=temperature>\n21.5\n</parameter>\n<parameter=on>\ntrue\n</parameter>\n"
                          "<parameter=note>\nline one\nline two\n</parameter>\n</function>\n</tool_call>");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0].name, "set_thermostat");
  EXPECT_EQ(r.calls[0].arguments.dump(),
            R"({"room":"living room","temperature":21.5,"on":true,"note":"line one\nline two"})");
  // A Qwen3.5 model writing JSON inside the tags is read too; a broken XML block stays text.
  auto j = read_every_way(ToolCallFormat::kQwenXml, "<tool_call>{\"name\": \"g\", \"arguments\": {}}</tool_call>");
  ASSERT_EQ(j.calls.size(), 1u);
  const std::string broken = "<tool_call>\n<function=f>\n<parameter=x>\n1\n</function>\n</tool_call>";
  auto b = read_every_way(ToolCallFormat::kQwenXml, broken);
  EXPECT_TRUE(b.calls.empty());
  EXPECT_EQ(b.content, broken);
}

TEST(ToolCalls, LlamaJson) {
  auto r = read_every_way(ToolCallFormat::kLlamaJson,
                          "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Oslo\"}}");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0].name, "get_weather");
  EXPECT_EQ(r.calls[0].arguments["city"], "Oslo");
  auto two = read_every_way(ToolCallFormat::kLlamaJson,
                            "<|python_tag|>{\"name\": \"a\", \"parameters\": {\"s\": \"x;y\"}}; {\"name\": \"b\", "
                            "\"parameters\": {}}");
  ASSERT_EQ(two.calls.size(), 2u);
  EXPECT_EQ(two.calls[0].arguments["s"], "x;y");
  EXPECT_EQ(two.calls[1].name, "b");
  // Plain answers stream as text; a reply that only looks like JSON stays text.
  auto text = read_every_way(ToolCallFormat::kLlamaJson, "It is sunny in Oslo.");
  EXPECT_TRUE(text.calls.empty());
  EXPECT_EQ(text.content, "It is sunny in Oslo.");
  auto json_text = read_every_way(ToolCallFormat::kLlamaJson, "{\"not\": \"a call\"}");
  EXPECT_TRUE(json_text.calls.empty());
  EXPECT_EQ(json_text.content, "{\"not\": \"a call\"}");
}

TEST(ToolCalls, NoFormatIsAllText) {
  const std::string reply = "<tool_call>{\"name\": \"f\"}</tool_call>";
  auto r = read_every_way(ToolCallFormat::kNone, reply);
  EXPECT_TRUE(r.calls.empty());
  EXPECT_EQ(r.content, reply);
}

TEST(ToolCalls, FormatFromTheTemplate) {
  EXPECT_EQ(tool_call_format_for_template("... <tool_call>\\n{\"name\": <function-name>, ...}"), ToolCallFormat::kHermes);
  EXPECT_EQ(tool_call_format_for_template("<tool_call>\\n<function=example_function_name>\\n<parameter=example_parameter_1>"),
            ToolCallFormat::kQwenXml);
  EXPECT_EQ(tool_call_format_for_template("Respond in the format {\"name\": function name, \"parameters\": dictionary of "
                                          "argument name and its value}"),
            ToolCallFormat::kLlamaJson);
  EXPECT_EQ(tool_call_format_for_template("{% for m in messages %}{{ m.content }}{% endfor %}"), ToolCallFormat::kNone);
}

}  // namespace
}  // namespace edgellm
