#include "engine/kv_block_pool.h"

#include <cstring>
#include <string>

#include "util/check.h"
#include "util/sha256.h"

namespace edgellm {

BlockHash chain_block_hash(const BlockHash* parent, std::string_view salt, const int32_t* tokens, int64_t n_tokens) {
  // parent (or a marker and the salt for the first block), then the tokens as little-endian int32.
  std::vector<uint8_t> bytes;
  bytes.reserve(17 + salt.size() + 4 * static_cast<size_t>(n_tokens));
  if (parent != nullptr) {
    bytes.push_back(1);
    bytes.insert(bytes.end(), parent->bytes.begin(), parent->bytes.end());
  } else {
    bytes.push_back(0);
    const auto n_salt = static_cast<uint32_t>(salt.size());
    for (int i = 0; i < 4; ++i) bytes.push_back(static_cast<uint8_t>(n_salt >> (8 * i)));
    bytes.insert(bytes.end(), salt.begin(), salt.end());
  }
  for (int64_t i = 0; i < n_tokens; ++i) {
    const auto t = static_cast<uint32_t>(tokens[i]);
    for (int b = 0; b < 4; ++b) bytes.push_back(static_cast<uint8_t>(t >> (8 * b)));
  }
  const std::array<uint8_t, 32> digest = sha256_digest(bytes.data(), bytes.size());
  BlockHash h;
  std::memcpy(h.bytes.data(), digest.data(), h.bytes.size());
  return h;
}

size_t KvBlockPool::block_bytes(const ModelConfig& config, int block_size, DType kv_type) {
  return KvCache::bytes_needed(config, block_size, kv_type);
}

Expected<KvBlockPool> KvBlockPool::create(const ModelConfig& config, int64_t n_blocks, int block_size,
                                          DType kv_type) {
  if (block_size <= 0 || (block_size & (block_size - 1)) != 0 || block_size > 1024) {
    return make_error(ErrorCode::kInvalidArgument,
                      "KV block size " + std::to_string(block_size) + " must be a power of two up to 1024");
  }
  if (n_blocks <= 0 || n_blocks > (int64_t{1} << 30) / block_size) {
    return make_error(ErrorCode::kInvalidArgument, "KV block count " + std::to_string(n_blocks) + " is out of range");
  }
  KvBlockPool pool;
  EDGELLM_ASSIGN_OR_RETURN(pool.cache_, KvCache::create(config, n_blocks * block_size, kv_type, /*with_state=*/false));
  pool.block_size_ = block_size;
  pool.block_shift_ = __builtin_ctz(static_cast<unsigned>(block_size));
  pool.blocks_.resize(static_cast<size_t>(n_blocks));
  pool.free_.reserve(static_cast<size_t>(n_blocks));
  for (int64_t b = n_blocks - 1; b >= 0; --b) pool.free_.push_back(static_cast<int32_t>(b));  // block 0 first
  pool.by_hash_.reserve(static_cast<size_t>(n_blocks));
  return pool;
}

void KvBlockPool::lru_push_back(int32_t b) {
  Block& k = blocks_[static_cast<size_t>(b)];
  k.lru_prev = lru_tail_;
  k.lru_next = -1;
  if (lru_tail_ >= 0) {
    blocks_[static_cast<size_t>(lru_tail_)].lru_next = b;
  } else {
    lru_head_ = b;
  }
  lru_tail_ = b;
  ++n_cached_;
}

void KvBlockPool::lru_remove(int32_t b) {
  Block& k = blocks_[static_cast<size_t>(b)];
  if (k.lru_prev >= 0) {
    blocks_[static_cast<size_t>(k.lru_prev)].lru_next = k.lru_next;
  } else {
    lru_head_ = k.lru_next;
  }
  if (k.lru_next >= 0) {
    blocks_[static_cast<size_t>(k.lru_next)].lru_prev = k.lru_prev;
  } else {
    lru_tail_ = k.lru_prev;
  }
  k.lru_prev = k.lru_next = -1;
  --n_cached_;
}

void KvBlockPool::forget_hash(int32_t b) {
  Block& k = blocks_[static_cast<size_t>(b)];
  if (!k.hashed) return;
  const auto it = by_hash_.find(k.hash);
  if (it != by_hash_.end() && it->second == b) by_hash_.erase(it);
  k.hashed = false;
}

int32_t KvBlockPool::allocate() {
  int32_t b;
  if (!free_.empty()) {
    b = free_.back();
    free_.pop_back();
  } else if (lru_head_ >= 0) {
    b = lru_head_;
    lru_remove(b);
    forget_hash(b);
    ++n_evictions_;
  } else {
    return -1;
  }
  Block& k = blocks_[static_cast<size_t>(b)];
  EDGELLM_CHECK(k.refs == 0 && !k.hashed);
  k.refs = 1;
  return b;
}

int32_t KvBlockPool::take_cached(const BlockHash& hash) {
  const auto it = by_hash_.find(hash);
  if (it == by_hash_.end()) return -1;
  const int32_t b = it->second;
  Block& k = blocks_[static_cast<size_t>(b)];
  if (k.refs == 0) lru_remove(b);
  ++k.refs;
  ++n_hits_;
  return b;
}

void KvBlockPool::register_full(int32_t b, const BlockHash& hash) {
  EDGELLM_CHECK(b >= 0 && b < n_blocks());
  Block& k = blocks_[static_cast<size_t>(b)];
  EDGELLM_CHECK(k.refs > 0);
  if (k.hashed) return;  // a block taken from the cache already holds this prefix
  if (by_hash_.count(hash) != 0) return;
  by_hash_.emplace(hash, b);
  k.hashed = true;
  k.hash = hash;
}

void KvBlockPool::release(int32_t b) {
  EDGELLM_CHECK(b >= 0 && b < n_blocks());
  Block& k = blocks_[static_cast<size_t>(b)];
  EDGELLM_CHECK(k.refs > 0);
  if (--k.refs > 0) return;
  if (k.hashed) {
    lru_push_back(b);
  } else {
    free_.push_back(b);
  }
}

void KvBlockPool::clear_cache() {
  while (lru_head_ >= 0) {
    const int32_t b = lru_head_;
    lru_remove(b);
    forget_hash(b);
    free_.push_back(b);
  }
}

}  // namespace edgellm
