// SwiGLU's out = silu(gate) * up = gate / (1 + e^-gate) * up, 4 lanes at a time.
#if defined(__aarch64__)
#include <arm_neon.h>

#include <cmath>

#include "kernels/arm/exp_neon.h"
#include "kernels/kernel_table.h"

namespace edgellm::kernels {

void silu_mul_neon(const float* gate, const float* up, float* out, int64_t n) {
  const float32x4_t one = vdupq_n_f32(1.0f);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float32x4_t g = vld1q_f32(gate + i);
    const float32x4_t e = arm::exp_neon(vnegq_f32(g));
    vst1q_f32(out + i, vmulq_f32(vdivq_f32(g, vaddq_f32(one, e)), vld1q_f32(up + i)));
  }
  for (; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

}  // namespace edgellm::kernels

#endif  // __aarch64__
