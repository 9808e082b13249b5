// The matcher's stacks: where in the grammar generation is, as a pushdown automaton.
//
// A stack is a chain of positions (grammar elements): the top is the character class to match next, each
// position below it is where its rule continues once the rule above finishes. Stacks are interned in an
// arena (same positions -> same id), so sets of stacks deduplicate by id and advancing one never copies it.
// Because the grammar is ambiguous in general, a state is a set of stacks, all tops being character classes
// (kEmpty: the grammar has been matched completely).
//
// kBottom is a marker for walks that start inside a rule without knowing what lies below it: reaching it
// means "this rule may be finished here; what may follow depends on the stack underneath".
#pragma once

#include <cstdint>
#include <vector>

#include "grammar/grammar.h"

namespace edgellm {

class StackArena {
 public:
  static constexpr uint32_t kEmpty = 0;
  static constexpr uint32_t kBottom = 1;

  explicit StackArena(const Grammar& grammar);

  uint32_t push(uint32_t parent, uint32_t pos);
  uint32_t top(uint32_t stack) const { return nodes_[stack].pos; }
  uint32_t parent(uint32_t stack) const { return nodes_[stack].parent; }
  bool is_char_top(uint32_t stack) const { return stack > kBottom; }

  // Appends the stacks `stack` expands to (rule references replaced by their alternatives, finished rules
  // popped) until every top is a character class, kEmpty or kBottom.
  void expand(uint32_t stack, std::vector<uint32_t>& out);
  // The start state: every alternative of the root rule, expanded (sorted, deduplicated).
  void start(std::vector<uint32_t>& out);
  // Appends the stacks after matching code point `cp` on each of in[0..n), sorted and deduplicated. A kBottom
  // asked for a character sets *hit_bottom; kEmpty matches nothing.
  void advance(const uint32_t* in, size_t n, uint32_t cp, std::vector<uint32_t>& out, bool* hit_bottom);
  // Whether some stack of in[0..n) could match a code point in [lo, hi] (a partial UTF-8 sequence).
  bool could_match(const uint32_t* in, size_t n, uint32_t lo, uint32_t hi) const;

  const Grammar& grammar() const { return grammar_; }
  size_t size() const { return nodes_.size(); }
  // Forgets every stack but kEmpty and kBottom (ids handed out before are invalid afterwards).
  void clear();

 private:
  struct Node {
    uint32_t pos;
    uint32_t parent;
  };
  void grow_table();

  const Grammar& grammar_;
  std::vector<Node> nodes_;
  // Open-addressing intern table: key (parent << 32 | pos) -> node id; 0 marks a free slot (node 0 is kEmpty,
  // never interned).
  std::vector<uint64_t> keys_;
  std::vector<uint32_t> ids_;
  size_t n_interned_ = 0;
};

// Incremental UTF-8 decoding across token boundaries (tokens may split a character).
struct Utf8Partial {
  uint32_t value = 0;  // bits decoded so far
  uint8_t need = 0;    // continuation bytes still expected (0: at a character boundary)
  uint8_t length = 0;  // total length of the character being decoded

  enum class Step { kNeedMore, kComplete, kInvalid };
  // Feeds one byte; on kComplete `*cp` is the code point and the state is back at a boundary.
  Step feed(uint8_t byte, uint32_t* cp);
  // The code points a pending sequence can still become.
  uint32_t range_low() const;
  uint32_t range_high() const;
};

}  // namespace edgellm
