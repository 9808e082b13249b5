// Many short strings back to back in one buffer, each found by its index: a vocabulary's 152k token
// strings cost their bytes and 4 bytes each, where a std::vector<std::string> costs 32 bytes each plus a
// heap block for every string longer than 15 bytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/check.h"

namespace edgellm {

class StringArena {
 public:
  void reserve(size_t n_strings, size_t n_bytes) {
    ends_.reserve(n_strings);
    chars_.reserve(n_bytes);
  }
  // Appends a string; it is (*this)[size() - 1] from now on.
  void push_back(std::string_view s) {
    chars_.append(s);
    EDGELLM_CHECK(chars_.size() <= UINT32_MAX);
    ends_.push_back(static_cast<uint32_t>(chars_.size()));
  }
  std::string_view operator[](size_t i) const {
    const uint32_t begin = i == 0 ? 0 : ends_[i - 1];
    return std::string_view(chars_.data() + begin, ends_[i] - begin);
  }
  size_t size() const { return ends_.size(); }
  bool empty() const { return ends_.empty(); }
  // Frees the unused capacity (after the last push_back).
  void shrink_to_fit() {
    chars_.shrink_to_fit();
    ends_.shrink_to_fit();
  }
  size_t memory_bytes() const { return chars_.capacity() + ends_.capacity() * sizeof(uint32_t); }

 private:
  std::string chars_;
  std::vector<uint32_t> ends_;  // end offset of string i; string i starts where i - 1 ends
};

}  // namespace edgellm
