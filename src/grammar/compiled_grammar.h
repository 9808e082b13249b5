// A grammar bound to a vocabulary: which tokens each grammar state allows, computed fast enough to run before
// every sampled token.
//
// How a state's mask is found (the cost that matters: a 152k-token vocabulary, every decode step):
//  1. Per grammar position (a character class at the top of a stack) and the frame below it (where its rule
//     returns to), one walk of the token trie starting there, with what lies further below unknown, sorts every
//     token into accepted (matches within those two frames, whatever is below), rejected, or uncertain (both
//     frames end part-way through the token, so the rest depends on the stack below). The second frame is what
//     makes a string's characters one walk: the character rule returns into the repetition that asks for the
//     next one. Computed once per (position, frame) pair, on first use, and shared by every state and field
//     that has it.
//  2. A state's mask is the union over its stacks of their top position's accepted tokens, plus those
//     uncertain tokens that match when run through the whole stack (typically a few thousand short checks:
//     inside a JSON string, the tokens containing a closing quote). Where that list is long compared with
//     the walk (whitespace: half of Qwen's tokens start with a space, and which continue depends on what
//     follows), the stack instead walks the trie itself, which prunes after a byte or two.
//  3. Masks are cached by state, so a state seen before costs one lookup.
// A state holding an unfinished UTF-8 character (the previous token split one) is rare and walks the trie
// from the full stacks directly; the walk prunes at the first byte, which must be a continuation byte.
//
// Thread-safe: requests on different threads may share one CompiledGrammar (the caches sit behind a mutex).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "grammar/grammar.h"
#include "grammar/pushdown.h"
#include "grammar/token_trie.h"
#include "util/expected.h"

namespace edgellm {

class CompiledGrammar {
 public:
  // A state, serialized: the pending UTF-8 bytes and every stack's positions (canonical order), so states
  // compare and hash by value and outlive the arena they were built in.
  using State = std::vector<uint32_t>;
  using Mask = std::vector<uint64_t>;  // bit i: token i allowed

  static std::shared_ptr<CompiledGrammar> create(Grammar grammar, std::shared_ptr<const TokenTrie> trie);
  static Expected<std::shared_ptr<CompiledGrammar>> from_gbnf(std::string_view gbnf,
                                                              std::shared_ptr<const TokenTrie> trie);

  CompiledGrammar(Grammar grammar, std::shared_ptr<const TokenTrie> trie);
  CompiledGrammar(const CompiledGrammar&) = delete;
  CompiledGrammar& operator=(const CompiledGrammar&) = delete;

  State start_state() const;
  // The tokens allowed next (end-of-generation tokens only where the grammar may finish).
  std::shared_ptr<const Mask> allowed_tokens(const State& state) const;
  // The state after `token`; kInvalidArgument naming the token if the grammar does not allow it.
  Expected<State> advance(const State& state, int32_t token) const;
  // Whether the grammar may end here / must end here (no character can follow).
  static bool can_finish(const State& state);
  static bool must_finish(const State& state);

  const Grammar& grammar() const { return grammar_; }
  const TokenTrie& trie() const { return *trie_; }

  struct Stats {
    size_t position_masks = 0;   // positions walked (step 1)
    size_t state_masks = 0;      // masks computed (step 2), cache misses
    size_t cache_hits = 0;
    double position_ms = 0;      // time in step 1
    double state_ms = 0;         // time in step 2 and the partial-character walks
  };
  Stats stats() const;

 private:
  struct PositionMask {
    Mask accepted;
    std::vector<int32_t> uncertain;
    size_t walked_nodes = 0;  // trie nodes the walk visited: about what a walk from a full stack costs
  };
  // All below require mu_ held.
  State encode(const std::vector<uint32_t>& stacks, Utf8Partial partial) const;
  Utf8Partial decode(const State& state, std::vector<uint32_t>& stacks) const;
  // The mask for the top two frames of `stack` (one when it has only one; then it is exact).
  const PositionMask& position_mask(uint32_t stack) const;
  // Walks the trie from `stacks`; tokens that match set bits in `accepted`; with kBottom among the stacks,
  // tokens whose outcome depends on what lies below go to `uncertain`.
  // Returns the number of trie nodes visited.
  size_t walk(const std::vector<uint32_t>& stacks, Utf8Partial partial, Mask& accepted,
              std::vector<int32_t>* uncertain) const;
  // Runs `bytes` through `stacks`; returns the stacks after it (empty if it does not match).
  bool run_bytes(std::vector<uint32_t>& stacks, Utf8Partial& partial, std::string_view bytes) const;

  Grammar grammar_;
  std::shared_ptr<const TokenTrie> trie_;

  mutable std::mutex mu_;
  mutable StackArena arena_;                                               // guarded by mu_
  mutable std::unordered_map<uint64_t, PositionMask> position_masks_;      // guarded by mu_, key top << 32 | below
  mutable std::map<State, std::shared_ptr<const Mask>> state_masks_;       // guarded by mu_
  mutable Stats stats_;                                                    // guarded by mu_
  // Scratch for walk(), guarded by mu_.
  mutable std::vector<uint32_t> pool_, tmp_, run_next_;
};

// The error when a grammar needs a character no token of the vocabulary can produce.
inline constexpr const char* kGrammarDeadEnd =
    "grammar: no token of the model's vocabulary can continue the output here (the grammar requires text the "
    "vocabulary cannot spell)";

// One generation's position in a grammar.
class GrammarMatcher {
 public:
  explicit GrammarMatcher(std::shared_ptr<const CompiledGrammar> grammar)
      : grammar_(std::move(grammar)), state_(grammar_->start_state()) {}

  // Sets the logits of tokens the grammar does not allow next to -inf; `n_logits` may exceed the vocabulary
  // (a padded output layer): those ids are never allowed.
  void mask_logits(float* logits, int64_t n_logits) const;
  // Moves past `token` (which mask_logits allowed; anything else is an error naming it).
  Status accept(int32_t token);
  bool can_finish() const { return CompiledGrammar::can_finish(state_); }
  bool must_finish() const { return CompiledGrammar::must_finish(state_); }
  void reset() { state_ = grammar_->start_state(); }
  const CompiledGrammar& grammar() const { return *grammar_; }

 private:
  std::shared_ptr<const CompiledGrammar> grammar_;
  CompiledGrammar::State state_;
};

}  // namespace edgellm
