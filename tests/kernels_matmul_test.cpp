// Every ISA variant of matmul against the scalar reference at awkward sizes, with an error budget
// derived from f32 summation; thread-count and tiling invariance; get_row.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/kernel_table.h"
#include "kernels/matmul.h"
#include "kernels/quant_blocks.h"
#include "kernels/quantize.h"
#include "util/half.h"
#include "util/thread_pool.h"

namespace edgellm {
namespace {

// Writes a random fp16 scale of magnitude [lo, hi) at byte offset `offset` of every block.
void set_fp16_scales(std::vector<uint8_t>& bytes, size_t block_bytes, size_t offset, std::mt19937& rng,
                     float lo, float hi) {
  std::uniform_real_distribution<float> dist(lo, hi);
  for (size_t pos = 0; pos + block_bytes <= bytes.size(); pos += block_bytes) {
    const uint16_t h = f32_to_fp16(dist(rng));
    std::memcpy(bytes.data() + pos + offset, &h, sizeof(h));
  }
}

// Random weights [n_rows][k] of `type`: quantized from N(0, 1) floats where edgellm has a quantizer;
// for the K-quants, random bytes with sane scales (every bit pattern of the quants is valid).
std::vector<uint8_t> random_weights(DType type, int64_t n_rows, int64_t k, uint32_t seed) {
  std::mt19937 rng(seed);
  const size_t n_bytes = dtype_row_bytes(type, k) * static_cast<size_t>(n_rows);
  std::vector<uint8_t> bytes(n_bytes);
  if (can_quantize(type)) {
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<float> values(static_cast<size_t>(n_rows * k));
    for (auto& v : values) v = dist(rng);
    EXPECT_TRUE(quantize_row(type, values.data(), bytes.data(), n_rows * k).ok());
    return bytes;
  }
  std::uniform_int_distribution<int> byte(0, 255);
  for (auto& b : bytes) b = static_cast<uint8_t>(byte(rng));
  const size_t block_bytes = dtype_traits(type).block_bytes;
  switch (type) {
    case DType::kQ2_K:
      set_fp16_scales(bytes, block_bytes, offsetof(BlockQ2_K, d), rng, 0.01f, 0.1f);
      set_fp16_scales(bytes, block_bytes, offsetof(BlockQ2_K, dmin), rng, 0.01f, 0.1f);
      break;
    case DType::kQ3_K: set_fp16_scales(bytes, block_bytes, offsetof(BlockQ3_K, d), rng, 0.01f, 0.1f); break;
    case DType::kQ4_K:
    case DType::kQ5_K:
      set_fp16_scales(bytes, block_bytes, offsetof(BlockQ4_K, d), rng, 0.01f, 0.1f);
      set_fp16_scales(bytes, block_bytes, offsetof(BlockQ4_K, dmin), rng, 0.01f, 0.1f);
      break;
    case DType::kQ6_K: set_fp16_scales(bytes, block_bytes, offsetof(BlockQ6_K, d), rng, 0.001f, 0.01f); break;
    case DType::kQ8_1:
      set_fp16_scales(bytes, block_bytes, offsetof(BlockQ8_1, d), rng, 0.01f, 0.1f);
      set_fp16_scales(bytes, block_bytes, offsetof(BlockQ8_1, s), rng, 0.01f, 0.1f);
      break;
    case DType::kQ8_K: {
      std::uniform_real_distribution<float> dist(0.01f, 0.1f);
      for (size_t pos = 0; pos < n_bytes; pos += block_bytes) {
        const float d = dist(rng);
        std::memcpy(bytes.data() + pos, &d, sizeof(d));
      }
      break;
    }
    default: ADD_FAILURE() << "no generator for " << dtype_name(type);
  }
  return bytes;
}

std::vector<float> random_activations(int64_t n_tokens, int64_t k, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n_tokens * k));
  for (auto& v : x) v = dist(rng);
  return x;
}

TensorRef make_tensor(DType type, int64_t k, int64_t n_rows, const std::vector<uint8_t>& bytes) {
  TensorRef w;
  w.name = "test.weight";
  w.type = type;
  w.ne = {k, n_rows};
  w.data = bytes.data();
  w.size_bytes = bytes.size();
  return w;
}

kernels::MatmulArgs make_args(const TensorRef& w, const std::vector<float>& x, int64_t n_tokens,
                              std::vector<float>& y) {
  kernels::MatmulArgs args;
  args.type = w.type;
  args.w = static_cast<const uint8_t*>(w.data);
  args.w_row_bytes = w.row_bytes();
  args.k = w.ne[0];
  args.x = x.data();
  args.n_tokens = n_tokens;
  args.y = y.data();
  args.y_stride = w.ne[1];
  return args;
}

// |y_isa - y_ref| <= 2 * gamma_k * sum_k |w_k x_k|: both sum the same f32 products (the dequantized
// weights are bit-identical) in different orders, and any order of a k-term f32 sum (with or
// without FMA) is within gamma_k = k u / (1 - k u), u = 2^-24, of the exact sum (Higham, Accuracy and
// Stability of Numerical Algorithms, 2nd ed., eq. 3.5).
double error_budget(const std::vector<float>& w_row, const float* x, int64_t k) {
  double abs_sum = 0;
  for (int64_t j = 0; j < k; ++j) abs_sum += std::fabs(static_cast<double>(w_row[j]) * x[j]);
  const double u = std::ldexp(1.0, -24);
  const double gamma = static_cast<double>(k) * u / (1 - static_cast<double>(k) * u);
  return 2 * gamma * abs_sum + 1e-30;
}

struct Case {
  DType type;
  std::vector<int64_t> ks;
};

std::vector<Case> all_cases() {
  const std::vector<int64_t> k32 = {32, 64, 96, 4096 + 32};
  const std::vector<int64_t> k_plain = {1, 7, 32, 33, 96, 4097};
  const std::vector<int64_t> k256 = {256, 512, 4096 + 256};
  return {
      {DType::kF32, k_plain},  {DType::kF16, k_plain},  {DType::kBF16, k_plain}, {DType::kQ8_0, k32},
      {DType::kQ4_0, k32},     {DType::kQ4_1, k32},     {DType::kQ5_0, k32},     {DType::kQ5_1, k32},
      {DType::kQ8_1, k32},     {DType::kQ2_K, k256},    {DType::kQ3_K, k256},    {DType::kQ4_K, k256},
      {DType::kQ5_K, k256},    {DType::kQ6_K, k256},    {DType::kQ8_K, k256},    {DType::kIQ4_NL, k32},
  };
}

std::vector<kernels::Isa> fast_isas() {
  std::vector<kernels::Isa> isas;
  for (kernels::Isa isa : {kernels::Isa::kAvx2, kernels::Isa::kAvx512}) {
    if (kernels::kernels_for_isa(isa) != nullptr) isas.push_back(isa);
  }
  return isas;
}

TEST(MatmulIsa, EveryVariantMatchesReferenceAtAwkwardSizes) {
  const std::vector<kernels::Isa> isas = fast_isas();
  if (isas.empty()) GTEST_SKIP() << "no vector kernels on this CPU; only the scalar reference runs";
  const kernels::KernelTable& ref_table = kernels::scalar_kernels();
  uint32_t seed = 100;
  for (const Case& c : all_cases()) {
    for (int64_t k : c.ks) {
      for (int64_t n_rows : {1, 7, 33}) {
        for (int64_t n_tokens : {1, 3, 17}) {
          ++seed;
          const auto bytes = random_weights(c.type, n_rows, k, seed);
          const auto x = random_activations(n_tokens, k, seed + 7);
          const TensorRef w = make_tensor(c.type, k, n_rows, bytes);
          std::vector<float> y_ref(static_cast<size_t>(n_tokens * n_rows), NAN);
          ref_table.matmul_for(c.type)(make_args(w, x, n_tokens, y_ref), 0, n_rows);

          std::vector<float> w_row(static_cast<size_t>(k));
          for (kernels::Isa isa : isas) {
            const kernels::MatmulRowsFn fn = kernels::kernels_for_isa(isa)->matmul_for(c.type);
            ASSERT_NE(fn, nullptr) << kernels::isa_name(isa) << " " << dtype_name(c.type);
            std::vector<float> y(y_ref.size(), NAN);
            fn(make_args(w, x, n_tokens, y), 0, n_rows);
            for (int64_t r = 0; r < n_rows; ++r) {
              get_row(w, r, w_row.data());
              for (int64_t t = 0; t < n_tokens; ++t) {
                const size_t i = static_cast<size_t>(t * n_rows + r);
                const double budget = error_budget(w_row, x.data() + t * k, k);
                ASSERT_LE(std::fabs(static_cast<double>(y[i]) - y_ref[i]), budget)
                    << kernels::isa_name(isa) << " " << dtype_name(c.type) << " k=" << k << " rows=" << n_rows
                    << " tokens=" << n_tokens << " r=" << r << " t=" << t << " seed=" << seed << ": got " << y[i]
                    << ", reference " << y_ref[i];
              }
            }
          }
        }
      }
    }
  }
}

// The reference itself against a double-precision sum of the dequantized weights.
TEST(MatmulReference, MatchesDoublePrecisionDot) {
  const int64_t k = 4096 + 32, n_rows = 5, n_tokens = 3;
  for (DType type : {DType::kF32, DType::kQ4_0, DType::kIQ4_NL, DType::kQ6_K}) {
    const int64_t kk = type == DType::kQ6_K ? 4096 + 256 : k;
    const auto bytes = random_weights(type, n_rows, kk, 9);
    const auto x = random_activations(n_tokens, kk, 10);
    const TensorRef w = make_tensor(type, kk, n_rows, bytes);
    std::vector<float> y(static_cast<size_t>(n_tokens * n_rows));
    kernels::scalar_kernels().matmul_for(type)(make_args(w, x, n_tokens, y), 0, n_rows);
    std::vector<float> w_row(static_cast<size_t>(kk));
    for (int64_t r = 0; r < n_rows; ++r) {
      get_row(w, r, w_row.data());
      for (int64_t t = 0; t < n_tokens; ++t) {
        double exact = 0;
        for (int64_t j = 0; j < kk; ++j) exact += static_cast<double>(w_row[j]) * x[t * kk + j];
        const double budget = error_budget(w_row, x.data() + t * kk, kk) / 2;
        EXPECT_LE(std::fabs(y[t * n_rows + r] - exact), budget) << dtype_name(type);
      }
    }
  }
}

TEST(Matmul, OneAndTwoThreadsGiveIdenticalOutput) {
  ThreadPool pool1(1), pool2(2);
  for (DType type : {DType::kF16, DType::kQ8_0, DType::kQ4_0, DType::kIQ4_NL, DType::kQ4_K}) {
    const int64_t k = type == DType::kQ4_K ? 512 : 96;
    for (int64_t n_tokens : {1, 5}) {
      const int64_t n_rows = 133;
      const auto bytes = random_weights(type, n_rows, k, 21);
      const auto x = random_activations(n_tokens, k, 22);
      const TensorRef w = make_tensor(type, k, n_rows, bytes);
      std::vector<float> y1(static_cast<size_t>(n_tokens * n_rows)), y2(y1.size());
      matmul(w, x.data(), n_tokens, y1.data(), pool1);
      matmul(w, x.data(), n_tokens, y2.data(), pool2);
      EXPECT_EQ(std::memcmp(y1.data(), y2.data(), y1.size() * sizeof(float)), 0)
          << dtype_name(type) << " tokens=" << n_tokens << " (isa " << matmul_isa_name() << ")";
    }
  }
}

// A token's output does not depend on the other tokens of the batch (decode == prefill row), and
// matmul_rows on a sub-range writes the same values as matmul.
TEST(Matmul, TilingAndRowRangesDoNotChangeResults) {
  ThreadPool pool(2);
  for (DType type : {DType::kF32, DType::kBF16, DType::kQ5_1, DType::kQ4_0, DType::kIQ4_NL}) {
    const int64_t k = 64 + 32, n_rows = 37, n_tokens = 6;
    const auto bytes = random_weights(type, n_rows, k, 31);
    const auto x = random_activations(n_tokens, k, 32);
    const TensorRef w = make_tensor(type, k, n_rows, bytes);
    std::vector<float> y(static_cast<size_t>(n_tokens * n_rows));
    matmul(w, x.data(), n_tokens, y.data(), pool);
    for (int64_t t = 0; t < n_tokens; ++t) {
      std::vector<float> y_one(static_cast<size_t>(n_rows));
      matmul(w, x.data() + t * k, 1, y_one.data(), pool);
      EXPECT_EQ(std::memcmp(y_one.data(), y.data() + t * n_rows, y_one.size() * sizeof(float)), 0)
          << dtype_name(type) << " token " << t;
    }
    const int64_t row_begin = 5, row_end = 30, stride = 40;
    std::vector<float> y_part(static_cast<size_t>(n_tokens * stride), -1.0f);
    matmul_rows(w, x.data(), n_tokens, y_part.data(), stride, row_begin, row_end);
    for (int64_t t = 0; t < n_tokens; ++t) {
      for (int64_t r = row_begin; r < row_end; ++r) {
        EXPECT_EQ(y_part[t * stride + r - row_begin], y[t * n_rows + r]) << dtype_name(type);
      }
      EXPECT_EQ(y_part[t * stride + (row_end - row_begin)], -1.0f) << "wrote past the range";
    }
  }
}

TEST(Matmul, GetRowMatchesDequantizeRow) {
  for (DType type : {DType::kF16, DType::kQ8_0, DType::kIQ4_NL, DType::kQ3_K}) {
    const int64_t k = 256, n_rows = 4;
    const auto bytes = random_weights(type, n_rows, k, 41);
    const TensorRef w = make_tensor(type, k, n_rows, bytes);
    std::vector<float> row(static_cast<size_t>(k)), expected(static_cast<size_t>(k));
    get_row(w, 2, row.data());
    ASSERT_TRUE(dequantize_row(type, bytes.data() + 2 * w.row_bytes(), expected.data(), k).ok());
    EXPECT_EQ(row, expected);
  }
}

// format/dtype.h promises the model loader that every runnable type has kernels.
TEST(Matmul, EveryRunnableTypeHasKernelsInEveryTable) {
  for (uint32_t id = 0; id < kernels::kNumTypeSlots; ++id) {
    if (!dtype_traits(id) || !dtype_is_runnable(static_cast<DType>(id))) continue;
    const DType type = static_cast<DType>(id);
    EXPECT_TRUE(can_dequantize(type)) << dtype_name(type);
    for (kernels::Isa isa : {kernels::Isa::kScalar, kernels::Isa::kAvx2, kernels::Isa::kAvx512}) {
      if (const kernels::KernelTable* table = kernels::kernels_for_isa(isa)) {
        EXPECT_NE(table->matmul_for(type), nullptr) << kernels::isa_name(isa) << " " << dtype_name(type);
      }
    }
  }
}

TEST(Matmul, ActiveIsaIsKnown) {
  const std::string name = matmul_isa_name();
  EXPECT_TRUE(name == "scalar" || name == "avx2" || name == "avx512" || name == "neon" || name == "neon_dot") << name;
  EXPECT_NE(kernels::active_kernels().matmul_for(DType::kQ4_0), nullptr);
  EXPECT_EQ(kernels::active_kernels().matmul_for(DType::kI32), nullptr);
}

}  // namespace
}  // namespace edgellm
