// Rotary position embedding. Frequencies are computed once per model (and per dynamic-NTK base).
#pragma once

#include <cstdint>
#include <vector>

namespace edgellm {

enum class RopePairing { kNeox, kInterleaved };

// inv_freq[i] = 1 / theta^(2i / n_rot) for i < n_rot/2.
std::vector<float> rope_inv_freq(float theta, int64_t n_rot);

// The rotation angles at position `pos`, angle i = pos * inv_freq[i]: cos_sin[i] = cos(angle i) and
// cos_sin[n_rot / 2 + i] = sin(angle i). Computed once per token and shared by every layer's q and k.
void rope_cos_sin(int64_t n_rot, int64_t pos, const float* inv_freq, float* cos_sin);
// Rotates the first n_rot dims of each of n_heads vectors (stride head_dim apart) by those angles.
void rope_apply_cos_sin(float* x, int64_t n_heads, int64_t head_dim, int64_t n_rot, const float* cos_sin,
                        RopePairing pairing);

}  // namespace edgellm
