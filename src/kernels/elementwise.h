// Row-wise elementwise kernels of the forward pass (reference scalar code; the compiler vectorises).
#pragma once

#include <cstdint>

namespace edgellm {

// y = x / sqrt(mean(x^2) + eps) * weight, over n elements. x and y may alias.
void rms_norm(const float* x, const float* weight, float* y, int64_t n, float eps);

// out[i] = silu(gate[i]) * up[i]; out may alias gate or up.
void silu_mul(const float* gate, const float* up, float* out, int64_t n);

// y[i] += x[i]
void add_inplace(float* y, const float* x, int64_t n);

// In-place numerically stable softmax over n values.
void softmax_inplace(float* x, int64_t n);

float dot_f32(const float* a, const float* b, int64_t n);

}  // namespace edgellm
