#include "kernels/delta_rule.h"

#include <algorithm>
#include <cmath>

#include "kernels/elementwise.h"

namespace edgellm {
namespace {

inline float silu(float x) { return x / (1.0f + std::exp(-x)); }

// y += a * x
inline void axpy(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

}  // namespace

void causal_conv_silu(const float* window, int64_t n_tokens, int64_t channels, int64_t K, const float* w, float* out) {
  for (int64_t t = 0; t < n_tokens; ++t) {
    float* o = out + t * channels;
    const float* x0 = window + t * channels;
    for (int64_t c = 0; c < channels; ++c) o[c] = w[c] * x0[c];
    for (int64_t j = 1; j < K; ++j) {
      const float* x = window + (t + j) * channels;
      const float* wj = w + j * channels;
      for (int64_t c = 0; c < channels; ++c) o[c] += wj[c] * x[c];
    }
    for (int64_t c = 0; c < channels; ++c) o[c] = silu(o[c]);
  }
}

void l2_normalize(float* x, int64_t n, float eps, float scale) {
  const float s = scale / std::sqrt(dot_f32(x, x, n) + eps);
  for (int64_t i = 0; i < n; ++i) x[i] *= s;
}

void delta_rule_recurrent(const DeltaRuleHead& h) {
  const int64_t dk = h.dk, dv = h.dv;
  for (int64_t t = 0; t < h.n_tokens; ++t) {
    const float* q = h.q + t * h.qk_stride;
    const float* k = h.k + t * h.qk_stride;
    const float* v = h.v + t * h.v_stride;
    const float beta = h.beta[t * h.g_stride];
    const float decay = std::exp(h.g[t * h.g_stride]);
    float* out = h.out + t * h.out_stride;
    for (int64_t i = 0; i < dv; ++i) {
      float* s = h.state + i * dk;
      for (int64_t j = 0; j < dk; ++j) s[j] *= decay;
      const float delta = beta * (v[i] - dot_f32(s, k, dk));
      axpy(delta, k, s, dk);
      out[i] = dot_f32(s, q, dk);
    }
  }
}

size_t delta_rule_chunked_work_floats(int64_t dk, int64_t dv) {
  const int64_t C = kDeltaRuleChunk;
  return static_cast<size_t>(C + C * C + C * dv + C * dk);
}

void delta_rule_chunked(const DeltaRuleHead& h, float* work) {
  const int64_t C = kDeltaRuleChunk, dk = h.dk, dv = h.dv;
  float* cum = work;          // [C] cumulative log-decay within the chunk
  float* kk = cum + C;        // [C][C] dot(k_i, k_j) for j < i, then dot(q_i, k_j) for j <= i
  float* u = kk + C * C;      // [C][dv] U, then the corrected values v_new
  float* wk = u + C * dv;     // [C][dk] W
  float* S = h.state;
  for (int64_t c0 = 0; c0 < h.n_tokens; c0 += C) {
    const int64_t L = std::min(C, h.n_tokens - c0);
    auto q = [&](int64_t i) { return h.q + (c0 + i) * h.qk_stride; };
    auto k = [&](int64_t i) { return h.k + (c0 + i) * h.qk_stride; };
    auto beta = [&](int64_t i) { return h.beta[(c0 + i) * h.g_stride]; };
    float acc = 0.0f;
    for (int64_t i = 0; i < L; ++i) {
      acc += h.g[(c0 + i) * h.g_stride];
      cum[i] = acc;
    }
    // (I + A) U = beta v and (I + A) W = beta exp(cum) k, A[i][j] = beta_i (k_i . k_j) exp(cum_i - cum_j) for
    // j < i: forward substitution, row by row.
    for (int64_t i = 0; i < L; ++i) {
      float* ui = u + i * dv;
      float* wi = wk + i * dk;
      const float* vi = h.v + (c0 + i) * h.v_stride;
      const float b = beta(i), bd = b * std::exp(cum[i]);
      for (int64_t x = 0; x < dv; ++x) ui[x] = b * vi[x];
      for (int64_t x = 0; x < dk; ++x) wi[x] = bd * k(i)[x];
      for (int64_t j = 0; j < i; ++j) {
        const float a = b * dot_f32(k(i), k(j), dk) * std::exp(cum[i] - cum[j]);
        axpy(-a, u + j * dv, ui, dv);
        axpy(-a, wk + j * dk, wi, dk);
      }
    }
    // v_new = U - W S^T (S as [dv][dk]).
    for (int64_t i = 0; i < L; ++i) {
      float* ui = u + i * dv;
      const float* wi = wk + i * dk;
      for (int64_t x = 0; x < dv; ++x) ui[x] -= dot_f32(S + x * dk, wi, dk);
    }
    // out_i = exp(cum_i) S q_i + sum_{j <= i} (q_i . k_j) exp(cum_i - cum_j) v_new_j, with S from the chunk's start.
    for (int64_t i = 0; i < L; ++i) {
      float* out = h.out + (c0 + i) * h.out_stride;
      const float e = std::exp(cum[i]);
      for (int64_t x = 0; x < dv; ++x) out[x] = e * dot_f32(S + x * dk, q(i), dk);
      for (int64_t j = 0; j <= i; ++j) {
        kk[j] = dot_f32(q(i), k(j), dk) * std::exp(cum[i] - cum[j]);
      }
      for (int64_t j = 0; j <= i; ++j) axpy(kk[j], u + j * dv, out, dv);
    }
    // S = exp(cum_last) S + sum_j exp(cum_last - cum_j) v_new_j k_j^T.
    const float last = cum[L - 1];
    for (int64_t j = 0; j < L; ++j) kk[j] = std::exp(last - cum[j]);
    const float e_last = std::exp(last);
    for (int64_t x = 0; x < dv; ++x) {
      float* s = S + x * dk;
      for (int64_t y = 0; y < dk; ++y) s[y] *= e_last;
      for (int64_t j = 0; j < L; ++j) axpy(u[j * dv + x] * kk[j], k(j), s, dk);
    }
  }
}

void gated_rms_norm(const float* x, const float* z, const float* weight, float* y, int64_t n, float eps) {
  const float inv = 1.0f / std::sqrt(dot_f32(x, x, n) / static_cast<float>(n) + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * inv * weight[i] * silu(z[i]);
}

}  // namespace edgellm
