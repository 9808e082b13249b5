// The gated delta rule and causal convolution (kernels/delta_rule_body.h) compiled for AVX2 + FMA.
#if defined(__x86_64__)
#include <algorithm>
#include <cmath>

#include "kernels/delta_rule_variants.h"

namespace edgellm::kernels::delta_rule_avx2 {
#include "kernels/delta_rule_body.h"
}  // namespace edgellm::kernels::delta_rule_avx2

namespace edgellm::kernels {
const DeltaRuleKernels kDeltaRuleAvx2 = {"avx2", &delta_rule_avx2::causal_conv, &delta_rule_avx2::recurrent,
                                         &delta_rule_avx2::chunked};
}  // namespace edgellm::kernels
#endif
