#include "tokenizer/piece_cache.h"

#include <algorithm>
#include <cstring>

namespace edgellm {

PieceCache::PieceCache() = default;

uint64_t PieceCache::hash_of(std::string_view piece) {
  // FNV-1a (64-bit); pieces are short. Never 0, which marks an empty slot.
  uint64_t h = 0xCBF29CE484222325ULL;
  for (char c : piece) h = (h ^ static_cast<uint8_t>(c)) * 0x100000001B3ULL;
  return h | 1;
}

bool PieceCache::lookup(std::string_view piece, std::vector<int32_t>& out) const {
  const uint64_t h = hash_of(piece);
  std::lock_guard<std::mutex> lock(mu_);
  if (slots_.empty()) return false;
  for (size_t idx = h & (kSlots - 1);; idx = (idx + 1) & (kSlots - 1)) {
    const Slot& s = slots_[idx];
    if (s.hash == 0) return false;
    if (s.hash != h || s.key_bytes != piece.size()) continue;
    const char* entry = arena_.data() + s.offset;
    if (std::memcmp(entry, piece.data(), piece.size()) != 0) continue;
    const size_t ids_at = (s.key_bytes + 3) & ~size_t{3};
    const size_t old = out.size();
    out.resize(old + s.n_ids);
    std::memcpy(out.data() + old, entry + ids_at, s.n_ids * sizeof(int32_t));
    return true;
  }
}

void PieceCache::insert(std::string_view piece, const std::vector<int32_t>& ids) {
  if (piece.size() > kMaxPieceBytes || ids.size() > UINT16_MAX) return;
  const uint64_t h = hash_of(piece);
  const size_t ids_at = (piece.size() + 3) & ~size_t{3};
  const size_t entry_bytes = ids_at + ids.size() * sizeof(int32_t);
  std::lock_guard<std::mutex> lock(mu_);
  if (slots_.empty()) {
    slots_.resize(kSlots);
    arena_.reserve(kArenaBytes);
  }
  if (arena_.size() + entry_bytes > kArenaBytes || (n_entries_ + 1) * 2 > kSlots) clear_locked();
  size_t idx = h & (kSlots - 1);
  for (;; idx = (idx + 1) & (kSlots - 1)) {
    const Slot& s = slots_[idx];
    if (s.hash == 0) break;
    // Another thread may have inserted the same piece meanwhile.
    if (s.hash == h && s.key_bytes == piece.size() &&
        std::memcmp(arena_.data() + s.offset, piece.data(), piece.size()) == 0) {
      return;
    }
  }
  const size_t offset = arena_.size();
  arena_.resize(offset + entry_bytes);
  std::memcpy(arena_.data() + offset, piece.data(), piece.size());
  if (!ids.empty()) std::memcpy(arena_.data() + offset + ids_at, ids.data(), ids.size() * sizeof(int32_t));
  slots_[idx] = Slot{h, static_cast<uint32_t>(offset), static_cast<uint16_t>(piece.size()),
                     static_cast<uint16_t>(ids.size())};
  ++n_entries_;
}

void PieceCache::clear() {
  std::lock_guard<std::mutex> lock(mu_);
  clear_locked();
}

void PieceCache::clear_locked() {
  if (n_entries_ == 0) return;
  std::fill(slots_.begin(), slots_.end(), Slot{});
  arena_.clear();
  n_entries_ = 0;
}

}  // namespace edgellm
