// The gated delta rule and causal convolution (kernels/delta_rule_body.h) compiled for AVX-512.
#if defined(__x86_64__)
#include <algorithm>
#include <cmath>

#include "kernels/delta_rule_variants.h"

namespace edgellm::kernels::delta_rule_avx512 {
#include "kernels/delta_rule_body.h"
}  // namespace edgellm::kernels::delta_rule_avx512

namespace edgellm::kernels {
const DeltaRuleKernels kDeltaRuleAvx512 = {"avx512", &delta_rule_avx512::causal_conv, &delta_rule_avx512::recurrent,
                                         &delta_rule_avx512::chunked};
}  // namespace edgellm::kernels
#endif
