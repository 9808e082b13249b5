// Writes a single .safetensors file (header JSON sorted by name, 8-byte aligned data), atomically:
// to "<path>.tmp.<pid>" first, renamed into place on success.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "format/dtype.h"
#include "util/expected.h"

namespace edgellm {

class SafetensorsWriter {
 public:
  // `shape` in PyTorch order (outermost first). type: F32, F16 or BF16. Bytes are copied.
  Status add(const std::string& name, DType type, const std::vector<int64_t>& shape, const void* data,
             size_t size_bytes);
  void set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }
  Status write(const std::string& path) const;

 private:
  struct Entry {
    DType type;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
  };
  std::map<std::string, Entry> tensors_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace edgellm
