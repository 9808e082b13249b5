// Scalar reference (de)quantization. Formulas and bit layouts follow ggml's reference code
// (ggml-org/llama.cpp: ggml/src/ggml-quants.c, quantize_row_*_ref and dequantize_row_*; layouts in
// ggml/src/ggml-common.h). Every float operation below is evaluated in the written order with one
// rounding each, as in ggml's scalar build; that is what makes the results bit-exact.
#include "kernels/ref/quant_ref.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "util/half.h"

// GCC turns contraction off in ISO C++ mode (-std=c++20); clang needs to be told.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

namespace edgellm::ref {
namespace {

// Largest |x[j]| and the signed value that has it (the first one on ties), as ggml's
// symmetric quantizers pick the scale so that this element maps to the most negative level.
void signed_absmax(const float* x, int n, float& amax, float& max) {
  amax = 0.0f;
  max = 0.0f;
  for (int j = 0; j < n; ++j) {
    const float v = x[j];
    if (amax < std::fabs(v)) {
      amax = std::fabs(v);
      max = v;
    }
  }
}

void min_max(const float* x, int n, float& min, float& max) {
  min = FLT_MAX;
  max = -FLT_MAX;
  for (int j = 0; j < n; ++j) {
    if (x[j] < min) min = x[j];
    if (x[j] > max) max = x[j];
  }
}

uint32_t load_u32_le(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));  // x86 and ARM are little-endian, as GGUF is
  return v;
}

// 6-bit scale and min of sub-block j (0..7) of Q4_K/Q5_K: j < 4 in the low 6 bits of bytes j, j+4;
// j >= 4 split between the nibbles of bytes j+4 and the top 2 bits of bytes j-4, j.
void k_scale_min(int j, const uint8_t* q, uint8_t& sc, uint8_t& m) {
  if (j < 4) {
    sc = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    sc = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

template <class Block>
void quantize_blocks(const float* src, void* dst, int64_t n, int block_elems) {
  auto* blocks = static_cast<Block*>(dst);
  for (int64_t block_idx = 0; block_idx < n / block_elems; ++block_idx) {
    quantize_block(src + block_idx * block_elems, blocks[block_idx]);
  }
}

template <class Block>
void dequantize_blocks(const void* src, float* dst, int64_t n, int block_elems) {
  const auto* blocks = static_cast<const Block*>(src);
  for (int64_t block_idx = 0; block_idx < n / block_elems; ++block_idx) {
    dequantize_block(blocks[block_idx], dst + block_idx * block_elems);
  }
}

}  // namespace

// ---- quantization: round-to-nearest as ggml's _ref functions ----

void quantize_block(const float* x, BlockQ4_0& y) {
  float amax, max;
  signed_absmax(x, 32, amax, max);
  const float d = max / -8;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  y.d = f32_to_fp16(d);
  for (int j = 0; j < 16; ++j) {
    // Truncation after +8.5 rounds to nearest; the top level (16) is clamped.
    const int q_lo = std::min(15, static_cast<int>(static_cast<int8_t>(x[j] * id + 8.5f)));
    const int q_hi = std::min(15, static_cast<int>(static_cast<int8_t>(x[j + 16] * id + 8.5f)));
    y.qs[j] = static_cast<uint8_t>(q_lo | (q_hi << 4));
  }
}

void quantize_block(const float* x, BlockIQ4_NL& y) {
  float amax, max;
  signed_absmax(x, 32, amax, max);
  const float d = max / static_cast<float>(kIQ4NLValues[0]);
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  y.d = f32_to_fp16(d);
  for (int j = 0; j < 16; ++j) {
    const int lo = iq4nl_nearest_index(x[j] * id);
    const int hi = iq4nl_nearest_index(x[j + 16] * id);
    y.qs[j] = static_cast<uint8_t>(lo | (hi << 4));
  }
}

void quantize_block(const float* x, BlockQ4_1& y) {
  float min, max;
  min_max(x, 32, min, max);
  const float d = (max - min) / 15;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  y.d = f32_to_fp16(d);
  y.m = f32_to_fp16(min);
  for (int j = 0; j < 16; ++j) {
    const int q_lo = std::min(15, static_cast<int>(static_cast<int8_t>((x[j] - min) * id + 0.5f)));
    const int q_hi = std::min(15, static_cast<int>(static_cast<int8_t>((x[j + 16] - min) * id + 0.5f)));
    y.qs[j] = static_cast<uint8_t>(q_lo | (q_hi << 4));
  }
}

void quantize_block(const float* x, BlockQ5_0& y) {
  float amax, max;
  signed_absmax(x, 32, amax, max);
  const float d = max / -16;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  y.d = f32_to_fp16(d);
  uint32_t qh = 0;
  for (int j = 0; j < 16; ++j) {
    const int q_lo = std::min(31, static_cast<int>(static_cast<int8_t>(x[j] * id + 16.5f)));
    const int q_hi = std::min(31, static_cast<int>(static_cast<int8_t>(x[j + 16] * id + 16.5f)));
    y.qs[j] = static_cast<uint8_t>((q_lo & 0x0F) | ((q_hi & 0x0F) << 4));
    qh |= static_cast<uint32_t>((q_lo >> 4) & 1) << j;
    qh |= static_cast<uint32_t>((q_hi >> 4) & 1) << (j + 16);
  }
  std::memcpy(y.qh, &qh, sizeof(qh));
}

void quantize_block(const float* x, BlockQ5_1& y) {
  float min, max;
  min_max(x, 32, min, max);
  const float d = (max - min) / 31;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  y.d = f32_to_fp16(d);
  y.m = f32_to_fp16(min);
  uint32_t qh = 0;
  for (int j = 0; j < 16; ++j) {
    const int q_lo = std::min(31, static_cast<int>(static_cast<int8_t>((x[j] - min) * id + 0.5f)));
    const int q_hi = std::min(31, static_cast<int>(static_cast<int8_t>((x[j + 16] - min) * id + 0.5f)));
    y.qs[j] = static_cast<uint8_t>((q_lo & 0x0F) | ((q_hi & 0x0F) << 4));
    qh |= static_cast<uint32_t>((q_lo >> 4) & 1) << j;
    qh |= static_cast<uint32_t>((q_hi >> 4) & 1) << (j + 16);
  }
  std::memcpy(y.qh, &qh, sizeof(qh));
}

void quantize_block(const float* x, BlockQ8_0& y) {
  float amax, max;
  signed_absmax(x, 32, amax, max);
  const float d = amax / 127;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  y.d = f32_to_fp16(d);
  for (int j = 0; j < 32; ++j) {
    y.qs[j] = static_cast<int8_t>(std::round(x[j] * id));  // round half away from zero, as roundf
  }
}

// ---- dequantization ----

void dequantize_block(const BlockQ4_0& x, float* y) {
  const float d = fp16_to_f32(x.d);
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>((x.qs[j] & 0x0F) - 8) * d;
    y[j + 16] = static_cast<float>((x.qs[j] >> 4) - 8) * d;
  }
}

void dequantize_block(const BlockIQ4_NL& x, float* y) {
  const float d = fp16_to_f32(x.d);
  for (int j = 0; j < 16; ++j) {
    y[j] = d * static_cast<float>(kIQ4NLValues[x.qs[j] & 0x0F]);
    y[j + 16] = d * static_cast<float>(kIQ4NLValues[x.qs[j] >> 4]);
  }
}

void dequantize_block(const BlockQ4_1& x, float* y) {
  const float d = fp16_to_f32(x.d);
  const float m = fp16_to_f32(x.m);
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>(x.qs[j] & 0x0F) * d + m;
    y[j + 16] = static_cast<float>(x.qs[j] >> 4) * d + m;
  }
}

void dequantize_block(const BlockQ5_0& x, float* y) {
  const float d = fp16_to_f32(x.d);
  const uint32_t qh = load_u32_le(x.qh);
  for (int j = 0; j < 16; ++j) {
    const int high_lo = static_cast<int>((qh >> j) & 1u) << 4;
    const int high_hi = static_cast<int>((qh >> (j + 16)) & 1u) << 4;
    y[j] = static_cast<float>(((x.qs[j] & 0x0F) | high_lo) - 16) * d;
    y[j + 16] = static_cast<float>(((x.qs[j] >> 4) | high_hi) - 16) * d;
  }
}

void dequantize_block(const BlockQ5_1& x, float* y) {
  const float d = fp16_to_f32(x.d);
  const float m = fp16_to_f32(x.m);
  const uint32_t qh = load_u32_le(x.qh);
  for (int j = 0; j < 16; ++j) {
    const int high_lo = static_cast<int>((qh >> j) & 1u) << 4;
    const int high_hi = static_cast<int>((qh >> (j + 16)) & 1u) << 4;
    y[j] = static_cast<float>((x.qs[j] & 0x0F) | high_lo) * d + m;
    y[j + 16] = static_cast<float>((x.qs[j] >> 4) | high_hi) * d + m;
  }
}

void dequantize_block(const BlockQ8_0& x, float* y) {
  const float d = fp16_to_f32(x.d);
  for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(x.qs[j]) * d;
}

void dequantize_block(const BlockQ8_1& x, float* y) {
  const float d = fp16_to_f32(x.d);
  for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(x.qs[j]) * d;
}

// Q2_K: two halves of 128; in each, 4 bit-planes (shift 0, 2, 4, 6) of 32 bytes, each plane two
// sub-blocks of 16 with their own 4-bit scale and min.
void dequantize_block(const BlockQ2_K& x, float* y) {
  const float d = fp16_to_f32(x.d);
  const float dmin = fp16_to_f32(x.dmin);
  int scale_idx = 0;
  for (int half = 0; half < 2; ++half) {
    const uint8_t* q = x.qs + 32 * half;
    for (int plane = 0; plane < 4; ++plane) {
      const int shift = 2 * plane;
      for (int part = 0; part < 2; ++part) {
        const uint8_t sc = x.scales[scale_idx++];
        const float dl = d * static_cast<float>(sc & 0xF);
        const float ml = dmin * static_cast<float>(sc >> 4);
        for (int l = 0; l < 16; ++l) {
          *y++ = dl * static_cast<float>((q[16 * part + l] >> shift) & 3) - ml;
        }
      }
    }
  }
}

// Q3_K: like Q2_K's bit-planes; the 3rd bit comes from hmask (bit `plane + 4*half` of byte l), and a
// cleared bit subtracts 4. The sixteen 6-bit scales: low 4 bits in the nibbles of bytes 0..7
// (scale s < 8: low nibble of byte s; s >= 8: high nibble of byte s-8), high 2 bits in bytes 8..11
// (scale s: bits 2*(s/4) of byte 8 + s%4).
void dequantize_block(const BlockQ3_K& x, float* y) {
  const float d_all = fp16_to_f32(x.d);
  int scales[16];
  for (int s = 0; s < 16; ++s) {
    const int low = s < 8 ? (x.scales[s] & 0xF) : (x.scales[s - 8] >> 4);
    const int high = (x.scales[8 + s % 4] >> (2 * (s / 4))) & 3;
    scales[s] = (low | (high << 4)) - 32;
  }
  int scale_idx = 0;
  for (int half = 0; half < 2; ++half) {
    const uint8_t* q = x.qs + 32 * half;
    for (int plane = 0; plane < 4; ++plane) {
      const int shift = 2 * plane;
      const uint8_t hbit = static_cast<uint8_t>(1u << (plane + 4 * half));
      for (int part = 0; part < 2; ++part) {
        const float dl = d_all * static_cast<float>(scales[scale_idx++]);
        for (int l = 16 * part; l < 16 * part + 16; ++l) {
          const int q3 = ((q[l] >> shift) & 3) - ((x.hmask[l] & hbit) ? 0 : 4);
          *y++ = dl * static_cast<float>(q3);
        }
      }
    }
  }
}

// Q4_K: four chunks of 64 = 32 low nibbles then 32 high nibbles of 32 bytes, sub-blocks 2i, 2i+1.
void dequantize_block(const BlockQ4_K& x, float* y) {
  const float d = fp16_to_f32(x.d);
  const float dmin = fp16_to_f32(x.dmin);
  for (int chunk = 0; chunk < 4; ++chunk) {
    const uint8_t* q = x.qs + 32 * chunk;
    uint8_t sc, m;
    k_scale_min(2 * chunk, x.scales, sc, m);
    const float d1 = d * sc, m1 = dmin * m;
    k_scale_min(2 * chunk + 1, x.scales, sc, m);
    const float d2 = d * sc, m2 = dmin * m;
    for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
  }
}

// Q5_K: Q4_K plus a 5th bit: for chunk c, bit 2c of qh[l] (low nibbles) and bit 2c+1 (high nibbles).
void dequantize_block(const BlockQ5_K& x, float* y) {
  const float d = fp16_to_f32(x.d);
  const float dmin = fp16_to_f32(x.dmin);
  for (int chunk = 0; chunk < 4; ++chunk) {
    const uint8_t* ql = x.qs + 32 * chunk;
    uint8_t sc, m;
    k_scale_min(2 * chunk, x.scales, sc, m);
    const float d1 = d * sc, m1 = dmin * m;
    k_scale_min(2 * chunk + 1, x.scales, sc, m);
    const float d2 = d * sc, m2 = dmin * m;
    const uint8_t bit_lo = static_cast<uint8_t>(1u << (2 * chunk));
    const uint8_t bit_hi = static_cast<uint8_t>(1u << (2 * chunk + 1));
    for (int l = 0; l < 32; ++l) {
      *y++ = d1 * static_cast<float>((ql[l] & 0xF) + ((x.qh[l] & bit_lo) ? 16 : 0)) - m1;
    }
    for (int l = 0; l < 32; ++l) {
      *y++ = d2 * static_cast<float>((ql[l] >> 4) + ((x.qh[l] & bit_hi) ? 16 : 0)) - m2;
    }
  }
}

// Q6_K: two halves of 128; within a half, element l + 32*i (i = 0..3) takes its low nibble from
// ql[l] (i = 0, 2: low/high nibble) or ql[l + 32] (i = 1, 3) and bits 2i..2i+1 of qh[l]; scale
// index 8*half + l/16 + 2*i.
void dequantize_block(const BlockQ6_K& x, float* y) {
  const float d = fp16_to_f32(x.d);
  for (int half = 0; half < 2; ++half) {
    const uint8_t* ql = x.ql + 64 * half;
    const uint8_t* qh = x.qh + 32 * half;
    const int8_t* sc = x.scales + 8 * half;
    float* out = y + 128 * half;
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      out[l] = d * static_cast<float>(sc[is + 0]) * static_cast<float>(q1);
      out[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
      out[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
      out[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
    }
  }
}

void dequantize_block(const BlockQ8_K& x, float* y) {
  for (int j = 0; j < kQK_K; ++j) y[j] = x.d * static_cast<float>(x.qs[j]);
}

// ---- rows ----

bool quantize_row(DType type, const float* src, void* dst, int64_t n) {
  switch (type) {
    case DType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return true;
    case DType::kF16: {
      auto* out = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) out[i] = f32_to_fp16(src[i]);
      return true;
    }
    case DType::kBF16: {
      auto* out = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) out[i] = f32_to_bf16(src[i]);
      return true;
    }
    case DType::kQ4_0: quantize_blocks<BlockQ4_0>(src, dst, n, 32); return true;
    case DType::kIQ4_NL: quantize_blocks<BlockIQ4_NL>(src, dst, n, 32); return true;
    case DType::kQ4_1: quantize_blocks<BlockQ4_1>(src, dst, n, 32); return true;
    case DType::kQ5_0: quantize_blocks<BlockQ5_0>(src, dst, n, 32); return true;
    case DType::kQ5_1: quantize_blocks<BlockQ5_1>(src, dst, n, 32); return true;
    case DType::kQ8_0: quantize_blocks<BlockQ8_0>(src, dst, n, 32); return true;
    default: return false;
  }
}

bool dequantize_row(DType type, const void* src, float* dst, int64_t n) {
  switch (type) {
    case DType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return true;
    case DType::kF16: {
      const auto* in = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_f32(in[i]);
      return true;
    }
    case DType::kBF16: {
      const auto* in = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(in[i]);
      return true;
    }
    case DType::kQ4_0: dequantize_blocks<BlockQ4_0>(src, dst, n, 32); return true;
    case DType::kIQ4_NL: dequantize_blocks<BlockIQ4_NL>(src, dst, n, 32); return true;
    case DType::kQ4_1: dequantize_blocks<BlockQ4_1>(src, dst, n, 32); return true;
    case DType::kQ5_0: dequantize_blocks<BlockQ5_0>(src, dst, n, 32); return true;
    case DType::kQ5_1: dequantize_blocks<BlockQ5_1>(src, dst, n, 32); return true;
    case DType::kQ8_0: dequantize_blocks<BlockQ8_0>(src, dst, n, 32); return true;
    case DType::kQ8_1: dequantize_blocks<BlockQ8_1>(src, dst, n, 32); return true;
    case DType::kQ2_K: dequantize_blocks<BlockQ2_K>(src, dst, n, kQK_K); return true;
    case DType::kQ3_K: dequantize_blocks<BlockQ3_K>(src, dst, n, kQK_K); return true;
    case DType::kQ4_K: dequantize_blocks<BlockQ4_K>(src, dst, n, kQK_K); return true;
    case DType::kQ5_K: dequantize_blocks<BlockQ5_K>(src, dst, n, kQK_K); return true;
    case DType::kQ6_K: dequantize_blocks<BlockQ6_K>(src, dst, n, kQK_K); return true;
    case DType::kQ8_K: dequantize_blocks<BlockQ8_K>(src, dst, n, kQK_K); return true;
    default: return false;
  }
}

}  // namespace edgellm::ref
