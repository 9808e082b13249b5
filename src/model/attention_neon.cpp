// NEON attention variant (every aarch64 core: Cortex-A72/A53 of RK3576, A76/A55 of RK3588): f16 and q8_0
// rows converted 4 lanes at a time, f32 dot/axpy with explicit fused multiply-adds, e^x by polynomial.
#if defined(__aarch64__)
#include <arm_neon.h>

#include <cmath>
#include <cstring>

#include "kernels/arm/exp_neon.h"
#include "kernels/quant_blocks.h"
#include "model/attention_tile.h"
#include "util/half.h"

namespace edgellm {
namespace {

struct NeonOps {
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
