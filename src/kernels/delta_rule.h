// Kernels of Qwen3.5's Gated DeltaNet (linear attention) layers: the causal depthwise convolution, the
// L2 normalisation of q and k, the gated delta rule (token by token, and in the chunk-wise parallel form
// of the Gated DeltaNet paper for prefill) and the gated RMSNorm of its output.
//
// The delta rule for one value head, state S [Dk][Dv] (as transformers keeps it), per token with
// l2-normalised q (times 1/sqrt(Dk)) and k, value v, beta in (0, 1) and log-decay g <= 0:
//   S = exp(g) S;  S += k beta (v - S^T k)^T;  out = S^T q.
// The chunked form computes the same thing with matrix products inside chunks of kDeltaRuleChunk tokens
// (transformers' torch_chunk_gated_delta_rule, without its zero padding).
#pragma once

#include <cstddef>
#include <cstdint>

namespace edgellm {

constexpr int64_t kDeltaRuleChunk = 64;

// out[t][c] = silu(sum_j w[j][c] * window[t + j][c]) for t < n_tokens, j < K: `window` holds K - 1 earlier
// inputs then the n_tokens new ones, [K - 1 + n_tokens][channels]; w is [K][channels]. out may not alias.
void causal_conv_silu(const float* window, int64_t n_tokens, int64_t channels, int64_t K, const float* w, float* out);

// x /= sqrt(sum(x^2) + eps), then x *= scale.
void l2_normalize(float* x, int64_t n, float eps, float scale);

// One value head over n_tokens tokens. Token t's vectors are at q + t * qk_stride (Dk values; q already
// l2-normalised and scaled), k + t * qk_stride, v + t * v_stride (Dv values), its gates at beta[t * g_stride]
// and g[t * g_stride]; out + t * out_stride receives Dv values.
struct DeltaRuleHead {
  const float* q = nullptr;
  const float* k = nullptr;
  int64_t qk_stride = 0;
  const float* v = nullptr;
  int64_t v_stride = 0;
  const float* beta = nullptr;
  const float* g = nullptr;
  int64_t g_stride = 0;
  float* out = nullptr;
  int64_t out_stride = 0;
  float* state = nullptr;  // [Dk][Dv], updated in place
  int64_t n_tokens = 0;
  int64_t dk = 0;
  int64_t dv = 0;
};

// work: delta_rule_work_floats(dk, dv) floats (for either).
size_t delta_rule_work_floats(int64_t dk, int64_t dv);
void delta_rule_recurrent(const DeltaRuleHead& h, float* work);
void delta_rule_chunked(const DeltaRuleHead& h, float* work);

// y = rmsnorm(x) * weight * silu(z) over n values (y may alias x).
void gated_rms_norm(const float* x, const float* z, const float* weight, float* y, int64_t n, float eps);

}  // namespace edgellm
