// safetensors reader: a single file, or shards listed in model.safetensors.index.json.
// Layout: u64 little-endian header length N, N bytes of JSON {"name": {"dtype", "shape", "data_offsets":
// [begin, end]}, "__metadata__": {...}}, then the data. Files are mmapped; tensors are views.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "format/tensor_ref.h"
#include "util/expected.h"
#include "util/mapped_file.h"

namespace edgellm {

struct SafetensorsTensor {
  TensorRef ref;              // ref.ne in ggml order (reversed from the file's shape)
  std::vector<int64_t> shape; // as stored: outermost first (PyTorch order)
  std::string dtype;          // as stored: "F32", "F16", "BF16", ...
  size_t file_index = 0;      // which shard
};

class Safetensors {
 public:
  // `path` is a .safetensors file, a model.safetensors.index.json, or a directory holding either.
  // Supported dtypes: F32, F16, BF16 (others are listed but rejected when used: kUnsupported).
  static Expected<Safetensors> open(const std::string& path);

  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  const SafetensorsTensor* find(std::string_view name) const;
  const std::vector<std::string>& files() const { return file_paths_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }  // first shard's

 private:
  Status add_file(const std::string& path);

  std::vector<MappedFile> files_;
  std::vector<std::string> file_paths_;
  std::vector<SafetensorsTensor> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace edgellm
