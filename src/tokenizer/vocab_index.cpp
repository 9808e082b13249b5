#include "tokenizer/vocab_index.h"

#include <functional>

#include "util/check.h"

namespace edgellm {

VocabIndex::VocabIndex(const StringArena* keys, size_t capacity) : keys_(keys), capacity_(capacity) {
  size_t n_slots = 16;
  while (n_slots < 2 * capacity) n_slots *= 2;
  slots_.assign(n_slots, kEmpty);
  mask_ = n_slots - 1;
}

size_t VocabIndex::slot_of(std::string_view key) const { return std::hash<std::string_view>{}(key) & mask_; }

void VocabIndex::insert(int32_t id) {
  EDGELLM_CHECK(keys_ != nullptr && id >= 0 && static_cast<size_t>(id) < keys_->size());
  const std::string_view key = (*keys_)[static_cast<size_t>(id)];
  for (size_t i = slot_of(key);; i = (i + 1) & mask_) {
    if (slots_[i] == kEmpty) {
      EDGELLM_CHECK(size_ < capacity_);  // the table stays at most half full
      slots_[i] = id;
      ++size_;
      return;
    }
    if ((*keys_)[static_cast<size_t>(slots_[i])] == key) return;
  }
}

int32_t VocabIndex::find(std::string_view key) const {
  if (slots_.empty()) return -1;
  for (size_t i = slot_of(key);; i = (i + 1) & mask_) {
    const int32_t id = slots_[i];
    if (id == kEmpty) return -1;
    if ((*keys_)[static_cast<size_t>(id)] == key) return id;
  }
}

}  // namespace edgellm
