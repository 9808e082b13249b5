// The KV block pool (reference counts, the prefix cache and its LRU eviction) and the scheduler's
// decisions (admission in arrival order, the token budget, decode before prefill, preemption of the
// newest sequence), without a model: only block bookkeeping and token counts.
#include <gtest/gtest.h>

#include <numeric>

#include "engine/kv_block_pool.h"
#include "engine/scheduler.h"
#include "support/tiny_models.h"

namespace edgellm {
namespace {

KvBlockPool make_pool(int64_t n_blocks, int block_size = 16) {
  auto pool = KvBlockPool::create(test::tiny_config(Arch::kQwen2), n_blocks, block_size, DType::kF16);
  EXPECT_TRUE(pool.ok()) << pool.error().message;
  return std::move(*pool);
}

BlockHash hash_of(int32_t token) {
  const int32_t tokens[4] = {token, token, token, token};
  return chain_block_hash(nullptr, "", tokens, 4);
}

TEST(KvBlockPool, HashesChainOverEverythingBefore) {
  const std::vector<int32_t> a = {1, 2, 3, 4, 5, 6, 7, 8};
  std::vector<int32_t> b = a;
  b[0] = 9;  // a different first block
  const BlockHash a0 = chain_block_hash(nullptr, "", a.data(), 4);
  const BlockHash b0 = chain_block_hash(nullptr, "", b.data(), 4);
  EXPECT_NE(a0, b0);
  // The same second block after different first blocks is a different prefix.
  EXPECT_NE(chain_block_hash(&a0, "", a.data() + 4, 4), chain_block_hash(&b0, "", b.data() + 4, 4));
  EXPECT_EQ(chain_block_hash(&a0, "", a.data() + 4, 4), chain_block_hash(&a0, "", b.data() + 4, 4));
  // The salt (an adapter) separates equal tokens.
  EXPECT_NE(chain_block_hash(nullptr, "lora:x@0x1p+0", a.data(), 4), a0);
}

TEST(KvBlockPool, ReleasedPrefixesStayCachedAndAreEvictedLeastRecentlyUsedFirst) {
  KvBlockPool pool = make_pool(4);
  EXPECT_EQ(pool.n_free(), 4);
  const int32_t b0 = pool.allocate(), b1 = pool.allocate(), b2 = pool.allocate();
  EXPECT_EQ(b0, 0);  // blocks go out in order: the first pages touched are reused
  pool.register_full(b0, hash_of(0));
  pool.register_full(b1, hash_of(1));
  EXPECT_EQ(pool.n_used(), 3);
  pool.release(b1);  // cached, least recent
  pool.release(b0);  // cached
  pool.release(b2);  // no hash: free
  EXPECT_EQ(pool.n_cached(), 2);
  EXPECT_EQ(pool.n_free(), 2);
  EXPECT_EQ(pool.n_used(), 0);

  // A hit takes the block back out of the evictable list.
  EXPECT_EQ(pool.take_cached(hash_of(0)), b0);
  EXPECT_EQ(pool.n_hits(), 1);
  EXPECT_EQ(pool.take_cached(hash_of(7)), -1);
  // Free blocks go first, then the least recently used cached one (b1), whose prefix is forgotten.
  EXPECT_NE(pool.allocate(), b1);
  EXPECT_NE(pool.allocate(), b1);
  EXPECT_EQ(pool.allocate(), b1);
  EXPECT_EQ(pool.n_evictions(), 1);
  EXPECT_EQ(pool.take_cached(hash_of(1)), -1);
  EXPECT_EQ(pool.allocate(), -1);  // everything referenced
  EXPECT_EQ(pool.n_available(), 0);

  // A second reference keeps a block in use until both are dropped.
  EXPECT_EQ(pool.take_cached(hash_of(0)), b0);
  pool.release(b0);
  EXPECT_EQ(pool.n_cached(), 0);
  pool.release(b0);
  EXPECT_EQ(pool.n_cached(), 1);
  pool.clear_cache();
  EXPECT_EQ(pool.n_cached(), 0);
  EXPECT_EQ(pool.take_cached(hash_of(0)), -1);
}

TEST(KvBlockPool, TheSamePrefixComputedTwiceIsCachedOnce) {
  KvBlockPool pool = make_pool(4);
  const int32_t a = pool.allocate(), b = pool.allocate();
  pool.register_full(a, hash_of(5));
  pool.register_full(b, hash_of(5));  // another sequence computed the same prefix at the same time
  pool.release(b);
  EXPECT_EQ(pool.n_free(), 3);  // b holds nothing anyone can find
  pool.release(a);
  EXPECT_EQ(pool.n_cached(), 1);
  EXPECT_EQ(pool.take_cached(hash_of(5)), a);
}

TEST(KvBlockPool, BadSizesAreRefused) {
  const ModelConfig c = test::tiny_config(Arch::kQwen2);
  EXPECT_FALSE(KvBlockPool::create(c, 4, 12, DType::kF16).ok());
  EXPECT_FALSE(KvBlockPool::create(c, 0, 16, DType::kF16).ok());
  EXPECT_FALSE(KvBlockPool::create(c, 4, 16, DType::kQ4_0).ok());
  EXPECT_EQ(KvBlockPool::block_bytes(c, 16, DType::kF16), KvCache::bytes_needed(c, 16, DType::kF16));
}

Sequence make_seq(uint64_t id, int64_t n_tokens, int32_t first_token = 0) {
  Sequence s;
  s.id = id;
  s.tokens.resize(static_cast<size_t>(n_tokens));
  std::iota(s.tokens.begin(), s.tokens.end(), first_token);
  s.n_prompt = n_tokens;
  return s;
}

// Runs the plan: advances the sequences, and gives each that reached its end one more token.
void run(Scheduler& sched, const std::vector<ScheduledChunk>& plan) {
  sched.step_done(plan);
  for (const auto& c : plan) {
    if (c.wants_logits) c.seq->tokens.push_back(1000 + static_cast<int32_t>(c.seq->tokens.size()));
  }
}

TEST(Scheduler, DecodeTokensFirstThenPrefillChunksWithinTheBudget) {
  KvBlockPool pool = make_pool(64);
  SchedulerOptions o;
  o.max_parallel = 4;
  o.step_tokens = 10;
  Scheduler sched(pool, o);
  Sequence a = make_seq(1, 3), b = make_seq(2, 25), c = make_seq(3, 4);
  sched.add(&a);
  sched.add(&b);
  sched.add(&c);
  // Step 1: a (3 tokens, whole), b's first 7; c waits for budget.
  auto plan = sched.schedule();
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0].seq, &a);
  EXPECT_EQ(plan[0].n_tokens, 3);
  EXPECT_TRUE(plan[0].wants_logits);
  EXPECT_EQ(plan[1].seq, &b);
  EXPECT_EQ(plan[1].n_tokens, 7);
  EXPECT_FALSE(plan[1].wants_logits);
  EXPECT_EQ(sched.waiting().size(), 1u);
  run(sched, plan);
  // Step 2: a decodes 1, b prefills 9 (the rest of the budget), c still waits.
  plan = sched.schedule();
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0].n_tokens, 1);
  EXPECT_EQ(plan[1].n_tokens, 9);
  run(sched, plan);
  // Step 3: a 1, b 9 (its last: 7 + 9 + 9 = 25), logits for both.
  plan = sched.schedule();
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[1].n_tokens, 9);
  EXPECT_TRUE(plan[1].wants_logits);
  run(sched, plan);
  // Step 4: a 1, b 1, c admitted with its whole prompt.
  plan = sched.schedule();
  ASSERT_EQ(plan.size(), 3u);
  EXPECT_EQ(plan[2].seq, &c);
  EXPECT_EQ(plan[2].n_tokens, 4);
  sched.remove(&a);
  sched.remove(&b);
  sched.remove(&c);
  EXPECT_EQ(pool.n_used(), 0);
}

TEST(Scheduler, AdmitsInArrivalOrderUpToTheParallelLimit) {
  KvBlockPool pool = make_pool(64);
  SchedulerOptions o;
  o.max_parallel = 2;
  o.step_tokens = 100;
  Scheduler sched(pool, o);
  Sequence a = make_seq(1, 5), b = make_seq(2, 5), c = make_seq(3, 1);
  sched.add(&a);
  sched.add(&b);
  sched.add(&c);
  auto plan = sched.schedule();
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(sched.running().size(), 2u);
  EXPECT_EQ(sched.waiting().front(), &c);
  run(sched, plan);
  sched.remove(&a);  // finished: c takes its slot at the next step
  plan = sched.schedule();
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[1].seq, &c);
}

TEST(Scheduler, PreemptsTheNewestSequenceWhenBlocksRunOut) {
  KvBlockPool pool = make_pool(4, 16);  // 64 positions in all
  SchedulerOptions o;
  o.max_parallel = 3;
  o.step_tokens = 64;
  o.prefix_cache = false;
  Scheduler sched(pool, o);
  Sequence a = make_seq(1, 16), b = make_seq(2, 16, 100);
  sched.add(&a);
  sched.add(&b);
  auto plan = sched.schedule();
  ASSERT_EQ(plan.size(), 2u);  // 2 blocks used, 2 left: b may start (a can still grow by one)
  run(sched, plan);
  EXPECT_EQ(pool.n_used(), 2);
  // Both need a second block now (position 16): 2 left, fine.
  plan = sched.schedule();
  ASSERT_EQ(plan.size(), 2u);
  run(sched, plan);
  EXPECT_EQ(pool.n_used(), 4);
  // Decode until a needs a third block (position 32): b, the newest, is preempted.
  for (int i = 0; i < 15; ++i) run(sched, sched.schedule());  // positions 17 .. 31
  std::vector<Sequence*> preempted;
  plan = sched.schedule(&preempted);
  ASSERT_EQ(preempted.size(), 1u);
  EXPECT_EQ(preempted[0], &b);
  EXPECT_EQ(b.n_computed, 0);
  EXPECT_TRUE(b.blocks.empty());
  EXPECT_EQ(b.n_preemptions, 1);
  EXPECT_EQ(sched.waiting().front(), &b);
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].seq, &a);
  EXPECT_EQ(static_cast<int64_t>(a.blocks.size()), 3);
  // b keeps its tokens (prompt and generated) and is recomputed from them once a has finished.
  run(sched, plan);
  const size_t b_tokens = b.tokens.size();
  EXPECT_EQ(b_tokens, 33u);
  sched.remove(&a);
  plan = sched.schedule();
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].seq, &b);
  EXPECT_EQ(plan[0].n_tokens, 33);
  EXPECT_TRUE(plan[0].wants_logits);
  EXPECT_EQ(sched.n_preemptions(), 1);
}

TEST(Scheduler, TakesCachedBlocksOfASharedPrefixButRecomputesTheLastToken) {
  KvBlockPool pool = make_pool(16, 16);
  SchedulerOptions o;
  o.max_parallel = 4;
  o.step_tokens = 256;
  Scheduler sched(pool, o);
  Sequence a = make_seq(1, 40);
  sched.add(&a);
  run(sched, sched.schedule());
  sched.remove(&a);  // its two full blocks stay cached
  EXPECT_EQ(pool.n_cached(), 2);

  Sequence b = make_seq(2, 50);  // the same first 40 tokens, then more
  sched.add(&b);
  auto plan = sched.schedule();
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(b.n_cached_tokens, 32);
  EXPECT_EQ(plan[0].n_tokens, 50 - 32);
  run(sched, plan);
  sched.remove(&b);

  Sequence c = make_seq(3, 32);  // exactly two cached blocks: the second is recomputed for the last logits
  sched.add(&c);
  plan = sched.schedule();
  EXPECT_EQ(c.n_cached_tokens, 16);
  EXPECT_EQ(plan[0].n_tokens, 16);
  sched.remove(&c);

  Sequence d = make_seq(4, 40);
  d.cache_salt = "lora:x@0x1p+0";  // other weights: nothing shared
  sched.add(&d);
  plan = sched.schedule();
  EXPECT_EQ(d.n_cached_tokens, 0);
  sched.remove(&d);
}

}  // namespace
}  // namespace edgellm
