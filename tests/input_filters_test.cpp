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

}  // namespace
}  // namespace edgellm::server
