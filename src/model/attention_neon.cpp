// NEON attention variant (every aarch64 core: Cortex-A72/A53 of RK3576, A76/A55 of RK3588): f16 and q8_0
// rows converted 4 lanes at a time, f32 dot/axpy with explicit fused multiply-adds, e^x by polynomial;
// decode straight from the cached rows (attention_tile.h).
#if defined(__aarch64__)
#include <arm_neon.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "kernels/arm/exp_neon.h"
#include "kernels/quant_blocks.h"
#include "model/attention_tile.h"
#include "util/half.h"

namespace edgellm {
namespace {

// 8 values of a cached row from value i on (i a multiple of 8), as f32: lanes 0-3 in lo, 4-7 in hi.
struct F32x8 {
  float32x4_t lo, hi;
};

template <DType kType>
inline F32x8 load8(const uint8_t* row, int64_t i) {
  if constexpr (kType == DType::kF32) {
    const float* f = reinterpret_cast<const float*>(row) + i;
    return {vld1q_f32(f), vld1q_f32(f + 4)};
  } else if constexpr (kType == DType::kF16) {
    const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(reinterpret_cast<const uint16_t*>(row) + i));
    return {vcvt_f32_f16(vget_low_f16(h)), vcvt_high_f32_f16(h)};
  } else {  // kQ8_0
    const BlockQ8_0& block = reinterpret_cast<const BlockQ8_0*>(row)[i / 32];
    const float d = vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(block.d))), 0);
    const int16x8_t q16 = vmovl_s8(vld1_s8(block.qs + i % 32));
    return {vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(q16))), d),
            vmulq_n_f32(vcvtq_f32_s32(vmovl_high_s16(q16)), d)};
  }
}

struct NeonOps {
  // Decode straight from the rows (attention_tile.h): vectors of kRowVector values, up to kRowVectors of
  // them per pass over the value rows.
  static constexpr int64_t kRowVector = 8;
  static constexpr int kRowVectors = 2;
  // Scores of GN heads (q, d apart) against keys rows[0 .. n), four keys at a time (4 GN accumulators), each
  // key's values converted once for all heads; asks for pf's rows as it goes.
  template <DType kType, int GN>
  static void scores_rows_heads(const float* q, int64_t d, const uint8_t* const* rows, int64_t n, float* s,
                                const attention_detail::RowPrefetch& pf) {
    for (int64_t j = 0; j < n; j += 4) {
      // This step's share of the rows ahead (written out here: as a shared inline function the same loop
      // ran 2.5x slower in kernels_bench attention_decode, measured twice).
      {
        const int64_t per_step = n > 0 ? (pf.n + n - 1) / n * 4 : 0;
        for (int64_t r = j / 4 * per_step; r < std::min(j / 4 * per_step + per_step, pf.n); ++r) {
          for (size_t off = 0; off < pf.bytes; off += 64) {
            __builtin_prefetch(pf.k[r] + off);
            __builtin_prefetch(pf.v[r] + off);
          }
        }
      }
      // A tail of fewer than 4 keys repeats the last one; its extra sums are not stored.
      const uint8_t* r[4] = {rows[j], rows[std::min(j + 1, n - 1)], rows[std::min(j + 2, n - 1)],
                             rows[std::min(j + 3, n - 1)]};
      float32x4_t acc[GN][4];
      for (int g = 0; g < GN; ++g) {
        for (int c = 0; c < 4; ++c) acc[g][c] = vdupq_n_f32(0.0f);
      }
      for (int64_t i = 0; i < d; i += 8) {
        F32x8 k[4];
        for (int c = 0; c < 4; ++c) k[c] = load8<kType>(r[c], i);
        for (int g = 0; g < GN; ++g) {
          const float32x4_t q_lo = vld1q_f32(q + g * d + i), q_hi = vld1q_f32(q + g * d + i + 4);
          for (int c = 0; c < 4; ++c) acc[g][c] = vfmaq_f32(vfmaq_f32(acc[g][c], q_lo, k[c].lo), q_hi, k[c].hi);
        }
      }
      for (int g = 0; g < GN; ++g) {
        for (int64_t c = 0; c < std::min<int64_t>(4, n - j); ++c) s[g * kAttnKeyTile + j + c] = vaddvq_f32(acc[g][c]);
      }
    }
  }

  // out[g * d + i] += sum_j p[g * kAttnKeyTile + j] rows[j][i] for GN heads, NC x 8 dims at a time.
  template <DType kType, int GN, int NC>
  static void weighted_sum_rows_heads(const float* p, const uint8_t* const* rows, int64_t n, int64_t i0, int64_t d,
                                      float* out) {
    float32x4_t acc[GN][2 * NC];
    for (int g = 0; g < GN; ++g) {
      for (int c = 0; c < 2 * NC; ++c) acc[g][c] = vld1q_f32(out + g * d + i0 + 4 * c);
    }
    for (int64_t j = 0; j < n; ++j) {
      F32x8 v[NC];
      for (int c = 0; c < NC; ++c) v[c] = load8<kType>(rows[j], i0 + 8 * c);
      for (int g = 0; g < GN; ++g) {
        const float pj = p[g * kAttnKeyTile + j];
        for (int c = 0; c < NC; ++c) {
          acc[g][2 * c] = vfmaq_n_f32(acc[g][2 * c], v[c].lo, pj);
          acc[g][2 * c + 1] = vfmaq_n_f32(acc[g][2 * c + 1], v[c].hi, pj);
        }
      }
    }
    for (int g = 0; g < GN; ++g) {
      for (int c = 0; c < 2 * NC; ++c) vst1q_f32(out + g * d + i0 + 4 * c, acc[g][c]);
    }
  }

  static void load_row(DType type, const uint8_t* src, int64_t n, float* dst) {
    if (type == DType::kF32) {
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
    } else if (type == DType::kF16) {
      const auto* h = reinterpret_cast<const uint16_t*>(src);
      int64_t i = 0;
      for (; i + 4 <= n; i += 4) vst1q_f32(dst + i, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(h + i))));
      for (; i < n; ++i) dst[i] = fp16_to_f32(h[i]);
    } else {  // kQ8_0: n is a multiple of 32
      const auto* blocks = reinterpret_cast<const BlockQ8_0*>(src);
      for (int64_t ib = 0; ib < n / 32; ++ib) {
        const float32x4_t d = vdupq_n_f32(fp16_to_f32(blocks[ib].d));
        for (int i = 0; i < 32; i += 8) {
          const int16x8_t q16 = vmovl_s8(vld1_s8(blocks[ib].qs + i));
          float* out = dst + ib * 32 + i;
          vst1q_f32(out, vmulq_f32(d, vcvtq_f32_s32(vmovl_s16(vget_low_s16(q16)))));
          vst1q_f32(out + 4, vmulq_f32(d, vcvtq_f32_s32(vmovl_s16(vget_high_s16(q16)))));
        }
      }
    }
  }
  static float dot(const float* a, const float* b, int64_t n) {
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = acc0;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      acc0 = vfmaq_f32(acc0, vld1q_f32(a + i), vld1q_f32(b + i));
      acc1 = vfmaq_f32(acc1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
    }
    for (; i + 4 <= n; i += 4) acc0 = vfmaq_f32(acc0, vld1q_f32(a + i), vld1q_f32(b + i));
    float s = vaddvq_f32(vaddq_f32(acc0, acc1));
    for (; i < n; ++i) s += a[i] * b[i];
    return s;
  }
  static void scale(float* y, float a, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vmulq_n_f32(vld1q_f32(y + i), a));
    for (; i < n; ++i) y[i] *= a;
  }
  static void axpy(float a, const float* x, float* y, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), a));
    for (; i < n; ++i) y[i] += a * x[i];
  }
  // 16 output dims in 4 accumulators at a time, over all n value rows.
  static void weighted_sum(const float* p, const float* v, int64_t n, int64_t d, float* out) {
    int64_t i = 0;
    for (; i + 16 <= d; i += 16) {
      float32x4_t a0 = vld1q_f32(out + i), a1 = vld1q_f32(out + i + 4);
      float32x4_t a2 = vld1q_f32(out + i + 8), a3 = vld1q_f32(out + i + 12);
      for (int64_t j = 0; j < n; ++j) {
        const float* row = v + j * d + i;
        a0 = vfmaq_n_f32(a0, vld1q_f32(row), p[j]);
        a1 = vfmaq_n_f32(a1, vld1q_f32(row + 4), p[j]);
        a2 = vfmaq_n_f32(a2, vld1q_f32(row + 8), p[j]);
        a3 = vfmaq_n_f32(a3, vld1q_f32(row + 12), p[j]);
      }
      vst1q_f32(out + i, a0);
      vst1q_f32(out + i + 4, a1);
      vst1q_f32(out + i + 8, a2);
      vst1q_f32(out + i + 12, a3);
    }
    for (; i + 4 <= d; i += 4) {
      float32x4_t a = vld1q_f32(out + i);
      for (int64_t j = 0; j < n; ++j) a = vfmaq_n_f32(a, vld1q_f32(v + j * d + i), p[j]);
      vst1q_f32(out + i, a);
    }
    for (; i < d; ++i) {
      float a = out[i];
      for (int64_t j = 0; j < n; ++j) a += p[j] * v[j * d + i];
      out[i] = a;
    }
  }
  // 64 keys in 16 accumulators, one broadcast of q per dimension.
  static void scores_t(const float* q, const float* kt, int64_t d, float* s) {
    static_assert(kAttnKeyTile == 64);
    float32x4_t acc[16];
    for (auto& a : acc) a = vdupq_n_f32(0.0f);
    for (int64_t i = 0; i < d; ++i) {
      const float* row = kt + i * kAttnKeyTile;
      for (int c = 0; c < 16; ++c) acc[c] = vfmaq_n_f32(acc[c], vld1q_f32(row + 4 * c), q[i]);
    }
    for (int c = 0; c < 16; ++c) vst1q_f32(s + 4 * c, acc[c]);
  }
  static void transpose(const float* rows, int64_t m, int64_t d, float* kt) {
    attention_detail::transpose_rows(rows, m, d, kt);
  }
  static float exp_sum(float* s, int64_t n, float m) {
    const float32x4_t vm = vdupq_n_f32(m);
    float32x4_t acc = vdupq_n_f32(0.0f);
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
      const float32x4_t e = kernels::arm::exp_neon(vsubq_f32(vld1q_f32(s + j), vm));
      vst1q_f32(s + j, e);
      acc = vaddq_f32(acc, e);
    }
    float sum = vaddvq_f32(acc);
    for (; j < n; ++j) sum += (s[j] = std::exp(s[j] - m));
    return sum;
  }
};

}  // namespace

void attention_block_neon(const AttentionBlock& block, float* work) {
  attention_detail::attention_block_impl<NeonOps>(block, work);
}

}  // namespace edgellm

#endif  // __aarch64__
