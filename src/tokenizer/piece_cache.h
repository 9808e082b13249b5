// A bounded cache of pre-token piece -> token ids, filled while encoding. Entries live in one byte arena
// (no allocation per entry); when the arena or the table fills up, everything is dropped at once.
// Thread-safe (one mutex; lookups and inserts are short).
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string_view>
#include <vector>

namespace edgellm {

class PieceCache {
 public:
  static constexpr size_t kMaxPieceBytes = 48;  // longer pieces (Chinese clauses, long runs) rarely repeat

  PieceCache();
  // Appends the cached ids of `piece` to `out` and returns true, or returns false.
  bool lookup(std::string_view piece, std::vector<int32_t>& out) const;
  void insert(std::string_view piece, const std::vector<int32_t>& ids);
  void clear();

 private:
  struct Slot {
    uint64_t hash = 0;     // 0 = empty
    uint32_t offset = 0;   // of the entry in arena_: key bytes, then padding to 4, then the ids
    uint16_t key_bytes = 0;
    uint16_t n_ids = 0;
  };
  static uint64_t hash_of(std::string_view piece);
  void clear_locked();

  // At most half full: 131,072 pieces (a book's worth of distinct Chinese clauses), 4 MiB of slots.
  static constexpr size_t kSlots = size_t{1} << 18;
  static constexpr size_t kArenaBytes = size_t{16} << 20;
  mutable std::mutex mu_;
  std::vector<Slot> slots_;   // guarded by mu_; allocated at the first insert
  std::vector<char> arena_;   // guarded by mu_
  size_t n_entries_ = 0;      // guarded by mu_
};

}  // namespace edgellm
