#include "grammar/grammar.h"

#include <algorithm>
#include <unordered_map>

namespace edgellm {

// ---- CharClass ----

void CharClass::finish() {
  std::sort(ranges.begin(), ranges.end());
  std::vector<std::pair<uint32_t, uint32_t>> merged;
  for (const auto& r : ranges) {
    if (!merged.empty() && r.first <= merged.back().second + 1) {
      merged.back().second = std::max(merged.back().second, r.second);
    } else {
      merged.push_back(r);
    }
  }
  ranges = std::move(merged);
  ascii_bits[0] = ascii_bits[1] = 0;
  for (uint32_t cp = 0; cp < 128; ++cp) {
    bool in = false;
    for (const auto& r : ranges) in = in || (cp >= r.first && cp <= r.second);
    if (in != negated) ascii_bits[cp >> 6] |= uint64_t{1} << (cp & 63);
  }
}

bool CharClass::contains(uint32_t cp) const {
  if (cp < 128) return (ascii_bits[cp >> 6] >> (cp & 63)) & 1;
  auto it = std::upper_bound(ranges.begin(), ranges.end(), std::make_pair(cp, UINT32_MAX));
  const bool in = it != ranges.begin() && std::prev(it)->second >= cp;
  return in != negated;
}

bool CharClass::intersects(uint32_t lo, uint32_t hi) const {
  if (!negated) {
    for (const auto& r : ranges) {
      if (r.first <= hi && r.second >= lo) return true;
    }
    return false;
  }
  // Negated: some point of [lo, hi] lies outside every range, unless the ranges cover it entirely.
  uint32_t next = lo;
  for (const auto& r : ranges) {
    if (r.second < next) continue;
    if (r.first > next) return true;
    if (r.second >= hi) return false;
    next = r.second + 1;
  }
  return next <= hi;
}

// ---- GBNF text -> Grammar ----

namespace {
constexpr size_t kMaxElements = 1u << 20;  // repetition counts multiply; this keeps a hostile file bounded
constexpr uint32_t kMaxRepeat = 10000;
constexpr uint32_t kMaxGroupNesting = 256;  // parentheses inside parentheses (the parser recurses on them)
constexpr uint32_t kMaxRuleChain = 1000;    // rules entered before a character (the matcher recurses on them)
}  // namespace

class GbnfParser {
 public:
  explicit GbnfParser(std::string_view text) : text_(text) {}

  Expected<Grammar> run() {
    try {
      parse_rules();
    } catch (const ParseError& e) {
      return make_error(ErrorCode::kInvalidArgument, e.message);
    }
    return finish();
  }

 private:
  struct ParseError {
    std::string message;
  };
  using Sequence = std::vector<Grammar::Element>;

  [[noreturn]] void fail(const std::string& what) const {
    throw ParseError{"grammar: line " + std::to_string(line_) + ", column " + std::to_string(column_) + ": " + what};
  }
  bool at_end() const { return pos_ >= text_.size(); }
  char peek(size_t ahead = 0) const { return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0'; }
  void advance(size_t n = 1) {
    for (size_t i = 0; i < n && pos_ < text_.size(); ++i) {
      if (text_[pos_] == '\n') {
        ++line_;
        column_ = 1;
      } else {
        ++column_;
      }
      ++pos_;
    }
  }
  // Spaces, tabs and comments; newlines too when `newlines` (inside parentheses, or between rules).
  void skip_space(bool newlines) {
    while (!at_end()) {
      const char c = peek();
      if (c == ' ' || c == '\t' || c == '\r') {
        advance();
      } else if (c == '#') {
        while (!at_end() && peek() != '\n') advance();
      } else if (c == '\n' && newlines) {
        advance();
      } else {
        break;
      }
    }
  }
  static bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  }
  // Whether a rule definition ("name ::=") starts here.
  bool starts_rule() const {
    size_t p = pos_;
    while (p < text_.size() && is_name_char(text_[p])) ++p;
    while (p < text_.size() && (text_[p] == ' ' || text_[p] == '\t')) ++p;
    return text_.substr(p, 3) == "::=";
  }
  std::string parse_name() {
    const size_t start = pos_;
    while (!at_end() && is_name_char(peek())) advance();
    if (pos_ == start) fail(std::string("expected a rule name, got '") + printable(peek()) + "'");
    return std::string(text_.substr(start, pos_ - start));
  }
  static std::string printable(char c) {
    if (c == '\0') return "end of input";
    if (c == '\n') return "\\n";
    return std::string(1, c);
  }

  uint32_t rule_id(const std::string& name, size_t line = 0, size_t column = 0) {
    auto [it, inserted] = rule_ids_.emplace(name, static_cast<uint32_t>(rules_.size()));
    if (inserted) {
      rules_.push_back(Grammar::Rule{name, {}, false, line, column});
      alternatives_.emplace_back();
    }
    return it->second;
  }
  uint32_t helper_rule(const std::string& base) {
    std::string name;
    do {
      name = base + "-" + std::to_string(++n_helpers_);
    } while (rule_ids_.count(name) != 0);
    const uint32_t id = rule_id(name);
    rules_[id].defined = true;
    return id;
  }
  void add_alternative(uint32_t rule, Sequence seq) {
    n_elements_ += seq.size() + 1;
    if (n_elements_ > kMaxElements) fail("the grammar expands to more than " + std::to_string(kMaxElements) + " elements");
    alternatives_[rule].push_back(std::move(seq));
  }

  void parse_rules() {
    skip_space(true);
    if (at_end()) fail("the grammar is empty (it needs a 'root' rule)");
    while (!at_end()) {
      const std::string name = parse_name();
      const uint32_t id = rule_id(name);
      if (rules_[id].defined) fail("rule '" + name + "' is defined twice");
      rules_[id].defined = true;
      rules_[id].line = line_;
      skip_space(false);
      if (text_.substr(pos_, 3) != "::=") fail("expected '::=' after rule name '" + name + "'");
      advance(3);
      skip_space(true);
      current_rule_ = name;
      parse_alternatives(id, /*nested=*/false);
      skip_space(false);
      if (!at_end() && peek() != '\n' && !starts_rule()) fail(std::string("unexpected '") + printable(peek()) + "'");
      skip_space(true);
    }
  }

  void parse_alternatives(uint32_t rule, bool nested) {
    add_alternative(rule, parse_sequence(nested));
    while (true) {
      // A line that starts with '|' continues the rule above it.
      const size_t save_pos = pos_, save_line = line_, save_col = column_;
      skip_space(true);
      if (peek() == '|') {
        advance();
        skip_space(true);
        add_alternative(rule, parse_sequence(nested));
        continue;
      }
      pos_ = save_pos, line_ = save_line, column_ = save_col;
      return;
    }
  }

  Sequence parse_sequence(bool nested) {
    Sequence seq;
    size_t item_start = 0;
    bool has_item = false;
    while (true) {
      skip_space(nested);
      if (at_end()) break;
      const char c = peek();
      if (c == '|' || c == ')' || c == '\n') break;
      if (c == '*' || c == '+' || c == '?' || c == '{') {
        if (!has_item) fail(std::string("'") + c + "' must follow an item");
        Sequence item(seq.begin() + static_cast<std::ptrdiff_t>(item_start), seq.end());
        seq.resize(item_start);
        apply_repetition(seq, std::move(item));
        has_item = false;  // "a**" is an error, as in llama.cpp
        continue;
      }
      item_start = seq.size();
      has_item = true;
      if (c == '"') {
        advance();
        if (peek() == '"') fail("an empty literal \"\" matches nothing; leave it out");
        while (!at_end() && peek() != '"') {
          if (peek() == '\n') fail("unterminated literal");
          seq.push_back(single_char(parse_char()));
        }
        if (at_end()) fail("unterminated literal");
        advance();
        if (seq.size() - item_start > 1) {  // a literal repeats as a whole: give it its own rule
          Sequence literal(seq.begin() + static_cast<std::ptrdiff_t>(item_start), seq.end());
          seq.resize(item_start);
          const uint32_t id = helper_rule(current_rule_);
          add_alternative(id, std::move(literal));
          seq.push_back({Grammar::ElementKind::kRule, id});
        }
      } else if (c == '[') {
        advance();
        seq.push_back(parse_class());
      } else if (c == '.') {
        advance();
        CharClass any;
        any.negated = true;
        seq.push_back(add_class(std::move(any)));
      } else if (c == '(') {
        if (++nesting_ > kMaxGroupNesting) fail("groups nest more than " + std::to_string(kMaxGroupNesting) + " deep");
        advance();
        const uint32_t id = helper_rule(current_rule_);
        skip_space(true);
        parse_alternatives(id, /*nested=*/true);
        skip_space(true);
        if (peek() != ')') fail(std::string("expected ')', got '") + printable(peek()) + "'");
        advance();
        --nesting_;
        seq.push_back({Grammar::ElementKind::kRule, id});
      } else if (is_name_char(c)) {
        if (starts_rule()) break;  // "a ::= b |" then the next rule: the last alternative was empty
        const size_t line = line_, col = column_;
        const std::string name = parse_name();
        const uint32_t id = rule_id(name, line, col);
        seq.push_back({Grammar::ElementKind::kRule, id});
      } else if (c == '<') {
        fail("token references (<...>) are not supported; write the token's text as a literal");
      } else {
        fail(std::string("unexpected '") + printable(c) + "'");
      }
    }
    return seq;
  }

  // x* -> R ::= x R | ; x+ -> x R ; x? -> R ::= x | ; x{m,n} -> x^m then n-m nested optionals.
  void apply_repetition(Sequence& seq, Sequence item) {
    const char op = peek();
    advance();
    uint32_t min = 0, max = 0;
    bool unbounded = false;
    if (op == '*') {
      unbounded = true;
    } else if (op == '+') {
      min = 1, unbounded = true;
    } else if (op == '?') {
      max = 1;
    } else {  // {m}, {m,}, {m,n}
      skip_space(false);
      min = parse_count();
      skip_space(false);
      if (peek() == ',') {
        advance();
        skip_space(false);
        if (peek() == '}') {
          unbounded = true;
        } else {
          max = parse_count();
          if (max < min) fail("repetition {" + std::to_string(min) + "," + std::to_string(max) + "}: max < min");
        }
      } else {
        max = min;
      }
      skip_space(false);
      if (peek() != '}') fail(std::string("expected '}', got '") + printable(peek()) + "'");
      advance();
    }
    if (static_cast<uint64_t>(std::max(min, max)) * item.size() > kMaxElements) {
      fail("the repetition expands to more than " + std::to_string(kMaxElements) + " elements");
    }
    for (uint32_t i = 0; i < min; ++i) seq.insert(seq.end(), item.begin(), item.end());
    if (unbounded) {
      const uint32_t id = helper_rule(current_rule_);
      Sequence again = item;
      again.push_back({Grammar::ElementKind::kRule, id});
      add_alternative(id, std::move(again));
      add_alternative(id, {});
      seq.push_back({Grammar::ElementKind::kRule, id});
      return;
    }
    // max - min optional copies, nested so that the k-th may appear only after the (k-1)-th.
    uint32_t inner = UINT32_MAX;
    for (uint32_t i = min; i < max; ++i) {
      const uint32_t id = helper_rule(current_rule_);
      Sequence once = item;
      if (inner != UINT32_MAX) once.push_back({Grammar::ElementKind::kRule, inner});
      add_alternative(id, std::move(once));
      add_alternative(id, {});
      inner = id;
    }
    if (inner != UINT32_MAX) seq.push_back({Grammar::ElementKind::kRule, inner});
  }

  uint32_t parse_count() {
    if (!(peek() >= '0' && peek() <= '9')) fail(std::string("expected a number, got '") + printable(peek()) + "'");
    uint64_t n = 0;
    while (peek() >= '0' && peek() <= '9') {
      n = n * 10 + static_cast<uint64_t>(peek() - '0');
      if (n > kMaxRepeat) fail("repetition counts are limited to " + std::to_string(kMaxRepeat));
      advance();
    }
    return static_cast<uint32_t>(n);
  }

  Grammar::Element add_class(CharClass cls) {
    cls.finish();
    classes_.push_back(std::move(cls));
    return {Grammar::ElementKind::kChar, static_cast<uint32_t>(classes_.size() - 1)};
  }
  Grammar::Element single_char(uint32_t cp) {
    auto it = single_.find(cp);
    if (it != single_.end()) return {Grammar::ElementKind::kChar, it->second};
    CharClass cls;
    cls.ranges.push_back({cp, cp});
    const Grammar::Element e = add_class(std::move(cls));
    single_.emplace(cp, e.index);
    return e;
  }

  Grammar::Element parse_class() {
    CharClass cls;
    if (peek() == '^') {
      cls.negated = true;
      advance();
    }
    bool first = true;
    while (!at_end() && (peek() != ']' || first)) {
      if (peek() == '\n') fail("unterminated character class");
      first = false;
      const uint32_t lo = parse_char();
      uint32_t hi = lo;
      if (peek() == '-' && peek(1) != ']' && peek(1) != '\0') {
        advance();
        if (peek() == '\n') fail("unterminated character class");
        hi = parse_char();
        if (hi < lo) fail("character range is reversed (" + std::to_string(lo) + " > " + std::to_string(hi) + ")");
      }
      cls.ranges.push_back({lo, hi});
    }
    if (at_end()) fail("unterminated character class");
    advance();
    return add_class(std::move(cls));
  }

  // One character of a literal or class: an escape, or a UTF-8 sequence (validated).
  uint32_t parse_char() {
    const auto byte = static_cast<unsigned char>(peek());
    if (byte == '\\') {
      advance();
      const char e = peek();
      if (at_end()) fail("unterminated escape");
      advance();
      switch (e) {
        case 'n': return '\n';
        case 'r': return '\r';
        case 't': return '\t';
        case '\\': case '"': case '[': case ']': case '-': case '^': case '\'': return static_cast<uint32_t>(e);
        case 'x': return parse_hex(2);
        case 'u': return parse_hex(4);
        case 'U': return parse_hex(8);
        default: fail(std::string("unknown escape '\\") + printable(e) + "'");
      }
    }
    int n = byte < 0x80 ? 1 : (byte >> 5) == 6 ? 2 : (byte >> 4) == 14 ? 3 : (byte >> 3) == 30 ? 4 : 0;
    if (n == 0) fail("invalid UTF-8 in the grammar");
    uint32_t cp = n == 1 ? byte : byte & (0x7F >> n);
    advance();
    for (int i = 1; i < n; ++i) {
      const auto cont = static_cast<unsigned char>(peek());
      if ((cont & 0xC0) != 0x80) fail("invalid UTF-8 in the grammar");
      cp = (cp << 6) | (cont & 0x3F);
      advance();
    }
    return cp;
  }
  uint32_t parse_hex(int digits) {
    uint32_t v = 0;
    for (int i = 0; i < digits; ++i) {
      const char c = peek();
      int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
      if (d < 0) fail("expected " + std::to_string(digits) + " hex digits in an escape");
      v = v * 16 + static_cast<uint32_t>(d);
      advance();
    }
    if (v > 0x10FFFF) fail("escape is beyond U+10FFFF");
    return v;
  }

  Expected<Grammar> finish() {
    Grammar g;
    auto root = rule_ids_.find("root");
    if (root == rule_ids_.end() || !rules_[root->second].defined) {
      return make_error(ErrorCode::kInvalidArgument, "grammar: there is no 'root' rule (generation starts there)");
    }
    for (const auto& r : rules_) {
      if (!r.defined) {
        return make_error(ErrorCode::kInvalidArgument, "grammar: line " + std::to_string(r.line) + ", column " +
                                                           std::to_string(r.column) + ": rule '" + r.name +
                                                           "' is used but never defined");
      }
    }
    g.rules_ = std::move(rules_);
    g.classes_ = std::move(classes_);
    g.root_ = root->second;
    for (uint32_t id = 0; id < g.rules_.size(); ++id) {
      for (auto& seq : alternatives_[id]) {
        g.rules_[id].alternatives.push_back(static_cast<uint32_t>(g.elements_.size()));
        g.elements_.insert(g.elements_.end(), seq.begin(), seq.end());
        g.elements_.push_back({Grammar::ElementKind::kEnd, id});
      }
    }
    EDGELLM_TRY(g.check_left_recursion());
    return g;
  }

  std::string_view text_;
  size_t pos_ = 0, line_ = 1, column_ = 1;
  std::vector<Grammar::Rule> rules_;
  std::vector<std::vector<Sequence>> alternatives_;
  std::unordered_map<std::string, uint32_t> rule_ids_;
  std::vector<CharClass> classes_;
  std::unordered_map<uint32_t, uint32_t> single_;
  std::string current_rule_;
  size_t n_elements_ = 0;
  int n_helpers_ = 0;
  uint32_t nesting_ = 0;
};

Expected<Grammar> Grammar::parse(std::string_view gbnf) { return GbnfParser(gbnf).run(); }

Status Grammar::check_left_recursion() const {
  const size_t n = rules_.size();
  // nullable[r]: rule r can match the empty string.
  std::vector<char> nullable(n, 0);
  for (bool changed = true; changed;) {
    changed = false;
    for (uint32_t r = 0; r < n; ++r) {
      if (nullable[r]) continue;
      for (uint32_t start : rules_[r].alternatives) {
        bool all = true;
        for (uint32_t p = start; elements_[p].kind != ElementKind::kEnd; ++p) {
          if (elements_[p].kind == ElementKind::kChar || !nullable[elements_[p].index]) {
            all = false;
            break;
          }
        }
        if (all) {
          nullable[r] = 1;
          changed = true;
          break;
        }
      }
    }
  }
  // first[r]: rules r can enter before matching a character.
  std::vector<std::vector<uint32_t>> first(n);
  for (uint32_t r = 0; r < n; ++r) {
    for (uint32_t start : rules_[r].alternatives) {
      for (uint32_t p = start; elements_[p].kind == ElementKind::kRule; ++p) {
        first[r].push_back(elements_[p].index);
        if (!nullable[elements_[p].index]) break;
      }
    }
  }
  // Depth-first over `first`, iteratively (a hostile grammar may chain many thousands of rules): a rule met
  // again while on the path is a cycle; `depth[r]` is the longest chain of rules r enters before a character,
  // which bounds how deep the matcher's expansion recurses.
  std::vector<uint8_t> state(n, 0);  // 0 new, 1 on the path, 2 done
  std::vector<uint32_t> depth(n, 1);
  struct Frame {
    uint32_t rule;
    size_t next;  // index into first[rule]
  };
  std::vector<Frame> path;
  for (uint32_t start = 0; start < n; ++start) {
    if (state[start] != 0) continue;
    path.push_back({start, 0});
    state[start] = 1;
    while (!path.empty()) {
      Frame& f = path.back();
      if (f.next < first[f.rule].size()) {
        const uint32_t next = first[f.rule][f.next++];
        if (state[next] == 1) {
          std::string cycle;
          size_t i = 0;
          while (path[i].rule != next) ++i;
          for (; i < path.size(); ++i) cycle += rules_[path[i].rule].name + " -> ";
          cycle += rules_[next].name;
          return make_error(ErrorCode::kInvalidArgument,
                            "grammar: rule '" + rules_[path.back().rule].name + "' is left-recursive (" + cycle +
                                "); rewrite it to match a character first");
        }
        if (state[next] == 0) {
          state[next] = 1;
          path.push_back({next, 0});
        }
        continue;
      }
      const uint32_t done = f.rule;
      for (uint32_t next : first[done]) depth[done] = std::max(depth[done], depth[next] + 1);
      if (depth[done] > kMaxRuleChain) {
        return make_error(ErrorCode::kInvalidArgument,
                          "grammar: rule '" + rules_[done].name + "' enters more than " +
                              std::to_string(kMaxRuleChain) + " nested rules before matching a character");
      }
      state[done] = 2;
      path.pop_back();
    }
  }
  return {};
}

}  // namespace edgellm
