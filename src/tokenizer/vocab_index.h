// Token id by string, for a vocabulary whose strings live in a StringArena (the tokenizer's token bytes, or
// its pieces): open addressing over 4-byte ids, each slot compared through the arena, so the index adds
// 4-8 bytes per token instead of an unordered_map's ~56 (a node with the key's view, the id and the cached
// hash, plus its bucket).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "tokenizer/string_arena.h"

namespace edgellm {

class VocabIndex {
 public:
  // An index of up to `capacity` ids over `keys` (id i's key is keys[i]); `keys` must outlive the index and
  // may grow, but not change the keys of ids already inserted.
  VocabIndex(const StringArena* keys, size_t capacity);
  VocabIndex() = default;

  // Adds `id` under keys[id] unless that key is there already (the first id inserted keeps it).
  void insert(int32_t id);
  // The id whose key is `key`, or -1.
  int32_t find(std::string_view key) const;
  size_t memory_bytes() const { return slots_.capacity() * sizeof(int32_t); }

 private:
  static constexpr int32_t kEmpty = -1;
  size_t slot_of(std::string_view key) const;

  const StringArena* keys_ = nullptr;
  size_t capacity_ = 0;
  size_t size_ = 0;
  std::vector<int32_t> slots_;  // ids, kEmpty where none; a power of two, at most half full
  size_t mask_ = 0;
};

}  // namespace edgellm
