// NEON (ARMv8.0-A Advanced SIMD, every aarch64 core: Cortex-A53/A72 of RK3576, A55/A76 of RK3588)
// matmul kernels. With int8 activations (Q8_0, Q4_0, IQ4_NL, Q4_1, e4_g*): the quantizer of
// kernels/act_quant.h and the tile of arm/matmul_q8act_neon.h with SMULL/SADALP dot products (no
// dot-product extension; matmul_neon_dot.cpp has the SDOT variant). With f32 activations, for every
// weight type: a per-type dequantizer turns one block of a weight row into float32x4 vectors in
// registers, and one tile kernel multiplies it with one token (decode: 4 rows at a time) or four tokens
// (prefill: each weight block is dequantized once per four tokens). The structure is the x86 one
// (x86/matmul_tile.h); the code is separate so each ISA's tiles fit its register file (32 x 128-bit here).
//
// Numerics: the dequantizers compute the reference's weights bit for bit (same f32 products, no FMA:
// this file is compiled with -ffp-contract=off, cmake/isa_flags.cmake); the products are summed with
// vfmaq_f32 in two accumulators per (row, token), for even and odd 4-lane groups. Only the summation
// order differs from the reference, and every (row, token) output comes from the same instruction
// sequence whatever tile it lands in, so results depend neither on the thread split nor on the batch.
#if defined(__aarch64__)

#include <arm_neon.h>

#include <cstdint>
#include <cstring>

#include "kernels/act_quant.h"
#include "kernels/arm/matmul_q8act_neon.h"
#include "kernels/kernel_table.h"
#include "kernels/quant_blocks.h"
#include "kernels/quant_edgellm.h"
#include "kernels/ref/quant_ref.h"

namespace edgellm::kernels {
namespace {

constexpr int kLanes = 4;

float fp16_scalar(uint16_t h) {  // exact, like util/half.h
  return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
}

// 16 signed bytes -> 4 vectors of floats, in order.
void s8_to_f32(int8x16_t q, float32x4_t* out) {
  const int16x8_t lo = vmovl_s8(vget_low_s8(q));
  const int16x8_t hi = vmovl_s8(vget_high_s8(q));
  out[0] = vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo)));
  out[1] = vcvtq_f32_s32(vmovl_s16(vget_high_s16(lo)));
  out[2] = vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi)));
  out[3] = vcvtq_f32_s32(vmovl_s16(vget_high_s16(hi)));
}

// ---- dequantizers ----
// Each has `Block` (the bytes of kElems weights; kElems a multiple of 8) and `load(const Block&,
// float32x4_t* w)` writing kElems / 4 vectors in row order. Plain types (kPlain) also give
// `scalar(row, k)` for the tail when K is not a multiple of kElems.

struct DequantF32 {
  struct Block { float v[32]; };
  static constexpr int kElems = 32;
  static constexpr bool kPlain = true;
  static void load(const Block& b, float32x4_t* w) {
    for (int c = 0; c < 8; ++c) w[c] = vld1q_f32(b.v + 4 * c);
  }
  static float scalar(const uint8_t* row, int64_t k) {
    float v;
    std::memcpy(&v, row + 4 * k, sizeof(v));
    return v;
  }
};

struct DequantF16 {
  struct Block { uint16_t v[32]; };
  static constexpr int kElems = 32;
  static constexpr bool kPlain = true;
  static void load(const Block& b, float32x4_t* w) {
    for (int c = 0; c < 8; ++c) w[c] = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(b.v + 4 * c)));
  }
  static float scalar(const uint8_t* row, int64_t k) {
    uint16_t h;
    std::memcpy(&h, row + 2 * k, sizeof(h));
    return fp16_scalar(h);
  }
};

struct DequantBF16 {
  struct Block { uint16_t v[32]; };
  static constexpr int kElems = 32;
  static constexpr bool kPlain = true;
  static void load(const Block& b, float32x4_t* w) {
    for (int c = 0; c < 8; ++c) w[c] = vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(b.v + 4 * c), 16));
  }
  static float scalar(const uint8_t* row, int64_t k) {
    uint16_t h;
    std::memcpy(&h, row + 2 * k, sizeof(h));
    const uint32_t bits = static_cast<uint32_t>(h) << 16;
    float v;
    std::memcpy(&v, &bits, sizeof(v));
    return v;
  }
};

struct DequantQ8_0 {
  using Block = BlockQ8_0;
  static constexpr int kElems = 32;
  static constexpr bool kPlain = false;
  static void load(const Block& b, float32x4_t* w) {
    const float d = fp16_scalar(b.d);
    s8_to_f32(vld1q_s8(b.qs), w);
    s8_to_f32(vld1q_s8(b.qs + 16), w + 4);
    for (int c = 0; c < 8; ++c) w[c] = vmulq_n_f32(w[c], d);
  }
};

// Bit 4 of the 32 elements of a Q5 block (bit i of qh, little-endian) as 0 or 16 per byte:
// `lo` for elements 0..15, `hi` for 16..31.
void q5_high_bits(const uint8_t* qh_bytes, uint8x16_t& lo, uint8x16_t& hi) {
  static const uint8_t kBit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
  const uint8x16_t bit = vld1q_u8(kBit);
  const uint8x16_t sixteen = vdupq_n_u8(16);
  const uint8x16_t bytes_lo = vcombine_u8(vdup_n_u8(qh_bytes[0]), vdup_n_u8(qh_bytes[1]));
  const uint8x16_t bytes_hi = vcombine_u8(vdup_n_u8(qh_bytes[2]), vdup_n_u8(qh_bytes[3]));
  lo = vandq_u8(vtstq_u8(bytes_lo, bit), sixteen);
  hi = vandq_u8(vtstq_u8(bytes_hi, bit), sixteen);
}

// The 32 unsigned 4- or 5-bit levels of a Q4/Q5 block, as floats in element order.
template <bool kFiveBit, class Block>
void levels_to_f32(const Block& b, float32x4_t* w, int8_t offset) {
  const uint8x16_t bytes = vld1q_u8(b.qs);
  uint8x16_t lo = vandq_u8(bytes, vdupq_n_u8(0x0F));
  uint8x16_t hi = vshrq_n_u8(bytes, 4);
  if constexpr (kFiveBit) {
    uint8x16_t high_lo, high_hi;
    q5_high_bits(b.qh, high_lo, high_hi);
    lo = vorrq_u8(lo, high_lo);
    hi = vorrq_u8(hi, high_hi);
  }
  const int8x16_t off = vdupq_n_s8(offset);
  s8_to_f32(vsubq_s8(vreinterpretq_s8_u8(lo), off), w);
  s8_to_f32(vsubq_s8(vreinterpretq_s8_u8(hi), off), w + 4);
}

// x = d * (q - offset) (Q4_0: 8, Q5_0: 16) or, with kAffine, x = d * q + m (Q4_1, Q5_1): mul then
// add, the same two roundings as the reference.
template <class B, bool kFiveBit, bool kAffine, int8_t kOffset>
struct DequantQ4Q5 {
  using Block = B;
  static constexpr int kElems = 32;
  static constexpr bool kPlain = false;
  static void load(const Block& b, float32x4_t* w) {
    levels_to_f32<kFiveBit>(b, w, kOffset);
    const float d = fp16_scalar(b.d);
    if constexpr (kAffine) {
      const float32x4_t m = vdupq_n_f32(fp16_scalar(b.m));
      for (int c = 0; c < 8; ++c) w[c] = vaddq_f32(vmulq_n_f32(w[c], d), m);
    } else {
      for (int c = 0; c < 8; ++c) w[c] = vmulq_n_f32(w[c], d);
    }
  }
};
using DequantQ4_0 = DequantQ4Q5<BlockQ4_0, false, false, 8>;
using DequantQ4_1 = DequantQ4Q5<BlockQ4_1, false, true, 0>;
using DequantQ5_0 = DequantQ4Q5<BlockQ5_0, true, false, 16>;
using DequantQ5_1 = DequantQ4Q5<BlockQ5_1, true, true, 0>;

// IQ4_NL: x = d * codebook[q], the nibbles in Q4_0's order; TBL looks the 32 nibbles up in the signed
// codebook (exact small integers), then the same single product as the reference.
struct DequantIQ4_NL {
  using Block = BlockIQ4_NL;
  static constexpr int kElems = 32;
  static constexpr bool kPlain = false;
  static void load(const Block& b, float32x4_t* w) {
    const int8x16_t codebook = vld1q_s8(kIQ4NLValues);
    const uint8x16_t bytes = vld1q_u8(b.qs);
    s8_to_f32(vqtbl1q_s8(codebook, vandq_u8(bytes, vdupq_n_u8(0x0F))), w);
    s8_to_f32(vqtbl1q_s8(codebook, vshrq_n_u8(bytes, 4)), w + 4);
    const float d = fp16_scalar(b.d);
    for (int c = 0; c < 8; ++c) w[c] = vmulq_n_f32(w[c], d);
  }
};

// K-quants of llama.cpp's Q4_K_M files (the common download): 256 weights per super-block, written
// as 64 vectors (the tile keeps them on the stack). The float operations are the reference's
// (ref/quant_ref.cpp), so the weights are bit-identical.

// Q4_K: 8 sub-blocks of 32, x = (d * sc) * q - (dmin * m), sc and m 6-bit from the 12 packed bytes:
// sub-block j < 4 in the low 6 bits of bytes j (sc) and j + 4 (m); j >= 4 in the nibbles of byte
// j + 4 with the top 2 bits of bytes j - 4 (sc) and j (m) (ggml-org/llama.cpp: ggml/src/ggml-common.h).
struct DequantQ4_K {
  using Block = BlockQ4_K;
  static constexpr int kElems = kQK_K;
  static constexpr bool kPlain = false;
  static void scale_min(int j, const uint8_t* q, uint8_t& sc, uint8_t& m) {
    if (j < 4) {
      sc = q[j] & 63;
      m = q[j + 4] & 63;
    } else {
      sc = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
      m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
  }
  static void load(const Block& b, float32x4_t* w) {
    const float d = fp16_scalar(b.d);
    const float dmin = fp16_scalar(b.dmin);
    for (int chunk = 0; chunk < 4; ++chunk) {  // 64 weights: low nibbles of 32 bytes, then high
      uint8_t sc, m;
      scale_min(2 * chunk, b.scales, sc, m);
      const float d_lo = d * sc, m_lo = dmin * m;
      scale_min(2 * chunk + 1, b.scales, sc, m);
      const float d_hi = d * sc, m_hi = dmin * m;
      for (int half = 0; half < 2; ++half) {
        const uint8x16_t bytes = vld1q_u8(b.qs + 32 * chunk + 16 * half);
        float32x4_t* lo = w + 16 * chunk + 4 * half;
        float32x4_t* hi = w + 16 * chunk + 8 + 4 * half;
        s8_to_f32(vreinterpretq_s8_u8(vandq_u8(bytes, vdupq_n_u8(0x0F))), lo);
        s8_to_f32(vreinterpretq_s8_u8(vshrq_n_u8(bytes, 4)), hi);
        for (int c = 0; c < 4; ++c) {
          lo[c] = vsubq_f32(vmulq_n_f32(lo[c], d_lo), vdupq_n_f32(m_lo));
          hi[c] = vsubq_f32(vmulq_n_f32(hi[c], d_hi), vdupq_n_f32(m_hi));
        }
      }
    }
  }
};

// Q6_K: 16 sub-blocks of 16, x = (d * sc) * (q - 32), q 6-bit: low 4 bits in ql, high 2 in qh. In each
// half of 128: element l (0..31) of the four 32-element quarters takes ql[l] / ql[l + 32] low or high
// nibble and bits 0-1 / 2-3 / 4-5 / 6-7 of qh[l].
struct DequantQ6_K {
  using Block = BlockQ6_K;
  static constexpr int kElems = kQK_K;
  static constexpr bool kPlain = false;
  static void load(const Block& b, float32x4_t* w) {
    const float d = fp16_scalar(b.d);
    const uint8x16_t mask4 = vdupq_n_u8(0x0F), mask2 = vdupq_n_u8(0x03);
    const int8x16_t offset = vdupq_n_s8(32);
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = b.ql + 64 * half;
      const uint8_t* qh = b.qh + 32 * half;
      const int8_t* sc = b.scales + 8 * half;
      for (int part = 0; part < 2; ++part) {  // l in [16 part, 16 part + 16): one scale per quarter
        const uint8x16_t l0 = vld1q_u8(ql + 16 * part);
        const uint8x16_t l1 = vld1q_u8(ql + 32 + 16 * part);
        const uint8x16_t h = vld1q_u8(qh + 16 * part);
        const uint8x16_t q[4] = {
            vorrq_u8(vandq_u8(l0, mask4), vshlq_n_u8(vandq_u8(h, mask2), 4)),
            vorrq_u8(vandq_u8(l1, mask4), vshlq_n_u8(vandq_u8(vshrq_n_u8(h, 2), mask2), 4)),
            vorrq_u8(vshrq_n_u8(l0, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(h, 4), mask2), 4)),
            vorrq_u8(vshrq_n_u8(l1, 4), vshlq_n_u8(vshrq_n_u8(h, 6), 4)),
        };
        for (int quarter = 0; quarter < 4; ++quarter) {
          float32x4_t* out = w + 32 * half + 8 * quarter + 4 * part;
          s8_to_f32(vsubq_s8(vreinterpretq_s8_u8(q[quarter]), offset), out);
          const float scale = d * static_cast<float>(sc[part + 2 * quarter]);
          for (int c = 0; c < 4; ++c) out[c] = vmulq_n_f32(out[c], scale);
        }
      }
    }
  }
};

// Types without a vector dequantizer yet (Q2_K, Q3_K, Q5_K, Q8_1, Q8_K): the scalar reference dequantizes
// the block onto the stack, then the same tile kernel runs on it.
template <class B, int kBlockElems>
struct DequantViaScratch {
  using Block = B;
  static constexpr int kElems = kBlockElems;
  static constexpr bool kPlain = false;
  static void load(const Block& b, float32x4_t* w) {
    alignas(16) float tmp[kBlockElems];
    ref::dequantize_block(b, tmp);
    for (int c = 0; c < kBlockElems / kLanes; ++c) w[c] = vld1q_f32(tmp + kLanes * c);
  }
};

// ---- tile kernel ----

// Rows [row, row + NR) x tokens [token, token + NT).
template <class D, int NR, int NT>
void matmul_tile(const MatmulArgs& a, int64_t row_begin, int64_t row, int64_t token) {
  using Block = typename D::Block;
  constexpr int kGroups = D::kElems / kLanes;
  static_assert(kGroups % 2 == 0, "blocks hold an even number of vectors");
  const int64_t n_blocks = a.k / D::kElems;

  const Block* w_rows[NR];
  for (int r = 0; r < NR; ++r) {
    w_rows[r] = reinterpret_cast<const Block*>(a.w + static_cast<size_t>(row + r) * a.w_row_bytes);
  }
  const float* x_rows[NT];
  for (int t = 0; t < NT; ++t) x_rows[t] = a.x + (token + t) * a.k;

  float32x4_t acc_even[NR][NT];
  float32x4_t acc_odd[NR][NT];
  for (int r = 0; r < NR; ++r) {
    for (int t = 0; t < NT; ++t) acc_even[r][t] = acc_odd[r][t] = vdupq_n_f32(0.0f);
  }

  for (int64_t block_idx = 0; block_idx < n_blocks; ++block_idx) {
    for (int r = 0; r < NR; ++r) {
      float32x4_t w[kGroups];
      D::load(w_rows[r][block_idx], w);
      for (int t = 0; t < NT; ++t) {
        const float* x = x_rows[t] + block_idx * D::kElems;
        for (int c = 0; c < kGroups; c += 2) {
          acc_even[r][t] = vfmaq_f32(acc_even[r][t], w[c], vld1q_f32(x + c * kLanes));
          acc_odd[r][t] = vfmaq_f32(acc_odd[r][t], w[c + 1], vld1q_f32(x + (c + 1) * kLanes));
        }
      }
    }
  }

  for (int r = 0; r < NR; ++r) {
    for (int t = 0; t < NT; ++t) {
      float sum = vaddvq_f32(vaddq_f32(acc_even[r][t], acc_odd[r][t]));
      if constexpr (D::kPlain) {
        // K not a multiple of the block: the last few elements, in order.
        const auto* w_row = reinterpret_cast<const uint8_t*>(w_rows[r]);
        for (int64_t k = n_blocks * D::kElems; k < a.k; ++k) sum += D::scalar(w_row, k) * x_rows[t][k];
      }
      a.y[(token + t) * a.y_stride + (row + r - row_begin)] = sum;
    }
  }
}

// Token tile of any width 1..NT (the remainder of a batch).
template <class D, int NR, int NT>
void matmul_tile_tokens(const MatmulArgs& a, int64_t row_begin, int64_t row, int64_t token, int64_t n_tokens) {
  if constexpr (NT > 0) {
    if (n_tokens == NT) {
      matmul_tile<D, NR, NT>(a, row_begin, row, token);
    } else {
      matmul_tile_tokens<D, NR, NT - 1>(a, row_begin, row, token, n_tokens);
    }
  }
}

// MatmulRowsFn for weight type D. Rows go in panels that stay in L2 (RK3576: 1 MB shared by the four
// A72s) while the token tiles pass over them.
template <class D>
void matmul_rows(const MatmulArgs& a, int64_t row_begin, int64_t row_end) {
  constexpr int64_t kRowPanel = 64;
  constexpr int kDecodeRows = 4;
  constexpr int kPrefillTokens = 4;
  for (int64_t panel = row_begin; panel < row_end; panel += kRowPanel) {
    const int64_t panel_end = panel + kRowPanel < row_end ? panel + kRowPanel : row_end;
    if (a.n_tokens == 1) {
      int64_t row = panel;
      for (; row + kDecodeRows <= panel_end; row += kDecodeRows) matmul_tile<D, kDecodeRows, 1>(a, row_begin, row, 0);
      for (; row < panel_end; ++row) matmul_tile<D, 1, 1>(a, row_begin, row, 0);
      continue;
    }
    for (int64_t token = 0; token < a.n_tokens; token += kPrefillTokens) {
      const int64_t n = a.n_tokens - token < kPrefillTokens ? a.n_tokens - token : kPrefillTokens;
      for (int64_t row = panel; row < panel_end; ++row) {
        matmul_tile_tokens<D, 1, kPrefillTokens>(a, row_begin, row, token, n);
      }
    }
  }
}

// ---- int8 activations ----

// 16 int8 products summed into int32 lanes through int16 pairs: |w x| <= 128 * 127, so two products
// fit an int16 lane (32512 < 32767).
struct DotWiden {
  static int32x4_t dot(int32x4_t acc, int8x16_t w, int8x16_t x) {
    int16x8_t pairs = vmull_s8(vget_low_s8(w), vget_low_s8(x));
    pairs = vmlal_high_s8(pairs, w, x);
    return vpadalq_s16(acc, pairs);
  }
};

// kernels/act_quant.h's quantizer, byte for byte: x * (1 / d) rounded half to even (FCVTNS), as the
// reference's nearbyint in the default rounding mode.
void quantize_act_neon(const float* x, int64_t k, uint8_t* out) {
  const int64_t n_groups = act_groups(k);
  for (int64_t g = 0; g < n_groups; ++g) {
    uint8_t* group = out + static_cast<size_t>(g) * kActGroupBytes;
    auto* qs = reinterpret_cast<int8_t*>(group);
    float d_lanes[16];
    int32x4_t s_lanes[4];
    for (int b = 0; b < 4; ++b) {
      const int64_t first = g * kActGroup + 32 * b;
      float padded[32] = {};  // past K: zeros
      const float* src = x + first;
      if (first + 32 > k) {
        for (int64_t j = first; j < k; ++j) padded[j - first] = x[j];
        src = padded;
      }
      float32x4_t v[8];
      float32x4_t amax = vdupq_n_f32(0.0f);
      for (int c = 0; c < 8; ++c) {
        v[c] = vld1q_f32(src + 4 * c);
        amax = vmaxq_f32(amax, vabsq_f32(v[c]));
      }
      const float d = vmaxvq_f32(amax) / 127.0f;
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      int16x8_t q16[4];
      for (int c = 0; c < 4; ++c) {
        q16[c] = vcombine_s16(vmovn_s32(vcvtnq_s32_f32(vmulq_n_f32(v[2 * c], id))),
                              vmovn_s32(vcvtnq_s32_f32(vmulq_n_f32(v[2 * c + 1], id))));
      }
      const int8x16_t lo = vcombine_s8(vmovn_s16(q16[0]), vmovn_s16(q16[1]));  // elements 0..15
      const int8x16_t hi = vcombine_s8(vmovn_s16(q16[2]), vmovn_s16(q16[3]));  // elements 16..31
      vst1q_s8(qs + 16 * b, lo);
      vst1q_s8(qs + 64 + 16 * b, hi);
      for (int lane = 4 * b; lane < 4 * b + 4; ++lane) d_lanes[lane] = d;
      // Lane i of s: bytes 4i..4i+3 of lo and of hi.
      s_lanes[b] = vaddq_s32(vpaddlq_s16(vpaddlq_s8(lo)), vpaddlq_s16(vpaddlq_s8(hi)));
    }
    std::memcpy(group + kActScalesOffset, d_lanes, sizeof(d_lanes));
    for (int b = 0; b < 4; ++b) vst1q_s32(reinterpret_cast<int32_t*>(group + kActSumsOffset) + 4 * b, s_lanes[b]);
  }
}

KernelTable make_table() {
  KernelTable table;
  table.isa = Isa::kNeon;
  auto set = [&](DType type, MatmulRowsFn fn) { table.matmul_f32act[type_slot(type)] = fn; };
  set(DType::kF32, matmul_rows<DequantF32>);
  set(DType::kF16, matmul_rows<DequantF16>);
  set(DType::kBF16, matmul_rows<DequantBF16>);
  set(DType::kQ8_0, matmul_rows<DequantQ8_0>);
  set(DType::kQ4_0, matmul_rows<DequantQ4_0>);
  set(DType::kQ4_1, matmul_rows<DequantQ4_1>);
  set(DType::kQ5_0, matmul_rows<DequantQ5_0>);
  set(DType::kQ5_1, matmul_rows<DequantQ5_1>);
  set(DType::kQ8_1, matmul_rows<DequantViaScratch<BlockQ8_1, 32>>);
  set(DType::kQ2_K, matmul_rows<DequantViaScratch<BlockQ2_K, kQK_K>>);
  set(DType::kQ3_K, matmul_rows<DequantViaScratch<BlockQ3_K, kQK_K>>);
  set(DType::kQ4_K, matmul_rows<DequantQ4_K>);
  set(DType::kQ5_K, matmul_rows<DequantViaScratch<BlockQ5_K, kQK_K>>);
  set(DType::kQ6_K, matmul_rows<DequantQ6_K>);
  set(DType::kQ8_K, matmul_rows<DequantViaScratch<BlockQ8_K, kQK_K>>);
  set(DType::kIQ4_NL, matmul_rows<DequantIQ4_NL>);
  // TODO(#6): NEON f32-activation kernels for the e4 types; they run with int8 activations by default.
  for (DType type : {DType::kE4G64, DType::kE4G128, DType::kE4G256}) set(type, ref::matmul_rows_e4);
  arm::fill_q8act_column<DotWiden>(table);
  table.quantize_act = quantize_act_neon;
  table.silu_mul = silu_mul_neon;
  return table;
}

}  // namespace

const KernelTable& neon_kernels() {
  static const KernelTable table = make_table();
  return table;
}

}  // namespace edgellm::kernels

#endif  // __aarch64__
