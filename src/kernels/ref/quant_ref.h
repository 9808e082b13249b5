// Scalar reference quantization and dequantization, one block at a time: plain loops, bit-exact with
// ggml's quantize_row_*_ref / dequantize_row_* (ggml-org/llama.cpp: ggml/src/ggml-quants.c) and with
// the numpy port in the `gguf` package (gguf-py/gguf/quants.py), which tests/python compares against.
//
// Bit-exactness needs the float operations evaluated exactly as written (no fused multiply-add), so
// quant_ref.cpp is compiled without FMA target flags and with contraction off.
#pragma once

#include <cstdint>

#include "format/dtype.h"
#include "kernels/quant_blocks.h"

namespace edgellm::ref {

// One block: `x` holds the block's 32 (or 256) floats.
void quantize_block(const float* x, BlockQ4_0& y);
// IQ4_NL by plain rounding: d = (the element of largest magnitude) / -127, so it maps onto the first
// codebook value, then each element to the nearest codebook value of x / d.
void quantize_block(const float* x, BlockIQ4_NL& y);
// Index of the kIQ4NLValues entry nearest to v (ties to the lower index); inline: the scale search
// calls it for every element of every candidate scale.
inline int iq4nl_nearest_index(float v);
void quantize_block(const float* x, BlockQ4_1& y);
void quantize_block(const float* x, BlockQ5_0& y);
void quantize_block(const float* x, BlockQ5_1& y);
void quantize_block(const float* x, BlockQ8_0& y);

void dequantize_block(const BlockQ4_0& x, float* y);
void dequantize_block(const BlockIQ4_NL& x, float* y);
void dequantize_block(const BlockQ4_1& x, float* y);
void dequantize_block(const BlockQ5_0& x, float* y);
void dequantize_block(const BlockQ5_1& x, float* y);
void dequantize_block(const BlockQ8_0& x, float* y);
void dequantize_block(const BlockQ8_1& x, float* y);
void dequantize_block(const BlockQ2_K& x, float* y);
void dequantize_block(const BlockQ3_K& x, float* y);
void dequantize_block(const BlockQ4_K& x, float* y);
void dequantize_block(const BlockQ5_K& x, float* y);
void dequantize_block(const BlockQ6_K& x, float* y);
void dequantize_block(const BlockQ8_K& x, float* y);

// Whole rows of `n` elements (n a multiple of the type's block size; the caller checks).
// Return false for a type without a reference implementation in that direction.
bool quantize_row(DType type, const float* src, void* dst, int64_t n);
bool dequantize_row(DType type, const void* src, float* dst, int64_t n);

namespace detail {
// The nearest index is the number of midpoints between neighbouring codebook values below v. Every
// midpoint is a multiple of 1/2 (2 * midpoint: -231, -187, ..., 202), so with n = ceil(2 v),
// "midpoint < v" is exactly "2 * midpoint < n": a table over n in [-256, 256] answers it.
struct IQ4NLIndexTable {
  uint8_t index[513] = {};
  constexpr IQ4NLIndexTable() {
    for (int n = -256; n <= 256; ++n) {
      int count = 0;
      for (int k = 0; k < 15; ++k) count += kIQ4NLValues[k] + kIQ4NLValues[k + 1] < n ? 1 : 0;
      index[n + 256] = static_cast<uint8_t>(count);
    }
  }
};
inline constexpr IQ4NLIndexTable kIQ4NLIndex{};
}  // namespace detail

inline int iq4nl_nearest_index(float v) {
  const float y = 2.0f * v;
  if (!(y > -256.0f)) return 0;  // also NaN
  if (y >= 256.0f) return 15;
  int n = static_cast<int>(y);  // truncation, then up to the ceiling
  if (static_cast<float>(n) < y) ++n;
  return detail::kIQ4NLIndex.index[n + 256];
}

}  // namespace edgellm::ref
