// edgellm-only 4-bit block types with groups larger than ggml's 32 (format/dtype.h: kE4G64,
// kE4G128, kE4G256), for the w4a16_g64 / w4a16_g128 / w4a16 recipes. Only edgellm reads them; a file
// that uses them lists them under the GGUF key `edgellm.quant.edgellm_only_types`.
//
// Layout of one block of G elements (G = 64, 128, 256), 4 + G/2 bytes, alignment 2:
//   uint16 d     fp16 scale
//   uint16 m     fp16 offset
//   uint8  qs[G/2]  element j < G/2 is the low nibble of qs[j], element j + G/2 its high nibble
//   x[j] = d * q[j] + m,  q in [0, 15]
// The affine form is Q4_1's (ggml-org/llama.cpp: ggml/src/ggml-common.h, block_q4_1); with a larger
// group the offset matters more than in a group of 32 and costs only 2 bytes per G weights:
// 4.5, 4.25 and 4.125 bits per weight for G = 64, 128, 256 (Q4_0: 4.5).
#pragma once

#include <cstdint>

#include "format/dtype.h"
#include "kernels/kernel_table.h"

namespace edgellm {

template <int G>
struct BlockE4 {
  static constexpr int kGroup = G;
  uint16_t d;
  uint16_t m;
  uint8_t qs[G / 2];
};
using BlockE4G64 = BlockE4<64>;
using BlockE4G128 = BlockE4<128>;
using BlockE4G256 = BlockE4<256>;
static_assert(sizeof(BlockE4G64) == 36 && sizeof(BlockE4G128) == 68 && sizeof(BlockE4G256) == 132);
static_assert(alignof(BlockE4G64) == 2);

// Group size of an edgellm-only type (0 for any other type).
int e4_group_size(DType type);

// Packs G levels (0..15) and the fp16 scale/offset bits into a block; the inverse reads level j.
template <int G>
void e4_pack(const uint8_t* levels, uint16_t d_bits, uint16_t m_bits, BlockE4<G>& block) {
  block.d = d_bits;
  block.m = m_bits;
  for (int j = 0; j < G / 2; ++j) block.qs[j] = static_cast<uint8_t>(levels[j] | (levels[j + G / 2] << 4));
}
template <int G>
inline int e4_level(const BlockE4<G>& block, int j) {
  return j < G / 2 ? (block.qs[j] & 0xF) : (block.qs[j - G / 2] >> 4);
}

namespace ref {

// Round-to-nearest quantization (the baseline the scale search in quant/ improves on): m = min(x),
// d = (max(x) - min(x)) / 15, both rounded to fp16 first, q = nearest level for the stored d and m.
// Return false for a type that is not edgellm-only; n must be a multiple of the group (caller checks).
bool quantize_row_e4(DType type, const float* src, void* dst, int64_t n);
bool dequantize_row_e4(DType type, const void* src, float* dst, int64_t n);

// Scalar matmul for the edgellm-only types (kernels/kernel_table.h, MatmulRowsFn semantics): per block,
// y += d * sum(q * x) + m * sum(x), accumulated in f32 in k order. TODO(#6): SIMD variants.
void matmul_rows_e4(const kernels::MatmulArgs& args, int64_t row_begin, int64_t row_end);

}  // namespace ref
}  // namespace edgellm
