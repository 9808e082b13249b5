// The gated delta rule and the causal convolution, written once and compiled per ISA (included by
// kernels/delta_rule.cpp for the baseline, x86/delta_rule_avx2.cpp and x86/delta_rule_avx512.cpp inside
// their own namespaces): the inner loops are dot products and axpys over a head's dimensions, in 16
// independent lanes that the compiler maps to the ISA's vectors (SSE/NEON: 4 x 4, AVX2: 2 x 8, AVX-512: 1 x 16).
// Not a standalone header: the includer includes <algorithm>, <cmath> and kernels/delta_rule.h, then opens
// the namespace.

inline float dr_dot(const float* a, const float* b, int64_t n) {
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int j = 0; j < 16; ++j) acc[j] += a[i + j] * b[i + j];
  }
  float sum = 0.0f;
  for (; i < n; ++i) sum += a[i] * b[i];
  for (int j = 0; j < 8; ++j) acc[j] += acc[j + 8];
  for (int j = 0; j < 4; ++j) acc[j] += acc[j + 4];
  return sum + ((acc[0] + acc[2]) + (acc[1] + acc[3]));
}

// y += a * x
inline void dr_axpy(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

inline void dr_scale(float a, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] *= a;
}

inline void causal_conv(const float* window, int64_t n_tokens, int64_t channels, int64_t K, const float* w,
                        float* out) {
  for (int64_t t = 0; t < n_tokens; ++t) {
    float* o = out + t * channels;
    const float* x0 = window + t * channels;
    for (int64_t c = 0; c < channels; ++c) o[c] = w[c] * x0[c];
    for (int64_t j = 1; j < K; ++j) {
      const float* x = window + (t + j) * channels;
      const float* wj = w + j * channels;
      for (int64_t c = 0; c < channels; ++c) o[c] += wj[c] * x[c];
    }
    for (int64_t c = 0; c < channels; ++c) o[c] = o[c] / (1.0f + std::exp(-o[c]));
  }
}

inline void recurrent(const DeltaRuleHead& h) {
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
      dr_scale(decay, s, dk);
      const float delta = beta * (v[i] - dr_dot(s, k, dk));
      dr_axpy(delta, k, s, dk);
      out[i] = dr_dot(s, q, dk);
    }
  }
}

inline void chunked(const DeltaRuleHead& h, float* work) {
  const int64_t C = kDeltaRuleChunk, dk = h.dk, dv = h.dv;
  float* cum = work;      // [C] cumulative log-decay within the chunk
  float* kk = cum + C;    // [C][C] scratch coefficients
  float* u = kk + C * C;  // [C][dv] U, then the corrected values v_new
  float* wk = u + C * dv; // [C][dk] W
  float* S = h.state;
  for (int64_t c0 = 0; c0 < h.n_tokens; c0 += C) {
    const int64_t L = std::min(C, h.n_tokens - c0);
    auto q = [&](int64_t i) { return h.q + (c0 + i) * h.qk_stride; };
    auto k = [&](int64_t i) { return h.k + (c0 + i) * h.qk_stride; };
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
      const float b = h.beta[(c0 + i) * h.g_stride], bd = b * std::exp(cum[i]);
      for (int64_t x = 0; x < dv; ++x) ui[x] = b * vi[x];
      for (int64_t x = 0; x < dk; ++x) wi[x] = bd * k(i)[x];
      for (int64_t j = 0; j < i; ++j) {
        const float a = b * dr_dot(k(i), k(j), dk) * std::exp(cum[i] - cum[j]);
        dr_axpy(-a, u + j * dv, ui, dv);
        dr_axpy(-a, wk + j * dk, wi, dk);
      }
    }
    // v_new = U - W S^T and the inter-chunk part of the output, exp(cum_i) S q_i, row x of S at a time.
    for (int64_t i = 0; i < L; ++i) {
      float* ui = u + i * dv;
      const float* wi = wk + i * dk;
      float* out = h.out + (c0 + i) * h.out_stride;
      const float e = std::exp(cum[i]);
      for (int64_t x = 0; x < dv; ++x) {
        const float* s = S + x * dk;
        ui[x] -= dr_dot(s, wi, dk);
        out[x] = e * dr_dot(s, q(i), dk);
      }
    }
    // Intra-chunk part: out_i += sum_{j <= i} (q_i . k_j) exp(cum_i - cum_j) v_new_j.
    for (int64_t i = 0; i < L; ++i) {
      float* out = h.out + (c0 + i) * h.out_stride;
      for (int64_t j = 0; j <= i; ++j) dr_axpy(dr_dot(q(i), k(j), dk) * std::exp(cum[i] - cum[j]), u + j * dv, out, dv);
    }
    // S = exp(cum_last) S + sum_j exp(cum_last - cum_j) v_new_j k_j^T.
    const float last = cum[L - 1];
    for (int64_t j = 0; j < L; ++j) kk[j] = std::exp(last - cum[j]);
    const float e_last = std::exp(last);
    for (int64_t x = 0; x < dv; ++x) {
      float* s = S + x * dk;
      dr_scale(e_last, s, dk);
      for (int64_t j = 0; j < L; ++j) dr_axpy(u[j * dv + x] * kk[j], k(j), s, dk);
    }
  }
}
