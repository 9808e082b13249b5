// The int8-activation matmul column (kernels/act_quant.h, KernelTable::matmul_q8act): every ISA's
// quantizer writes the reference's bytes; every ISA's kernel matches the scalar reference within an
// f32-summation budget at awkward sizes; the int8 path's error against exact f32 math stays within
// the bound of activation rounding; matmul() is invariant to thread count, batch and row ranges.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kernels/act_quant.h"
#include "kernels/kernel_table.h"
#include "kernels/matmul.h"
#include "kernels/quant_blocks.h"
#include "kernels/quant_edgellm.h"
#include "kernels/quantize.h"
#include "kernels/repack.h"
#include "util/half.h"
#include "util/thread_pool.h"

namespace edgellm {
namespace {

using kernels::Isa;

std::vector<Isa> isas_with_int8() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kNeon, Isa::kNeonDot}) {
    const kernels::KernelTable* table = kernels::kernels_for_isa(isa);
    if (table != nullptr && table->quantize_act != nullptr) out.push_back(isa);
  }
  return out;
}

struct AlignedBytes {
  explicit AlignedBytes(size_t n) : size(n), data(static_cast<uint8_t*>(std::aligned_alloc(64, (n + 63) / 64 * 64))) {}
  ~AlignedBytes() { std::free(data); }
  AlignedBytes(const AlignedBytes&) = delete;
  AlignedBytes& operator=(const AlignedBytes&) = delete;
  size_t size;
  uint8_t* data;
};

// N(0,1) activations with a few outliers (x50), as after RMSNorm in real models, and one zero block.
std::vector<float> random_activations(int64_t n_tokens, int64_t k, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::uniform_int_distribution<int64_t> pick(0, k - 1);
  std::vector<float> x(static_cast<size_t>(n_tokens * k));
  for (auto& v : x) v = dist(rng);
  for (int64_t t = 0; t < n_tokens; ++t) {
    x[static_cast<size_t>(t * k + pick(rng))] *= 50.0f;
    if (k >= 64 && t % 2 == 1) std::fill_n(x.begin() + t * k + 32, 32, 0.0f);
  }
  return x;
}

std::vector<uint8_t> random_weights(DType type, int64_t n_rows, int64_t k, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> values(static_cast<size_t>(n_rows * k));
  for (auto& v : values) v = dist(rng) + (type == DType::kQ4_1 || dtype_is_edgellm_only(type) ? 0.5f : 0.0f);
  std::vector<uint8_t> bytes(dtype_row_bytes(type, k) * static_cast<size_t>(n_rows));
  if (dtype_is_edgellm_only(type)) {
    EXPECT_TRUE(ref::quantize_row_e4(type, values.data(), bytes.data(), n_rows * k));
  } else {
    EXPECT_TRUE(quantize_row(type, values.data(), bytes.data(), n_rows * k).ok());
  }
  return bytes;
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

// |m| of the block holding element j of a row (0 for the symmetric types).
float block_offset(DType type, const uint8_t* row, int64_t j) {
  size_t block_bytes = 0, group = 0;
  if (type == DType::kQ4_1) {
    block_bytes = sizeof(BlockQ4_1), group = 32;
  } else if (dtype_is_edgellm_only(type)) {
    group = static_cast<size_t>(e4_group_size(type)), block_bytes = 4 + group / 2;
  } else {
    return 0.0f;
  }
  uint16_t h;
  std::memcpy(&h, row + (static_cast<size_t>(j) / group) * block_bytes + 2, 2);
  return std::fabs(fp16_to_f32(h));
}

struct Case {
  DType type;
  std::vector<int64_t> ks;
};

std::vector<Case> cases() {
  const std::vector<int64_t> k32 = {32, 64, 96, 160, 896, 4096 + 32};
  return {
      {DType::kQ4_0, k32},
      {DType::kIQ4_NL, k32},
      {DType::kQ8_0, k32},
      {DType::kQ4_1, k32},
      {DType::kE4G64, {64, 192, 896, 4864}},
      {DType::kE4G128, {128, 896, 4864}},
      {DType::kE4G256, {256, 1280}},
  };
}

TEST(Q8Act, EveryQuantizerWritesTheReferenceBytes) {
  const kernels::KernelTable& ref_table = kernels::scalar_kernels();
  for (int64_t k : {1, 7, 32, 33, 100, 128, 129, 896, 4097}) {
    const auto x = random_activations(1, k, static_cast<uint32_t>(k));
    AlignedBytes expected(kernels::act_row_bytes(k));
    ref_table.quantize_act(x.data(), k, expected.data);
    for (Isa isa : isas_with_int8()) {
      AlignedBytes got(kernels::act_row_bytes(k));
      std::memset(got.data, 0xAB, got.size);
      kernels::kernels_for_isa(isa)->quantize_act(x.data(), k, got.data);
      ASSERT_EQ(std::memcmp(got.data, expected.data, got.size), 0) << kernels::isa_name(isa) << " k=" << k;
    }
    // The format's invariants: |q| <= 127 and |d q - x| <= d / 2 (plus the rounding of 1/d).
    for (int64_t j = 0; j < k; ++j) {
      const int q = ref::act_q(expected.data, j);
      const float d = ref::act_scale(expected.data, j);
      ASSERT_LE(std::abs(q), 127);
      ASSERT_LE(std::fabs(d * q - x[j]), d * (0.5 + 1e-5) + 1e-30) << "k=" << k << " j=" << j;
    }
  }
}

// |y_isa - y_ref| <= 2 gamma_k sum_j (|w_j| + 2|m_j|) |xq_j|: both sum per-lane or per-block
// products of exact integer dot products with the same scales, in different orders; each product
// (d_w d_x) * dot carries at most two roundings and any order of the f32 sum is within gamma_n of the
// exact sum (Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., eq. 3.5). The affine
// types' two terms are bounded by |d q_j| + |m_j| <= |w_j| + 2 |m_j|.
TEST(Q8Act, EveryVariantMatchesReferenceAtAwkwardSizes) {
  const kernels::KernelTable& ref_table = kernels::scalar_kernels();
  uint32_t seed = 500;
  const double u = std::ldexp(1.0, -24);
  for (const Case& c : cases()) {
    for (int64_t k : c.ks) {
      for (int64_t n_rows : {1, 5, 7, 16, 33}) {
        std::vector<int64_t> token_counts = {1, 2, 3, 4, 5, 7, 17};
        if (k == c.ks[1] && n_rows == 7) {
          token_counts.clear();
          for (int64_t t = 1; t <= 17; ++t) token_counts.push_back(t);
        }
        for (int64_t n_tokens : token_counts) {
          ++seed;
          const auto bytes = random_weights(c.type, n_rows, k, seed);
          const auto x = random_activations(n_tokens, k, seed + 7);
          const TensorRef w = make_tensor(c.type, k, n_rows, bytes);
          const size_t xq_row = kernels::act_row_bytes(k);
          AlignedBytes xq(xq_row * static_cast<size_t>(n_tokens));
          for (int64_t t = 0; t < n_tokens; ++t) ref_table.quantize_act(x.data() + t * k, k, xq.data + t * xq_row);
          kernels::MatmulArgs args;
          args.type = c.type;
          args.w = bytes.data();
          args.w_row_bytes = w.row_bytes();
          args.k = k;
          args.x = x.data();
          args.n_tokens = n_tokens;
          args.y_stride = n_rows;
          args.xq = xq.data;
          args.xq_row_bytes = xq_row;
          std::vector<float> y_ref(static_cast<size_t>(n_tokens * n_rows), NAN);
          args.y = y_ref.data();
          ASSERT_NE(ref_table.matmul_q8act_for(c.type), nullptr) << dtype_name(c.type);
          ref_table.matmul_q8act_for(c.type)(args, 0, n_rows);

          std::vector<float> w_row(static_cast<size_t>(k));
          // Every ISA's kernel over the file layout, and over the packed layout where it has one.
          std::vector<std::pair<Isa, bool>> variants;
          for (Isa isa : isas_with_int8()) {
            variants.push_back({isa, false});
            if (kernels::kernels_for_isa(isa)->matmul_q8act_packed_for(c.type) != nullptr) variants.push_back({isa, true});
          }
          for (auto [isa, packed] : variants) {
            const kernels::KernelTable* table = kernels::kernels_for_isa(isa);
            const kernels::MatmulRowsFn fn = packed ? table->matmul_q8act_packed_for(c.type) : table->matmul_q8act_for(c.type);
            if (fn == nullptr) continue;  // f32 activations on this ISA for this type
            std::vector<float> y(y_ref.size(), NAN);
            args.y = y.data();
            AlignedBytes packed_w(packed ? kernels::packed_bytes(c.type, n_rows, k) : 0);
            if (packed) {
              // In two calls when there are two panels (the loader repacks a range of rows at a time).
              const int64_t split = n_rows > kernels::kPackRows ? kernels::kPackRows : n_rows;
              kernels::repack(c.type, bytes.data(), w.row_bytes(), n_rows, k, split, n_rows, packed_w.data);
              kernels::repack(c.type, bytes.data(), w.row_bytes(), n_rows, k, 0, split, packed_w.data);
              args.w = packed_w.data;
            }
            fn(args, 0, n_rows);
            // The per-block activation sums computed once per product (matmul.cpp) give the same bits as
            // the kernel's own.
            std::vector<int32_t> sums(static_cast<size_t>(n_tokens * kernels::act_blocks(k)));
            for (int64_t t = 0; t < n_tokens; ++t) {
              kernels::act_block_sums(xq.data + t * xq_row, k, sums.data() + t * kernels::act_blocks(k));
            }
            std::vector<float> y_sums(y_ref.size(), NAN);
            args.y = y_sums.data();
            args.xq_block_sums = sums.data();
            fn(args, 0, n_rows);
            args.xq_block_sums = nullptr;
            ASSERT_EQ(std::memcmp(y.data(), y_sums.data(), y.size() * sizeof(float)), 0)
                << kernels::isa_name(isa) << (packed ? " packed " : " ") << dtype_name(c.type) << " k=" << k
                << " tokens=" << n_tokens << ": xq_block_sums changed the result";
            args.w = bytes.data();
            for (int64_t r = 0; r < n_rows; ++r) {
              get_row(w, r, w_row.data());
              const uint8_t* row_bytes = bytes.data() + r * w.row_bytes();
              for (int64_t t = 0; t < n_tokens; ++t) {
                double abs_sum = 0;
                const uint8_t* xq_t = xq.data + t * xq_row;
                for (int64_t j = 0; j < k; ++j) {
                  const double xj = static_cast<double>(ref::act_scale(xq_t, j)) * ref::act_q(xq_t, j);
                  abs_sum += (std::fabs(w_row[j]) + 2.0 * block_offset(c.type, row_bytes, j)) * std::fabs(xj);
                }
                const double n = static_cast<double>(k) + 32;
                const double budget = 2 * (n * u / (1 - n * u)) * abs_sum + 1e-30;
                const size_t i = static_cast<size_t>(t * n_rows + r);
                ASSERT_LE(std::fabs(static_cast<double>(y[i]) - y_ref[i]), budget)
                    << kernels::isa_name(isa) << (packed ? " packed " : " ") << dtype_name(c.type) << " k=" << k << " rows=" << n_rows
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

// IQ4_NL's extreme codebook values against activations at the int8 limit (q = +-127): kernels that
// multiply unsigned bytes (codebook + 128, up to 241) or sum products pairwise in int16 (vpmaddubsw)
// must neither saturate nor wrap. Every ISA with int8 activations must have an IQ4_NL kernel.
TEST(Q8Act, IQ4NLExtremeCodesDoNotSaturate) {
  const int64_t k = 256 + 32, n_rows = 4, n_tokens = 2;  // two full groups and a partial one
  const size_t row_bytes = dtype_row_bytes(DType::kIQ4_NL, k);
  std::vector<uint8_t> bytes(row_bytes * n_rows);
  for (int64_t r = 0; r < n_rows; ++r) {
    for (int64_t b = 0; b < k / 32; ++b) {
      BlockIQ4_NL blk;
      blk.d = 0x3C00;  // 1.0
      for (int j = 0; j < 16; ++j) {
        const uint8_t codes[4] = {0x00, 0xFF, static_cast<uint8_t>(j % 2 == 0 ? 0x00 : 0xFF), 0x87};
        blk.qs[j] = codes[r];  // row 0: all -127; 1: all 113; 2: -127, 113 alternating; 3: -10 | 1
      }
      std::memcpy(bytes.data() + static_cast<size_t>(r) * row_bytes + b * sizeof(blk), &blk, sizeof(blk));
    }
  }
  std::vector<float> x(static_cast<size_t>(n_tokens * k));
  for (int64_t j = 0; j < k; ++j) {
    x[static_cast<size_t>(j)] = 1.0f;                                   // token 0: q = 127 everywhere
    x[static_cast<size_t>(k + j)] = j % 2 == 0 ? 1.0f : -1.0f;          // token 1: +-127 alternating
  }
  // Hand-computed sum_j w_j x_j (d_x q_x = 1 up to the rounding of 1/127).
  const double kd = static_cast<double>(k);
  const double expected[2][4] = {{-127 * kd, 113 * kd, -7 * kd, -4.5 * kd}, {0, 0, -120 * kd, 0}};
  const size_t xq_row = kernels::act_row_bytes(k);
  AlignedBytes xq(xq_row * n_tokens);
  for (int64_t t = 0; t < n_tokens; ++t) ref::quantize_act(x.data() + t * k, k, xq.data + t * xq_row);
  // Every ISA's kernel over the file layout, and over the packed layout where it has one.
  std::vector<std::pair<Isa, bool>> variants;
  for (Isa isa : isas_with_int8()) {
    variants.push_back({isa, false});
    if (kernels::kernels_for_isa(isa)->matmul_q8act_packed_for(DType::kIQ4_NL) != nullptr) variants.push_back({isa, true});
  }
  for (auto [isa, packed] : variants) {
    const kernels::KernelTable* table = kernels::kernels_for_isa(isa);
    const kernels::MatmulRowsFn fn =
        packed ? table->matmul_q8act_packed_for(DType::kIQ4_NL) : table->matmul_q8act_for(DType::kIQ4_NL);
    ASSERT_NE(fn, nullptr) << kernels::isa_name(isa);
    AlignedBytes packed_w(packed ? kernels::packed_bytes(DType::kIQ4_NL, n_rows, k) : 0);
    if (packed) kernels::repack(DType::kIQ4_NL, bytes.data(), row_bytes, n_rows, k, 0, n_rows, packed_w.data);
    kernels::MatmulArgs args;
    args.type = DType::kIQ4_NL;
    args.w = packed ? packed_w.data : bytes.data();
    args.w_row_bytes = row_bytes;
    args.k = k;
    args.x = x.data();
    args.n_tokens = n_tokens;
    args.xq = xq.data;
    args.xq_row_bytes = xq_row;
    std::vector<float> y(static_cast<size_t>(n_tokens * n_rows), NAN);
    args.y = y.data();
    args.y_stride = n_rows;
    fn(args, 0, n_rows);
    for (int64_t t = 0; t < n_tokens; ++t) {
      for (int64_t r = 0; r < n_rows; ++r) {
        EXPECT_NEAR(y[static_cast<size_t>(t * n_rows + r)], expected[t][r], 1e-5 * 127 * kd)
            << kernels::isa_name(isa) << (packed ? " packed" : "") << " row " << r << " token " << t;
      }
    }
  }
}

// The error the int8 path adds, measured against exact math on the unrounded activations:
// |y - sum_j w_j x_j| <= sum_j |w_j| |xq_j - x_j| + f32 budget, with |xq_j - x_j| <= d_j / 2.
// Also reports the typical relative error against the f32 path at a real shape.
TEST(Q8Act, ErrorAgainstExactMathIsBoundedByActivationRounding) {
  ThreadPool pool(2);
  const double u = std::ldexp(1.0, -24);
  for (DType type : {DType::kQ4_0, DType::kIQ4_NL, DType::kQ8_0, DType::kE4G128}) {
    const int64_t k = 896, n_rows = 64, n_tokens = 3;
    const auto bytes = random_weights(type, n_rows, k, 77);
    const auto x = random_activations(n_tokens, k, 78);
    const TensorRef w = make_tensor(type, k, n_rows, bytes);
    std::vector<float> y8(static_cast<size_t>(n_rows * n_tokens)), y32(y8.size());
    matmul(w, x.data(), n_tokens, y8.data(), pool, MatmulActivations::kInt8);
    matmul(w, x.data(), n_tokens, y32.data(), pool, MatmulActivations::kF32);
    AlignedBytes xq(kernels::act_row_bytes(k));
    std::vector<float> w_row(static_cast<size_t>(k));
    double worst_rel = 0, sum_sq_err = 0, sum_sq = 0;
    for (int64_t t = 0; t < n_tokens; ++t) {
      ref::quantize_act(x.data() + t * k, k, xq.data);
      for (int64_t r = 0; r < n_rows; ++r) {
        get_row(w, r, w_row.data());
        double exact = 0, rounding = 0, abs_sum = 0;
        for (int64_t j = 0; j < k; ++j) {
          const double xj = x[t * k + j];
          exact += static_cast<double>(w_row[j]) * xj;
          rounding += std::fabs(w_row[j]) * ref::act_scale(xq.data, j) * (0.5 + 1e-5);
          abs_sum += (std::fabs(w_row[j]) + 2.0 * block_offset(type, bytes.data() + r * w.row_bytes(), j)) *
                     (std::fabs(xj) + ref::act_scale(xq.data, j));
        }
        const double budget = rounding + 2 * (k + 32) * u * abs_sum;
        const double got = y8[t * n_rows + r];
        ASSERT_LE(std::fabs(got - exact), budget) << dtype_name(type) << " r=" << r << " t=" << t;
        worst_rel = std::max(worst_rel, std::fabs(got - y32[t * n_rows + r]) / (std::fabs(exact) + 1e-3));
        sum_sq_err += (got - y32[t * n_rows + r]) * (got - y32[t * n_rows + r]);
        sum_sq += exact * exact;
      }
    }
    std::printf("[q8act] %s k=%lld: int8 vs f32 activations: NMSE %.3g, worst |diff|/|y| %.3g\n", dtype_name(type),
                static_cast<long long>(k), sum_sq_err / sum_sq, worst_rel);
  }
}

TEST(Q8Act, MatmulIsInvariantToThreadsBatchAndRowRanges) {
  ThreadPool pool1(1), pool2(2);
  for (DType type : {DType::kQ4_0, DType::kIQ4_NL, DType::kQ8_0, DType::kQ4_1, DType::kE4G64}) {
    const int64_t k = 192 + (type == DType::kE4G64 ? 0 : 32), n_rows = 133, n_tokens = 9;
    const auto bytes = random_weights(type, n_rows, k, 91);
    const auto x = random_activations(n_tokens, k, 92);
    const TensorRef w = make_tensor(type, k, n_rows, bytes);
    std::vector<float> y1(static_cast<size_t>(n_tokens * n_rows)), y2(y1.size());
    matmul(w, x.data(), n_tokens, y1.data(), pool1, MatmulActivations::kInt8);
    matmul(w, x.data(), n_tokens, y2.data(), pool2, MatmulActivations::kInt8);
    EXPECT_EQ(std::memcmp(y1.data(), y2.data(), y1.size() * sizeof(float)), 0) << dtype_name(type);
    for (int64_t t = 0; t < n_tokens; ++t) {
      std::vector<float> y_one(static_cast<size_t>(n_rows));
      matmul(w, x.data() + t * k, 1, y_one.data(), pool2, MatmulActivations::kInt8);
      EXPECT_EQ(std::memcmp(y_one.data(), y2.data() + t * n_rows, y_one.size() * sizeof(float)), 0)
          << dtype_name(type) << " token " << t;
    }
    const int64_t row_begin = 5, row_end = 30, stride = 40;
    std::vector<float> y_part(static_cast<size_t>(n_tokens * stride), -1.0f);
    matmul_rows(w, x.data(), n_tokens, y_part.data(), stride, row_begin, row_end, MatmulActivations::kInt8);
    for (int64_t t = 0; t < n_tokens; ++t) {
      for (int64_t r = row_begin; r < row_end; ++r) {
        ASSERT_EQ(y_part[t * stride + r - row_begin], y2[t * n_rows + r]) << dtype_name(type);
      }
      EXPECT_EQ(y_part[t * stride + (row_end - row_begin)], -1.0f) << "wrote past the range";
    }
  }
}

// Weights repacked at load (kernels/repack.h, where the active kernels have a packed layout for the
// type): the same invariances, results equal to the file layout's within the reference budget's order,
// odd row counts (not a multiple of the 16-row panels), row ranges that start and end inside a panel.
TEST(Q8Act, PackedWeightsAreInvariantToThreadsBatchAndRowRanges) {
  ThreadPool pool1(1), pool2(2);
  int tested = 0;
  for (DType type : {DType::kQ4_0, DType::kIQ4_NL, DType::kQ8_0}) {
    for (int64_t n_rows : {1, 15, 16, 17, 133}) {
      const int64_t k = 96 + 32 * (n_rows % 3), n_tokens = 11;
      const auto bytes = random_weights(type, n_rows, k, 191 + static_cast<uint32_t>(n_rows));
      const auto x = random_activations(n_tokens, k, 192);
      TensorRef w = make_tensor(type, k, n_rows, bytes);
      const size_t packed_size = matmul_packed_bytes(w);
      if (packed_size == 0) continue;  // this CPU's kernels read the file layout
      ++tested;
      AlignedBytes packed(packed_size);
      std::memset(packed.data, 0xCD, packed.size);
      matmul_repack(w, packed.data);
      std::vector<float> y_file(static_cast<size_t>(n_tokens * n_rows));
      matmul(w, x.data(), n_tokens, y_file.data(), pool2, MatmulActivations::kInt8);
      w.packed = packed.data;
      std::vector<float> y1(y_file.size()), y2(y_file.size());
      matmul(w, x.data(), n_tokens, y1.data(), pool1, MatmulActivations::kInt8);
      matmul(w, x.data(), n_tokens, y2.data(), pool2, MatmulActivations::kInt8);
      EXPECT_EQ(std::memcmp(y1.data(), y2.data(), y1.size() * sizeof(float)), 0) << dtype_name(type);
      for (size_t i = 0; i < y1.size(); ++i) {
        ASSERT_NEAR(y1[i], y_file[i], 1e-4 * (1.0 + std::fabs(y_file[i]))) << dtype_name(type) << " rows=" << n_rows << " i=" << i;
      }
      for (int64_t t = 0; t < n_tokens; ++t) {
        std::vector<float> y_one(static_cast<size_t>(n_rows));
        matmul(w, x.data() + t * k, 1, y_one.data(), pool2, MatmulActivations::kInt8);
        EXPECT_EQ(std::memcmp(y_one.data(), y2.data() + t * n_rows, y_one.size() * sizeof(float)), 0)
            << dtype_name(type) << " rows=" << n_rows << " token " << t;
      }
      const int64_t row_begin = n_rows / 3, row_end = n_rows - n_rows / 4, stride = n_rows + 3;
      std::vector<float> y_part(static_cast<size_t>(n_tokens * stride), -1.0f);
      matmul_rows(w, x.data(), n_tokens, y_part.data(), stride, row_begin, row_end, MatmulActivations::kInt8);
      for (int64_t t = 0; t < n_tokens; ++t) {
        for (int64_t r = row_begin; r < row_end; ++r) {
          ASSERT_EQ(y_part[t * stride + r - row_begin], y2[t * n_rows + r]) << dtype_name(type) << " r=" << r;
        }
        EXPECT_EQ(y_part[t * stride + (row_end - row_begin)], -1.0f) << "wrote past the range";
      }
      // Row lookups (a tied embedding) from the packed copy give the file's rows.
      std::vector<float> row_packed(static_cast<size_t>(k)), row_file(static_cast<size_t>(k));
      for (int64_t r = 0; r < n_rows; ++r) {
        TensorRef file_only = w;
        file_only.packed = nullptr;
        get_row(w, r, row_packed.data());
        get_row(file_only, r, row_file.data());
        ASSERT_EQ(std::memcmp(row_packed.data(), row_file.data(), row_file.size() * sizeof(float)), 0) << "row " << r;
      }
      // f32 activations ignore the packed copy and read the rows as stored.
      std::vector<float> y_f32(y_file.size()), y_f32_file(y_file.size());
      matmul(w, x.data(), n_tokens, y_f32.data(), pool2, MatmulActivations::kF32);
      w.packed = nullptr;
      matmul(w, x.data(), n_tokens, y_f32_file.data(), pool2, MatmulActivations::kF32);
      EXPECT_EQ(std::memcmp(y_f32.data(), y_f32_file.data(), y_f32.size() * sizeof(float)), 0);
    }
  }
  if (tested == 0) GTEST_SKIP() << "no packed layout for the active kernels";
}

// Several products of one x in one job (q, k, v; gate, up): the same values as one matmul() each,
// for packed and file-layout weights, mixed with a type the int8 kernels do not take (f16), row counts
// off the 16-row grain, outputs interleaved in one buffer (stride > rows), any thread count.
TEST(Q8Act, SameInputProductsEqualSeparateMatmuls) {
  ThreadPool pool1(1), pool2(2);
  const int64_t k = 160;
  struct Weight {
    DType type;
    int64_t n_rows;
    bool packed;
  };
  const Weight weights[] = {{DType::kQ4_0, 37, true}, {DType::kF16, 16, false}, {DType::kIQ4_NL, 5, true},
                            {DType::kQ8_0, 70, false}};
  std::vector<std::vector<uint8_t>> bytes;
  std::vector<TensorRef> tensors;
  std::vector<std::unique_ptr<AlignedBytes>> packed;
  int64_t stride = 0;
  for (const Weight& wt : weights) {
    bytes.push_back(random_weights(wt.type, wt.n_rows, k, 301 + static_cast<uint32_t>(wt.n_rows)));
    stride += wt.n_rows;
  }
  for (size_t i = 0; i < 4; ++i) {
    tensors.push_back(make_tensor(weights[i].type, k, weights[i].n_rows, bytes[i]));
    const size_t n = matmul_packed_bytes(tensors[i]);
    if (weights[i].packed && n > 0) {
      packed.push_back(std::make_unique<AlignedBytes>(n));
      matmul_repack(tensors[i], packed.back()->data);
      tensors[i].packed = packed.back()->data;
    }
  }
  for (int64_t n_tokens : {1, 6}) {
    const auto x = random_activations(n_tokens, k, 302);
    for (MatmulActivations act : {MatmulActivations::kInt8, MatmulActivations::kF32}) {
      for (ThreadPool* pool : {&pool1, &pool2}) {
        std::vector<float> together(static_cast<size_t>(n_tokens * stride), -1.0f);
        MatmulOutput outputs[4];
        int64_t offset = 0;
        for (size_t i = 0; i < 4; ++i) {
          outputs[i] = {&tensors[i], together.data() + offset, stride};
          offset += weights[i].n_rows;
        }
        matmul_same_input(outputs, 4, x.data(), n_tokens, *pool, act);
        offset = 0;
        for (size_t i = 0; i < 4; ++i) {
          const int64_t rows = weights[i].n_rows;
          std::vector<float> alone(static_cast<size_t>(n_tokens * rows));
          matmul(tensors[i], x.data(), n_tokens, alone.data(), pool2, act);
          for (int64_t t = 0; t < n_tokens; ++t) {
            EXPECT_EQ(std::memcmp(&together[static_cast<size_t>(t * stride + offset)], &alone[static_cast<size_t>(t * rows)],
                                  static_cast<size_t>(rows) * sizeof(float)),
                      0)
                << dtype_name(weights[i].type) << " token " << t << " threads " << pool->n_threads();
          }
          offset += rows;
        }
      }
    }
  }
}

TEST(Q8Act, DefaultIsInt8ForQuantizedWeightsAndF32Otherwise) {
  const char* env = std::getenv("EDGELLM_ACTIVATIONS");
  const bool forced_f32 = env != nullptr && std::string(env) == "f32";
  EXPECT_STREQ(matmul_activations_name(DType::kQ4_0), forced_f32 ? "f32" : "int8");
  EXPECT_STREQ(matmul_activations_name(DType::kQ8_0), forced_f32 ? "f32" : "int8");
  EXPECT_STREQ(matmul_activations_name(DType::kIQ4_NL), forced_f32 ? "f32" : "int8");
  EXPECT_STREQ(matmul_activations_name(DType::kF16), "f32");
  EXPECT_STREQ(matmul_activations_name(DType::kQ6_K), "f32");
}

}  // namespace
}  // namespace edgellm
