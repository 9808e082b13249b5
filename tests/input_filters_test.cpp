// Input filters of `edgellm serve`: words case-folded with Unicode's rules (Latin, Greek, Cyrillic) and
// found in Chinese text without spaces, words with regex metacharacters taken literally, PCRE2 regexes,
// compile errors, and the [filters] config tables.
#include <gtest/gtest.h>

#include <fstream>

#include "server/input_filters.h"
#include "server/serve_config.h"
#include "support/test_env.h"

namespace edgellm::server {
namespace {

std::shared_ptr<const InputFilters> compile(std::vector<BlockRule> rules) {
  InputFilterConfig c;
  c.block = std::move(rules);
  auto f = InputFilters::compile(c);
  EXPECT_TRUE(f.ok()) << f.error().message;
  return f.ok() ? *f : nullptr;
}

TEST(InputFilters, WordsAreFoundCaseFoldedInAnyScript) {
  const auto f = compile({{"weapons", {"bomb", "炸弹", "оружие", "ΒΌΜΒΑ"}, "", "no weapons"},
                          {"literal", {"c++", "a.b"}, "", "literal"}});
  ASSERT_TRUE(f);
  const auto rule = [&](const std::string& text) {
    const BlockRule* r = f->find_blocked(text);
    return r ? r->name : std::string();
  };
  EXPECT_EQ(rule("How do I build a BoMb?"), "weapons");
  EXPECT_EQ(rule("请告诉我如何制造炸弹"), "weapons");  // no spaces around the word
  EXPECT_EQ(rule("где купить ОРУЖИЕ"), "weapons");    // Cyrillic, folded
  EXPECT_EQ(rule("μια βόμβα"), "weapons");            // Greek, folded (accents as written)
  EXPECT_EQ(rule("bombay is a city"), "weapons");     // a substring match: words are not whole-word
  EXPECT_EQ(rule("Turn on the kitchen lights"), "");
  EXPECT_EQ(rule("I write C++ code"), "literal");
  EXPECT_EQ(rule("axb"), "");  // '.' is literal
  EXPECT_EQ(rule("a.b"), "literal");
  EXPECT_EQ(rule(""), "");
}

TEST(InputFilters, RegexesAndTheirErrors) {
  const auto f = compile({{"cards", {}, R"(\b(?:\d[ -]?){13,16}\b)", "no card numbers"},
                          {"shout", {}, R"(\p{Han}{2}危险)", "han"}});
  ASSERT_TRUE(f);
  EXPECT_NE(f->find_blocked("my card is 4111 1111 1111 1111, thanks"), nullptr);
  EXPECT_EQ(f->find_blocked("call me at 555 1234"), nullptr);
  EXPECT_NE(f->find_blocked("这个很危险"), nullptr);
  InputFilterConfig bad;
  bad.block.push_back({"broken", {}, "(unclosed", "x"});
  auto r = InputFilters::compile(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("filter rule 'broken': the regex does not compile at offset 9"), std::string::npos)
      << r.error().message;
  bad.block = {{"both", {"a"}, "b", "x"}};
  EXPECT_FALSE(InputFilters::compile(bad).ok());
  bad.block = {{"neither", {}, "", "x"}};
  EXPECT_FALSE(InputFilters::compile(bad).ok());
  EXPECT_EQ(utf8_length("héllo 炸弹"), 8);
}

TEST(InputFilters, ConfigTables) {
  test::TempDir dir;
  const std::string path = dir.file("filters.toml");
  std::ofstream(path) << R"([filters]
max_prompt_chars = 2000
max_prompt_tokens = 300
max_messages = 8

[[filters.block]]
name = "weapons"
words = ["bomb", "炸弹"]
reason = "questions about weapons are not answered here"

[[filters.block]]
name = "cards"
regex = '\b(?:\d[ -]?){13,16}\b'
reason = "do not send card numbers"
)";
  ServeSettings s;
  Status st = read_serve_config(path, &s);
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(s.filters.max_prompt_chars, 2000);
  EXPECT_EQ(s.filters.max_prompt_tokens, 300);
  EXPECT_EQ(s.filters.max_messages, 8);
  ASSERT_EQ(s.filters.block.size(), 2u);
  EXPECT_EQ(s.filters.block[1].regex, R"(\b(?:\d[ -]?){13,16}\b)");
  std::ofstream(path) << "[filters]\nmax_messages = -1\n\n[[filters.block]]\nname = \"r\"\nregex = \"(x\"\n"
                         "reason = \"x\"\n\n[[filters.block]]\nname = \"w\"\nwords = []\nreason = \"x\"\n";
  st = read_serve_config(path, &s);
  ASSERT_FALSE(st.ok());
  const std::string& m = st.error().message;
  EXPECT_NE(m.find(":2:16: [filters] max_messages must be a whole number"), std::string::npos) << m;
  EXPECT_NE(m.find(":4:1: filter rule 'r': the regex does not compile at offset 2"), std::string::npos) << m;
  EXPECT_NE(m.find(":11:9: [[filters.block]] words must be a list"), std::string::npos) << m;
}

// Output rules: the screen lets text out only once no rule can match across it, whatever comes next.
BlockRule output_rule(std::string name, std::vector<std::string> words, std::string regex = "") {
  BlockRule r{std::move(name), std::move(words), std::move(regex), "not said here"};
  r.on_input = false;
  r.on_output = true;
  return r;
}

// Feeds `pieces` one at a time; returns what was let out after each, and "|BLOCKED:rule" at a block.
std::vector<std::string> screen_pieces(const std::shared_ptr<const InputFilters>& f,
                                       const std::vector<std::string>& pieces, bool finish = true) {
  OutputScreen screen(f);
  std::vector<std::string> out;
  for (const std::string& p : pieces) {
    const OutputScreen::Verdict v = screen.append(p);
    out.push_back(screen.text().substr(0, v.safe_end) + (v.blocked ? "|BLOCKED:" + v.blocked->name : ""));
    if (v.blocked) return out;
  }
  if (finish) {
    const OutputScreen::Verdict v = screen.finish();
    out.push_back(screen.text().substr(0, v.safe_end) + (v.blocked ? "|BLOCKED:" + v.blocked->name : ""));
  }
  return out;
}

TEST(OutputScreen, HoldsBackWhatCouldStartABlockedWordUntilTheNextPiecesDecide) {
  const auto f = compile({output_rule("weapons", {"bomb", "炸弹"})});
  ASSERT_TRUE(f);
  ASSERT_TRUE(f->screens_output());
  // "bo" could start "bomb": held; "ok" decides it is not.
  EXPECT_EQ(screen_pieces(f, {"A bo", "ok", " here"}),
            (std::vector<std::string>{"A ", "A book", "A book here", "A book here"}));
  // The word split over three pieces never gets out, not even its start.
  EXPECT_EQ(screen_pieces(f, {"Make a b", "o", "MB now"}),
            (std::vector<std::string>{"Make a ", "Make a ", "Make a |BLOCKED:weapons"}));
  // Chinese, split inside the word (whole characters per piece), case folding on Latin text.
  EXPECT_EQ(screen_pieces(f, {"如何制造炸", "弹"}),
            (std::vector<std::string>{"如何制造", "如何制造|BLOCKED:weapons"}));
  EXPECT_EQ(screen_pieces(f, {"BOMB"}), (std::vector<std::string>{"|BLOCKED:weapons"}));
  // A reply that ends on a possible start lets it out at the end.
  EXPECT_EQ(screen_pieces(f, {"ends with b"}), (std::vector<std::string>{"ends with ", "ends with b"}));
}

TEST(OutputScreen, RegexRulesDecideAtTheEndWhatCouldStillHaveGrown) {
  const auto f = compile({output_rule("cards", {}, R"(\b(?:\d[ -]?){13,16}\b)")});
  ASSERT_TRUE(f);
  // 13 digits could grow to 16: held while the reply goes on, blocked when it ends there.
  EXPECT_EQ(screen_pieces(f, {"card 4111 1111 1111 1"}),
            (std::vector<std::string>{"card ", "card |BLOCKED:cards"}));
  // Too short to be a card number once a letter follows: let out.
  EXPECT_EQ(screen_pieces(f, {"call 555 1234", " today"}),
            (std::vector<std::string>{"call ", "call 555 1234 today", "call 555 1234 today"}));
}

TEST(OutputScreen, InputAndOutputRulesApplyWhereTheySay) {
  BlockRule both{"both", {"secret"}, "", "no"};
  both.on_output = true;
  const auto f = compile({output_rule("out", {"leak"}), both, {"in", {"hello"}, "", "no"}});
  ASSERT_TRUE(f);
  EXPECT_EQ(f->find_blocked("a leak"), nullptr);  // an output-only rule does not look at input
  ASSERT_NE(f->find_blocked("a secret"), nullptr);
  EXPECT_EQ(screen_pieces(f, {"hello there"}), (std::vector<std::string>{"hello there", "hello there"}));
  EXPECT_EQ(screen_pieces(f, {"the secret is"}), (std::vector<std::string>{"the |BLOCKED:both"}));
  // Invalid UTF-8 in a piece is screened as U+FFFD, not an error.
  EXPECT_EQ(screen_pieces(f, {std::string("x\xff\xfe y")}),
            (std::vector<std::string>{"x\uFFFD\uFFFD y", "x\uFFFD\uFFFD y"}));
  const auto input_only = compile({{"in", {"hello"}, "", "no"}});
  EXPECT_FALSE(input_only->screens_output());
}

TEST(InputFilters, AppliesToInTheConfig) {
  test::TempDir dir;
  const std::string path = dir.file("applies_to.toml");
  std::ofstream(path) << "[[filters.block]]\nname = \"o\"\nwords = [\"x\"]\nreason = \"r\"\n"
                         "applies_to = [\"output\"]\n";
  ServeSettings s;
  Status st = read_serve_config(path, &s);
  ASSERT_TRUE(st.ok()) << st.error().message;
  ASSERT_EQ(s.filters.block.size(), 1u);
  EXPECT_FALSE(s.filters.block[0].on_input);
  EXPECT_TRUE(s.filters.block[0].on_output);
  std::ofstream(path) << "[[filters.block]]\nname = \"o\"\nwords = [\"x\"]\nreason = \"r\"\n"
                         "applies_to = [\"outptu\"]\n";
  st = read_serve_config(path, &s);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find(":5:14: [[filters.block]] applies_to must list"), std::string::npos)
      << st.error().message;
}

}  // namespace
}  // namespace edgellm::server
