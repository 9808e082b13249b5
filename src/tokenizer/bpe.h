// The byte-pair-encoding merge loop shared by every vocabulary kind. A PairTable maps an adjacent
// pair of token ids to the id it merges into and the merge's rank (lower merges first). The three
// vocabulary kinds only differ in how the table is filled:
//   - Hugging Face BPE: rank = index in the `merges` list (tokenizers: models/bpe/model.rs);
//   - tiktoken: every split of a token into two tokens, rank = the merged token's rank
//     (openai/tiktoken: src/lib.rs, _byte_pair_merge);
//   - SentencePiece BPE: every split of a piece into two pieces, rank = position of the piece's
//     score in descending order, equal scores sharing a rank (sentencepiece: bpe_model.cc).
// In all three the lowest-ranked adjacent pair merges first, and the leftmost on ties.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace edgellm {

struct PairMerge {
  int32_t rank = 0;
  int32_t merged_id = 0;
};

// Open-addressing hash map from (left id, right id) to PairMerge. Built once at load, then read-only
// (safe to share between threads).
class PairTable {
 public:
  // Sets the merge of (left, right); a later insert of the same pair replaces the earlier one.
  void insert(int32_t left, int32_t right, PairMerge merge);
  // Sizes the table for n entries at once (no doubling, and no old table beside the new one, on the way).
  void reserve(size_t n);
  const PairMerge* find(int32_t left, int32_t right) const {
    if (slots_.empty()) return nullptr;
    const uint64_t key = make_key(left, right);
    size_t idx = hash(key);
    while (true) {
      const Slot& slot = slots_[idx];
      if (slot.key == key) return &slot.merge;
      if (slot.key == kEmpty) return nullptr;
      idx = (idx + 1) & mask_;
    }
  }
  size_t size() const { return size_; }
  // Calls fn(left, right, merge) for every entry, in no particular order.
  template <class Fn>
  void for_each(Fn&& fn) const {
    for (const Slot& slot : slots_) {
      if (slot.key != kEmpty) {
        fn(static_cast<int32_t>(slot.key >> 32), static_cast<int32_t>(slot.key & 0xFFFFFFFFu), slot.merge);
      }
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~0ULL;  // ids are non-negative int32, so no real key is all ones
  struct Slot {
    uint64_t key = kEmpty;
    PairMerge merge;
  };
  static uint64_t make_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }
  // Fibonacci hashing: the top bits of the product index the table (Knuth, TAOCP vol. 3, 6.4).
  size_t hash(uint64_t key) const { return static_cast<size_t>((key * 0x9E3779B97F4A7C15ULL) >> shift_); }
  void grow(size_t capacity = 0);  // to `capacity` slots (a power of two); 0: twice the size

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  int shift_ = 64;  // 64 - log2(capacity)
  size_t size_ = 0;
};

// Reusable buffers for bpe_merge (one per encode call, so encoding allocates little).
struct BpeScratch {
  struct Node {
    int32_t id;
    int32_t prev;
    int32_t next;
  };
  struct Candidate {
    int32_t rank;
    int32_t pos;        // index of the left node
    int32_t left_id;    // ids when pushed; a stale candidate no longer matches
    int32_t right_id;
  };
  std::vector<Node> nodes;
  std::vector<Candidate> heap;
  std::vector<PairMerge> merges;  // per adjacent pair: its merge, rank INT32_MAX if none
};

// Applies the merges of `pairs` to `ids` in place until no adjacent pair has a merge.
void bpe_merge(const PairTable& pairs, std::vector<int32_t>& ids, BpeScratch& scratch);

}  // namespace edgellm
