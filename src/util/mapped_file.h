// A read-only memory map of a whole file. Weights are used in place from it, never copied whole into RAM.
// An in-memory stand-in (anonymous()) holds a file's bytes that exist nowhere on disk, e.g. a decrypted model.
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

  // An anonymous mapping of `size` bytes standing in for the file at `path`: fill it through
  // mutable_data(), then seal() makes it read-only. kOutOfMemory if it cannot be mapped.
  static Expected<MappedFile> anonymous(const std::string& path, size_t size);

  MappedFile() = default;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // True for anonymous(): release() then discards bytes for good (they read back as zeros).
  bool in_memory() const { return in_memory_; }
  // The bytes of an unsealed anonymous() mapping; nullptr otherwise.
  uint8_t* mutable_data() { return in_memory_ && !sealed_ ? const_cast<uint8_t*>(data_) : nullptr; }
  void seal();

  // Hints the kernel to read the whole mapping ahead (MADV_WILLNEED), for "preload".
  void prefetch() const;
  // Drops this process's pages of [p, p + n) (the whole pages inside it; MADV_DONTNEED) when the range
  // is inside the mapping, e.g. tensors copied elsewhere at load. Later reads fault them in again from
  // the file, so the bytes stay valid; they just stop counting in the resident set until then. An
  // in_memory() mapping has no file behind it: released bytes are gone, so release only what is never read again.
  void release(const void* p, size_t n) const;

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool in_memory_ = false;
  bool sealed_ = false;
};

}  // namespace edgellm
