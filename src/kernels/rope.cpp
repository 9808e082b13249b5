#include "kernels/rope.h"

#include <cmath>

namespace edgellm {

std::vector<float> rope_inv_freq(float theta, int64_t n_rot) {
  // transformers computes base ** (arange(0, dim, 2) / dim) in f32; do the same for identical angles.
  std::vector<float> inv(static_cast<size_t>(n_rot / 2));
  for (int64_t i = 0; i < n_rot / 2; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(n_rot);
    inv[static_cast<size_t>(i)] = 1.0f / std::pow(theta, exponent);
  }
  return inv;
}

void rope_cos_sin(int64_t n_rot, int64_t pos, const float* inv_freq, float* cos_sin) {
  const int64_t half = n_rot / 2;
  for (int64_t i = 0; i < half; ++i) {
    const float angle = static_cast<float>(pos) * inv_freq[i];
    cos_sin[i] = std::cos(angle);
    cos_sin[half + i] = std::sin(angle);
  }
}

void rope_apply_cos_sin(float* x, int64_t n_heads, int64_t head_dim, int64_t n_rot, const float* cos_sin,
                        RopePairing pairing) {
  const int64_t half = n_rot / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* v = x + h * head_dim;
    for (int64_t i = 0; i < half; ++i) {
      const float c = cos_sin[i], s = cos_sin[half + i];
      const int64_t a = pairing == RopePairing::kNeox ? i : 2 * i;
      const int64_t b = pairing == RopePairing::kNeox ? i + half : 2 * i + 1;
      const float x0 = v[a];
      const float x1 = v[b];
      v[a] = x0 * c - x1 * s;
      v[b] = x0 * s + x1 * c;
    }
  }
}

}  // namespace edgellm
