// e^x on 4 floats with NEON; the same method and range as kernels/x86/exp_avx2.h (2^n built in the
// exponent bits, +inf above 88.3). Explicit fused multiply-adds (the ARM kernels
// are compiled with -ffp-contract=off).
#pragma once

#include <arm_neon.h>

#include <limits>

namespace edgellm::kernels::arm {

inline float32x4_t exp_neon(float32x4_t x) {
  const uint32x4_t overflow = vcgtq_f32(x, vdupq_n_f32(88.3f));
  x = vmaxq_f32(vminq_f32(x, vdupq_n_f32(88.3f)), vdupq_n_f32(-87.3f));
  const float32x4_t n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(1.44269504088896341f)));
  float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693359375f));
  r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
  float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
  p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
  p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
  p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
  p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
  p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), p, vmulq_f32(r, r));
  const int32x4_t two_n = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
  return vbslq_f32(overflow, vdupq_n_f32(std::numeric_limits<float>::infinity()),
                   vmulq_f32(p, vreinterpretq_f32_s32(two_n)));
}

}  // namespace edgellm::kernels::arm
