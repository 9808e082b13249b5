// A read-only memory map of a whole file. Weights are used in place from it, never copied whole into RAM.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "util/expected.h"

namespace edgellm {

class MappedFile {
 public:
  // Maps `path` read-only. Errors (kIo) name the path and the system error.
  static Expected<MappedFile> open(const std::string& path);

  MappedFile() = default;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Hints the kernel to read the whole mapping ahead (MADV_WILLNEED), for "preload".
  void prefetch() const;
  // Drops this process's pages of [p, p + n) (the whole pages inside it; MADV_DONTNEED) when the range
  // is inside the mapping, e.g. tensors copied elsewhere at load. Later reads fault them in again from
  // the file, so the bytes stay valid; they just stop counting in the resident set until then.
  void release(const void* p, size_t n) const;

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace edgellm
