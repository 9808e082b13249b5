// Activations quantized on the fly to int8 for the integer-dot-product matmul kernels
// (kernels/kernel_table.h, KernelTable::matmul_q8act). Internal to kernels/.
//
// One token's k floats become ceil(k / 128) groups of 128 elements (the tail zero-padded), each
// group four blocks of 32 with one f32 scale per block, Q8_0's scheme
// (ggml-org/llama.cpp: ggml/src/ggml-common.h, block_q8_0) with an f32 instead of an fp16 scale:
//   d = max|x| / 127, q = round-half-even(x / d) as x * (1 / d), q in [-127, 127], x ~ d * q.
// Layout of one group, 256 bytes, ordered for 64-byte vectors (a weight block's 4-bit nibbles split
// into elements 0..15 and 16..31, ggml's Q4_0 order, so one vector holds one half of four blocks):
//   int8  lo[64]   block b's elements 0..15 at lo[16 b .. 16 b + 15]
//   int8  hi[64]   block b's elements 16..31 at hi[16 b .. 16 b + 15]
//   f32   d[16]    lane i: the scale of block i / 4
//   int32 s[16]    lane i: lo[4i] + .. + lo[4i + 3] + hi[4i] + .. + hi[4i + 3] (for weight offsets:
//                  sum((q_w - o) q_x) = sum(q_w q_x) - o * sum(q_x), summed per 32-bit lane)
// Lane i of a 512-bit VNNI dot product (4 bytes per 32-bit lane) covers exactly the bytes that s[i]
// sums; a 256-bit kernel uses the first or second half of each array for blocks 0-1 or 2-3.
// Every ISA's quantizer writes exactly these bytes: the products are the same integers everywhere and
// only the order of the float summation differs between ISAs.
#pragma once

#include <cstddef>
#include <cstdint>

namespace edgellm::kernels {

inline constexpr int64_t kActGroup = 128;         // elements per group
inline constexpr size_t kActGroupBytes = 256;     // bytes per group
inline constexpr size_t kActScalesOffset = 128;   // f32 d[16]
inline constexpr size_t kActSumsOffset = 192;     // int32 s[16]

inline int64_t act_groups(int64_t k) { return (k + kActGroup - 1) / kActGroup; }
// Bytes of one token's quantized activations (a multiple of 64).
inline size_t act_row_bytes(int64_t k) { return static_cast<size_t>(act_groups(k)) * kActGroupBytes; }

inline int64_t act_blocks(int64_t k) { return act_groups(k) * 4; }

// sums[b] = the sum of block b's 32 int8 values of one quantized row (from the per-lane sums s[16]),
// for b < act_blocks(k): the weight-offset terms of kernels over weights stored as q + o.
inline void act_block_sums(const uint8_t* row, int64_t k, int32_t* sums) {
  for (int64_t g = 0; g < act_groups(k); ++g) {
    const uint8_t* lanes = row + static_cast<size_t>(g) * kActGroupBytes + kActSumsOffset;
    for (int b = 0; b < 4; ++b) {
      int32_t s = 0;
      for (int lane = 0; lane < 4; ++lane) {
        int32_t v;
        __builtin_memcpy(&v, lanes + 16 * b + 4 * lane, 4);
        s += v;
      }
      sums[4 * g + b] = s;
    }
  }
}

}  // namespace edgellm::kernels

namespace edgellm::ref {

// Scalar reference quantizer (the definition of the format above); out is 64-byte aligned.
void quantize_act(const float* x, int64_t k, uint8_t* out);

// Element j of a quantized row: its int8 value and its block's scale.
inline int act_q(const uint8_t* row, int64_t j) {
  const uint8_t* group = row + static_cast<size_t>(j / kernels::kActGroup) * kernels::kActGroupBytes;
  const int64_t e = j % kernels::kActGroup, block = e / 32, in_block = e % 32;
  const int64_t pos = in_block < 16 ? 16 * block + in_block : 64 + 16 * block + (in_block - 16);
  return static_cast<int8_t>(group[pos]);
}
float act_scale(const uint8_t* row, int64_t j);

}  // namespace edgellm::ref
