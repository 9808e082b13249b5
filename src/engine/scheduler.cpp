#include "engine/scheduler.h"

#include <algorithm>

#include "util/check.h"

namespace edgellm {

Scheduler::Scheduler(KvBlockPool& pool, const SchedulerOptions& options) : pool_(pool), options_(options) {
  EDGELLM_CHECK(options_.max_parallel >= 1 && options_.step_tokens >= options_.max_parallel);
}

void Scheduler::add(Sequence* seq) {
  EDGELLM_CHECK(seq != nullptr && seq->blocks.empty() && seq->n_computed == 0 && !seq->tokens.empty());
  waiting_.push_back(seq);
}

void Scheduler::ensure_hashes(Sequence& seq, int64_t n_blocks) {
  const int64_t bs = pool_.block_size();
  while (static_cast<int64_t>(seq.hashes.size()) < n_blocks) {
    const size_t i = seq.hashes.size();
    const BlockHash* parent = i == 0 ? nullptr : &seq.hashes[i - 1];
    seq.hashes.push_back(chain_block_hash(parent, seq.cache_salt, &seq.tokens[i * static_cast<size_t>(bs)], bs));
  }
}

void Scheduler::take_cached_prefix(Sequence& seq) {
  // The last token is always computed (its logits give the next token), so a prompt that is all cached
  // blocks recomputes its last block instead of writing into a shared one.
  const int64_t n_full = (static_cast<int64_t>(seq.tokens.size()) - 1) / pool_.block_size();
  ensure_hashes(seq, n_full);
  for (int64_t i = 0; i < n_full; ++i) {
    const int32_t b = pool_.take_cached(seq.hashes[static_cast<size_t>(i)]);
    if (b < 0) break;
    seq.blocks.push_back(b);
  }
  seq.n_computed = static_cast<int64_t>(seq.blocks.size()) * pool_.block_size();
  seq.n_registered = static_cast<int64_t>(seq.blocks.size());
}

bool Scheduler::grow_blocks(Sequence& seq, int64_t end) {
  const int64_t bs = pool_.block_size();
  const int64_t need = (end + bs - 1) / bs - static_cast<int64_t>(seq.blocks.size());
  if (need <= 0) return true;
  if (pool_.n_available() < need) return false;
  for (int64_t i = 0; i < need; ++i) {
    const int32_t b = pool_.allocate();
    EDGELLM_CHECK(b >= 0);
    seq.blocks.push_back(b);
  }
  return true;
}

void Scheduler::release_blocks(Sequence& seq) {
  // Tail first: the least reusable blocks become the least recently used, evicted before the prefix.
  for (auto it = seq.blocks.rbegin(); it != seq.blocks.rend(); ++it) pool_.release(*it);
  seq.blocks.clear();
  seq.n_computed = 0;
  seq.n_registered = 0;
}

void Scheduler::preempt(Sequence* seq) {
  const auto it = std::find(running_.begin(), running_.end(), seq);
  EDGELLM_CHECK(it != running_.end());
  running_.erase(it);
  release_blocks(*seq);
  ++seq->n_preemptions;
  ++n_preemptions_;
  waiting_.push_front(seq);
}

std::vector<ScheduledChunk> Scheduler::schedule(std::vector<Sequence*>* preempted) {
  std::vector<ScheduledChunk> plan;
  int64_t budget = options_.step_tokens;
  // One token of the budget is kept for each decoding sequence, so that prefill chunks cannot starve them.
  int64_t reserve = 0;
  for (const Sequence* s : running_) reserve += static_cast<int64_t>(s->tokens.size()) - s->n_computed == 1;

  for (size_t i = 0; i < running_.size();) {
    Sequence* s = running_[i];
    const int64_t needed = static_cast<int64_t>(s->tokens.size()) - s->n_computed;
    EDGELLM_CHECK(needed >= 1);
    const bool decoding = needed == 1;
    if (decoding) --reserve;
    const int64_t n = decoding ? 1 : std::min(needed, budget - reserve);
    if (n <= 0) {  // a prefill with no budget left this step
      ++i;
      continue;
    }
    bool ok = grow_blocks(*s, s->n_computed + n);
    while (!ok) {
      // The newest sequence gives its blocks back (it is at or after position i: not planned yet).
      Sequence* victim = running_.back();
      if (static_cast<int64_t>(victim->tokens.size()) - victim->n_computed == 1 && victim != s) --reserve;
      preempt(victim);
      if (preempted != nullptr) preempted->push_back(victim);
      if (victim == s) break;
      ok = grow_blocks(*s, s->n_computed + n);
    }
    if (!ok) continue;  // s itself was preempted (it was the last one)
    plan.push_back({s, n, s->n_computed + n == static_cast<int64_t>(s->tokens.size())});
    budget -= n;
    ++i;
  }

  while (!waiting_.empty() && static_cast<int>(running_.size()) < options_.max_parallel && budget > 0) {
    Sequence* s = waiting_.front();
    EDGELLM_CHECK(s->blocks.empty() && s->n_computed == 0);
    if (options_.prefix_cache && s->prefix_cache) take_cached_prefix(*s);
    const int64_t n = std::min(static_cast<int64_t>(s->tokens.size()) - s->n_computed, budget);
    const int64_t bs = pool_.block_size();
    const int64_t need = (s->n_computed + n + bs - 1) / bs - static_cast<int64_t>(s->blocks.size());
    // Admitted only if every running sequence can still take one more block afterwards, so that a new
    // sequence does not cause a preemption at the next block boundary.
    if (pool_.n_available() - need < static_cast<int64_t>(running_.size())) {
      release_blocks(*s);
      break;
    }
    EDGELLM_CHECK(grow_blocks(*s, s->n_computed + n));
    if (s->n_cached_tokens < 0) s->n_cached_tokens = std::min(s->n_computed, s->n_prompt);
    waiting_.pop_front();
    s->admit_order = next_admit_order_++;
    running_.push_back(s);
    plan.push_back({s, n, s->n_computed + n == static_cast<int64_t>(s->tokens.size())});
    budget -= n;
  }
  return plan;
}

void Scheduler::step_done(const std::vector<ScheduledChunk>& chunks) {
  const int64_t bs = pool_.block_size();
  for (const ScheduledChunk& c : chunks) {
    Sequence& s = *c.seq;
    s.n_computed += c.n_tokens;
    EDGELLM_CHECK(s.n_computed <= static_cast<int64_t>(s.tokens.size()));
    if (!options_.prefix_cache || !s.prefix_cache) continue;
    const int64_t n_full = s.n_computed / bs;
    if (n_full <= s.n_registered) continue;
    ensure_hashes(s, n_full);
    for (int64_t i = s.n_registered; i < n_full; ++i) {
      pool_.register_full(s.blocks[static_cast<size_t>(i)], s.hashes[static_cast<size_t>(i)]);
    }
    s.n_registered = n_full;
  }
}

void Scheduler::remove(Sequence* seq) {
  if (auto it = std::find(running_.begin(), running_.end(), seq); it != running_.end()) {
    running_.erase(it);
  } else if (auto wit = std::find(waiting_.begin(), waiting_.end(), seq); wit != waiting_.end()) {
    waiting_.erase(wit);
  } else {
    return;
  }
  release_blocks(*seq);
}

}  // namespace edgellm
