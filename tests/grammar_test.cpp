// Grammar-constrained decoding: GBNF parsing, the pushdown matcher, token masks over a byte trie (incl.
// tokens that split a UTF-8 character), and JSON Schema -> GBNF.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "chat/tool_call_grammar.h"
#include "chat/tool_calls.h"
#include "grammar/compiled_grammar.h"
#include "grammar/grammar.h"
#include "grammar/json_schema_grammar.h"
#include "grammar/token_trie.h"

namespace edgellm {
namespace {

// Whether `text` matches the grammar completely, by feeding it as one-byte tokens.
bool matches(const std::string& gbnf, const std::string& text) {
  std::vector<std::string> bytes(256);
  for (int b = 0; b < 256; ++b) bytes[static_cast<size_t>(b)] = std::string(1, static_cast<char>(b));
  bytes.push_back("");  // id 256: the end token
  auto g = CompiledGrammar::from_gbnf(gbnf, TokenTrie::build(bytes, {256}));
  EXPECT_TRUE(g.ok()) << g.error().message;
  if (!g.ok()) return false;
  GrammarMatcher m(*g);
  for (unsigned char c : text) {
    if (!m.accept(c).ok()) return false;
  }
  return m.can_finish();
}

std::string parse_error(const std::string& gbnf) {
  auto g = Grammar::parse(gbnf);
  return g.ok() ? std::string("(parsed)") : g.error().message;
}

TEST(GrammarParse, LiteralsClassesGroupsAndRepetitions) {
  const std::string g = R"(root ::= "a" [0-9]+ ("x" | "yz")* "!"? end   # comment
end ::= [^a-z\n]{2,3}
)";
  EXPECT_TRUE(matches(g, "a1xyzx!AB"));
  EXPECT_TRUE(matches(g, "a12ABC"));
  EXPECT_FALSE(matches(g, "a12ABCD"));  // {2,3}
  EXPECT_FALSE(matches(g, "aAB"));      // [0-9]+ needs one
  EXPECT_FALSE(matches(g, "a1yAB"));    // "yz" is one literal
  EXPECT_FALSE(matches(g, "a1xaB"));    // negated class
}

TEST(GrammarParse, EscapesUnicodeAndAnyChar) {
  EXPECT_TRUE(matches(R"(root ::= "\x41\u00e9\n" . "\"")", "A\xC3\xA9\n\xE2\x82\xAC\""));
  EXPECT_TRUE(matches(R"(root ::= [α-ω]+)", "\xCE\xB1\xCE\xB2"));
  EXPECT_FALSE(matches(R"(root ::= [α-ω]+)", "a"));
}

TEST(GrammarParse, AlternativesContinueOnLinesStartingWithBar) {
  EXPECT_TRUE(matches("root ::= \"a\"\n  | \"b\"\n", "b"));
  EXPECT_TRUE(matches("root ::= (\n  \"a\" |\n  \"b\"\n)\n", "b"));
}

TEST(GrammarParse, ErrorsNameLineColumnAndRule) {
  EXPECT_EQ(parse_error("root ::= x\n"), "grammar: line 1, column 10: rule 'x' is used but never defined");
  EXPECT_NE(parse_error("root ::= \"a\"\nvalue = \"b\"\n").find("line 2, column 7: expected '::=' after rule name 'value'"),
            std::string::npos);
  EXPECT_NE(parse_error("item ::= \"a\"\n").find("no 'root' rule"), std::string::npos);
  EXPECT_NE(parse_error("root ::= root \"a\" | \"b\"\n").find("left-recursive (root -> root)"), std::string::npos);
  EXPECT_NE(parse_error("root ::= x \"a\"\nx ::= y\ny ::= x | \"\"\n").find("empty literal"), std::string::npos);
  EXPECT_NE(parse_error("root ::= x \"a\"\nx ::= y?\ny ::= x\n").find("left-recursive"), std::string::npos);
  EXPECT_NE(parse_error("root ::= \"abc\n").find("unterminated literal"), std::string::npos);
  EXPECT_NE(parse_error("root ::= [a-\n").find("unterminated character class"), std::string::npos);
  EXPECT_NE(parse_error("root ::= \"a\"{3,1}\n").find("max < min"), std::string::npos);
  EXPECT_NE(parse_error("root ::= \"a\"{99999}\n").find("limited to 10000"), std::string::npos);
  EXPECT_NE(parse_error("root ::= \"a\"\nroot ::= \"b\"\n").find("defined twice"), std::string::npos);
  EXPECT_NE(parse_error("root ::= \"\\q\"\n").find("unknown escape"), std::string::npos);
  EXPECT_NE(parse_error("root ::= <think>\n").find("token references"), std::string::npos);
  EXPECT_NE(parse_error("").find("empty"), std::string::npos);
  // Nested repetitions stay small (each group is one rule), so this parses; a flat blow-up is refused.
  EXPECT_EQ(parse_error("root ::= ((\"ab\"{1000}){1000}){1000}\n"), "(parsed)");
  std::string flat = "root ::=";
  for (int i = 0; i < 110; ++i) flat += " [a-z]{10000}";
  EXPECT_NE(parse_error(flat + "\n").find("more than 1048576 elements"), std::string::npos);
}

TEST(GrammarParse, HostileGrammarsAreRefusedNotFollowed) {
  std::string nested = "root ::= ";
  for (int i = 0; i < 100000; ++i) nested += "(";
  EXPECT_NE(parse_error(nested + "\"a\"\n").find("groups nest more than 256 deep"), std::string::npos);
  std::string chain = "root ::= r0\n";
  for (int i = 0; i < 5000; ++i) chain.append("r").append(std::to_string(i)).append(" ::= r").append(std::to_string(i + 1)).append("\n");
  chain += "r5000 ::= \"a\"\n";
  EXPECT_NE(parse_error(chain).find("more than 1000 nested rules before matching a character"), std::string::npos);
  std::string cycle = "root ::= r0\n";
  for (int i = 0; i < 5000; ++i) {
    cycle.append("r").append(std::to_string(i)).append(" ::= r").append(std::to_string((i + 1) % 5000)).append(" | \"a\"\n");
  }
  EXPECT_NE(parse_error(cycle).find("left-recursive"), std::string::npos);
}

TEST(GrammarParse, MutatedGrammarsNeverCrash) {
  // Random byte edits of a real grammar: each parses or fails with a message; those that parse still match.
  const std::string base = json_object_gbnf();
  std::mt19937 rng(99);
  int parsed = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string g = base;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t at = rng() % g.size();
      switch (rng() % 3) {
        case 0: g[at] = static_cast<char>(rng() % 256); break;
        case 1: g.erase(at, 1 + rng() % 8); break;
        default: {
          static constexpr char kPieces[] = "()[]{}|*+?\"\\\n:=-^.0123456789abc";
          g.insert(g.begin() + static_cast<std::ptrdiff_t>(at), kPieces[rng() % (sizeof kPieces - 1)]);
          break;
        }
      }
      if (g.empty()) g.push_back('x');
    }
    auto parsed_grammar = Grammar::parse(g);
    if (!parsed_grammar.ok()) {
      EXPECT_EQ(parsed_grammar.error().message.rfind("grammar: ", 0), 0u) << parsed_grammar.error().message;
      continue;
    }
    ++parsed;
    (void)matches(g, "{\"a\": [1, true, null]}");
  }
  EXPECT_GT(parsed, 40);  // some edits keep the grammar valid, so the matcher runs on them too
}

TEST(GrammarParse, DeeplyNestedGroupsParse) {
  std::string g = "root ::= ";
  for (int i = 0; i < 200; ++i) g += "(";
  g += "\"a\"";
  for (int i = 0; i < 200; ++i) g += ")";
  EXPECT_TRUE(matches(g + "\n", "a"));
}

// Tokens of several bytes, some splitting a multi-byte character between them.
std::shared_ptr<const TokenTrie> small_vocab() {
  return TokenTrie::build({"", "{", "}", "\"", "\":", "\",", " ", "a", "ab", "abc", "b", "\"a", "é", "\xC3", "\xA9",
                           "x\xC3", "\xA9y", "\xE2\x82", "\xAC", "1", "12", "}\"", "<|end|>", ":", ","},
                          {22});
}

std::vector<int32_t> allowed(const GrammarMatcher& m, int32_t n_vocab) {
  std::vector<float> logits(static_cast<size_t>(n_vocab), 0.0f);
  m.mask_logits(logits.data(), static_cast<int64_t>(logits.size()));
  std::vector<int32_t> ids;
  for (int32_t i = 0; i < n_vocab; ++i) {
    if (logits[static_cast<size_t>(i)] == 0.0f) ids.push_back(i);
  }
  return ids;
}

TEST(GrammarMask, TokensAllowedExactlyWhenTheyContinueTheGrammar) {
  auto trie = small_vocab();
  auto g = CompiledGrammar::from_gbnf(R"(root ::= "{" "\"" [a-c]+ "\":" " "? [0-9]+ "}")", trie);
  ASSERT_TRUE(g.ok()) << g.error().message;
  GrammarMatcher m(*g);
  EXPECT_EQ(allowed(m, trie->n_vocab()), (std::vector<int32_t>{1}));  // "{"
  ASSERT_TRUE(m.accept(1).ok());
  EXPECT_EQ(allowed(m, trie->n_vocab()), (std::vector<int32_t>{3, 11}));  // "\"" and "\"a"
  ASSERT_TRUE(m.accept(11).ok());
  EXPECT_EQ(allowed(m, trie->n_vocab()), (std::vector<int32_t>{3, 4, 7, 8, 9, 10}));  // "\"" "\":" a ab abc b
  ASSERT_TRUE(m.accept(4).ok());
  EXPECT_EQ(allowed(m, trie->n_vocab()), (std::vector<int32_t>{6, 19, 20}));
  ASSERT_TRUE(m.accept(20).ok());
  EXPECT_FALSE(m.can_finish());
  EXPECT_EQ(allowed(m, trie->n_vocab()), (std::vector<int32_t>{2, 19, 20}));  // not "}\"": nothing may follow
  EXPECT_FALSE(m.accept(21).ok());
  ASSERT_TRUE(m.accept(2).ok());
  EXPECT_TRUE(m.must_finish());
  EXPECT_EQ(allowed(m, trie->n_vocab()), (std::vector<int32_t>{22}));  // only the end token
  ASSERT_TRUE(m.accept(22).ok());
}

TEST(GrammarMask, TokensThatSplitACharacter) {
  auto trie = small_vocab();
  auto g = CompiledGrammar::from_gbnf("root ::= \"x\"? [é€] \"y\"?\n", trie);
  ASSERT_TRUE(g.ok());
  GrammarMatcher m(*g);
  // "é" whole, its first byte, "x" + first byte of é, and the first two bytes of €.
  EXPECT_EQ(allowed(m, trie->n_vocab()), (std::vector<int32_t>{12, 13, 15, 17}));
  ASSERT_TRUE(m.accept(15).ok());
  EXPECT_EQ(allowed(m, trie->n_vocab()), (std::vector<int32_t>{14, 16}));  // the rest of é, alone or with "y"
  ASSERT_TRUE(m.accept(16).ok());
  EXPECT_TRUE(m.must_finish());
}

TEST(GrammarMask, ContextDependentTokensAreCheckedAgainstTheWholeStack) {
  // Inside a string the quote ends it; whether `"}` or `",` may follow depends on the rule around it.
  auto trie = TokenTrie::build({"{", "}", "\"", "\",", "\"}", "a", ",", "<e>"}, {7});
  auto g = CompiledGrammar::from_gbnf(R"(root ::= "{" str ("," str)* "}"
str ::= "\"" [a-z]* "\""
)", trie);
  ASSERT_TRUE(g.ok());
  GrammarMatcher m(*g);
  ASSERT_TRUE(m.accept(0).ok());
  ASSERT_TRUE(m.accept(2).ok());
  ASSERT_TRUE(m.accept(5).ok());
  EXPECT_EQ(allowed(m, trie->n_vocab()), (std::vector<int32_t>{2, 3, 4, 5}));
  ASSERT_TRUE(m.accept(3).ok());
  EXPECT_EQ(allowed(m, trie->n_vocab()), (std::vector<int32_t>{2}));
}

TEST(GrammarMask, RandomWalksOnlyProduceMatchingText) {
  // Random tokens from the mask, over and over: every finished text matches the grammar byte by byte.
  const std::string gbnf = R"(root ::= "{" ws ("\"" [a-c]* "\"" ws ":" ws [0-9]+ ws ("," ws "\"" [a-c]* "\"" ws ":" ws [0-9]+ ws)*)? "}"
ws ::= " "?
)";
  auto trie = small_vocab();
  auto g = CompiledGrammar::from_gbnf(gbnf, trie);
  ASSERT_TRUE(g.ok());
  std::mt19937 rng(7);
  int finished = 0;
  for (int run = 0; run < 300; ++run) {
    GrammarMatcher m(*g);
    std::string text;
    for (int step = 0; step < 40; ++step) {
      const auto ids = allowed(m, trie->n_vocab());
      ASSERT_FALSE(ids.empty()) << "after '" << text << "'";
      const int32_t id = ids[std::uniform_int_distribution<size_t>(0, ids.size() - 1)(rng)];
      ASSERT_TRUE(m.accept(id).ok());
      if (id == 22) {
        EXPECT_TRUE(matches(gbnf, text)) << text;
        ++finished;
        break;
      }
      text += trie->token_bytes(id);
    }
  }
  EXPECT_GT(finished, 50);
}

TEST(JsonSchemaGrammar, ObjectsWithRequiredAndOptionalMembers) {
  const auto schema = nlohmann::ordered_json::parse(R"({
    "type": "object",
    "properties": {"room": {"type": "string"}, "level": {"type": "integer"}, "on": {"type": "boolean"}},
    "required": ["room"], "additionalProperties": false})");
  auto gbnf = json_schema_to_gbnf(schema);
  ASSERT_TRUE(gbnf.ok()) << gbnf.error().message;
  EXPECT_TRUE(matches(*gbnf, R"({"room": "kitchen"})"));
  EXPECT_TRUE(matches(*gbnf, R"({"room":"a","level":-3,"on":true})"));
  EXPECT_TRUE(matches(*gbnf, R"({"room": "a", "on": false})"));
  EXPECT_FALSE(matches(*gbnf, R"({"level": 3})"));             // room is required
  EXPECT_FALSE(matches(*gbnf, R"({"room": "a",})"));           // trailing comma
  EXPECT_FALSE(matches(*gbnf, R"({"room": "a", "x": 1})"));    // no additional properties
  EXPECT_FALSE(matches(*gbnf, R"({"room": "a", "level": 1.5})"));
  EXPECT_FALSE(matches(*gbnf, R"({"room": 5})"));
}

TEST(JsonSchemaGrammar, ArraysEnumsRefsAndNullable) {
  const auto schema = nlohmann::ordered_json::parse(R"({
    "$defs": {"node": {"type": "object", "properties": {"name": {"enum": ["a", "b"]},
                                                       "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
                       "required": ["name"]}},
    "type": "object",
    "properties": {"tree": {"$ref": "#/$defs/node"}, "tags": {"type": "array", "items": {"type": "string", "maxLength": 3},
                                                              "minItems": 1, "maxItems": 2},
                   "note": {"type": ["string", "null"]}, "k": {"const": 42}},
    "required": ["tree", "tags", "note", "k"]})");
  auto gbnf = json_schema_to_gbnf(schema);
  ASSERT_TRUE(gbnf.ok()) << gbnf.error().message;
  EXPECT_TRUE(matches(*gbnf, R"({"tree": {"name": "a", "kids": [{"name": "b"}]}, "tags": ["x"], "note": null, "k": 42})"));
  EXPECT_TRUE(matches(*gbnf, R"({"tree": {"name": "b"}, "tags": ["x", "abc"], "note": "hi", "k": 42})"));
  EXPECT_FALSE(matches(*gbnf, R"({"tree": {"name": "c"}, "tags": ["x"], "note": null, "k": 42})"));
  EXPECT_FALSE(matches(*gbnf, R"({"tree": {"name": "a"}, "tags": [], "note": null, "k": 42})"));
  EXPECT_FALSE(matches(*gbnf, R"({"tree": {"name": "a"}, "tags": ["a", "b", "c"], "note": null, "k": 42})"));
  EXPECT_FALSE(matches(*gbnf, R"({"tree": {"name": "a"}, "tags": ["abcd"], "note": null, "k": 42})"));
  EXPECT_FALSE(matches(*gbnf, R"({"tree": {"name": "a"}, "tags": ["a"], "note": null, "k": 43})"));
}

TEST(JsonSchemaGrammar, JsonObjectAcceptsAnyObject) {
  const std::string g = json_object_gbnf();
  EXPECT_TRUE(matches(g, R"({"a": [1, 2.5e3, "x\"y\u00e9", {"b": null}], "c": true})"));
  EXPECT_TRUE(matches(g, "{}"));
  EXPECT_FALSE(matches(g, "[1]"));
  EXPECT_FALSE(matches(g, R"({"a": 01})"));
  EXPECT_FALSE(matches(g, "{\"a\": \"\x01\"}"));
}

TEST(JsonSchemaGrammar, UnsupportedKeywordsAreNamedWithTheirPlace) {
  auto err = [](const char* schema) {
    auto g = json_schema_to_gbnf(nlohmann::ordered_json::parse(schema));
    return g.ok() ? std::string("(ok)") : g.error().message;
  };
  EXPECT_EQ(err(R"({"type": "object", "properties": {"zip": {"type": "string", "pattern": "^[0-9]+$"}}})"),
            "json_schema: #/properties/zip: 'pattern' is not supported");
  EXPECT_EQ(err(R"({"type": "thing"})"), "json_schema: #/type: unknown type 'thing'");
  EXPECT_EQ(err(R"({"$ref": "#/$defs/missing"})"), "json_schema: #/$ref: '#/$defs/missing' does not point into the schema");
  EXPECT_EQ(err(R"({"type": "object", "properties": {}, "required": ["a"]})"),
            "json_schema: #/required: 'a' is required but not among the properties");
  EXPECT_EQ(err("false"), "json_schema: #: the schema 'false' allows no value");
}

}  // namespace
}  // namespace edgellm

// ---- forced tool calls ----

namespace edgellm {
namespace {

// Random walks through a tool-call grammar with a one-byte vocabulary: every finished text reads back (with
// the same format's parser) as calls of the listed tools with their required arguments.
void check_tool_grammar(ToolCallFormat format, bool parallel) {
  const auto tools = nlohmann::ordered_json::parse(R"([
    {"type": "function", "function": {"name": "set_light", "parameters": {"type": "object", "properties": {
      "room": {"type": "string", "maxLength": 6}, "on": {"type": "boolean"}, "level": {"type": "integer"}},
      "required": ["room", "on"]}}},
    {"type": "function", "function": {"name": "ping"}}])");
  ToolCallGrammarOptions o;
  o.parallel = parallel;
  auto gbnf = tool_call_gbnf(format, tools, o);
  ASSERT_TRUE(gbnf.ok()) << gbnf.error().message;
  std::vector<std::string> bytes;
  for (int b = 0; b < 128; ++b) bytes.push_back(std::string(1, static_cast<char>(b)));
  bytes.push_back("");
  auto trie = TokenTrie::build(bytes, {128});
  auto g = CompiledGrammar::from_gbnf(*gbnf, trie);
  ASSERT_TRUE(g.ok()) << g.error().message << "\n" << *gbnf;
  std::mt19937 rng(11);
  int finished = 0;
  for (int run = 0; run < 60; ++run) {
    GrammarMatcher m(*g);
    std::string text;
    for (int step = 0; step < 400; ++step) {
      std::vector<float> logits(129, 0.0f);
      m.mask_logits(logits.data(), 129);
      std::vector<int32_t> ids;
      for (int32_t i = 0; i < 129; ++i) {
        if (logits[static_cast<size_t>(i)] == 0.0f) ids.push_back(i);
      }
      ASSERT_FALSE(ids.empty()) << text;
      // Lean towards ending: take the end token or a closing character when allowed.
      int32_t id = ids[std::uniform_int_distribution<size_t>(0, ids.size() - 1)(rng)];
      for (int32_t pref : {int32_t{128}, int32_t{'}'}, int32_t{'<'}, int32_t{'"'}}) {
        if (std::find(ids.begin(), ids.end(), pref) != ids.end() && rng() % 3 == 0) id = pref;
      }
      ASSERT_TRUE(m.accept(id).ok());
      if (id == 128) break;
      text += static_cast<char>(id);
    }
    if (!m.can_finish()) continue;
    ++finished;
    const ParsedReply reply = parse_tool_calls(format, text);
    ASSERT_FALSE(reply.calls.empty()) << text;
    if (!parallel) {
      EXPECT_EQ(reply.calls.size(), 1u) << text;
    }
    for (const auto& call : reply.calls) {
      if (call.name == "ping") continue;
      ASSERT_EQ(call.name, "set_light") << text;
      ASSERT_TRUE(call.arguments.contains("room") && call.arguments["room"].is_string()) << text;
      EXPECT_LE(call.arguments["room"].get<std::string>().size(), 6u) << text;
      ASSERT_TRUE(call.arguments.contains("on") && call.arguments["on"].is_boolean()) << text;
      if (call.arguments.contains("level")) {
        EXPECT_TRUE(call.arguments["level"].is_number_integer()) << text;
      }
    }
  }
  EXPECT_GT(finished, 20);
}

TEST(ToolCallGrammar, HermesCallsReadBack) { check_tool_grammar(ToolCallFormat::kHermes, false); }
TEST(ToolCallGrammar, HermesParallelCallsReadBack) { check_tool_grammar(ToolCallFormat::kHermes, true); }
TEST(ToolCallGrammar, QwenXmlCallsReadBack) { check_tool_grammar(ToolCallFormat::kQwenXml, true); }
TEST(ToolCallGrammar, LlamaJsonCallsReadBack) { check_tool_grammar(ToolCallFormat::kLlamaJson, true); }

TEST(ToolCallGrammar, ErrorsNameTheProblem) {
  const auto tools = nlohmann::ordered_json::parse(
      R"([{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"x": {"not": {}}}}}}])");
  auto none = tool_call_gbnf(ToolCallFormat::kNone, tools, {});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, ErrorCode::kUnsupported);
  auto bad = tool_call_gbnf(ToolCallFormat::kHermes, tools, {});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "tools[0] ('f'): json_schema: #/properties/x: 'not' is not supported");
  ToolCallGrammarOptions named;
  named.only_name = "g";
  EXPECT_EQ(tool_call_gbnf(ToolCallFormat::kHermes, tools, named).error().message, "no tool is named 'g'");
}

}  // namespace
}  // namespace edgellm
