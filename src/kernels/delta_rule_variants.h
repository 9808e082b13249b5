// The compiled variants of the delta-rule kernels (kernels/delta_rule.h), for the dispatcher and the tests.
#pragma once

#include <vector>

#include "kernels/delta_rule.h"

namespace edgellm::kernels {

struct DeltaRuleKernels {
  const char* name;  // "ref", "avx2", "avx512"
  void (*causal_conv)(const float* window, int64_t n_tokens, int64_t channels, int64_t K, const float* w, float* out);
  void (*recurrent)(const DeltaRuleHead& h, float* work);
  void (*chunked)(const DeltaRuleHead& h, float* work);
};

extern const DeltaRuleKernels kDeltaRuleRef;
#if defined(__x86_64__)
extern const DeltaRuleKernels kDeltaRuleAvx2;
extern const DeltaRuleKernels kDeltaRuleAvx512;
#endif

// The variants this CPU can run, the reference first; the last is the one in use.
std::vector<const DeltaRuleKernels*> delta_rule_variants();

}  // namespace edgellm::kernels
