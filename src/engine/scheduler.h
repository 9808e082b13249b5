// Continuous batching (Yu et al. 2022, "Orca"; vllm-project/vllm: vllm/v1/core/sched/scheduler.py): which
// sequences run in the next step and how many of their tokens. Requests wait in arrival order; at every
// step boundary the running sequences go first (each decoding one token, or prefilling the next chunk of
// its prompt), then waiting ones are admitted while there are free slots, tokens left in the step's
// budget and KV blocks for them. A long prompt is prefilled in chunks shared with the others' decode
// tokens, so it cannot freeze them. When the pool cannot give a running sequence its next block, the most
// recently admitted sequence is preempted: its blocks are released (kept as prefix cache while memory
// allows) and it goes back to the head of the queue, to be recomputed later; it loses nothing.
//
// Knows sequences and blocks, not sampling or text (engine/engine.h). Not thread-safe: the engine thread
// owns it.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "engine/kv_block_pool.h"

namespace edgellm {

// What the scheduler knows of a request: its tokens and where their keys and values are.
struct Sequence {
  uint64_t id = 0;
  std::vector<int32_t> tokens;   // the prompt, then each generated token
  int64_t n_prompt = 0;
  int64_t n_computed = 0;        // leading positions whose K/V are in `blocks`
  std::vector<int32_t> blocks;   // block table: position p in blocks[p / block_size]
  std::vector<BlockHash> hashes;  // chained hashes of its leading full blocks, as far as computed
  int64_t n_registered = 0;      // leading blocks offered to the prefix cache
  std::string cache_salt;        // what else its K/V depend on (the adapter): enters the first block's hash
  bool prefix_cache = true;      // shares cached blocks and offers its own
  // Statistics.
  int64_t n_cached_tokens = -1;  // prompt tokens taken from the prefix cache at its first admission
  int n_preemptions = 0;
  uint64_t admit_order = 0;      // when it was (last) admitted
};

// Tokens [seq->n_computed, seq->n_computed + n_tokens) of a sequence run in this step; when that reaches the
// end of its tokens, the step gives its logits (the engine samples its next token).
struct ScheduledChunk {
  Sequence* seq = nullptr;
  int64_t n_tokens = 0;
  bool wants_logits = false;
};

struct SchedulerOptions {
  int max_parallel = 4;     // sequences running at once
  int64_t step_tokens = 256;  // tokens per step (decode tokens plus prefill chunks), >= max_parallel
  bool prefix_cache = true;
};

class Scheduler {
 public:
  Scheduler(KvBlockPool& pool, const SchedulerOptions& options);

  // Queues a sequence (not yet computed, holding no blocks) behind the others.
  void add(Sequence* seq);
  // Plans the next step (see the file comment). Sequences it preempted are appended to `preempted`.
  // Empty only when nothing is running or can be admitted.
  std::vector<ScheduledChunk> schedule(std::vector<Sequence*>* preempted = nullptr);
  // After a step ran: advances each chunk's n_computed and offers newly full blocks to the prefix cache.
  void step_done(const std::vector<ScheduledChunk>& chunks);
  // Takes a sequence out, waiting or running, releasing its blocks (finished, cancelled or timed out).
  void remove(Sequence* seq);

  const std::deque<Sequence*>& waiting() const { return waiting_; }
  const std::vector<Sequence*>& running() const { return running_; }  // in admission order
  int64_t n_preemptions() const { return n_preemptions_; }
  const KvBlockPool& pool() const { return pool_; }

 private:
  // Makes seq's blocks cover positions [0, end); false (nothing taken) when the pool has too few.
  bool grow_blocks(Sequence& seq, int64_t end);
  // Takes the cached blocks of seq's leading full blocks (at most up to its last token, which must be
  // computed for its logits) and sets n_computed after them.
  void take_cached_prefix(Sequence& seq);
  void ensure_hashes(Sequence& seq, int64_t n_blocks);
  void release_blocks(Sequence& seq);
  void preempt(Sequence* seq);

  KvBlockPool& pool_;
  SchedulerOptions options_;
  std::deque<Sequence*> waiting_;
  std::vector<Sequence*> running_;
  uint64_t next_admit_order_ = 1;
  int64_t n_preemptions_ = 0;
};

}  // namespace edgellm
