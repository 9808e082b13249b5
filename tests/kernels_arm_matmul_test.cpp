// The aarch64 matmul kernels (kernels/arm/) against the scalar references on random data at awkward
// sizes: f32 activations for every weight type, int8 activations (kernels/act_quant.h) for the types
// that have them, the activation quantizer byte for byte; tiling and row-range invariance; the SDOT
// and SMULL variants bit-identical. Built natively on an ARM board or
// cross-built and run under qemu-aarch64 (scripts/test.sh, ARM stage: -cpu cortex-a72 without the
// dot-product extension, -cpu cortex-a76 with it). On other CPUs every test skips.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/act_quant.h"
#include "kernels/kernel_table.h"
#include "kernels/matmul.h"
#include "kernels/quant_blocks.h"
#include "kernels/quant_edgellm.h"
#include "kernels/quantize.h"
#include "kernels/ref/matmul_ref.h"
#include "util/half.h"

namespace edgellm {
namespace {

using kernels::Isa;
using kernels::KernelTable;

std::vector<Isa> arm_isas() {
  std::vector<Isa> isas;
  for (Isa isa : {Isa::kNeon, Isa::kNeonDot}) {
    if (kernels::kernels_for_isa(isa) != nullptr) isas.push_back(isa);
  }
  return isas;
}

// Random weights [n_rows][k]: quantized from N(0, 1) where edgellm has a quantizer, otherwise random
// bytes (every quant bit pattern is valid) with every block's fp16 scales set to sane magnitudes.
std::vector<uint8_t> random_weights(DType type, int64_t n_rows, int64_t k, uint32_t seed) {
  std::mt19937 rng(seed);
  const size_t n_bytes = dtype_row_bytes(type, k) * static_cast<size_t>(n_rows);
  std::vector<uint8_t> bytes(n_bytes);
  if (dtype_is_edgellm_only(type) || can_quantize(type)) {
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<float> values(static_cast<size_t>(n_rows * k));
    for (auto& v : values) v = dist(rng);
    if (dtype_is_edgellm_only(type)) {
      EXPECT_TRUE(ref::quantize_row_e4(type, values.data(), bytes.data(), n_rows * k));
    } else {
      EXPECT_TRUE(quantize_row(type, values.data(), bytes.data(), n_rows * k).ok());
    }
    return bytes;
  }
  std::uniform_int_distribution<int> byte(0, 255);
  for (auto& b : bytes) b = static_cast<uint8_t>(byte(rng));
  std::vector<size_t> scale_offsets;  // fp16 scales inside a block
  switch (type) {
    case DType::kQ2_K: scale_offsets = {offsetof(BlockQ2_K, d), offsetof(BlockQ2_K, dmin)}; break;
    case DType::kQ3_K: scale_offsets = {offsetof(BlockQ3_K, d)}; break;
    case DType::kQ4_K: scale_offsets = {offsetof(BlockQ4_K, d), offsetof(BlockQ4_K, dmin)}; break;
    case DType::kQ5_K: scale_offsets = {offsetof(BlockQ5_K, d), offsetof(BlockQ5_K, dmin)}; break;
    case DType::kQ6_K: scale_offsets = {offsetof(BlockQ6_K, d)}; break;
    case DType::kQ8_1: scale_offsets = {offsetof(BlockQ8_1, d), offsetof(BlockQ8_1, s)}; break;
    case DType::kQ8_K: break;
    default: ADD_FAILURE() << "no generator for " << dtype_name(type);
  }
  const size_t block_bytes = dtype_traits(type).block_bytes;
  std::uniform_real_distribution<float> scale(0.005f, 0.05f);
  for (size_t pos = 0; pos + block_bytes <= n_bytes; pos += block_bytes) {
    for (size_t offset : scale_offsets) {
      const uint16_t h = f32_to_fp16(scale(rng));
      std::memcpy(bytes.data() + pos + offset, &h, sizeof(h));
    }
    if (type == DType::kQ8_K) {
      const float d = scale(rng);
      std::memcpy(bytes.data() + pos, &d, sizeof(d));
    }
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

struct Problem {
  DType type;
  int64_t k, n_rows, n_tokens;
  std::vector<uint8_t> w;
  std::vector<float> x;

  Problem(DType type_, int64_t k_, int64_t n_rows_, int64_t n_tokens_, uint32_t seed)
      : type(type_), k(k_), n_rows(n_rows_), n_tokens(n_tokens_), w(random_weights(type_, n_rows_, k_, seed)),
        x(random_activations(n_tokens_, k_, seed + 7)) {}

  size_t row_bytes() const { return dtype_row_bytes(type, k); }

  // Runs `fn` on rows [row_begin, row_end) into y[t * y_stride + r - row_begin].
  void run(kernels::MatmulRowsFn fn, std::vector<float>& y, int64_t y_stride, int64_t row_begin,
           int64_t row_end, int64_t tokens = -1, int64_t first_token = 0) const {
    kernels::MatmulArgs args;
    args.type = type;
    args.w = w.data();
    args.w_row_bytes = row_bytes();
    args.k = k;
    args.x = x.data() + first_token * k;
    args.n_tokens = tokens < 0 ? n_tokens : tokens;
    args.y = y.data();
    args.y_stride = y_stride;
    fn(args, row_begin, row_end);
  }

  // The activations quantized by the reference (kernels/act_quant.h), [n_tokens][act_row_bytes(k)].
  std::vector<uint8_t> quantized_x() const {
    const size_t row = kernels::act_row_bytes(k);
    std::vector<uint8_t> xq(row * static_cast<size_t>(n_tokens));
    for (int64_t t = 0; t < n_tokens; ++t) ref::quantize_act(x.data() + t * k, k, xq.data() + t * row);
    return xq;
  }

  void run_q8act(kernels::MatmulRowsFn fn, const std::vector<uint8_t>& xq, std::vector<float>& y, int64_t y_stride,
                 int64_t row_begin, int64_t row_end, int64_t tokens = -1, int64_t first_token = 0) const {
    kernels::MatmulArgs args;
    args.type = type;
    args.w = w.data();
    args.w_row_bytes = row_bytes();
    args.k = k;
    args.xq_row_bytes = kernels::act_row_bytes(k);
    args.xq = xq.data() + static_cast<size_t>(first_token) * args.xq_row_bytes;
    args.n_tokens = tokens < 0 ? n_tokens : tokens;
    args.y = y.data();
    args.y_stride = y_stride;
    fn(args, row_begin, row_end);
  }

  std::vector<float> dequantized_row(int64_t r) const {
    std::vector<float> out(static_cast<size_t>(k));
    const uint8_t* src = w.data() + static_cast<size_t>(r) * row_bytes();
    if (dtype_is_edgellm_only(type)) {
      EXPECT_TRUE(ref::dequantize_row_e4(type, src, out.data(), k));
    } else {
      EXPECT_TRUE(dequantize_row(type, src, out.data(), k).ok());
    }
    return out;
  }

  // The offset m of every element of row r (0 for types without one).
  std::vector<float> offsets_of_row(int64_t r) const {
    std::vector<float> m(static_cast<size_t>(k), 0.0f);
    const int64_t group = dtype_is_edgellm_only(type) ? e4_group_size(type) : dtype_traits(type).block_size;
    const size_t block_bytes = dtype_is_edgellm_only(type) ? 4 + static_cast<size_t>(group) / 2 : dtype_traits(type).block_bytes;
    if (type != DType::kQ4_1 && !dtype_is_edgellm_only(type)) return m;
    const uint8_t* row = w.data() + static_cast<size_t>(r) * row_bytes();
    for (int64_t j = 0; j < k; ++j) {
      uint16_t bits;
      std::memcpy(&bits, row + static_cast<size_t>(j / group) * block_bytes + 2, sizeof(bits));  // m after d
      m[static_cast<size_t>(j)] = fp16_to_f32(bits);
    }
    return m;
  }
};

// |y - y_ref| <= 2 gamma_k sum_k |w_k x_k|, gamma_k = k u / (1 - k u), u = 2^-24: both sum the same
// f32 products (the dequantized weights are bit-identical) in different orders, with or without FMA
// (Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., eq. 3.5).
double error_budget(const std::vector<float>& w_row, const float* x, int64_t k) {
  double abs_sum = 0;
  for (int64_t j = 0; j < k; ++j) abs_sum += std::fabs(static_cast<double>(w_row[j]) * x[j]);
  const double u = std::ldexp(1.0, -24);
  const double gamma = static_cast<double>(k) * u / (1 - static_cast<double>(k) * u);
  return 2 * gamma * abs_sum + 1e-30;
}

const std::vector<DType>& all_types() {
  static const std::vector<DType> types = {DType::kF32,  DType::kF16,  DType::kBF16, DType::kQ8_0, DType::kQ4_0,
                                           DType::kQ4_1, DType::kQ5_0, DType::kQ5_1, DType::kQ8_1, DType::kQ2_K,
                                           DType::kQ3_K, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K, DType::kQ8_K,
                                           DType::kIQ4_NL};
  return types;
}

std::vector<int64_t> awkward_ks(DType type) {
  const int64_t block = dtype_traits(type).block_size;
  if (block == 1) return {1, 7, 32, 33, 96, 4097};
  if (block == 32) return {32, 64, 96, 4096 + 32};
  return {256, 512, 4096 + 256};
}

TEST(MatmulArm, F32ActivationKernelsMatchReferenceAtAwkwardSizes) {
  const std::vector<Isa> isas = arm_isas();
  if (isas.empty()) GTEST_SKIP() << "not an aarch64 build";
  uint32_t seed = 500;
  for (DType type : all_types()) {
    for (int64_t k : awkward_ks(type)) {
      for (int64_t n_rows : {1, 7, 33}) {
        for (int64_t n_tokens : {1, 3, 17}) {
          ++seed;
          const Problem p(type, k, n_rows, n_tokens, seed);
          std::vector<float> y_ref(static_cast<size_t>(n_tokens * n_rows), NAN);
          p.run(kernels::scalar_kernels().matmul_for(type), y_ref, n_rows, 0, n_rows);
          for (Isa isa : isas) {
            const kernels::MatmulRowsFn fn = kernels::kernels_for_isa(isa)->matmul_for(type);
            ASSERT_NE(fn, nullptr) << kernels::isa_name(isa) << " " << dtype_name(type);
            std::vector<float> y(y_ref.size(), NAN);
            p.run(fn, y, n_rows, 0, n_rows);
            for (int64_t r = 0; r < n_rows; ++r) {
              const std::vector<float> w_row = p.dequantized_row(r);
              for (int64_t t = 0; t < n_tokens; ++t) {
                const size_t i = static_cast<size_t>(t * n_rows + r);
                ASSERT_LE(std::fabs(static_cast<double>(y[i]) - y_ref[i]), error_budget(w_row, p.x.data() + t * k, k))
                    << kernels::isa_name(isa) << " " << dtype_name(type) << " k=" << k << " rows=" << n_rows
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

// A token's output does not depend on the batch (decode tile == prefill tile) nor on the row range.
TEST(MatmulArm, TilingAndRowRangesDoNotChangeResults) {
  const std::vector<Isa> isas = arm_isas();
  if (isas.empty()) GTEST_SKIP() << "not an aarch64 build";
  for (Isa isa : isas) {
    for (DType type : {DType::kF32, DType::kF16, DType::kQ8_0, DType::kQ4_0, DType::kIQ4_NL, DType::kQ5_1,
                       DType::kQ4_K}) {
      const int64_t k = type == DType::kQ4_K ? 512 : 96 + (dtype_traits(type).block_size == 1 ? 5 : 0);
      const int64_t n_rows = 37, n_tokens = 6;
      const Problem p(type, k, n_rows, n_tokens, 31);
      const kernels::MatmulRowsFn fn = kernels::kernels_for_isa(isa)->matmul_for(type);
      std::vector<float> y(static_cast<size_t>(n_tokens * n_rows));
      p.run(fn, y, n_rows, 0, n_rows);
      for (int64_t t = 0; t < n_tokens; ++t) {
        std::vector<float> y_one(static_cast<size_t>(n_rows));
        p.run(fn, y_one, n_rows, 0, n_rows, 1, t);
        EXPECT_EQ(std::memcmp(y_one.data(), y.data() + t * n_rows, y_one.size() * sizeof(float)), 0)
            << kernels::isa_name(isa) << " " << dtype_name(type) << " token " << t;
      }
      const int64_t row_begin = 5, row_end = 30, stride = 40;
      std::vector<float> y_part(static_cast<size_t>(n_tokens * stride), -1.0f);
      p.run(fn, y_part, stride, row_begin, row_end);
      for (int64_t t = 0; t < n_tokens; ++t) {
        for (int64_t r = row_begin; r < row_end; ++r) {
          EXPECT_EQ(y_part[t * stride + r - row_begin], y[t * n_rows + r]) << dtype_name(type);
        }
        EXPECT_EQ(y_part[t * stride + (row_end - row_begin)], -1.0f) << "wrote past the range";
      }
    }
  }
}

TEST(MatmulArm, EveryRunnableTypeHasKernelsAndTheBestIsaIsActive) {
  const std::vector<Isa> isas = arm_isas();
  if (isas.empty()) GTEST_SKIP() << "not an aarch64 build";
  for (Isa isa : isas) {
    const KernelTable* table = kernels::kernels_for_isa(isa);
    EXPECT_EQ(table->isa, isa);
    for (uint32_t id = 0; id < kernels::kNumTypeSlots; ++id) {
      if (!dtype_traits(id) || !dtype_is_runnable(static_cast<DType>(id))) continue;
      EXPECT_NE(table->matmul_for(static_cast<DType>(id)), nullptr)
          << kernels::isa_name(isa) << " " << dtype_name(static_cast<DType>(id));
    }
  }
  if (std::getenv("EDGELLM_ISA") == nullptr) {
    EXPECT_EQ(kernels::active_kernels().isa, isas.back()) << "active: " << matmul_isa_name();
  }
}

// scripts/test.sh runs this binary under qemu with -cpu cortex-a72 (no dot-product extension) and
// -cpu cortex-a76 (with it) and says which tables must exist, so a wrong HWCAP check cannot silently
// leave the SDOT kernels untested.
TEST(MatmulArm, AvailableIsasMatchTheCpu) {
  const char* expected = std::getenv("EDGELLM_TEST_ARM_ISAS");  // e.g. "neon,neon_dot"
  std::string got;
  for (Isa isa : arm_isas()) got += std::string(got.empty() ? "" : ",") + kernels::isa_name(isa);
  std::printf("aarch64 kernel tables: %s; active: %s\n", got.empty() ? "(none)" : got.c_str(), matmul_isa_name());
  if (expected == nullptr) GTEST_SKIP() << "EDGELLM_TEST_ARM_ISAS not set";
  EXPECT_EQ(got, expected);
}

// ---- int8 activations ----

const std::vector<DType>& q8act_types() {
  static const std::vector<DType> types = {DType::kQ8_0, DType::kQ4_0, DType::kIQ4_NL, DType::kQ4_1,
                                           DType::kE4G64, DType::kE4G128, DType::kE4G256};
  return types;
}

std::vector<Isa> arm_isas_with_int8() {
  std::vector<Isa> isas;
  for (Isa isa : arm_isas()) {
    if (kernels::kernels_for_isa(isa)->quantize_act != nullptr) isas.push_back(isa);
  }
  return isas;
}

TEST(MatmulArm, ActivationQuantizerWritesTheReferenceBytes) {
  const std::vector<Isa> isas = arm_isas_with_int8();
  if (isas.empty()) GTEST_SKIP() << "no aarch64 int8-activation kernels in this build";
  uint32_t seed = 900;
  for (int64_t k : {1, 7, 31, 32, 33, 96, 127, 128, 129, 4097, 4096 + 32}) {
    std::vector<float> x = random_activations(1, k, ++seed);
    if (k > 5) x[3] = 0.5f * (x[4] = 3.0f);  // a tie: 1.5 / (3 / 127) lands near a half step
    std::vector<uint8_t> expected(kernels::act_row_bytes(k), 0xAB), got(expected.size(), 0xCD);
    ref::quantize_act(x.data(), k, expected.data());
    for (Isa isa : isas) {
      std::fill(got.begin(), got.end(), 0xCD);
      kernels::kernels_for_isa(isa)->quantize_act(x.data(), k, got.data());
      ASSERT_EQ(std::memcmp(got.data(), expected.data(), got.size()), 0) << kernels::isa_name(isa) << " k=" << k;
    }
  }
}

// |y - y_ref| <= 2 gamma_n sum_j (|w_j| + 2 |m_j|) |d_x q_j|, n = 2 n_blocks + 2: both sum, per block,
// (d_w d_x) dot and (m_w d_x) sum(q) -- the same rounded scale products times exact integers -- in
// different orders, with or without FMA (Higham eq. 3.5); |d_w dot| <= sum_j (|w_j| + |m_j|) |q_j|.
double q8act_budget(const std::vector<float>& w_row, const std::vector<float>& m_row, const uint8_t* xq, int64_t k) {
  double abs_sum = 0;
  for (int64_t j = 0; j < k; ++j) {
    const double xj = std::fabs(static_cast<double>(ref::act_scale(xq, j)) * ref::act_q(xq, j));
    abs_sum += (std::fabs(static_cast<double>(w_row[j])) + 2 * std::fabs(static_cast<double>(m_row[j]))) * xj;
  }
  const double n = static_cast<double>(2 * (k / 32) + 2), u = std::ldexp(1.0, -24);
  return 2 * (n * u / (1 - n * u)) * abs_sum + 1e-30;
}

std::vector<int64_t> q8act_ks(DType type) {
  const int64_t g = dtype_is_edgellm_only(type) ? e4_group_size(type) : 32;
  // 1, 3, 4 and 5 blocks of 32 and a long row: partial activation groups of 128 at every offset.
  std::vector<int64_t> ks;
  for (int64_t k : {int64_t{32}, int64_t{96}, int64_t{128}, int64_t{160}, int64_t{4096 + 32}}) {
    const int64_t rounded = (k + g - 1) / g * g;
    if (ks.empty() || ks.back() != rounded) ks.push_back(rounded);
  }
  if (g > 32) ks.push_back(g * 3);
  return ks;
}

TEST(MatmulArm, Int8ActivationKernelsMatchReferenceAtAwkwardSizes) {
  const std::vector<Isa> isas = arm_isas_with_int8();
  if (isas.empty()) GTEST_SKIP() << "no aarch64 int8-activation kernels in this build";
  uint32_t seed = 700;
  for (DType type : q8act_types()) {
    for (int64_t k : q8act_ks(type)) {
      for (int64_t n_rows : {1, 7, 33}) {
        for (int64_t n_tokens : {1, 3, 17}) {
          ++seed;
          const Problem p(type, k, n_rows, n_tokens, seed);
          const std::vector<uint8_t> xq = p.quantized_x();
          std::vector<float> y_ref(static_cast<size_t>(n_tokens * n_rows), NAN);
          p.run_q8act(ref::matmul_rows_q8act, xq, y_ref, n_rows, 0, n_rows);
          std::vector<float> y_first;
          for (Isa isa : isas) {
            const kernels::MatmulRowsFn fn = kernels::kernels_for_isa(isa)->matmul_q8act_for(type);
            ASSERT_NE(fn, nullptr) << kernels::isa_name(isa) << " " << dtype_name(type);
            std::vector<float> y(y_ref.size(), NAN);
            p.run_q8act(fn, xq, y, n_rows, 0, n_rows);
            for (int64_t r = 0; r < n_rows; ++r) {
              const std::vector<float> w_row = p.dequantized_row(r), m_row = p.offsets_of_row(r);
              for (int64_t t = 0; t < n_tokens; ++t) {
                const size_t i = static_cast<size_t>(t * n_rows + r);
                const uint8_t* xq_t = xq.data() + static_cast<size_t>(t) * kernels::act_row_bytes(k);
                ASSERT_LE(std::fabs(static_cast<double>(y[i]) - y_ref[i]), q8act_budget(w_row, m_row, xq_t, k))
                    << kernels::isa_name(isa) << " " << dtype_name(type) << " k=" << k << " rows=" << n_rows
                    << " tokens=" << n_tokens << " r=" << r << " t=" << t << " seed=" << seed << ": got " << y[i]
                    << ", reference " << y_ref[i];
              }
            }
            // SMULL/SADALP and SDOT form the same integers and the same float sequence.
            if (y_first.empty()) {
              y_first = y;
            } else {
              ASSERT_EQ(std::memcmp(y.data(), y_first.data(), y.size() * sizeof(float)), 0)
                  << kernels::isa_name(isa) << " differs from " << kernels::isa_name(isas.front()) << " "
                  << dtype_name(type) << " k=" << k << " seed=" << seed;
            }
          }
        }
      }
    }
  }
}

TEST(MatmulArm, Int8ActivationTilingAndRowRangesDoNotChangeResults) {
  const std::vector<Isa> isas = arm_isas_with_int8();
  if (isas.empty()) GTEST_SKIP() << "no aarch64 int8-activation kernels in this build";
  for (Isa isa : isas) {
    for (DType type : q8act_types()) {
      const int64_t k = dtype_is_edgellm_only(type) ? 3 * e4_group_size(type) : 160;
      const int64_t n_rows = 37, n_tokens = 6;
      const Problem p(type, k, n_rows, n_tokens, 61);
      const std::vector<uint8_t> xq = p.quantized_x();
      const kernels::MatmulRowsFn fn = kernels::kernels_for_isa(isa)->matmul_q8act_for(type);
      std::vector<float> y(static_cast<size_t>(n_tokens * n_rows));
      p.run_q8act(fn, xq, y, n_rows, 0, n_rows);
      for (int64_t t = 0; t < n_tokens; ++t) {
        std::vector<float> y_one(static_cast<size_t>(n_rows));
        p.run_q8act(fn, xq, y_one, n_rows, 0, n_rows, 1, t);
        EXPECT_EQ(std::memcmp(y_one.data(), y.data() + t * n_rows, y_one.size() * sizeof(float)), 0)
            << kernels::isa_name(isa) << " " << dtype_name(type) << " token " << t;
      }
      const int64_t row_begin = 5, row_end = 30, stride = 40;
      std::vector<float> y_part(static_cast<size_t>(n_tokens * stride), -1.0f);
      p.run_q8act(fn, xq, y_part, stride, row_begin, row_end);
      for (int64_t t = 0; t < n_tokens; ++t) {
        for (int64_t r = row_begin; r < row_end; ++r) {
          EXPECT_EQ(y_part[t * stride + r - row_begin], y[t * n_rows + r]) << dtype_name(type);
        }
        EXPECT_EQ(y_part[t * stride + (row_end - row_begin)], -1.0f) << "wrote past the range";
      }
    }
  }
}

}  // namespace
}  // namespace edgellm
