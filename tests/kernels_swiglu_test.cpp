// SwiGLU's activation (kernels/matmul.h: swiglu): every ISA's vector silu * up matches the scalar
// reference (std::exp) within its polynomial's error, also at the extremes where e^x would overflow or
// underflow, at every tail length, in place too.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/elementwise.h"
#include "kernels/kernel_table.h"
#include "kernels/matmul.h"

namespace edgellm {
namespace {

TEST(Swiglu, EveryIsaMatchesTheReference) {
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 6.0f);
  std::vector<float> gate, up;
  for (float g : {0.0f, -0.0f, 1e-30f, -1e-30f, 88.0f, 88.7f, 89.0f, 100.0f, 1e30f, -87.0f, -87.5f, -88.0f, -100.0f,
                  -1e30f}) {
    gate.push_back(g);
    up.push_back(1.5f);
  }
  for (int i = 0; i < 1000; ++i) {
    gate.push_back(dist(rng));
    up.push_back(dist(rng));
  }
  std::vector<float> want(gate.size());
  silu_mul(gate.data(), up.data(), want.data(), static_cast<int64_t>(gate.size()));
  int tested = 0;
  for (kernels::Isa isa : {kernels::Isa::kScalar, kernels::Isa::kAvx2, kernels::Isa::kAvx512, kernels::Isa::kNeon,
                           kernels::Isa::kNeonDot}) {
    const kernels::KernelTable* table = kernels::kernels_for_isa(isa);
    if (table == nullptr || table->silu_mul == nullptr) continue;
    ++tested;
    // Every length up to 37 (the vector tails), then the whole set.
    for (int64_t n : std::vector<int64_t>{1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 37, static_cast<int64_t>(gate.size())}) {
      std::vector<float> got(static_cast<size_t>(n) + 1, -7.0f);
      table->silu_mul(gate.data(), up.data(), got.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        const double w = want[static_cast<size_t>(i)], g = got[static_cast<size_t>(i)];
        ASSERT_TRUE(std::isfinite(g)) << kernels::isa_name(isa) << " gate " << gate[static_cast<size_t>(i)];
        // Relative ~1e-7 of the polynomial; beyond |gate| ~ 87 the clamped exponent leaves a value
        // within 1e-36 of the reference's (which is then 0 or gate * up to 1e-38).
        EXPECT_NEAR(g, w, 1e-6 * std::fabs(w) + 1e-30) << kernels::isa_name(isa) << " gate " << gate[static_cast<size_t>(i)];
      }
      EXPECT_EQ(got[static_cast<size_t>(n)], -7.0f) << "wrote past the end";
    }
    // In place (out aliases gate), as the forward pass calls it.
    std::vector<float> inplace = gate;
    table->silu_mul(inplace.data(), up.data(), inplace.data(), static_cast<int64_t>(inplace.size()));
    std::vector<float> separate(gate.size());
    table->silu_mul(gate.data(), up.data(), separate.data(), static_cast<int64_t>(gate.size()));
    EXPECT_EQ(std::memcmp(inplace.data(), separate.data(), separate.size() * sizeof(float)), 0);
  }
  if (tested == 0) GTEST_SKIP() << "no vector SiLU kernel on this CPU (the reference is used)";
}

}  // namespace
}  // namespace edgellm
