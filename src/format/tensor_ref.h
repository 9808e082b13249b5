// A typed, shaped view of tensor bytes that live elsewhere (an mmapped file or an owned buffer).
// Shapes use ggml's order: ne[0] is the innermost (contiguous) dimension. A PyTorch weight of shape
// [out_features, in_features] therefore has ne = {in_features, out_features}; the bytes are identical.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "format/dtype.h"

namespace edgellm {

struct TensorRef {
  std::string name;
  DType type = DType::kF32;
  std::vector<int64_t> ne;  // ggml order, innermost first
  const void* data = nullptr;
  size_t size_bytes = 0;
  // Optional copy of a weight matrix repacked at load for the active int8 matmul kernels
  // (kernels/matmul.h: matmul_repack); matmul() reads it instead of `data` when it uses them. Everything
  // else (row lookups, LoRA, f32 activations) reads `data`.
  const void* packed = nullptr;

  int64_t n_elements() const {
    int64_t n = 1;
    for (int64_t d : ne) n *= d;
    return n;
  }
  int64_t dim(size_t i) const { return i < ne.size() ? ne[i] : 1; }
  // Bytes of one row along ne[0].
  size_t row_bytes() const { return dtype_row_bytes(type, ne.empty() ? 1 : ne[0]); }
  int64_t n_rows() const { return ne.empty() ? 1 : n_elements() / ne[0]; }
};

std::string shape_string(const std::vector<int64_t>& ne);  // "[64, 128]" in ggml order

}  // namespace edgellm
