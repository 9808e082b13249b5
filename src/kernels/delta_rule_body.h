// The gated delta rule and the causal convolution, written once and compiled per ISA (included by
// kernels/delta_rule.cpp for the baseline, x86/delta_rule_avx2.cpp and x86/delta_rule_avx512.cpp inside
// their own namespaces): the inner loops are axpys and row combinations over a head's dimensions, written so
// that the compiler maps them to the ISA's vectors (SSE/NEON: 4 x 4 lanes, AVX2: 2 x 8, AVX-512: 1 x 16).
// Not a standalone header: the includer includes <algorithm>, <cmath> and kernels/delta_rule.h, then opens
// the namespace.

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

// The state S is [Dk][Dv] (row y: what key dimension y contributes to each value), so that every inner loop
// is an axpy over Dv (or over the chunk's tokens) with no horizontal sums.
inline void recurrent(const DeltaRuleHead& h, float* work) {
  const int64_t dk = h.dk, dv = h.dv;
  float* delta = work;  // [dv]
  for (int64_t t = 0; t < h.n_tokens; ++t) {
    const float* q = h.q + t * h.qk_stride;
    const float* k = h.k + t * h.qk_stride;
    const float* v = h.v + t * h.v_stride;
    const float beta = h.beta[t * h.g_stride];
    const float decay = std::exp(h.g[t * h.g_stride]);
    float* out = h.out + t * h.out_stride;
    // S = exp(g) S, and S^T k into delta.
    std::fill(delta, delta + dv, 0.0f);
    for (int64_t y = 0; y < dk; ++y) {
      float* s = h.state + y * dv;
      dr_scale(decay, s, dv);
      dr_axpy(k[y], s, delta, dv);
    }
    for (int64_t x = 0; x < dv; ++x) delta[x] = beta * (v[x] - delta[x]);
    // S += k delta^T, and out = S^T q.
    std::fill(out, out + dv, 0.0f);
    for (int64_t y = 0; y < dk; ++y) {
      float* s = h.state + y * dv;
      dr_axpy(k[y], delta, s, dv);
      dr_axpy(q[y], s, out, dv);
    }
  }
}

// 16 floats as one value of GCC's vector extension: one zmm register under AVX-512, two ymm under AVX2, four
// xmm/NEON q registers on the baselines.
// (Loaded and stored with memcpy, in place: never passed by value, whose ABI differs between the variants.)
typedef float dr_v16 __attribute__((vector_size(64)));

// B blocks of 16 outputs of dr_combine, their accumulators in registers over all m rows: B independent
// chains of fused multiply-adds, one store per output.
template <int B>
inline void dr_combine_block(float* dst, float dst_scale, const float* src, int64_t stride, const float* coef,
                             int64_t m) {
  dr_v16 acc[B];
  for (int b = 0; b < B; ++b) {
    if (dst_scale == 0.0f) {
      acc[b] = dr_v16{};
    } else {
      __builtin_memcpy(&acc[b], dst + 16 * b, sizeof(dr_v16));
      acc[b] *= dst_scale;
    }
  }
  for (int64_t j = 0; j < m; ++j) {
    const float c = coef[j];
    const float* r = src + j * stride;
    for (int b = 0; b < B; ++b) {
      dr_v16 row;
      __builtin_memcpy(&row, r + 16 * b, sizeof(dr_v16));
      acc[b] += c * row;
    }
  }
  for (int b = 0; b < B; ++b) __builtin_memcpy(dst + 16 * b, &acc[b], sizeof(dr_v16));
}

// dst[x] = dst_scale * dst[x] + sum_{j < m} coef[j] * src[j * stride + x] for x < n (dst_scale 0: dst is
// not read).
inline void dr_combine(float* dst, float dst_scale, const float* src, int64_t stride, const float* coef, int64_t m,
                       int64_t n) {
  int64_t x0 = 0;
  for (; x0 + 128 <= n; x0 += 128) dr_combine_block<8>(dst + x0, dst_scale, src + x0, stride, coef, m);
  for (; x0 + 64 <= n; x0 += 64) dr_combine_block<4>(dst + x0, dst_scale, src + x0, stride, coef, m);
  for (; x0 + 16 <= n; x0 += 16) dr_combine_block<1>(dst + x0, dst_scale, src + x0, stride, coef, m);
  for (; x0 < n; ++x0) {
    float a = dst_scale == 0.0f ? 0.0f : dst_scale * dst[x0];
    for (int64_t j = 0; j < m; ++j) a += coef[j] * src[j * stride + x0];
    dst[x0] = a;
  }
}

inline void chunked(const DeltaRuleHead& h, float* work) {
  const int64_t C = kDeltaRuleChunk, dk = h.dk, dv = h.dv;
  float* cum = work;           // [C] cumulative log-decay within the chunk
  float* dec = cum + C;        // [C] exp(cum_last - cum_j)
  float* gram = dec + C;       // [C] one row of k_i . k_j or q_i . k_j
  float* coef = gram + C;      // [C + dk] coefficients of a combination
  float* kt = coef + C + dk;   // [dk][C] the chunk's keys, transposed
  float* u = kt + dk * C;      // [C][dv] U, then the corrected values v_new
  float* wk = u + C * dv;      // [C][dk] W
  float* S = h.state;          // [dk][dv]
  for (int64_t c0 = 0; c0 < h.n_tokens; c0 += C) {
    const int64_t L = std::min(C, h.n_tokens - c0);
    auto q = [&](int64_t i) { return h.q + (c0 + i) * h.qk_stride; };
    auto k = [&](int64_t i) { return h.k + (c0 + i) * h.qk_stride; };
    float acc = 0.0f;
    for (int64_t i = 0; i < L; ++i) {
      acc += h.g[(c0 + i) * h.g_stride];
      cum[i] = acc;
    }
    for (int64_t j = 0; j < L; ++j) {
      for (int64_t y = 0; y < dk; ++y) kt[y * C + j] = k(j)[y];
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
      if (i == 0) continue;
      dr_combine(gram, 0.0f, kt, C, k(i), dk, i);
      for (int64_t j = 0; j < i; ++j) coef[j] = -b * gram[j] * std::exp(cum[i] - cum[j]);
      dr_combine(ui, 1.0f, u, dv, coef, i, dv);
      dr_combine(wi, 1.0f, wk, dk, coef, i, dk);
    }
    // v_new = U - W S and the part of the output from earlier chunks, exp(cum_i) S^T q_i; then this chunk's
    // part, sum_{j <= i} (q_i . k_j) exp(cum_i - cum_j) v_new_j (rows j <= i of v_new are final by then).
    for (int64_t i = 0; i < L; ++i) {
      float* ui = u + i * dv;
      const float* wi = wk + i * dk;
      const float* qi = q(i);
      float* out = h.out + (c0 + i) * h.out_stride;
      for (int64_t y = 0; y < dk; ++y) coef[y] = -wi[y];
      dr_combine(ui, 1.0f, S, dv, coef, dk, dv);
      const float e = std::exp(cum[i]);
      for (int64_t y = 0; y < dk; ++y) coef[y] = e * qi[y];
      dr_combine(out, 0.0f, S, dv, coef, dk, dv);
      dr_combine(gram, 0.0f, kt, C, qi, dk, i + 1);
      for (int64_t j = 0; j <= i; ++j) coef[j] = gram[j] * std::exp(cum[i] - cum[j]);
      dr_combine(out, 1.0f, u, dv, coef, i + 1, dv);
    }
    // S = exp(cum_last) S + sum_j exp(cum_last - cum_j) k_j v_new_j^T.
    const float last = cum[L - 1];
    for (int64_t j = 0; j < L; ++j) dec[j] = std::exp(last - cum[j]);
    const float e_last = std::exp(last);
    for (int64_t y = 0; y < dk; ++y) {
      const float* kty = kt + y * C;
      for (int64_t j = 0; j < L; ++j) coef[j] = kty[j] * dec[j];
      dr_combine(S + y * dv, e_last, u, dv, coef, L, dv);
    }
  }
}
