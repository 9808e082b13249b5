// KV memory of every sequence an engine runs, as fixed-size blocks from one budget (PagedAttention,
// Kwon et al. 2023; vllm-project/vllm: vllm/v1/core/block_pool.py). A sequence holds a block table and
// takes blocks only as it grows; attention reads its rows through that table (model/attention.h).
//
// Prefix caching: a full block is identified by a hash of its tokens chained over every token before it
// (and over what else its keys depend on, e.g. the LoRA adapter), so a request that starts with the same
// tokens as an earlier one (a shared system prompt, the earlier turns a chat client re-sends) takes the
// cached blocks by reference instead of recomputing them. Blocks nobody references but whose hash is
// known stay cached until their memory is needed, least recently used first.
//
// Not thread-safe: owned and used by one engine thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "format/dtype.h"
#include "model/config.h"
#include "model/kv_cache.h"
#include "util/expected.h"

namespace edgellm {

// 128 bits of SHA-256 over (parent hash, salt, block tokens): collisions are out of reach, also for a
// client crafting prompts to read another client's cache (which a fast 64-bit hash would not rule out).
struct BlockHash {
  std::array<uint8_t, 16> bytes{};
  bool operator==(const BlockHash&) const = default;
};

struct BlockHashHasher {
  size_t operator()(const BlockHash& h) const {
    size_t v;
    static_assert(sizeof(v) <= sizeof(h.bytes));
    __builtin_memcpy(&v, h.bytes.data(), sizeof(v));
    return v;
  }
};

// The hash of a block of `n_tokens` tokens after the prefix whose last block hashed to `parent`
// (nullptr for the first block); `salt` only enters the first block's hash (it is carried by the chain).
BlockHash chain_block_hash(const BlockHash* parent, std::string_view salt, const int32_t* tokens, int64_t n_tokens);

class KvBlockPool {
 public:
  // n_blocks blocks of block_size positions (a power of two, 16 or 32 in practice) for every layer, K and
  // V in kv_type (f16, f32 or q8_0). Errors: bad sizes or type (kInvalidArgument), allocation (kOutOfMemory).
  static Expected<KvBlockPool> create(const ModelConfig& config, int64_t n_blocks, int block_size, DType kv_type);
  // Bytes one block takes over all layers (K and V).
  static size_t block_bytes(const ModelConfig& config, int block_size, DType kv_type);

  KvBlockPool() = default;
  KvBlockPool(KvBlockPool&&) noexcept = default;
  KvBlockPool& operator=(KvBlockPool&&) noexcept = default;

  // The rows: block b holds rows [b * block_size, (b + 1) * block_size) of every layer.
  KvCache& cache() { return cache_; }
  int block_size() const { return block_size_; }
  int block_shift() const { return block_shift_; }
  int64_t n_blocks() const { return static_cast<int64_t>(blocks_.size()); }
  size_t size_bytes() const { return cache_.size_bytes(); }

  int64_t n_free() const { return static_cast<int64_t>(free_.size()); }  // hold nothing reusable
  int64_t n_cached() const { return n_cached_; }                          // unreferenced, hold a cached prefix
  int64_t n_used() const { return n_blocks() - n_free() - n_cached(); }   // referenced by sequences
  int64_t n_available() const { return n_free() + n_cached(); }

  // A block for a sequence (one reference): a free one, else the least recently used cached one, whose
  // hash is forgotten (an eviction). -1 when every block is referenced.
  int32_t allocate();
  // The block cached under `hash`, with one more reference (a cached one leaves the evictable list), or -1.
  int32_t take_cached(const BlockHash& hash);
  // Records that `block` (full, referenced) holds the prefix `hash`, so later requests can take it. If
  // another block already holds that prefix (two sequences computed it at once), this one stays private.
  void register_full(int32_t block, const BlockHash& hash);
  // Drops one reference; at none the block is cached (most recently used) if it holds a prefix, else free.
  void release(int32_t block);
  // Forgets every cached prefix (their blocks become free); referenced blocks keep theirs.
  void clear_cache();

  // Lifetime counters: blocks taken from the cache (hits), cached blocks given to others (evictions).
  int64_t n_hits() const { return n_hits_; }
  int64_t n_evictions() const { return n_evictions_; }

 private:
  struct Block {
    int32_t refs = 0;
    bool hashed = false;
    BlockHash hash;
    int32_t lru_prev = -1, lru_next = -1;  // evictable list, when cached (refs == 0 and hashed)
  };
  void lru_push_back(int32_t b);
  void lru_remove(int32_t b);
  void forget_hash(int32_t b);

  KvCache cache_;
  int block_size_ = 16;
  int block_shift_ = 4;
  std::vector<Block> blocks_;
  std::vector<int32_t> free_;  // a stack: the most recently freed block (its pages resident) goes out first
  int32_t lru_head_ = -1, lru_tail_ = -1;  // least / most recently used cached block
  int64_t n_cached_ = 0;
  std::unordered_map<BlockHash, int32_t, BlockHashHasher> by_hash_;
  int64_t n_hits_ = 0;
  int64_t n_evictions_ = 0;
};

}  // namespace edgellm
