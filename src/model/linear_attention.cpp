// Qwen3.5's Gated DeltaNet layer (Transformer::linear_attention), as transformers' Qwen3_5GatedDeltaNet:
//   mixed = in_proj_qkv(x); z = in_proj_z(x); b = in_proj_b(x); a = in_proj_a(x)
//   q | k | v = silu(causal depthwise conv(mixed))      (the state keeps the last K - 1 inputs)
//   q, k l2-normalised (q times 1/sqrt(Dk)); beta = sigmoid(b); g = -exp(A_log) * softplus(a + dt_bias)
//   o = gated delta rule per value head (chunked for a prefill, token by token for one new token)
//   out_proj(rmsnorm(o) * norm.weight * silu(z))
// Value head h reads key head ModelConfig::ssm_key_head_of(h).
#include <algorithm>
#include <cmath>

#include "kernels/delta_rule.h"
#include "model/transformer.h"

namespace edgellm {
namespace {

// torch.nn.functional.softplus (beta 1, threshold 20).
inline float softplus(float x) { return x > 20.0f ? x : std::log1p(std::exp(x)); }

}  // namespace

void Transformer::linear_attention(int64_t il, const BatchSequence* seqs, int n_seqs, ForwardScratch& s,
                                   ThreadPool& pool) const {
  const ModelConfig& c = config();
  const LayerWeights& L = model_.weights().layers[static_cast<size_t>(il)];
  const int64_t slot = layer_slot_[static_cast<size_t>(il)];
  const int64_t CD = c.ssm_conv_dim(), KD = c.ssm_key_dim(), VD = c.ssm_value_dim();
  const int64_t Hk = c.ssm_n_k_heads, Hv = c.ssm_n_v_heads, Dk = c.ssm_k_head_dim, Dv = c.ssm_v_head_dim;
  const int64_t K = c.ssm_conv_kernel;
  const int64_t n = s.step.back().first_token + seqs[n_seqs - 1].n_tokens;

  const Projection in[4] = {{&L.ssm_in_qkv, TensorRole::kAttnQkv, s.lin_mixed.data(), CD, nullptr},
                            {&L.ssm_in_z, TensorRole::kSsmInZ, s.lin_z.data(), VD, nullptr},
                            {&L.ssm_beta, TensorRole::kSsmBeta, s.lin_beta.data(), Hv, nullptr},
                            {&L.ssm_alpha, TensorRole::kSsmAlpha, s.lin_g.data(), Hv, nullptr}};
  project_same_input(in, 4, il, s.xn.data(), n, s, pool);

  // The convolution over each sequence's previous K - 1 inputs and its new ones; the last K - 1 are kept.
  const float* conv_w = static_cast<const float*>(L.ssm_conv.data);
  const size_t state_floats = static_cast<size_t>((K - 1) * CD);
  for (int i = 0; i < n_seqs; ++i) {
    const BatchSequence& q = seqs[i];
    const int64_t first = s.step[static_cast<size_t>(i)].first_token;
    float* conv_state = q.state->conv(slot);
    float* window = s.lin_window.data();
    std::copy(conv_state, conv_state + state_floats, window);
    const float* mixed = s.lin_mixed.data() + first * CD;
    std::copy(mixed, mixed + q.n_tokens * CD, window + state_floats);
    causal_conv_silu(window, q.n_tokens, CD, K, conv_w, s.lin_conv.data() + first * CD);
    std::copy(window + q.n_tokens * CD, window + q.n_tokens * CD + state_floats, conv_state);
  }

  // q, k normalised per head; beta and the log-decay per value head.
  const float q_scale = 1.0f / std::sqrt(static_cast<float>(Dk));
  const auto* dt_bias = static_cast<const float*>(L.ssm_dt_bias.data);
  const auto* a_coef = static_cast<const float*>(L.ssm_a.data);
  for (int64_t t = 0; t < n; ++t) {
    float* row = &s.lin_conv[static_cast<size_t>(t * CD)];
    for (int64_t h = 0; h < Hk; ++h) {
      l2_normalize(row + h * Dk, Dk, 1e-6f, q_scale);
      l2_normalize(row + KD + h * Dk, Dk, 1e-6f, 1.0f);
    }
    float* beta = &s.lin_beta[static_cast<size_t>(t * Hv)];
    float* g = &s.lin_g[static_cast<size_t>(t * Hv)];
    for (int64_t h = 0; h < Hv; ++h) {
      beta[h] = 1.0f / (1.0f + std::exp(-beta[h]));
      g[h] = a_coef[h] * softplus(g[h] + dt_bias[h]);
    }
  }

  // The delta rule: one task per (sequence, value head).
  pool.parallel_for(int64_t{n_seqs} * Hv, [&](int64_t begin, int64_t end, int thread_idx) {
    float* work = &s.delta_work[static_cast<size_t>(thread_idx) * s.delta_work_floats];
    for (int64_t task = begin; task < end; ++task) {
      const int64_t i = task / Hv, h = task % Hv;
      const BatchSequence& q = seqs[i];
      const int64_t first = s.step[static_cast<size_t>(i)].first_token;
      const int64_t kh = c.ssm_key_head_of(h);
      DeltaRuleHead d;
      d.q = &s.lin_conv[static_cast<size_t>(first * CD + kh * Dk)];
      d.k = d.q + KD;
      d.qk_stride = CD;
      d.v = &s.lin_conv[static_cast<size_t>(first * CD + 2 * KD + h * Dv)];
      d.v_stride = CD;
      d.beta = &s.lin_beta[static_cast<size_t>(first * Hv + h)];
      d.g = &s.lin_g[static_cast<size_t>(first * Hv + h)];
      d.g_stride = Hv;
      d.out = &s.lin_out[static_cast<size_t>(first * VD + h * Dv)];
      d.out_stride = VD;
      d.state = q.state->ssm(slot) + h * Dv * Dk;
      d.n_tokens = q.n_tokens;
      d.dk = Dk;
      d.dv = Dv;
      if (q.n_tokens == 1) {
        delta_rule_recurrent(d, work);
      } else {
        delta_rule_chunked(d, work);
      }
    }
  }, 1);

  const auto* norm_w = static_cast<const float*>(L.ssm_norm.data);
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t h = 0; h < Hv; ++h) {
      float* o = &s.lin_out[static_cast<size_t>(t * VD + h * Dv)];
      gated_rms_norm(o, &s.lin_z[static_cast<size_t>(t * VD + h * Dv)], norm_w, o, Dv, c.rms_eps);
    }
  }
  project(L.ssm_out, TensorRole::kSsmOut, il, s.lin_out.data(), n, s.proj.data(), s, pool, s.token_loras);
}

}  // namespace edgellm
