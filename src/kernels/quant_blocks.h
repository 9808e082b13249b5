// ggml's quantized block layouts, byte for byte, so GGUF tensors are used in place.
// Source of every layout: ggml-org/llama.cpp: ggml/src/ggml-common.h (block_q4_0 ... block_q8_K).
// Scales named `d`/`m`/`dmin` are IEEE fp16 bit patterns (util/half.h converts them), except
// BlockQ8_K::d, which is an f32. All structs are packed by construction (no padding), which the
// static_asserts below pin against the byte sizes in format/dtype.cpp.
#pragma once

#include <cstddef>
#include <cstdint>

namespace edgellm {

inline constexpr int kQK4_0 = 32;  // elements per block of the "legacy" 32-element types
inline constexpr int kQK8_0 = 32;
inline constexpr int kQK_K = 256;  // elements per super-block of the K-quants
inline constexpr int kKScaleSize = 12;  // packed 6-bit scales/mins of Q4_K and Q5_K

// x[i] = d * (q[i] - 8). Element j < 16 is the low nibble of qs[j], element j + 16 its high nibble.
struct BlockQ4_0 {
  uint16_t d;       // fp16 scale
  uint8_t qs[16];   // 32 x 4-bit
};

// x[i] = d * kIQ4NLValues[q[i]]: 4-bit indices into a fixed non-uniform codebook (denser near zero,
// where most weights are), same nibble order as Q4_0. Same size as Q4_0 (4.5 bits per weight).
struct BlockIQ4_NL {
  uint16_t d;       // fp16 scale
  uint8_t qs[16];   // 32 x 4-bit codebook indices
};
inline constexpr int8_t kIQ4NLValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
// The codebook + 128 as unsigned bytes (1..241), for kernels that multiply unsigned weight bytes
// (x86 vpdpbusd) and take the offset 128 out through the activation sums.
inline constexpr uint8_t kIQ4NLValuesPlus128[16] = {1, 24, 45, 63, 79, 93, 106, 118,
                                                     129, 141, 153, 166, 181, 197, 217, 241};

// x[i] = d * q[i] + m, same nibble order as Q4_0.
struct BlockQ4_1 {
  uint16_t d;       // fp16 scale
  uint16_t m;       // fp16 minimum
  uint8_t qs[16];
};

// x[i] = d * (q[i] - 16), q 5-bit: low 4 bits as Q4_0, bit 4 of element i is bit i of qh
// (qh read as a little-endian uint32).
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[16];
};

// x[i] = d * q[i] + m, 5-bit q as Q5_0.
struct BlockQ5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[16];
};

// x[i] = d * qs[i].
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[32];
};

// x[i] = d * qs[i]; s = d * sum(qs) (used by ggml's q4_1/q5_1 dot products).
struct BlockQ8_1 {
  uint16_t d;
  uint16_t s;
  int8_t qs[32];
};

// 16 sub-blocks of 16: x = d * (scales[j] & 0xF) * q - dmin * (scales[j] >> 4), q 2-bit.
struct BlockQ2_K {
  uint8_t scales[kQK_K / 16];  // 4-bit scale | 4-bit min per sub-block
  uint8_t qs[kQK_K / 4];       // 2-bit quants, 4 per byte
  uint16_t d;                  // fp16 super-block scale for the scales
  uint16_t dmin;               // fp16 super-block scale for the mins
};

// 16 sub-blocks of 16: x = d * (scale6 - 32) * (q2 - (hmask bit ? 0 : 4)).
struct BlockQ3_K {
  uint8_t hmask[kQK_K / 8];  // high bit of each quant
  uint8_t qs[kQK_K / 4];     // low 2 bits
  uint8_t scales[12];        // 16 x 6-bit scales, packed
  uint16_t d;
};

// 8 sub-blocks of 32: x = d * sc * q - dmin * m, sc and m 6-bit packed in `scales`, q 4-bit.
struct BlockQ4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleSize];
  uint8_t qs[kQK_K / 2];
};

// As Q4_K with a 5th bit per quant in qh.
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleSize];
  uint8_t qh[kQK_K / 8];
  uint8_t qs[kQK_K / 2];
};

// 16 sub-blocks of 16: x = d * scales[j] * (q6 - 32).
struct BlockQ6_K {
  uint8_t ql[kQK_K / 2];     // low 4 bits
  uint8_t qh[kQK_K / 4];     // high 2 bits
  int8_t scales[kQK_K / 16];
  uint16_t d;
};

// Intermediate type of ggml's K-quant dot products (activations): x = d * qs.
struct BlockQ8_K {
  float d;                    // f32 scale (not fp16)
  int8_t qs[kQK_K];
  int16_t bsums[kQK_K / 16];  // sums of qs in groups of 16
};

static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockIQ4_NL) == 18);
static_assert([] {
  for (int i = 0; i < 16; ++i) {
    if (kIQ4NLValuesPlus128[i] != kIQ4NLValues[i] + 128) return false;
  }
  return true;
}());
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ2_K) == 84);
static_assert(sizeof(BlockQ3_K) == 110);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);
static_assert(sizeof(BlockQ8_K) == 292);
// GGUF data is only 32-byte aligned at the tensor start and rows are odd multiples of these sizes,
// so blocks may sit at any address: every member has alignment <= 2 except BlockQ8_K::d.
static_assert(alignof(BlockQ4_0) == 2 && alignof(BlockQ8_0) == 2 && alignof(BlockQ6_K) == 2);

}  // namespace edgellm
