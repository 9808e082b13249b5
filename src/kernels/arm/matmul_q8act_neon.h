// The aarch64 int8-activation matmul (KernelTable::matmul_q8act; activations in kernels/act_quant.h's
// format), shared by the two variants that differ only in the int8 dot product of 16 bytes:
//   matmul_neon.cpp      ARMv8.0-A: SMULL/SMLAL into int16 pairs, SADALP into int32 (Cortex-A72/A53)
//   matmul_neon_dot.cpp  +dotprod: SDOT (Cortex-A55/A76: RK3588), picked at run time from HWCAP_ASIMDDP
// The dot policy `Dot` provides `static int32x4_t dot(int32x4_t acc, int8x16_t w, int8x16_t x)`: acc
// plus the 16 products w[i] x[i], spread over the 4 lanes in any way (only per-block lane sums are used).
//
// Include only from those two files. Everything is in an anonymous namespace, so each translation unit
// has its own copy compiled with its own flags and the linker can never hand the A72 path code with SDOT.
//
// Per activation group of 128 (4 blocks of 32) and per (row, token): the 4 blocks' exact integer dot
// products are folded into one int32x4 {dot_0, .., dot_3} (lane b = block b), then
//   acc += float(dots) * (d_w * d_x)  [+ float(sum q_x) * (m_w * d_x) for Q4_1 and the e4 types]
// per lane, reduced at the end. Both variants compute the same integers and the same float sequence,
// so their outputs are bit-identical; against the scalar reference (ref/matmul_q8act_ref.cpp) only the
// order of the f32 summation over blocks differs.
#pragma once

#include <arm_neon.h>

#include <cstdint>
#include <cstring>

#include "kernels/act_quant.h"
#include "kernels/kernel_table.h"
#include "kernels/quant_blocks.h"
#include "kernels/quant_edgellm.h"

namespace edgellm::kernels::arm {
namespace {

// ---- weight blocks as int8 ----
// Each loader gives block `b` (elements 32 b .. 32 b + 31) of a weight row as `lo` (elements 0..15)
// and `hi` (16..31) int8 vectors, with the fp16 bits of its scale d and, for affine types (kAffine),
// offset m: weight = d * q + m. (The tile converts four blocks' scales with one FCVTL.) kLevelOffset
// is an integer the tile subtracts from every q: it uses sum((q - o) q_x) = sum(q q_x) - o sum(q_x)
// with the activations' block sums, once per block and token instead of once per weight byte.

struct WeightsQ8_0 {
  static constexpr bool kAffine = false;
  static constexpr int kLevelOffset = 0;
  static void load(const uint8_t* row, int64_t b, int8x16_t& lo, int8x16_t& hi, uint16_t& d, uint16_t& m) {
    const auto* blk = reinterpret_cast<const BlockQ8_0*>(row) + b;
    lo = vld1q_s8(blk->qs);
    hi = vld1q_s8(blk->qs + 16);
    d = blk->d;
    m = 0;
  }
};

struct WeightsQ4_0 {
  static constexpr bool kAffine = false;
  static constexpr int kLevelOffset = 8;  // q - 8
  static void load(const uint8_t* row, int64_t b, int8x16_t& lo, int8x16_t& hi, uint16_t& d, uint16_t& m) {
    const auto* blk = reinterpret_cast<const BlockQ4_0*>(row) + b;
    const uint8x16_t bytes = vld1q_u8(blk->qs);
    lo = vreinterpretq_s8_u8(vandq_u8(bytes, vdupq_n_u8(0x0F)));
    hi = vreinterpretq_s8_u8(vshrq_n_u8(bytes, 4));
    d = blk->d;
    m = 0;
  }
};

// IQ4_NL: Q4_0's layout; TBL maps each nibble to its signed codebook value, so the weights are int8
// (-127..113) like Q8_0's and need no offset.
struct WeightsIQ4_NL {
  static constexpr bool kAffine = false;
  static constexpr int kLevelOffset = 0;
  static void load(const uint8_t* row, int64_t b, int8x16_t& lo, int8x16_t& hi, uint16_t& d, uint16_t& m) {
    const auto* blk = reinterpret_cast<const BlockIQ4_NL*>(row) + b;
    const int8x16_t codebook = vld1q_s8(kIQ4NLValues);
    const uint8x16_t bytes = vld1q_u8(blk->qs);
    lo = vqtbl1q_s8(codebook, vandq_u8(bytes, vdupq_n_u8(0x0F)));
    hi = vqtbl1q_s8(codebook, vshrq_n_u8(bytes, 4));
    d = blk->d;
    m = 0;
  }
};

struct WeightsQ4_1 {
  static constexpr bool kAffine = true;
  static constexpr int kLevelOffset = 0;
  static void load(const uint8_t* row, int64_t b, int8x16_t& lo, int8x16_t& hi, uint16_t& d, uint16_t& m) {
    const auto* blk = reinterpret_cast<const BlockQ4_1*>(row) + b;
    const uint8x16_t bytes = vld1q_u8(blk->qs);
    lo = vreinterpretq_s8_u8(vandq_u8(bytes, vdupq_n_u8(0x0F)));
    hi = vreinterpretq_s8_u8(vshrq_n_u8(bytes, 4));
    d = blk->d;
    m = blk->m;
  }
};

// edgellm's 4-bit groups of G (kernels/quant_edgellm.h): element e < G/2 is the low nibble of qs[e],
// element e >= G/2 the high nibble of qs[e - G/2]; 32-element block s of a group is in the low nibbles
// for s < G/64 and in the high ones after.
template <int G>
struct WeightsE4 {
  static constexpr bool kAffine = true;
  static constexpr int kLevelOffset = 0;
  static void load(const uint8_t* row, int64_t b, int8x16_t& lo, int8x16_t& hi, uint16_t& d, uint16_t& m) {
    constexpr int kSubBlocks = G / 32;
    const auto* blk = reinterpret_cast<const BlockE4<G>*>(row) + b / kSubBlocks;
    const int sub = static_cast<int>(b % kSubBlocks);
    const bool high_nibbles = sub >= kSubBlocks / 2;
    const uint8_t* qs = blk->qs + 32 * sub - (high_nibbles ? G / 2 : 0);
    const uint8x16_t bytes_lo = vld1q_u8(qs);
    const uint8x16_t bytes_hi = vld1q_u8(qs + 16);
    const uint8x16_t mask = vdupq_n_u8(0x0F);
    lo = vreinterpretq_s8_u8(high_nibbles ? vshrq_n_u8(bytes_lo, 4) : vandq_u8(bytes_lo, mask));
    hi = vreinterpretq_s8_u8(high_nibbles ? vshrq_n_u8(bytes_hi, 4) : vandq_u8(bytes_hi, mask));
    d = blk->d;
    m = blk->m;
  }
};

// ---- tile kernel ----

// Rows [row, row + NR) x tokens [token, token + NT).
template <class Dot, class W, int NR, int NT>
void q8act_tile(const MatmulArgs& a, int64_t row_begin, int64_t row, int64_t token) {
  const int64_t n_blocks = a.k / 32;
  const int64_t n_groups = (n_blocks + 3) / 4;
  const uint8_t* w_rows[NR];
  for (int r = 0; r < NR; ++r) w_rows[r] = a.w + static_cast<size_t>(row + r) * a.w_row_bytes;
  const uint8_t* x_rows[NT];
  for (int t = 0; t < NT; ++t) x_rows[t] = a.xq + static_cast<size_t>(token + t) * a.xq_row_bytes;

  float32x4_t acc[NR][NT];
  for (int r = 0; r < NR; ++r) {
    for (int t = 0; t < NT; ++t) acc[r][t] = vdupq_n_f32(0.0f);
  }

  for (int64_t g = 0; g < n_groups; ++g) {
    const int64_t first_block = 4 * g;
    const int64_t blocks_here = n_blocks - first_block < 4 ? n_blocks - first_block : 4;
    uint16_t w_d[NR][4] = {};  // fp16 bits; 0 (+0.0) for blocks past K
    uint16_t w_m[NR][4] = {};
    int32x4_t pair_dots[NR][NT][2];
    for (int pair = 0; pair < 2; ++pair) {
      int32x4_t dots[NR][NT][2];
      for (int half = 0; half < 2; ++half) {
        const int b = 2 * pair + half;
        for (int r = 0; r < NR; ++r) {
          for (int t = 0; t < NT; ++t) dots[r][t][half] = vdupq_n_s32(0);
        }
        if (b >= blocks_here) continue;  // past K: the activation group is zero-padded, the weights end
        int8x16_t w_lo[NR], w_hi[NR];
        for (int r = 0; r < NR; ++r) W::load(w_rows[r], first_block + b, w_lo[r], w_hi[r], w_d[r][b], w_m[r][b]);
        for (int t = 0; t < NT; ++t) {
          const auto* xg = reinterpret_cast<const int8_t*>(x_rows[t] + static_cast<size_t>(g) * kActGroupBytes);
          const int8x16_t x_lo = vld1q_s8(xg + 16 * b);
          const int8x16_t x_hi = vld1q_s8(xg + 64 + 16 * b);
          for (int r = 0; r < NR; ++r) {
            dots[r][t][half] = Dot::dot(Dot::dot(dots[r][t][half], w_lo[r], x_lo), w_hi[r], x_hi);
          }
        }
      }
      for (int r = 0; r < NR; ++r) {
        for (int t = 0; t < NT; ++t) pair_dots[r][t][pair] = vpaddq_s32(dots[r][t][0], dots[r][t][1]);
      }
    }
    float32x4_t w_scale[NR], w_offset[NR];  // lane b: block b's d (m), exact fp16 -> f32
    for (int r = 0; r < NR; ++r) {
      w_scale[r] = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(w_d[r])));
      if constexpr (W::kAffine) w_offset[r] = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(w_m[r])));
    }
    for (int t = 0; t < NT; ++t) {
      const uint8_t* xg = x_rows[t] + static_cast<size_t>(g) * kActGroupBytes;
      // Lane 4b of d[] and s[0..3] + .. of block b: de-interleave by 4 (kernels/act_quant.h).
      const float32x4_t x_d = vld4q_f32(reinterpret_cast<const float*>(xg + kActScalesOffset)).val[0];
      int32x4_t x_sums = vdupq_n_s32(0);  // lane b: sum of block b's q_x
      if constexpr (W::kAffine || W::kLevelOffset != 0) {
        const int32x4x4_t s = vld4q_s32(reinterpret_cast<const int32_t*>(xg + kActSumsOffset));
        x_sums = vaddq_s32(vaddq_s32(s.val[0], s.val[1]), vaddq_s32(s.val[2], s.val[3]));
      }
      for (int r = 0; r < NR; ++r) {
        int32x4_t block_dots = vpaddq_s32(pair_dots[r][t][0], pair_dots[r][t][1]);
        if constexpr (W::kLevelOffset != 0) block_dots = vmlsq_n_s32(block_dots, x_sums, W::kLevelOffset);
        acc[r][t] = vfmaq_f32(acc[r][t], vcvtq_f32_s32(block_dots), vmulq_f32(w_scale[r], x_d));
        if constexpr (W::kAffine) {
          acc[r][t] = vfmaq_f32(acc[r][t], vcvtq_f32_s32(x_sums), vmulq_f32(w_offset[r], x_d));
        }
      }
    }
  }

  for (int r = 0; r < NR; ++r) {
    for (int t = 0; t < NT; ++t) a.y[(token + t) * a.y_stride + (row + r - row_begin)] = vaddvq_f32(acc[r][t]);
  }
}

// Token tile of any width 1..NT (the remainder of a batch).
template <class Dot, class W, int NR, int NT>
void q8act_tile_tokens(const MatmulArgs& a, int64_t row_begin, int64_t row, int64_t token, int64_t n_tokens) {
  if constexpr (NT > 0) {
    if (n_tokens == NT) {
      q8act_tile<Dot, W, NR, NT>(a, row_begin, row, token);
    } else {
      q8act_tile_tokens<Dot, W, NR, NT - 1>(a, row_begin, row, token, n_tokens);
    }
  }
}

// MatmulRowsFn: decode in tiles of 4 rows x 1 token, prefill in tiles of 2 rows x 4 tokens (each
// weight block is unpacked once per 4 tokens), over row panels that stay in L2.
template <class Dot, class W>
void matmul_rows_q8act(const MatmulArgs& a, int64_t row_begin, int64_t row_end) {
  constexpr int64_t kRowPanel = 64;
  constexpr int kDecodeRows = 4;
  constexpr int kPrefillRows = 2;
  constexpr int kPrefillTokens = 4;
  for (int64_t panel = row_begin; panel < row_end; panel += kRowPanel) {
    const int64_t panel_end = panel + kRowPanel < row_end ? panel + kRowPanel : row_end;
    if (a.n_tokens == 1) {
      int64_t row = panel;
      for (; row + kDecodeRows <= panel_end; row += kDecodeRows) {
        q8act_tile<Dot, W, kDecodeRows, 1>(a, row_begin, row, 0);
      }
      for (; row < panel_end; ++row) q8act_tile<Dot, W, 1, 1>(a, row_begin, row, 0);
      continue;
    }
    for (int64_t token = 0; token < a.n_tokens; token += kPrefillTokens) {
      const int64_t n = a.n_tokens - token < kPrefillTokens ? a.n_tokens - token : kPrefillTokens;
      int64_t row = panel;
      for (; row + kPrefillRows <= panel_end; row += kPrefillRows) {
        q8act_tile_tokens<Dot, W, kPrefillRows, kPrefillTokens>(a, row_begin, row, token, n);
      }
      for (; row < panel_end; ++row) q8act_tile_tokens<Dot, W, 1, kPrefillTokens>(a, row_begin, row, token, n);
    }
  }
}

// Fills the int8-activation column of `table` with this translation unit's Dot.
template <class Dot>
void fill_q8act_column(KernelTable& table) {
  auto set = [&](DType type, MatmulRowsFn fn) { table.matmul_q8act[type_slot(type)] = fn; };
  set(DType::kQ8_0, matmul_rows_q8act<Dot, WeightsQ8_0>);
  set(DType::kQ4_0, matmul_rows_q8act<Dot, WeightsQ4_0>);
  set(DType::kIQ4_NL, matmul_rows_q8act<Dot, WeightsIQ4_NL>);
  set(DType::kQ4_1, matmul_rows_q8act<Dot, WeightsQ4_1>);
  set(DType::kE4G64, matmul_rows_q8act<Dot, WeightsE4<64>>);
  set(DType::kE4G128, matmul_rows_q8act<Dot, WeightsE4<128>>);
  set(DType::kE4G256, matmul_rows_q8act<Dot, WeightsE4<256>>);
}

}  // namespace
}  // namespace edgellm::kernels::arm
