#include "kernels/delta_rule.h"

#include <algorithm>
#include <cmath>

#include "kernels/delta_rule_variants.h"
#include "kernels/kernel_table.h"

namespace edgellm {

namespace kernels {
namespace delta_rule_ref {
#include "kernels/delta_rule_body.h"
}  // namespace delta_rule_ref

const DeltaRuleKernels kDeltaRuleRef = {"ref", &delta_rule_ref::causal_conv, &delta_rule_ref::recurrent,
                                        &delta_rule_ref::chunked};

std::vector<const DeltaRuleKernels*> delta_rule_variants() {
  std::vector<const DeltaRuleKernels*> v = {&kDeltaRuleRef};
#if defined(__x86_64__)
  if (cpu_has_avx2()) v.push_back(&kDeltaRuleAvx2);
  if (cpu_has_avx512()) v.push_back(&kDeltaRuleAvx512);
#endif
  return v;
}

namespace {
const DeltaRuleKernels& active() {
  static const DeltaRuleKernels* best = delta_rule_variants().back();
  return *best;
}
}  // namespace
}  // namespace kernels

void causal_conv_silu(const float* window, int64_t n_tokens, int64_t channels, int64_t K, const float* w, float* out) {
  kernels::active().causal_conv(window, n_tokens, channels, K, w, out);
}

void delta_rule_recurrent(const DeltaRuleHead& h, float* work) { kernels::active().recurrent(h, work); }

size_t delta_rule_work_floats(int64_t dk, int64_t dv) {
  const int64_t C = kDeltaRuleChunk;
  return static_cast<size_t>(4 * C + dk + dk * C + C * dv + C * dk);
}

void delta_rule_chunked(const DeltaRuleHead& h, float* work) { kernels::active().chunked(h, work); }

void l2_normalize(float* x, int64_t n, float eps, float scale) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float s = scale / std::sqrt(static_cast<float>(ss) + eps);
  for (int64_t i = 0; i < n; ++i) x[i] *= s;
}

void gated_rms_norm(const float* x, const float* z, const float* weight, float* y, int64_t n, float eps) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float inv = 1.0f / std::sqrt(static_cast<float>(ss / static_cast<double>(n)) + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * inv * weight[i] * (z[i] / (1.0f + std::exp(-z[i])));
}

}  // namespace edgellm
