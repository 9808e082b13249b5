// Qwen3.5's Gated DeltaNet kernels (kernels/delta_rule.h), every variant this CPU runs (reference, AVX2,
// AVX-512; NEON is the reference compiled for aarch64, run under qemu): the delta rule token by token and
// chunked against a double-precision recurrence at awkward sizes, the causal convolution and the gated norm
// against their definitions.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernels/delta_rule.h"
#include "kernels/delta_rule_variants.h"
#include "kernels/kernel_table.h"

namespace edgellm {
namespace {

std::vector<float> random_vector(size_t n, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// The delta rule in double precision, token by token, as transformers' torch_recurrent_gated_delta_rule
// with the state as [Dk][Dv].
struct ReferenceHead {
  int64_t dk, dv;
  std::vector<double> state;  // [dk][dv]
  void step(const float* q, const float* k, const float* v, float beta, float g, double* out) {
    for (double& s : state) s *= std::exp(static_cast<double>(g));
    std::vector<double> kv_mem(static_cast<size_t>(dv), 0.0);
    for (int64_t i = 0; i < dk; ++i) {
      for (int64_t j = 0; j < dv; ++j) kv_mem[static_cast<size_t>(j)] += state[static_cast<size_t>(i * dv + j)] * k[i];
    }
    for (int64_t i = 0; i < dk; ++i) {
      for (int64_t j = 0; j < dv; ++j) {
        state[static_cast<size_t>(i * dv + j)] += k[i] * beta * (v[j] - kv_mem[static_cast<size_t>(j)]);
      }
    }
    for (int64_t j = 0; j < dv; ++j) {
      double o = 0;
      for (int64_t i = 0; i < dk; ++i) o += state[static_cast<size_t>(i * dv + j)] * q[i];
      out[j] = o;
    }
  }
};

class DeltaRule : public ::testing::TestWithParam<std::tuple<int64_t, int64_t, int64_t>> {};

TEST_P(DeltaRule, ChunkedAndRecurrentMatchTheReference) {
  const auto [n, dk, dv] = GetParam();
  std::mt19937 rng(static_cast<uint32_t>(n * 1000 + dk * 10 + dv));
  // Normalised q (scaled) and k as the layer feeds them; values, gates and an existing state.
  std::vector<float> q = random_vector(static_cast<size_t>(n * dk), rng), k = random_vector(static_cast<size_t>(n * dk), rng);
  for (int64_t t = 0; t < n; ++t) {
    l2_normalize(&q[static_cast<size_t>(t * dk)], dk, 1e-6f, 1.0f / std::sqrt(static_cast<float>(dk)));
    l2_normalize(&k[static_cast<size_t>(t * dk)], dk, 1e-6f, 1.0f);
  }
  const std::vector<float> v = random_vector(static_cast<size_t>(n * dv), rng);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::vector<float> beta(static_cast<size_t>(n)), g(static_cast<size_t>(n));
  for (int64_t t = 0; t < n; ++t) {
    beta[static_cast<size_t>(t)] = u(rng);
    g[static_cast<size_t>(t)] = -3.0f * u(rng);
  }
  const std::vector<float> state0 = random_vector(static_cast<size_t>(dk * dv), rng, 0.5f);

  ReferenceHead ref{dk, dv, std::vector<double>(state0.begin(), state0.end())};
  std::vector<double> expected(static_cast<size_t>(n * dv));
  for (int64_t t = 0; t < n; ++t) {
    ref.step(&q[static_cast<size_t>(t * dk)], &k[static_cast<size_t>(t * dk)], &v[static_cast<size_t>(t * dv)],
             beta[static_cast<size_t>(t)], g[static_cast<size_t>(t)], &expected[static_cast<size_t>(t * dv)]);
  }
  double max_out = 0, max_state = 0;
  for (double x : expected) max_out = std::max(max_out, std::fabs(x));
  for (double x : ref.state) max_state = std::max(max_state, std::fabs(x));

  for (const kernels::DeltaRuleKernels* kern : kernels::delta_rule_variants()) {
  for (const bool chunked : {false, true}) {
    SCOPED_TRACE(std::string(kern->name) + (chunked ? " chunked" : " recurrent"));
    std::vector<float> state = state0, out(static_cast<size_t>(n * dv), 0.0f);
    DeltaRuleHead h;
    h.q = q.data();
    h.k = k.data();
    h.qk_stride = dk;
    h.v = v.data();
    h.v_stride = dv;
    h.beta = beta.data();
    h.g = g.data();
    h.g_stride = 1;
    h.out = out.data();
    h.out_stride = dv;
    h.state = state.data();
    h.n_tokens = n;
    h.dk = dk;
    h.dv = dv;
    std::vector<float> work(delta_rule_work_floats(dk, dv));
    if (chunked) {
      kern->chunked(h, work.data());
    } else {
      kern->recurrent(h, work.data());
    }
    double out_err = 0, state_err = 0;
    for (size_t i = 0; i < out.size(); ++i) out_err = std::max(out_err, std::fabs(out[i] - expected[i]));
    for (int64_t i = 0; i < dk; ++i) {
      for (int64_t j = 0; j < dv; ++j) {
        state_err = std::max(state_err, std::fabs(state[static_cast<size_t>(i * dv + j)] -
                                                  ref.state[static_cast<size_t>(i * dv + j)]));
      }
    }
    EXPECT_LT(out_err / max_out, 2e-5);
    EXPECT_LT(state_err / max_state, 2e-5);
  }
  }
}

// Token counts around the chunk of 64 (and one token), head sizes that are not multiples of 8.
INSTANTIATE_TEST_SUITE_P(AwkwardSizes, DeltaRule,
                         ::testing::Values(std::make_tuple(1, 16, 16), std::make_tuple(7, 12, 20),
                                           std::make_tuple(63, 16, 8), std::make_tuple(64, 32, 32),
                                           std::make_tuple(65, 24, 40), std::make_tuple(130, 128, 128),
                                           std::make_tuple(200, 5, 3)));

TEST(DeltaRuleKernels, CausalConvolutionMatchesTheDefinition) {
  std::mt19937 rng(3);
  for (const int64_t K : {2, 3, 4}) {
    const int64_t n = 9, C = 13;
    const std::vector<float> window = random_vector(static_cast<size_t>((K - 1 + n) * C), rng);
    const std::vector<float> w = random_vector(static_cast<size_t>(K * C), rng);
    for (const kernels::DeltaRuleKernels* kern : kernels::delta_rule_variants()) {
    SCOPED_TRACE(kern->name);
    std::vector<float> out(static_cast<size_t>(n * C));
    kern->causal_conv(window.data(), n, C, K, w.data(), out.data());
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t c = 0; c < C; ++c) {
        double acc = 0;
        for (int64_t j = 0; j < K; ++j) acc += static_cast<double>(w[static_cast<size_t>(j * C + c)]) * window[static_cast<size_t>((t + j) * C + c)];
        const double expected = acc / (1 + std::exp(-acc));
        EXPECT_NEAR(out[static_cast<size_t>(t * C + c)], expected, 1e-5) << "K " << K << " t " << t << " c " << c;
      }
    }
    }
  }
}

TEST(DeltaRuleKernels, GatedNormIsRmsNormTimesWeightTimesSiluGate) {
  const std::vector<float> x = {1, -2, 3, 0.5f}, z = {0.1f, -1, 2, 0}, w = {1, 0.5f, 2, 1};
  std::vector<float> y(4);
  gated_rms_norm(x.data(), z.data(), w.data(), y.data(), 4, 1e-6f);
  const double rms = std::sqrt((1 + 4 + 9 + 0.25) / 4.0 + 1e-6);
  for (size_t i = 0; i < 4; ++i) {
    const double silu = z[i] / (1 + std::exp(-static_cast<double>(z[i])));
    EXPECT_NEAR(y[i], x[i] / rms * w[i] * silu, 1e-6);
  }
}

TEST(DeltaRuleKernels, TheWidestVectorsOfThisCpuAreUsed) {
  const auto v = kernels::delta_rule_variants();
  ASSERT_FALSE(v.empty());
  EXPECT_STREQ(v.front()->name, "ref");
#if defined(__x86_64__)
  const char* best = kernels::cpu_has_avx512() ? "avx512" : kernels::cpu_has_avx2() ? "avx2" : "ref";
  EXPECT_STREQ(v.back()->name, best);
#endif
}

}  // namespace
}  // namespace edgellm
