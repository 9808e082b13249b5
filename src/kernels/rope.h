// Rotary position embedding. Frequencies are computed once per model (and per dynamic-NTK base).
#pragma once

#include <cstdint>
#include <vector>

namespace edgellm {

enum class RopePairing { kNeox, kInterleaved };

// inv_freq[i] = 1 / theta^(2i / n_rot) for i < n_rot/2.
std::vector<float> rope_inv_freq(float theta, int64_t n_rot);

// Rotates the first n_rot dims of each of n_heads vectors (stride head_dim apart) by angle pos * inv_freq.
void rope_apply(float* x, int64_t n_heads, int64_t head_dim, int64_t n_rot, int64_t pos, const float* inv_freq,
                RopePairing pairing);

}  // namespace edgellm
