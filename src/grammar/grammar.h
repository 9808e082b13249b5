// A context-free grammar over Unicode code points, the form llama.cpp's GBNF files describe:
//
//   root   ::= "{" ws pair ("," ws pair)* "}"     # rules: name ::= alternatives
//   pair   ::= [a-z]+ ":" ws ("true" | "false")   # literals, [classes], [^negated], ., groups
//   ws     ::= [ \t\n]{0,8}                        # ? * + {m} {m,} {m,n}
//
// Parsing flattens everything into rules of alternatives of elements (a code-point class or a reference to
// another rule): groups and repetitions become helper rules, right-recursive so that matching keeps stacks
// short. The start rule is "root". Left recursion (a rule that can reach itself before matching a
// character) is rejected, because a pushdown matcher would expand it forever.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/expected.h"

namespace edgellm {

// A set of code points: sorted, disjoint, inclusive ranges, complemented when `negated`.
struct CharClass {
  std::vector<std::pair<uint32_t, uint32_t>> ranges;
  bool negated = false;
  uint64_t ascii_bits[2] = {0, 0};  // membership of code points 0..127, after negation (filled by finish())

  void finish();  // sorts and merges ranges, fills ascii_bits
  bool contains(uint32_t cp) const;
  // Whether some code point in [lo, hi] is a member (for a partial UTF-8 sequence).
  bool intersects(uint32_t lo, uint32_t hi) const;
};

class Grammar {
 public:
  enum class ElementKind : uint8_t { kChar, kRule, kEnd };
  struct Element {
    ElementKind kind;
    uint32_t index;  // kChar: into classes(); kRule: a rule id; kEnd: the rule the alternative belongs to
  };

  // Parses GBNF text. Errors name the line and column and what was expected, e.g.
  // "grammar: line 3, column 12: expected '::=' after rule name 'value'", or the rule that is undefined or
  // left-recursive.
  static Expected<Grammar> parse(std::string_view gbnf);

  // Elements of every alternative, each alternative ended by a kEnd element. A position is an index here.
  const std::vector<Element>& elements() const { return elements_; }
  // Start positions of the alternatives of rule `rule_id`.
  const std::vector<uint32_t>& alternatives(uint32_t rule_id) const { return rules_[rule_id].alternatives; }
  const CharClass& char_class(uint32_t index) const { return classes_[index]; }
  uint32_t root_rule() const { return root_; }
  size_t n_rules() const { return rules_.size(); }
  const std::string& rule_name(uint32_t rule_id) const { return rules_[rule_id].name; }

 private:
  friend class GbnfParser;
  struct Rule {
    std::string name;
    std::vector<uint32_t> alternatives;
    bool defined = false;
    size_t line = 0;  // where it was first referenced or defined, for errors
    size_t column = 0;
  };
  Status check_left_recursion() const;

  std::vector<Element> elements_;
  std::vector<Rule> rules_;
  std::vector<CharClass> classes_;
  uint32_t root_ = 0;
};

}  // namespace edgellm
