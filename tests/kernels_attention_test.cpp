// Fused tiled attention (model/attention.h) against a plain double-precision softmax(q K^T) V over the
// same cached values, for every ISA variant (scalar, AVX2, AVX-512; NEON on aarch64, where this test also
// runs under qemu with the other kernel tests), every KV type and awkward sizes; Q8_0 KV against F16 KV
// within a bound derived from the Q8_0 rounding error; decode split into parts and merged. It uses only
// the attention and quantization code, so the kernels-only build has it too (end to end: attention_test.cpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "kernels/quantize.h"
#include "model/attention.h"

namespace edgellm {
namespace {

// Random K/V rows for n_keys positions of one KV head, stored as `type`, plus the f32 values the
// stored bytes decode to (what a correct kernel must attend over).
struct CachedHead {
  DType type;
  int64_t head_dim;
  size_t row_bytes;
  std::vector<uint8_t> k, v;
  std::vector<float> k_f32, v_f32;  // [n_keys][head_dim], decoded
};

CachedHead make_head(DType type, int64_t head_dim, int64_t n_keys, const std::vector<float>& k_src,
                     const std::vector<float>& v_src) {
  CachedHead h{type, head_dim, dtype_row_bytes(type, head_dim), {}, {}, {}, {}};
  h.k.resize(h.row_bytes * static_cast<size_t>(n_keys));
  h.v.resize(h.row_bytes * static_cast<size_t>(n_keys));
  h.k_f32.resize(k_src.size());
  h.v_f32.resize(v_src.size());
  for (int64_t j = 0; j < n_keys; ++j) {
    const size_t off = static_cast<size_t>(j * head_dim);
    EXPECT_TRUE(quantize_row(type, &k_src[off], &h.k[j * h.row_bytes], head_dim).ok());
    EXPECT_TRUE(quantize_row(type, &v_src[off], &h.v[j * h.row_bytes], head_dim).ok());
    EXPECT_TRUE(dequantize_row(type, &h.k[j * h.row_bytes], &h.k_f32[off], head_dim).ok());
    EXPECT_TRUE(dequantize_row(type, &h.v[j * h.row_bytes], &h.v_f32[off], head_dim).ok());
  }
  return h;
}

std::vector<float> random_values(size_t n, float amplitude, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-amplitude, amplitude);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// out[t][g][d] for queries q[t][g][d] with causal limits n_keys0 + t.
std::vector<float> reference_attention(const CachedHead& h, const std::vector<float>& q, int64_t n_tokens,
                                       int64_t n_group, int64_t n_keys0, float scale) {
  const int64_t D = h.head_dim;
  std::vector<float> out(q.size());
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t g = 0; g < n_group; ++g) {
      const float* qr = &q[static_cast<size_t>((t * n_group + g) * D)];
      const int64_t n_keys = n_keys0 + t;
      std::vector<double> s(static_cast<size_t>(n_keys));
      double mx = -1e300;
      for (int64_t j = 0; j < n_keys; ++j) {
        double d = 0;
        for (int64_t i = 0; i < D; ++i) d += static_cast<double>(qr[i]) * h.k_f32[static_cast<size_t>(j * D + i)];
        s[static_cast<size_t>(j)] = d * scale;
        mx = std::max(mx, s[static_cast<size_t>(j)]);
      }
      double sum = 0;
      for (double& x : s) sum += (x = std::exp(x - mx));
      for (int64_t i = 0; i < D; ++i) {
        double acc = 0;
        for (int64_t j = 0; j < n_keys; ++j) acc += s[static_cast<size_t>(j)] * h.v_f32[static_cast<size_t>(j * D + i)];
        out[static_cast<size_t>((t * n_group + g) * D + i)] = static_cast<float>(acc / sum);
      }
    }
  }
  return out;
}

std::vector<float> run_block(AttentionBlockFn fn, const CachedHead& h, const std::vector<float>& q,
                             int64_t n_tokens, int64_t n_group, int64_t n_keys0, float scale) {
  AttentionBlock b;
  b.kv_type = h.type;
  b.k = h.k.data();
  b.v = h.v.data();
  b.kv_row_bytes = h.row_bytes;
  b.head_dim = h.head_dim;
  b.q = q.data();
  b.q_token_stride = n_group * h.head_dim;
  b.n_tokens = n_tokens;
  b.n_group = n_group;
  b.n_keys0 = n_keys0;
  b.scale = scale;
  std::vector<float> out(q.size(), -1.0f);
  b.out = out.data();
  b.out_token_stride = n_group * h.head_dim;
  std::vector<float> work(attention_work_floats(h.head_dim, n_group));
  fn(b, work.data());
  return out;
}

struct Shape {
  int64_t head_dim, n_tokens, n_group, n_keys0;
};

TEST(Attention, EveryVariantMatchesTheReferenceOnAwkwardSizes) {
  const Shape shapes[] = {{64, 1, 1, 1},   {64, 1, 7, 33},  {128, 1, 2, 4097}, {32, 7, 3, 1},
                          {64, 16, 2, 65}, {96, 5, 1, 130}, {64, 16, 1, 1},    {128, 3, 6, 200},
                          {7, 1, 1, 3},    {20, 5, 2, 9},   {16, 13, 2, 70},   {40, 1, 5, 100},
                          // Decode from the cached rows: Qwen3.5's heads, 16- and 8-wide head dims, a last
                          // tile of 1..3 keys, more heads than one pass takes.
                          {256, 1, 4, 1000}, {48, 1, 3, 77},  {8, 1, 2, 66},     {32, 1, 9, 131},
                          {96, 1, 6, 65}};
  const DType types[] = {DType::kF32, DType::kF16, DType::kQ8_0};
  const AttentionIsa isas[] = {AttentionIsa::kScalar, AttentionIsa::kAvx2, AttentionIsa::kAvx512, AttentionIsa::kNeon};
  std::mt19937 rng(1234);
  for (const Shape& sh : shapes) {
    const int64_t n_keys = sh.n_keys0 + sh.n_tokens - 1;
    const auto k_src = random_values(static_cast<size_t>(n_keys * sh.head_dim), 2.0f, rng);
    const auto v_src = random_values(static_cast<size_t>(n_keys * sh.head_dim), 1.0f, rng);
    const auto q = random_values(static_cast<size_t>(sh.n_tokens * sh.n_group * sh.head_dim), 2.0f, rng);
    const float scale = 1.0f / std::sqrt(static_cast<float>(sh.head_dim));
    for (DType type : types) {
      if (type == DType::kQ8_0 && sh.head_dim % 32 != 0) continue;  // q8_0 blocks are 32 values
      const CachedHead h = make_head(type, sh.head_dim, n_keys, k_src, v_src);
      const auto want = reference_attention(h, q, sh.n_tokens, sh.n_group, sh.n_keys0, scale);
      for (AttentionIsa isa : isas) {
        AttentionBlockFn fn = attention_variant(isa);
        if (fn == nullptr) continue;
        const auto got = run_block(fn, h, q, sh.n_tokens, sh.n_group, sh.n_keys0, scale);
        // f32 rounding of the dot products (|q.k| scale <= D * 2 * 2 / sqrt(D)) and of the online rescaling:
        // a few hundred ulps of values of magnitude <= 1.
        double max_err = 0;
        for (size_t i = 0; i < want.size(); ++i) max_err = std::max(max_err, std::fabs(double(got[i]) - want[i]));
        EXPECT_LT(max_err, 2e-5) << "isa " << static_cast<int>(isa) << " type " << dtype_name(type) << " D "
                                 << sh.head_dim << " T " << sh.n_tokens << " G " << sh.n_group << " keys0 "
                                 << sh.n_keys0;
      }
    }
  }
}

// Q8_0 stores each 32-value block as d * round(x / d) with d = amax / 127 rounded to f16, so each value is
// off by at most amax (1/254 + 2^-10) (half a step plus the scale's f16 rounding times 127); f16 itself is
// off by amax 2^-11. A score moves by at most Delta = scale * |q|_1 * e_k, each softmax weight by a factor
// within exp(+-2 Delta), so |out_q8 - out_f16| <= (exp(2 Delta) - 1) max|v| + e_v (sum of weights = 1).
TEST(Attention, Q8_0CacheStaysWithinItsRoundingBoundOfF16) {
  std::mt19937 rng(99);
  for (int64_t n_keys : {1, 31, 64, 333, 2049}) {
    const int64_t D = 64;
    const float k_amp = 1.5f, v_amp = 1.0f;
    const auto k_src = random_values(static_cast<size_t>(n_keys * D), k_amp, rng);
    const auto v_src = random_values(static_cast<size_t>(n_keys * D), v_amp, rng);
    const auto q = random_values(static_cast<size_t>(D), 1.0f, rng);
    const float scale = 1.0f / std::sqrt(static_cast<float>(D));
    const CachedHead h16 = make_head(DType::kF16, D, n_keys, k_src, v_src);
    const CachedHead h8 = make_head(DType::kQ8_0, D, n_keys, k_src, v_src);
    const auto a = run_block(attention_block, h16, q, 1, 1, n_keys, scale);
    const auto b = run_block(attention_block, h8, q, 1, 1, n_keys, scale);
    double q_l1 = 0;
    for (float x : q) q_l1 += std::fabs(x);
    const double rel = 1.0 / 254 + 1.0 / 1024 + 1.0 / 2048;
    const double delta = scale * q_l1 * k_amp * rel;
    const double bound = (std::exp(2 * delta) - 1) * v_amp + v_amp * rel + 1e-5;
    double max_err = 0;
    for (size_t i = 0; i < a.size(); ++i) max_err = std::max(max_err, std::fabs(double(a[i]) - b[i]));
    EXPECT_LE(max_err, bound) << "n_keys " << n_keys;
    EXPECT_GT(max_err, 0.0);  // it really is a different cache
  }
}

// Decode over more than kAttnDecodeSplit keys runs in parts merged afterwards: the same as one pass.
TEST(Attention, DecodePartsMergeToTheSinglePassResult) {
  std::mt19937 rng(77);
  const int64_t D = 64, G = 3, n_keys = 1300;
  const auto k_src = random_values(static_cast<size_t>(n_keys * D), 2.0f, rng);
  const auto v_src = random_values(static_cast<size_t>(n_keys * D), 1.0f, rng);
  const auto q = random_values(static_cast<size_t>(G * D), 2.0f, rng);
  const float scale = 0.125f;
  const CachedHead h = make_head(DType::kF16, D, n_keys, k_src, v_src);
  const auto whole = run_block(attention_block, h, q, 1, G, n_keys, scale);
  const int64_t n_parts = (n_keys + kAttnDecodeSplit - 1) / kAttnDecodeSplit;
  std::vector<float> outs(static_cast<size_t>(n_parts * G * D)), ms(static_cast<size_t>(n_parts * 2 * G));
  std::vector<float> work(attention_work_floats(D, G));
  for (int64_t p = 0; p < n_parts; ++p) {
    AttentionBlock b;
    b.kv_type = h.type;
    b.k = h.k.data();
    b.v = h.v.data();
    b.kv_row_bytes = h.row_bytes;
    b.head_dim = D;
    b.q = q.data();
    b.q_token_stride = G * D;
    b.n_tokens = 1;
    b.n_group = G;
    b.n_keys0 = n_keys;
    b.scale = scale;
    b.out = &outs[static_cast<size_t>(p * G * D)];
    b.out_token_stride = G * D;
    b.key_begin = p * kAttnDecodeSplit;
    b.key_end = b.key_begin + kAttnDecodeSplit;
    b.partial_max = &ms[static_cast<size_t>(p * 2 * G)];
    b.partial_sum = b.partial_max + G;
    attention_block(b, work.data());
  }
  for (int64_t g = 0; g < G; ++g) {
    std::vector<float> merged(static_cast<size_t>(D));
    merge_attention_parts(&outs[static_cast<size_t>(g * D)], G * D, &ms[static_cast<size_t>(g)],
                          &ms[static_cast<size_t>(G + g)], 2 * G, n_parts, D, merged.data());
    for (int64_t i = 0; i < D; ++i) EXPECT_NEAR(merged[static_cast<size_t>(i)], whole[static_cast<size_t>(g * D + i)], 2e-6);
  }
}

// Paged rows (a block table over a shared cache, engine/kv_block_pool.h): the same result, bit for bit,
// as the contiguous rows they hold, for every variant, KV type and block size, prefill and decode parts.
TEST(Attention, PagedRowsGiveTheContiguousResultForEveryVariant) {
  const AttentionIsa isas[] = {AttentionIsa::kScalar, AttentionIsa::kAvx2, AttentionIsa::kAvx512, AttentionIsa::kNeon};
  std::mt19937 rng(4321);
  const int64_t D = 64, G = 2, n_keys = 300;
  const auto k_src = random_values(static_cast<size_t>(n_keys * D), 2.0f, rng);
  const auto v_src = random_values(static_cast<size_t>(n_keys * D), 1.0f, rng);
  for (DType type : {DType::kF32, DType::kF16, DType::kQ8_0}) {
    const CachedHead h = make_head(type, D, n_keys, k_src, v_src);
    for (int shift : {4, 5}) {
      // Scatter position j's row to a shuffled block of a cache with spare blocks.
      const int64_t block = int64_t{1} << shift;
      const int64_t n_blocks = (n_keys + block - 1) / block;
      std::vector<int32_t> table(static_cast<size_t>(n_blocks));
      for (int64_t i = 0; i < n_blocks; ++i) table[static_cast<size_t>(i)] = static_cast<int32_t>(2 * n_blocks - 1 - 2 * i);
      std::shuffle(table.begin(), table.end(), rng);
      std::vector<uint8_t> k_paged(h.row_bytes * static_cast<size_t>(2 * n_blocks * block), 0xff);
      std::vector<uint8_t> v_paged(k_paged.size(), 0xff);  // unused rows hold NaNs (f32/f16) or garbage
      for (int64_t j = 0; j < n_keys; ++j) {
        const int64_t row = (int64_t{table[static_cast<size_t>(j >> shift)]} << shift) | (j & (block - 1));
        std::copy_n(&h.k[j * h.row_bytes], h.row_bytes, &k_paged[static_cast<size_t>(row) * h.row_bytes]);
        std::copy_n(&h.v[j * h.row_bytes], h.row_bytes, &v_paged[static_cast<size_t>(row) * h.row_bytes]);
      }
      for (const Shape sh : {Shape{D, 1, G, n_keys}, Shape{D, 16, G, n_keys - 15}, Shape{D, 5, G, 70}}) {
        const auto q = random_values(static_cast<size_t>(sh.n_tokens * G * D), 2.0f, rng);
        for (AttentionIsa isa : isas) {
          AttentionBlockFn fn = attention_variant(isa);
          if (fn == nullptr) continue;
          for (int64_t key_begin : {int64_t{0}, int64_t{128}}) {
            auto run = [&](const uint8_t* k, const uint8_t* v, const int32_t* blocks) {
              AttentionBlock b;
              b.kv_type = type;
              b.k = k;
              b.v = v;
              b.kv_row_bytes = h.row_bytes;
              b.block_table = blocks;
              b.block_shift = shift;
              b.head_dim = D;
              b.q = q.data();
              b.q_token_stride = G * D;
              b.n_tokens = sh.n_tokens;
              b.n_group = G;
              b.n_keys0 = sh.n_keys0;
              b.scale = 0.125f;
              std::vector<float> out(q.size() + 2 * G * sh.n_tokens, -1.0f);
              b.out = out.data();
              b.out_token_stride = G * D;
              b.key_begin = key_begin;
              if (key_begin > 0) {  // a later part of a split decode: unnormalised output, max and sum
                b.partial_max = out.data() + q.size();
                b.partial_sum = b.partial_max + G * sh.n_tokens;
              }
              std::vector<float> work(attention_work_floats(D, G));
              fn(b, work.data());
              return out;
            };
            const auto contiguous = run(h.k.data(), h.v.data(), nullptr);
            const auto paged = run(k_paged.data(), v_paged.data(), table.data());
            EXPECT_EQ(contiguous, paged) << "isa " << static_cast<int>(isa) << " type " << dtype_name(type)
                                         << " block " << block << " T " << sh.n_tokens << " key_begin " << key_begin;
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace edgellm
