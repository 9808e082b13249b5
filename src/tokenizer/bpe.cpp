#include "tokenizer/bpe.h"

#include <algorithm>
#include <climits>

namespace edgellm {

void PairTable::insert(int32_t left, int32_t right, PairMerge merge) {
  // Load factor up to 3/4: a smaller table stays in cache better, and probes stay short.
  if ((size_ + 1) * 4 > slots_.size() * 3) grow();
  const uint64_t key = make_key(left, right);
  size_t idx = hash(key);
  while (slots_[idx].key != kEmpty && slots_[idx].key != key) idx = (idx + 1) & mask_;
  if (slots_[idx].key == kEmpty) ++size_;
  slots_[idx].key = key;
  slots_[idx].merge = merge;
}

void PairTable::reserve(size_t n) {
  size_t capacity = 1024;
  while (n * 4 > capacity * 3) capacity *= 2;
  if (capacity > slots_.size()) grow(capacity);
}

void PairTable::grow(size_t capacity) {
  std::vector<Slot> old = std::move(slots_);
  if (capacity == 0) capacity = old.empty() ? 1024 : old.size() * 2;
  slots_.assign(capacity, Slot{});
  mask_ = capacity - 1;
  shift_ = 64 - __builtin_ctzll(capacity);
  size_ = 0;
  for (const Slot& slot : old) {
    if (slot.key == kEmpty) continue;
    size_t idx = hash(slot.key);
    while (slots_[idx].key != kEmpty) idx = (idx + 1) & mask_;
    slots_[idx] = slot;
    ++size_;
  }
}

namespace {

// Short words (the common case) are merged by rescanning a rank array: no heap, no links.
constexpr size_t kLinearMaxSymbols = 48;

void merge_linear(const PairTable& pairs, std::vector<int32_t>& ids, std::vector<PairMerge>& merges) {
  const auto merge_of = [&](size_t i) {
    const PairMerge* m = pairs.find(ids[i], ids[i + 1]);
    return m ? *m : PairMerge{INT_MAX, -1};
  };
  size_t n = ids.size();
  merges.resize(n);
  for (size_t i = 0; i + 1 < n; ++i) merges[i] = merge_of(i);
  while (n > 1) {
    size_t best = 0;
    for (size_t i = 1; i + 1 < n; ++i) {
      if (merges[i].rank < merges[best].rank) best = i;
    }
    if (merges[best].rank == INT_MAX) break;
    ids[best] = merges[best].merged_id;
    for (size_t i = best + 1; i + 1 < n; ++i) {
      ids[i] = ids[i + 1];
      merges[i] = merges[i + 1];
    }
    --n;
    ids.resize(n);
    if (best + 1 < n) merges[best] = merge_of(best);
    if (best > 0) merges[best - 1] = merge_of(best - 1);
  }
}

struct CandidateAfter {
  bool operator()(const BpeScratch::Candidate& a, const BpeScratch::Candidate& b) const {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  }
};

void merge_heap(const PairTable& pairs, std::vector<int32_t>& ids, BpeScratch& scratch) {
  auto& nodes = scratch.nodes;
  auto& heap = scratch.heap;
  const auto n = static_cast<int32_t>(ids.size());
  nodes.resize(ids.size());
  heap.clear();
  for (int32_t i = 0; i < n; ++i) nodes[i] = {ids[i], i - 1, i + 1 < n ? i + 1 : -1};
  const auto push = [&](int32_t pos) {
    const int32_t next = nodes[pos].next;
    if (next < 0) return;
    const PairMerge* m = pairs.find(nodes[pos].id, nodes[next].id);
    if (!m) return;
    heap.push_back({m->rank, pos, nodes[pos].id, nodes[next].id});
    std::push_heap(heap.begin(), heap.end(), CandidateAfter{});
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), CandidateAfter{});
    const BpeScratch::Candidate c = heap.back();
    heap.pop_back();
    BpeScratch::Node& left = nodes[c.pos];
    if (left.id != c.left_id || left.next < 0) continue;  // merged away or changed since pushed
    BpeScratch::Node& right = nodes[left.next];
    if (right.id != c.right_id) continue;
    left.id = pairs.find(c.left_id, c.right_id)->merged_id;
    right.id = -1;  // removed
    left.next = right.next;
    if (right.next >= 0) nodes[right.next].prev = c.pos;
    if (left.prev >= 0) push(left.prev);
    push(c.pos);
  }
  ids.clear();
  for (int32_t i = 0; i >= 0; i = nodes[i].next) ids.push_back(nodes[i].id);
}

}  // namespace

void bpe_merge(const PairTable& pairs, std::vector<int32_t>& ids, BpeScratch& scratch) {
  if (ids.size() < 2 || pairs.size() == 0) return;
  if (ids.size() <= kLinearMaxSymbols) {
    merge_linear(pairs, ids, scratch.merges);
  } else {
    merge_heap(pairs, ids, scratch);
  }
}

}  // namespace edgellm
