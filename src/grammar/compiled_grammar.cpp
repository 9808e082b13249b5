#include "grammar/compiled_grammar.h"

#include <algorithm>
#include <limits>

namespace edgellm {

namespace {

constexpr size_t kMaxStateMasks = 512;        // ~19 KB each for Qwen's vocabulary: ~10 MB at most
constexpr size_t kArenaResetNodes = 1u << 20;  // stacks interned before the arena starts over
// State layout: [partial value, partial need, partial length, n_stacks, (len, pos * len) * n_stacks].
constexpr size_t kHeader = 4;

double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

inline void set_bit(CompiledGrammar::Mask& m, int32_t id) {
  m[static_cast<size_t>(id) >> 6] |= uint64_t{1} << (static_cast<uint32_t>(id) & 63);
}
inline bool get_bit(const CompiledGrammar::Mask& m, int32_t id) {
  return (m[static_cast<size_t>(id) >> 6] >> (static_cast<uint32_t>(id) & 63)) & 1;
}

}  // namespace

CompiledGrammar::CompiledGrammar(Grammar grammar, std::shared_ptr<const TokenTrie> trie)
    : grammar_(std::move(grammar)), trie_(std::move(trie)), arena_(grammar_) {}

std::shared_ptr<CompiledGrammar> CompiledGrammar::create(Grammar grammar, std::shared_ptr<const TokenTrie> trie) {
  return std::make_shared<CompiledGrammar>(std::move(grammar), std::move(trie));
}

Expected<std::shared_ptr<CompiledGrammar>> CompiledGrammar::from_gbnf(std::string_view gbnf,
                                                                      std::shared_ptr<const TokenTrie> trie) {
  EDGELLM_ASSIGN_OR_RETURN(Grammar g, Grammar::parse(gbnf));
  return create(std::move(g), std::move(trie));
}

// ---- states ----

CompiledGrammar::State CompiledGrammar::encode(const std::vector<uint32_t>& stacks, Utf8Partial partial) const {
  std::vector<std::vector<uint32_t>> chains;
  chains.reserve(stacks.size());
  for (uint32_t s : stacks) {
    std::vector<uint32_t> chain;
    for (uint32_t at = s; at > StackArena::kBottom; at = arena_.parent(at)) chain.push_back(arena_.top(at));
    chains.push_back(std::move(chain));
  }
  std::sort(chains.begin(), chains.end());
  chains.erase(std::unique(chains.begin(), chains.end()), chains.end());
  State state{partial.value, partial.need, partial.length, static_cast<uint32_t>(chains.size())};
  for (const auto& chain : chains) {
    state.push_back(static_cast<uint32_t>(chain.size()));
    state.insert(state.end(), chain.begin(), chain.end());
  }
  return state;
}

Utf8Partial CompiledGrammar::decode(const State& state, std::vector<uint32_t>& stacks) const {
  stacks.clear();
  size_t at = kHeader;
  for (uint32_t i = 0; i < state[3]; ++i) {
    const uint32_t len = state[at++];
    uint32_t s = StackArena::kEmpty;
    for (uint32_t k = len; k-- > 0;) s = arena_.push(s, state[at + k]);  // bottom first
    at += len;
    stacks.push_back(s);
  }
  std::sort(stacks.begin(), stacks.end());
  Utf8Partial p;
  p.value = state[0];
  p.need = static_cast<uint8_t>(state[1]);
  p.length = static_cast<uint8_t>(state[2]);
  return p;
}

bool CompiledGrammar::can_finish(const State& state) {
  size_t at = kHeader;
  if (state[1] != 0) return false;
  for (uint32_t i = 0; i < state[3]; ++i) {
    if (state[at] == 0) return true;
    at += 1 + state[at];
  }
  return false;
}

bool CompiledGrammar::must_finish(const State& state) {
  return state[1] == 0 && state[3] == 1 && state[kHeader] == 0;
}

CompiledGrammar::State CompiledGrammar::start_state() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (arena_.size() > kArenaResetNodes) arena_.clear();
  std::vector<uint32_t> stacks;
  arena_.start(stacks);
  return encode(stacks, Utf8Partial{});
}

// ---- matching token bytes ----

bool CompiledGrammar::run_bytes(std::vector<uint32_t>& stacks, Utf8Partial& partial, std::string_view bytes) const {
  std::vector<uint32_t>& next = run_next_;
  for (char c : bytes) {
    uint32_t cp = 0;
    const Utf8Partial::Step step = partial.feed(static_cast<uint8_t>(c), &cp);
    if (step == Utf8Partial::Step::kInvalid) return false;
    if (step == Utf8Partial::Step::kNeedMore) continue;
    next.clear();
    bool hit_bottom = false;
    arena_.advance(stacks.data(), stacks.size(), cp, next, &hit_bottom);
    stacks.swap(next);
    if (stacks.empty()) return false;
  }
  if (partial.need > 0) return arena_.could_match(stacks.data(), stacks.size(), partial.range_low(), partial.range_high());
  return true;
}

size_t CompiledGrammar::walk(const std::vector<uint32_t>& start, Utf8Partial start_partial, Mask& accepted,
                             std::vector<int32_t>* uncertain) const {
  size_t visited = 0;
  const auto& nodes = trie_->nodes();
  const auto& tokens = trie_->tokens();
  struct Level {
    size_t begin, end;  // states in pool_
    Utf8Partial partial;
    bool flagged;       // some path reached kBottom with bytes still to match: the rest depends on context
  };
  std::vector<Level> levels(trie_->max_depth() + 1);
  pool_.assign(start.begin(), start.end());
  levels[0] = Level{0, pool_.size(), start_partial, false};

  auto mark_uncertain = [&](uint32_t from, uint32_t to) {
    if (uncertain == nullptr) return;
    for (uint32_t k = from; k < to; ++k) uncertain->push_back(tokens[k]);
  };

  for (uint32_t i = 1; i < nodes.size();) {
    const TokenTrie::Node& node = nodes[i];
    ++visited;
    const Level& up = levels[node.depth - 1];
    Level cur{up.begin, up.end, up.partial, up.flagged};
    uint32_t cp = 0;
    const Utf8Partial::Step step = cur.partial.feed(node.byte, &cp);
    if (step == Utf8Partial::Step::kInvalid) {
      cur.end = cur.begin;  // dead
    } else if (step == Utf8Partial::Step::kComplete) {
      tmp_.clear();
      bool hit_bottom = false;
      arena_.advance(pool_.data() + up.begin, up.end - up.begin, cp, tmp_, &hit_bottom);
      pool_.resize(up.end);
      cur.begin = pool_.size();
      pool_.insert(pool_.end(), tmp_.begin(), tmp_.end());
      cur.end = pool_.size();
      cur.flagged = cur.flagged || hit_bottom;
    }
    const bool alive = cur.end > cur.begin;
    if (!alive) {
      if (cur.flagged) mark_uncertain(node.token_begin, node.token_end);
      i = node.subtree_end;
      continue;
    }
    for (uint32_t k = node.token_begin; k < node.token_here_end; ++k) {
      if (cur.partial.need == 0) {
        set_bit(accepted, tokens[k]);
      } else if (uncertain != nullptr) {
        uncertain->push_back(tokens[k]);  // depends on the character's last bytes: checked per state
      } else if (arena_.could_match(pool_.data() + cur.begin, cur.end - cur.begin, cur.partial.range_low(),
                                    cur.partial.range_high())) {
        set_bit(accepted, tokens[k]);
      }
    }
    levels[node.depth] = cur;
    ++i;
  }
  return visited;
}

const CompiledGrammar::PositionMask& CompiledGrammar::position_mask(uint32_t stack) const {
  const uint32_t top = arena_.top(stack);
  const uint32_t below_stack = arena_.parent(stack);
  const bool has_below = below_stack > StackArena::kBottom;
  const uint32_t below = has_below ? arena_.top(below_stack) : UINT32_MAX;  // UINT32_MAX: nothing below
  const uint64_t key = (uint64_t{top} << 32) | below;
  auto it = position_masks_.find(key);
  if (it != position_masks_.end()) return it->second;
  const auto t0 = std::chrono::steady_clock::now();
  PositionMask pm;
  pm.accepted.assign(trie_->n_mask_words(), 0);
  // Two frames over "unknown", or the one-frame stack itself (nothing below it: the walk is exact).
  const std::vector<uint32_t> start{has_below ? arena_.push(arena_.push(StackArena::kBottom, below), top)
                                              : arena_.push(StackArena::kEmpty, top)};
  pm.walked_nodes = walk(start, Utf8Partial{}, pm.accepted, &pm.uncertain);
  std::sort(pm.uncertain.begin(), pm.uncertain.end());
  pm.uncertain.erase(std::unique(pm.uncertain.begin(), pm.uncertain.end()), pm.uncertain.end());
  ++stats_.position_masks;
  stats_.position_ms += ms_since(t0);
  return position_masks_.emplace(key, std::move(pm)).first->second;
}

std::shared_ptr<const CompiledGrammar::Mask> CompiledGrammar::allowed_tokens(const State& state) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto cached = state_masks_.find(state);
  if (cached != state_masks_.end()) {
    ++stats_.cache_hits;
    return cached->second;
  }
  if (arena_.size() > kArenaResetNodes) arena_.clear();
  std::vector<uint32_t> stacks;
  const Utf8Partial partial = decode(state, stacks);
  auto mask = std::make_shared<Mask>(trie_->n_mask_words(), 0);
  if (partial.need > 0) {
    const auto t0 = std::chrono::steady_clock::now();
    walk(stacks, partial, *mask, nullptr);
    stats_.state_ms += ms_since(t0);
  } else {
    for (uint32_t s : stacks) {
      if (s == StackArena::kEmpty) {
        for (int32_t id : trie_->end_tokens()) {
          if (id >= 0 && id < trie_->n_vocab()) set_bit(*mask, id);
        }
        continue;
      }
      const PositionMask& pm = position_mask(s);
      const auto t0 = std::chrono::steady_clock::now();
      std::vector<uint32_t> one{s};
      if (pm.uncertain.size() * 4 > pm.walked_nodes) {
        walk(one, Utf8Partial{}, *mask, nullptr);
      } else {
        for (size_t w = 0; w < mask->size(); ++w) (*mask)[w] |= pm.accepted[w];
        for (int32_t id : pm.uncertain) {
          if (get_bit(*mask, id)) continue;
          one.assign(1, s);
          Utf8Partial p;
          if (run_bytes(one, p, trie_->token_bytes(id))) set_bit(*mask, id);
        }
      }
      stats_.state_ms += ms_since(t0);
    }
  }
  ++stats_.state_masks;
  if (state_masks_.size() >= kMaxStateMasks) state_masks_.clear();
  state_masks_.emplace(state, mask);
  return mask;
}

Expected<CompiledGrammar::State> CompiledGrammar::advance(const State& state, int32_t token) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (token < 0 || token >= trie_->n_vocab()) {
    return make_error(ErrorCode::kInvalidArgument, "grammar: token " + std::to_string(token) + " is out of range");
  }
  if (arena_.size() > kArenaResetNodes) arena_.clear();
  std::vector<uint32_t> stacks;
  Utf8Partial partial = decode(state, stacks);
  const std::string& bytes = trie_->token_bytes(token);
  if (std::binary_search(trie_->end_tokens().begin(), trie_->end_tokens().end(), token)) {
    if (can_finish(state)) return state;
  } else if (!bytes.empty() && run_bytes(stacks, partial, bytes)) {
    return encode(stacks, partial);
  }
  return make_error(ErrorCode::kInvalidArgument,
                    "grammar: token " + std::to_string(token) + " does not continue the grammar here");
}

CompiledGrammar::Stats CompiledGrammar::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

// ---- GrammarMatcher ----

void GrammarMatcher::mask_logits(float* logits, int64_t n_logits) const {
  const std::shared_ptr<const CompiledGrammar::Mask> mask = grammar_->allowed_tokens(state_);
  const int32_t n_vocab = grammar_->trie().n_vocab();
  constexpr float kBanned = -std::numeric_limits<float>::infinity();
  for (size_t w = 0; w < mask->size(); ++w) {
    const uint64_t bits = (*mask)[w];
    if (bits == ~uint64_t{0}) continue;
    const int32_t base = static_cast<int32_t>(w * 64);
    const int32_t end = std::min<int32_t>(base + 64, n_vocab);
    if (bits == 0) {  // most words of a narrow state: a plain fill the compiler vectorizes
      std::fill(logits + base, logits + end, kBanned);
      continue;
    }
    for (int32_t id = base; id < end; ++id) {
      if (!((bits >> (id - base)) & 1)) logits[id] = kBanned;
    }
  }
  for (int64_t id = n_vocab; id < n_logits; ++id) logits[id] = kBanned;
}

Status GrammarMatcher::accept(int32_t token) {
  EDGELLM_ASSIGN_OR_RETURN(CompiledGrammar::State next, grammar_->advance(state_, token));
  state_ = std::move(next);
  return {};
}

}  // namespace edgellm
