// Block formats against hand-computed blocks, and quantize -> dequantize error bounds.
// Bit-exactness with ggml's own code is checked by tests/python/test_quant_ggml.py.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/quant_blocks.h"
#include "kernels/quantize.h"
#include "kernels/ref/quant_ref.h"
#include "util/half.h"

namespace edgellm {
namespace {

template <class Block>
Block quantize_one(DType type, const std::vector<float>& x) {
  Block b;
  std::memset(&b, 0xAB, sizeof(b));
  const Status status = quantize_row(type, x.data(), &b, static_cast<int64_t>(x.size()));
  EXPECT_TRUE(status.ok()) << status.error().message;
  return b;
}

template <class Block>
std::vector<float> dequantize_one(DType type, const Block& b) {
  std::vector<float> y(static_cast<size_t>(dtype_traits(type).block_size));
  const Status status = dequantize_row(type, &b, y.data(), static_cast<int64_t>(y.size()));
  EXPECT_TRUE(status.ok()) << status.error().message;
  return y;
}

// ---- hand-computed blocks ----

TEST(QuantBlocks, Q4_0SymmetricRamp) {
  // Largest magnitude -8 -> d = -8 / -8 = 1; q = trunc(x + 8.5) = x + 8.
  std::vector<float> x(32, 0.0f);
  for (int j = 0; j < 16; ++j) x[j] = static_cast<float>(j - 8);
  const auto b = quantize_one<BlockQ4_0>(DType::kQ4_0, x);
  EXPECT_EQ(b.d, 0x3C00);  // fp16 1.0
  for (int j = 0; j < 16; ++j) EXPECT_EQ(b.qs[j], j | 0x80) << j;  // high nibbles: 0 + 8
  EXPECT_EQ(dequantize_one(DType::kQ4_0, b), x);
}

TEST(QuantBlocks, Q4_0PositiveMaxRoundsHalfUp) {
  // max = +4 -> d = 4 / -8 = -0.5, id = -2. x = 4 -> q = trunc(0.5) = 0; x = 0 -> 8;
  // x = -1 -> trunc(10.5) = 10; x = 0.25 -> trunc(8.0) = 8 (so 0.25 dequantizes to 0).
  std::vector<float> x(32, 0.0f);
  x[5] = 4.0f;
  x[20] = -1.0f;
  x[7] = 0.25f;
  const auto b = quantize_one<BlockQ4_0>(DType::kQ4_0, x);
  EXPECT_EQ(b.d, 0xB800);  // fp16 -0.5
  for (int j = 0; j < 16; ++j) {
    const int expected = j == 5 ? 0x80 : j == 4 ? 0xA8 : 0x88;
    EXPECT_EQ(b.qs[j], expected) << j;
  }
  std::vector<float> expected = x;
  expected[7] = 0.0f;
  EXPECT_EQ(dequantize_one(DType::kQ4_0, b), expected);
}

TEST(QuantBlocks, IQ4_NLCodebook) {
  // Largest magnitude -127 -> d = -127 / -127 = 1: every codebook value maps onto itself, x = 20 lies
  // between 13 (index 9) and 25 (index 10) and goes to the nearer 25, x = 0 to 1 (index 8).
  const int8_t values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
  std::vector<float> x(32, 0.0f);
  for (int j = 0; j < 16; ++j) x[j] = values[j];
  x[16] = 20.0f;
  const auto b = quantize_one<BlockIQ4_NL>(DType::kIQ4_NL, x);
  EXPECT_EQ(b.d, 0x3C00);  // fp16 1.0
  for (int j = 0; j < 16; ++j) EXPECT_EQ(b.qs[j] & 0x0F, j) << j;
  EXPECT_EQ(b.qs[0] >> 4, 10);
  for (int j = 1; j < 16; ++j) EXPECT_EQ(b.qs[j] >> 4, 8) << j;
  std::vector<float> expected = x;
  expected[16] = 25.0f;
  for (int j = 17; j < 32; ++j) expected[j] = 1.0f;
  EXPECT_EQ(dequantize_one(DType::kIQ4_NL, b), expected);
}

TEST(QuantBlocks, IQ4_NLNearestIndexAgreesWithAFullScan) {
  const int8_t values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
  for (int i = -1400; i <= 1400; ++i) {
    const float v = static_cast<float>(i) * 0.1f;
    int best = 0;  // the first of equally near values: the lower one
    for (int j = 1; j < 16; ++j) {
      if (std::fabs(v - values[j]) < std::fabs(v - values[best])) best = j;
    }
    EXPECT_EQ(ref::iq4nl_nearest_index(v), best) << v;
  }
  for (int j = 0; j < 16; ++j) EXPECT_EQ(ref::iq4nl_nearest_index(values[j]), j);
  EXPECT_EQ(ref::iq4nl_nearest_index(-1e30f), 0);
  EXPECT_EQ(ref::iq4nl_nearest_index(1e30f), 15);
}

TEST(QuantBlocks, Q4_1Offset) {
  // min 10, max 25 -> d = 15 / 15 = 1, m = 10; q = x - 10.
  std::vector<float> x(32);
  for (int j = 0; j < 16; ++j) {
    x[j] = 10.0f + j;
    x[16 + j] = 25.0f - j;
  }
  const auto b = quantize_one<BlockQ4_1>(DType::kQ4_1, x);
  EXPECT_EQ(b.d, 0x3C00);
  EXPECT_EQ(b.m, 0x4900);  // fp16 10.0
  for (int j = 0; j < 16; ++j) EXPECT_EQ(b.qs[j], j | ((15 - j) << 4)) << j;
  EXPECT_EQ(dequantize_one(DType::kQ4_1, b), x);
}

TEST(QuantBlocks, IQ4_NLHandBlock) {
  // d = 0.5; byte j holds code j (element j) and code 15 - j (element 16 + j): x = d * codebook[code],
  // codebook {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}.
  BlockIQ4_NL b{};
  b.d = 0x3800;  // fp16 0.5
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  const std::vector<float> by_code = {-63.5f, -52.0f, -41.5f, -32.5f, -24.5f, -17.5f, -11.0f, -5.0f,
                                      0.5f,   6.5f,   12.5f,  19.0f,  26.5f,  34.5f,  44.5f,  56.5f};
  const auto y = dequantize_one(DType::kIQ4_NL, b);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], by_code[j]) << j;
    EXPECT_EQ(y[16 + j], by_code[15 - j]) << 16 + j;
  }
}

TEST(QuantBlocks, IQ4_NLNearestCodebookValue) {
  // Largest magnitude -127 -> d = -127 / -127 = 1, so x / d is x: the codebook values themselves map to
  // their codes; 0 is nearest to 1 (code 8); -4.5 is equally far from -10 and 1 and takes the lower code
  // (7); 120 is past the top value 113 (code 15); 95 is nearer 89 (code 14) than 113.
  std::vector<float> x(32, 0.0f);
  const float codebook[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
  for (int j = 0; j < 16; ++j) x[j] = codebook[j];
  x[16] = 0.0f;
  x[17] = -4.5f;
  x[18] = 120.0f;
  x[19] = 95.0f;
  const auto b = quantize_one<BlockIQ4_NL>(DType::kIQ4_NL, x);
  EXPECT_EQ(b.d, 0x3C00);  // fp16 1.0
  const int high_codes[16] = {8, 7, 15, 14, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8};
  for (int j = 0; j < 16; ++j) EXPECT_EQ(b.qs[j], j | (high_codes[j] << 4)) << j;
  const auto y = dequantize_one(DType::kIQ4_NL, b);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(y[j], codebook[j]) << j;
  EXPECT_EQ(y[16], 1.0f);
  EXPECT_EQ(y[17], -10.0f);
  EXPECT_EQ(y[18], 113.0f);
  EXPECT_EQ(y[19], 89.0f);
}

TEST(QuantBlocks, Q5_0HighBits) {
  // x = j - 16: max magnitude -16 -> d = 1, q = j. Bit 4 is set exactly for j >= 16.
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j - 16);
  const auto b = quantize_one<BlockQ5_0>(DType::kQ5_0, x);
  EXPECT_EQ(b.d, 0x3C00);
  const uint8_t expected_qh[4] = {0x00, 0x00, 0xFF, 0xFF};
  EXPECT_EQ(std::memcmp(b.qh, expected_qh, 4), 0);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(b.qs[j], j | (j << 4)) << j;
  EXPECT_EQ(dequantize_one(DType::kQ5_0, b), x);
}

TEST(QuantBlocks, Q5_1HighBitsAndOffset) {
  // x = 100 + j: min 100, max 131 -> d = 1, m = 100, q = j.
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = 100.0f + j;
  const auto b = quantize_one<BlockQ5_1>(DType::kQ5_1, x);
  EXPECT_EQ(b.d, 0x3C00);
  EXPECT_EQ(b.m, 0x5640);  // fp16 100.0
  const uint8_t expected_qh[4] = {0x00, 0x00, 0xFF, 0xFF};
  EXPECT_EQ(std::memcmp(b.qh, expected_qh, 4), 0);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(b.qs[j], j | (j << 4)) << j;
  EXPECT_EQ(dequantize_one(DType::kQ5_1, b), x);
}

TEST(QuantBlocks, Q8_0RoundsHalfAwayFromZero) {
  // amax 127 -> d = 1; q = roundf(x): 2.5 -> 3, -2.5 -> -3, 0.49 -> 0.
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j - 16);
  x[0] = 2.5f;
  x[1] = -2.5f;
  x[2] = 0.49f;
  x[31] = 127.0f;
  const auto b = quantize_one<BlockQ8_0>(DType::kQ8_0, x);
  EXPECT_EQ(b.d, 0x3C00);
  EXPECT_EQ(b.qs[0], 3);
  EXPECT_EQ(b.qs[1], -3);
  EXPECT_EQ(b.qs[2], 0);
  EXPECT_EQ(b.qs[31], 127);
  for (int j = 3; j < 31; ++j) EXPECT_EQ(b.qs[j], j - 16);
  const auto y = dequantize_one(DType::kQ8_0, b);
  EXPECT_EQ(y[0], 3.0f);
  EXPECT_EQ(y[1], -3.0f);
  EXPECT_EQ(y[2], 0.0f);
  EXPECT_EQ(y[31], 127.0f);
}

TEST(QuantBlocks, AllZeroBlocksGiveZeroScale) {
  const std::vector<float> x(32, 0.0f);
  EXPECT_EQ(quantize_one<BlockQ8_0>(DType::kQ8_0, x).d, 0);
  // 0 / -8 is -0.0: ggml stores the negative zero, and so must we to stay bit-exact.
  EXPECT_EQ(quantize_one<BlockQ4_0>(DType::kQ4_0, x).d, 0x8000);
  EXPECT_EQ(dequantize_one(DType::kQ4_0, quantize_one<BlockQ4_0>(DType::kQ4_0, x)), x);
  EXPECT_EQ(dequantize_one(DType::kQ5_1, quantize_one<BlockQ5_1>(DType::kQ5_1, x)), x);
}

TEST(QuantBlocks, F16AndBF16) {
  const std::vector<float> x = {1.0f, -2.0f, 65504.0f, 3.14159265f};
  std::vector<uint16_t> h(4), bf(4);
  ASSERT_TRUE(quantize_row(DType::kF16, x.data(), h.data(), 4).ok());
  ASSERT_TRUE(quantize_row(DType::kBF16, x.data(), bf.data(), 4).ok());
  EXPECT_EQ(h, (std::vector<uint16_t>{0x3C00, 0xC000, 0x7BFF, 0x4248}));  // pi -> 3.140625
  EXPECT_EQ(bf, (std::vector<uint16_t>{0x3F80, 0xC000, 0x4780 /* 65536: rounds up */, 0x4049}));
  std::vector<float> y(4);
  ASSERT_TRUE(dequantize_row(DType::kBF16, bf.data(), y.data(), 4).ok());
  EXPECT_EQ(y, (std::vector<float>{1.0f, -2.0f, 65536.0f, 3.140625f}));
}

TEST(QuantBlocks, Q2_KHandBlock) {
  BlockQ2_K b{};
  b.d = 0x4000;     // 2.0
  b.dmin = 0x3C00;  // 1.0
  b.scales[0] = 0x21;  // sub-block 0: scale 1, min 2
  b.qs[0] = 0x03;      // element 0 (plane 0) = 3; element 32 (plane 1, sub-block 2) = 0
  const auto y = dequantize_one(DType::kQ2_K, b);
  EXPECT_EQ(y[0], 2.0f * 1 * 3 - 1.0f * 2);  // 4
  EXPECT_EQ(y[1], -2.0f);                    // q = 0 in sub-block 0
  EXPECT_EQ(y[16], 0.0f);                    // sub-block 1: scale 0, min 0
  EXPECT_EQ(y[32], 0.0f);
}

TEST(QuantBlocks, Q3_KHandBlock) {
  BlockQ3_K b{};
  b.d = 0x3C00;
  b.scales[0] = 0x05;  // scale 0 = (5 | 2 << 4) - 32 = 5
  b.scales[8] = 0x02;
  b.qs[0] = 0x01;      // element 0: low bits 1
  b.hmask[0] = 0x01;   // element 0: high bit set -> no -4
  const auto y = dequantize_one(DType::kQ3_K, b);
  EXPECT_EQ(y[0], 5.0f * 1);
  EXPECT_EQ(y[1], 5.0f * -4);     // low bits 0, high bit clear
  EXPECT_EQ(y[16], -32.0f * -4);  // scale 1 raw 0 -> -32
}

TEST(QuantBlocks, Q4_KHandBlock) {
  BlockQ4_K b{};
  b.d = 0x3C00;     // 1.0
  b.dmin = 0x3800;  // 0.5
  b.scales[0] = 2;  // sub-block 0: scale 2
  b.scales[4] = 3;  //              min 3
  // sub-block 5: scale 17 = 0b01'0001, min 33 = 0b10'0001 -> nibbles in byte 9, top bits in bytes 1, 5
  b.scales[9] = 0x11;
  b.scales[1] = 0x40;
  b.scales[5] = 0x80;
  b.qs[0] = 0x07;           // element 0 = 7
  b.qs[64 + 3] = 0x90;      // chunk 2, high nibble -> element 128 + 32 + 3 = 163, q = 9
  const auto y = dequantize_one(DType::kQ4_K, b);
  EXPECT_EQ(y[0], 1.0f * 2 * 7 - 0.5f * 3);     // 12.5
  EXPECT_EQ(y[1], -1.5f);
  EXPECT_EQ(y[163], 1.0f * 17 * 9 - 0.5f * 33);  // 136.5
  EXPECT_EQ(y[164], -16.5f);
  EXPECT_EQ(y[32], 0.0f);
}

TEST(QuantBlocks, Q5_KHandBlock) {
  BlockQ5_K b{};
  b.d = 0x3C00;
  b.scales[0] = 1;  // sub-block 0: scale 1, min 0
  b.qs[0] = 0x03;
  b.qh[0] = 0x01;   // element 0 gets +16
  b.qh[1] = 0x02;   // element 32 + 1 (sub-block 1, scale 0) would get +16
  const auto y = dequantize_one(DType::kQ5_K, b);
  EXPECT_EQ(y[0], 19.0f);
  EXPECT_EQ(y[33], 0.0f);
}

TEST(QuantBlocks, Q6_KHandBlock) {
  BlockQ6_K b{};
  b.d = 0x3800;  // 0.5
  b.scales[0] = 3;
  b.scales[2] = -2;
  b.ql[0] = 0x05;
  b.qh[0] = 0x02 | (0x01 << 2);  // element 0: high bits 2; element 32: high bits 1
  b.ql[32] = 0x01;
  const auto y = dequantize_one(DType::kQ6_K, b);
  EXPECT_EQ(y[0], 0.5f * 3 * ((5 | 32) - 32));     // 7.5
  EXPECT_EQ(y[1], 0.5f * 3 * -32);                 // -48
  EXPECT_EQ(y[32], 0.5f * -2 * ((1 | 16) - 32));   // 15
  EXPECT_EQ(y[33], 0.5f * -2 * -32);               // 32
  EXPECT_EQ(y[16], 0.0f);                          // scale 1 is 0
}

// ---- error bounds ----

// Per-element bound of |x - dequant(quant(x))| for one block, from the quantizer's math:
// rounding costs half a step (a full step where the top level is clamped: Q4_0/Q5_0 map -max to
// level 2^bits, which is clamped to 2^bits - 1), and storing d (and m) in fp16 costs a relative
// 2^-11 on each, times the largest level magnitude.
double block_error_bound(DType type, const float* x) {
  double amax = 0, min = x[0], max = x[0];
  for (int j = 0; j < 32; ++j) {
    amax = std::max(amax, std::fabs(static_cast<double>(x[j])));
    min = std::min(min, static_cast<double>(x[j]));
    max = std::max(max, static_cast<double>(x[j]));
  }
  const double fp16_rel = std::ldexp(1.0, -11);
  const double slack = 1e-6 * amax + 1e-30;
  switch (type) {
    case DType::kQ8_0: { const double step = amax / 127; return 0.5 * step + 127 * step * fp16_rel + slack; }
    case DType::kQ4_0: { const double step = amax / 8; return step + 8 * step * fp16_rel + slack; }
    // IQ4_NL: d = amax / 127 maps the extreme onto -127; an element of the other sign as large reaches
    // only the other end, 113 (14 steps short), and inside the codebook the widest gap is 24 (89 .. 113).
    case DType::kIQ4_NL: { const double step = amax / 127; return 14 * step + 127 * step * fp16_rel + slack; }
    case DType::kQ5_0: { const double step = amax / 16; return step + 16 * step * fp16_rel + slack; }
    case DType::kQ4_1: {
      const double step = (max - min) / 15;
      return 0.5 * step + 15 * step * fp16_rel + std::fabs(min) * fp16_rel + slack;
    }
    case DType::kQ5_1: {
      const double step = (max - min) / 31;
      return 0.5 * step + 31 * step * fp16_rel + std::fabs(min) * fp16_rel + slack;
    }
    default: return 0;
  }
}

void check_round_trip(DType type, const std::vector<float>& x, uint32_t seed) {
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<uint8_t> q(dtype_row_bytes(type, n));
  std::vector<float> y(x.size());
  ASSERT_TRUE(quantize_row(type, x.data(), q.data(), n).ok());
  ASSERT_TRUE(dequantize_row(type, q.data(), y.data(), n).ok());
  double max_ratio = 0;
  for (int64_t block = 0; block < n / 32; ++block) {
    const double bound = block_error_bound(type, x.data() + 32 * block);
    for (int j = 0; j < 32; ++j) {
      const size_t i = static_cast<size_t>(32 * block + j);
      const double err = std::fabs(static_cast<double>(x[i]) - y[i]);
      ASSERT_LE(err, bound) << dtype_name(type) << " seed " << seed << " element " << i << ": x=" << x[i]
                            << " y=" << y[i];
      max_ratio = std::max(max_ratio, err / bound);
    }
  }
  EXPECT_GT(max_ratio, 0.2) << dtype_name(type) << ": the bound is suspiciously loose";
}

const DType kQuantTypes[] = {DType::kQ8_0, DType::kQ4_0, DType::kIQ4_NL, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1};

TEST(QuantRoundTrip, RandomNormalWithinBound) {
  for (uint32_t seed : {1u, 2u, 3u}) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, 0.02f);
    std::vector<float> x(32 * 512);
    for (auto& v : x) v = dist(rng);
    for (DType type : kQuantTypes) check_round_trip(type, x, seed);
  }
}

TEST(QuantRoundTrip, OutlierHeavyWithinBound) {
  // Student-t-like tails plus rare 100x outliers and an all-positive and an all-negative block.
  for (uint32_t seed : {11u, 12u}) {
    std::mt19937 rng(seed);
    std::student_t_distribution<float> dist(2.0f);
    std::uniform_real_distribution<float> unit(0.0f, 1.0f);
    std::vector<float> x(32 * 512);
    for (auto& v : x) v = dist(rng) * (unit(rng) < 0.01f ? 100.0f : 1.0f);
    for (int j = 0; j < 32; ++j) {
      x[j] = 5.0f + unit(rng);
      x[32 + j] = -5.0f - unit(rng);
    }
    for (DType type : kQuantTypes) check_round_trip(type, x, seed);
  }
}

TEST(QuantRoundTrip, PlainTypesRoundToNearest) {
  std::mt19937 rng(5);
  std::normal_distribution<float> dist(0.0f, 10.0f);
  std::vector<float> x(1000), y(1000);
  for (auto& v : x) v = dist(rng);
  std::vector<uint16_t> h(1000);
  for (DType type : {DType::kF16, DType::kBF16}) {
    ASSERT_TRUE(quantize_row(type, x.data(), h.data(), 1000).ok());
    ASSERT_TRUE(dequantize_row(type, h.data(), y.data(), 1000).ok());
    const double rel = type == DType::kF16 ? std::ldexp(1.0, -11) : std::ldexp(1.0, -8);
    for (size_t i = 0; i < x.size(); ++i) {
      ASSERT_LE(std::fabs(x[i] - y[i]), rel * std::fabs(x[i]) + 1e-7) << dtype_name(type) << " " << i;
    }
  }
}

// ---- errors ----

TEST(QuantErrors, LengthNotMultipleOfBlock) {
  std::vector<float> x(33);
  std::vector<uint8_t> q(64);
  const Status status = quantize_row(DType::kQ4_0, x.data(), q.data(), 33);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(status.error().message.find("q4_0"), std::string::npos) << status.error().message;
  EXPECT_FALSE(dequantize_row(DType::kQ6_K, q.data(), x.data(), 32).ok());
}

TEST(QuantErrors, UnsupportedTypes) {
  std::vector<float> x(256);
  std::vector<uint8_t> q(1024);
  const Status status = quantize_row(DType::kQ4_K, x.data(), q.data(), 256);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, ErrorCode::kUnsupported);
  EXPECT_FALSE(dequantize_row(DType::kI32, q.data(), x.data(), 4).ok());
  EXPECT_TRUE(can_dequantize(DType::kQ3_K));
  EXPECT_FALSE(can_dequantize(DType::kI8));
  EXPECT_FALSE(can_quantize(DType::kQ6_K));
}

}  // namespace
}  // namespace edgellm
