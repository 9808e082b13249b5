// Quantization quality: the edgellm-only e4 block types (round trip, matmul), the error-minimising scale
// search (never worse than round-to-nearest, error bounds on random and outlier-heavy data), the recipe
// type rules, and the calibration forward pass (same logits as Transformer::forward).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "convert/quant_recipe.h"
#include "kernels/matmul.h"
#include "kernels/quant_edgellm.h"
#include "kernels/quantize.h"
#include "model/model.h"
#include "model/transformer.h"
#include "quant/calibration.h"
#include "quant/scale_search.h"
#include "support/test_env.h"
#include "support/tiny_models.h"

namespace edgellm {
namespace {

constexpr uint64_t kSeed = 1234;

const DType kSearchTypes[] = {DType::kQ4_0, DType::kIQ4_NL, DType::kQ4_1, DType::kQ8_0,
                              DType::kE4G64, DType::kE4G128, DType::kE4G256};

std::vector<float> gaussian(int64_t n, uint64_t seed, float sd = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, sd);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = dist(rng);
  return v;
}

// Gaussian weights with ~1% outliers of 10-30 sigma, as trained LLM matrices have.
std::vector<float> outlier_heavy(int64_t n, uint64_t seed) {
  std::vector<float> v = gaussian(n, seed);
  std::mt19937_64 rng(seed + 1);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  for (auto& x : v) {
    if (u(rng) < 0.01f) x = (u(rng) < 0.5f ? -1.0f : 1.0f) * (10.0f + 20.0f * u(rng));
  }
  return v;
}

std::vector<uint8_t> quantize(DType type, const std::vector<float>& x, bool search, const float* importance = nullptr) {
  std::vector<uint8_t> q(dtype_row_bytes(type, static_cast<int64_t>(x.size())));
  const int64_t n = static_cast<int64_t>(x.size());
  const Status st = search ? quantize_row_searched(type, x.data(), importance, q.data(), n)
                           : quantize_row(type, x.data(), q.data(), n);
  EXPECT_TRUE(st.ok()) << dtype_name(type);
  return q;
}

double sq_error(DType type, const std::vector<float>& x, const std::vector<uint8_t>& q, const float* importance = nullptr) {
  auto e = weighted_squared_error(type, x.data(), q.data(), importance, static_cast<int64_t>(x.size()));
  EXPECT_TRUE(e.ok());
  return *e;
}

double sum_sq(const std::vector<float>& x) {
  double s = 0;
  for (float v : x) s += static_cast<double>(v) * v;
  return s;
}

// Error budget of a row: round-to-nearest with step h makes a uniform error of variance h^2/12 per
// element, h being the group's scale: amax/8 for Q4_0 (ggml maps the extreme to -8) and for IQ4_NL (16
// values over the same range, unevenly spaced), amax/127 for Q8_0,
// (max - min)/15 for the types with an offset. The search must stay within 1.2x of that expectation
// (it is usually below: it picks smaller steps and clips), on any data.
double rounding_noise_budget(DType type, const std::vector<float>& x) {
  const int64_t group = dtype_traits(type).block_size;
  double total = 0;
  for (size_t b = 0; b < x.size() / static_cast<size_t>(group); ++b) {
    float lo = INFINITY, hi = -INFINITY, amax = 0;
    for (int64_t j = 0; j < group; ++j) {
      const float v = x[b * static_cast<size_t>(group) + static_cast<size_t>(j)];
      lo = std::min(lo, v);
      hi = std::max(hi, v);
      amax = std::max(amax, std::fabs(v));
    }
    const double step = type == DType::kQ4_0 || type == DType::kIQ4_NL ? amax / 8.0 : type == DType::kQ8_0 ? amax / 127.0 : (hi - lo) / 15.0;
    total += static_cast<double>(group) * step * step / 12.0;
  }
  return 1.2 * total;
}

TEST(E4Blocks, RoundTripIsWithinHalfAStep) {
  for (DType type : {DType::kE4G64, DType::kE4G128, DType::kE4G256}) {
    const int64_t group = e4_group_size(type);
    const std::vector<float> x = gaussian(group * 9, kSeed);
    const auto q = quantize(type, x, /*search=*/false);
    std::vector<float> y(x.size());
    ASSERT_TRUE(dequantize_row(type, q.data(), y.data(), static_cast<int64_t>(x.size())).ok());
    for (int64_t b = 0; b < 9; ++b) {
      float lo = INFINITY, hi = -INFINITY;
      for (int64_t j = 0; j < group; ++j) {
        lo = std::min(lo, x[static_cast<size_t>(b * group + j)]);
        hi = std::max(hi, x[static_cast<size_t>(b * group + j)]);
      }
      // Half a step, plus the fp16 rounding of d and m (relative 2^-11 of each, times up to 15 levels).
      const float step = (hi - lo) / 15.0f;
      const float bound = step / 2 + 16.0f * (std::fabs(lo) + step) * (1.0f / 2048.0f);
      for (int64_t j = 0; j < group; ++j) {
        const size_t i = static_cast<size_t>(b * group + j);
        EXPECT_LE(std::fabs(x[i] - y[i]), bound) << dtype_name(type) << " block " << b << " element " << j;
      }
    }
  }
}

TEST(E4Blocks, ConstantAndZeroGroupsAreExact) {
  for (DType type : {DType::kE4G64, DType::kE4G128, DType::kE4G256}) {
    for (float value : {0.0f, 0.5f, -3.0f}) {
      const std::vector<float> x(static_cast<size_t>(e4_group_size(type)), value);
      for (bool search : {false, true}) {
        const auto q = quantize(type, x, search);
        EXPECT_EQ(sq_error(type, x, q), 0.0) << dtype_name(type) << " value " << value << " search " << search;
      }
    }
  }
}

TEST(ScaleSearch, ErrorWithinBudgetOnGaussianRows) {
  for (DType type : kSearchTypes) {
    const std::vector<float> x = gaussian(4096, kSeed + 1);
    const double rtn = sq_error(type, x, quantize(type, x, false)) / sum_sq(x);
    const double searched = sq_error(type, x, quantize(type, x, true)) / sum_sq(x);
    std::printf("%-8s gaussian NMSE: rtn %.3e  search %.3e  (%.1f%% lower)\n", dtype_name(type), rtn, searched,
                100 * (1 - searched / rtn));
    EXPECT_LE(searched * sum_sq(x), rounding_noise_budget(type, x)) << dtype_name(type);
    EXPECT_LT(searched, rtn) << dtype_name(type) << ": the search should improve on RTN on average";
  }
}

TEST(ScaleSearch, ErrorWithinBudgetOnOutlierHeavyRows) {
  for (DType type : kSearchTypes) {
    const std::vector<float> x = outlier_heavy(4096, kSeed + 2);
    const double rtn = sq_error(type, x, quantize(type, x, false)) / sum_sq(x);
    const double searched = sq_error(type, x, quantize(type, x, true)) / sum_sq(x);
    std::printf("%-8s outlier NMSE: rtn %.3e  search %.3e  (%.1f%% lower)\n", dtype_name(type), rtn, searched,
                100 * (1 - searched / rtn));
    // Outliers stretch the steps of the groups they fall in; the budget follows the actual ranges.
    EXPECT_LE(searched * sum_sq(x), rounding_noise_budget(type, x)) << dtype_name(type);
    EXPECT_LT(searched, rtn) << dtype_name(type);
  }
}

// Property: on every single group, with any non-negative importance weights, the searched block's
// weighted error is at most round-to-nearest's.
TEST(ScaleSearch, NeverWorseThanRoundToNearestOnAnyGroup) {
  std::mt19937_64 rng(kSeed + 3);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  for (DType type : kSearchTypes) {
    const int64_t group = dtype_traits(type).block_size;
    int n_better = 0;
    const int n_trials = 300;
    for (int trial = 0; trial < n_trials; ++trial) {
      std::vector<float> x;
      switch (trial % 4) {
        case 0: x = gaussian(group, rng()); break;
        case 1: x = outlier_heavy(group, rng()); break;
        case 2: {  // skewed: all positive with a long tail
          x = gaussian(group, rng());
          for (auto& v : x) v = std::exp(v);
          break;
        }
        default: {  // tiny magnitudes near fp16's subnormal range
          x = gaussian(group, rng(), 1e-5f);
          break;
        }
      }
      std::vector<float> w(static_cast<size_t>(group));
      for (auto& v : w) v = trial % 2 ? std::pow(u(rng), 4.0f) * 10 : 1.0f;  // very uneven or uniform
      const double rtn = sq_error(type, x, quantize(type, x, false), w.data());
      const double searched = sq_error(type, x, quantize(type, x, true, w.data()), w.data());
      ASSERT_LE(searched, rtn) << dtype_name(type) << " trial " << trial << " seed " << kSeed + 3;
      if (searched < rtn) ++n_better;
    }
    std::printf("%-8s search strictly better than RTN on %d of %d groups\n", dtype_name(type), n_better, n_trials);
  }
}

// Importance weighting moves error away from the channels that matter.
TEST(ScaleSearch, ImportanceWeightsLowerTheWeightedError) {
  for (DType type : kSearchTypes) {
    const int64_t n = 2048;
    const std::vector<float> x = gaussian(n, kSeed + 4);
    std::vector<float> w = gaussian(n, kSeed + 5);
    for (auto& v : w) v = v * v * v * v;  // heavy-tailed channel importance
    const double plain = sq_error(type, x, quantize(type, x, true), w.data());
    const double weighted = sq_error(type, x, quantize(type, x, true, w.data()), w.data());
    std::printf("%-8s weighted error: uniform search %.4e  importance search %.4e\n", dtype_name(type), plain, weighted);
    EXPECT_LT(weighted, plain) << dtype_name(type);
  }
}

// Searched rows are plain standard blocks: Q8_0 levels stay in [-127, 127] like ggml's.
TEST(ScaleSearch, Q8LevelsStayInGgmlRange) {
  const std::vector<float> x = outlier_heavy(32 * 64, kSeed + 6);
  const auto q = quantize(DType::kQ8_0, x, true);
  for (size_t b = 0; b < q.size() / 34; ++b) {
    for (int j = 0; j < 32; ++j) EXPECT_NE(static_cast<int8_t>(q[b * 34 + 2 + j]), -128);
  }
}

TEST(ScaleSearch, RejectsPartialBlocks) {
  std::vector<float> x(70, 1.0f);
  std::vector<uint8_t> q(256);
  EXPECT_FALSE(quantize_row_searched(DType::kE4G64, x.data(), nullptr, q.data(), 70).ok());
  EXPECT_FALSE(quantize_row_searched(DType::kQ4_0, x.data(), nullptr, q.data(), 33).ok());
}

// The reference matmul of the e4 types against dequantize + f64 dot, on awkward sizes.
TEST(E4Blocks, MatmulMatchesDequantizedDot) {
  ThreadPool pool(2);
  for (DType type : {DType::kE4G64, DType::kE4G128, DType::kE4G256}) {
    const int64_t group = e4_group_size(type);
    for (int64_t k : {group, group * 3, group * 7}) {
      for (int64_t n_rows : {1, 7, 33}) {
        for (int64_t n_tokens : {1, 3}) {
          const std::vector<float> w_f = gaussian(k * n_rows, kSeed + static_cast<uint64_t>(k + n_rows));
          const std::vector<uint8_t> w_q = quantize(type, w_f, true);
          const std::vector<float> x = gaussian(k * n_tokens, kSeed + 7);
          TensorRef ref;
          ref.name = "w";
          ref.type = type;
          ref.ne = {k, n_rows};
          ref.data = w_q.data();
          ref.size_bytes = w_q.size();
          std::vector<float> y(static_cast<size_t>(n_rows * n_tokens));
          // f32 activations: this checks the f32 kernel's accumulation (kernels_q8act_test bounds the int8 path).
          matmul(ref, x.data(), n_tokens, y.data(), pool, MatmulActivations::kF32);
          std::vector<float> deq(static_cast<size_t>(k));
          for (int64_t r = 0; r < n_rows; ++r) {
            ASSERT_TRUE(dequantize_row(type, w_q.data() + r * ref.row_bytes(), deq.data(), k).ok());
            std::vector<float> row(static_cast<size_t>(k));
            get_row(ref, r, row.data());
            EXPECT_EQ(row, deq) << "get_row " << dtype_name(type);
            for (int64_t t = 0; t < n_tokens; ++t) {
              double dot = 0, mag = 0;
              for (int64_t j = 0; j < k; ++j) {
                dot += static_cast<double>(deq[static_cast<size_t>(j)]) * x[static_cast<size_t>(t * k + j)];
                mag += std::fabs(static_cast<double>(deq[static_cast<size_t>(j)]) * x[static_cast<size_t>(t * k + j)]);
              }
              // f32 accumulation: relative error ~ k * 2^-24 of the magnitude sum; 1e-5 leaves 10x room.
              EXPECT_NEAR(y[static_cast<size_t>(t * n_rows + r)], dot, 1e-5 * mag + 1e-6)
                  << dtype_name(type) << " k " << k << " row " << r << " token " << t;
            }
          }
        }
      }
    }
  }
}

TEST(QuantRecipe, LargestGroupFallsBackThroughTheFamily) {
  auto r = quant_recipe_from_name("w4a16");
  ASSERT_TRUE(r.ok());
  bool fb = false;
  EXPECT_EQ(tensor_type_for(*r, TensorRole::kFfnUp, 4864, false, false, &fb), DType::kE4G256);
  EXPECT_FALSE(fb);
  EXPECT_EQ(tensor_type_for(*r, TensorRole::kFfnUp, 896, false, false, &fb), DType::kE4G128);  // Qwen2.5-0.5B
  EXPECT_TRUE(fb);
  EXPECT_EQ(tensor_type_for(*r, TensorRole::kFfnUp, 64, false, false, &fb), DType::kE4G64);
  EXPECT_EQ(tensor_type_for(*r, TensorRole::kFfnUp, 96, false, false, &fb), DType::kIQ4_NL);
  EXPECT_EQ(tensor_type_for(*r, TensorRole::kFfnDown, 172, false, false, &fb), DType::kF16);  // stories260K
  EXPECT_EQ(tensor_type_for(*r, TensorRole::kOutput, 896, false, false, &fb), DType::kQ8_0);
  EXPECT_EQ(tensor_type_for(*r, TensorRole::kTokenEmbd, 896, false, true, &fb), DType::kQ8_0);  // tied
  EXPECT_EQ(tensor_type_for(*r, TensorRole::kAttnNorm, 896, true, false, &fb), DType::kF32);
  for (const std::string& name : quant_recipe_names()) EXPECT_TRUE(quant_recipe_from_name(name).ok()) << name;
  EXPECT_FALSE(quant_recipe_from_name("w3a16").ok());
  // w4a16_g32 is IQ4_NL (same 4.5 bits per weight as Q4_0, lower error); q4_0 stays plain Q4_0.
  EXPECT_EQ(quant_recipe_from_name("w4a16_g32")->matrix_type, DType::kIQ4_NL);
  EXPECT_EQ(quant_recipe_from_name("iq4_nl")->matrix_type, DType::kIQ4_NL);
  EXPECT_EQ(quant_recipe_from_name("q4_0")->matrix_type, DType::kQ4_0);
}

TEST(QuantRecipe, GgufNamesMapBackToRoles) {
  TensorRole role;
  int64_t layer;
  ASSERT_TRUE(tensor_role_from_gguf_name("blk.12.ffn_down.weight", &role, &layer));
  EXPECT_EQ(role, TensorRole::kFfnDown);
  EXPECT_EQ(layer, 12);
  ASSERT_TRUE(tensor_role_from_gguf_name("output.weight", &role, &layer));
  EXPECT_EQ(role, TensorRole::kOutput);
  EXPECT_EQ(layer, -1);
  EXPECT_FALSE(tensor_role_from_gguf_name("blk.x.ffn_down.weight", &role, &layer));
  EXPECT_FALSE(tensor_role_from_gguf_name("something.else", &role, &layer));
}

// The calibration pass re-traces the forward pass; its logits must be Transformer::forward's.
class CalibrationPerArch : public ::testing::TestWithParam<Arch> {};

TEST_P(CalibrationPerArch, ForwardMatchesTransformerAndStatsCoverEveryMatrix) {
  test::TempDir dir;
  auto model = Model::load(test::write_tiny_gguf(dir.path(), test::tiny_config(GetParam())));
  ASSERT_TRUE(model.ok()) << model.error().message;
  const ModelConfig& c = (*model)->config();
  const std::vector<int32_t> tokens = {1, 17, 300, 42, 511, 0, 99, 7, 256, 128, 64, 3, 5};
  ThreadPool pool(2);
  std::vector<float> calib_logits;
  auto stats = collect_activation_stats(**model, tokens, 64, pool, &calib_logits, /*with_gram=*/true);
  ASSERT_TRUE(stats.ok()) << stats.error().message;

  auto kv = KvCache::create(c, 64, DType::kF32);
  ASSERT_TRUE(kv.ok());
  ForwardScratch scratch(c, 64, 64, pool.n_threads());
  std::vector<float> logits;
  ASSERT_TRUE(Transformer(**model).forward(tokens.data(), static_cast<int64_t>(tokens.size()), *kv, scratch, pool,
                                           LogitsMode::kAll, logits).ok());
  ASSERT_EQ(calib_logits.size(), logits.size());
  double max_diff = 0, max_ref = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    max_diff = std::max(max_diff, std::fabs(static_cast<double>(calib_logits[i]) - logits[i]));
    max_ref = std::max(max_ref, std::fabs(static_cast<double>(logits[i])));
  }
  // Same kernels, same order except the attention loop: f32 rounding only.
  EXPECT_LE(max_diff / max_ref, 1e-5) << arch_name(c.arch);

  EXPECT_EQ(stats->n_tokens, static_cast<int64_t>(tokens.size()));
  const std::string output = c.tied_embeddings ? "token_embd.weight" : "output.weight";
  ASSERT_NE(stats->find(output), nullptr);
  ASSERT_NE(stats->find("blk.1.ffn_down.weight"), nullptr);
  EXPECT_EQ(static_cast<int64_t>(stats->find("blk.1.ffn_down.weight")->size()), c.n_ff);
  for (const auto& [name, mean_sq] : stats->mean_sq) {
    for (float v : mean_sq) ASSERT_TRUE(v >= 0 && std::isfinite(v)) << name;
    // GPTQ's Hessian E[a a^T]: symmetric, its diagonal the mean squares (f32 sums: 1e-5 relative).
    const std::vector<float>* gram = stats->find_gram(name);
    ASSERT_NE(gram, nullptr) << name;
    const auto dim = static_cast<int64_t>(mean_sq.size());
    ASSERT_EQ(static_cast<int64_t>(gram->size()), dim * dim) << name;
    for (int64_t i = 0; i < dim; ++i) {
      EXPECT_NEAR((*gram)[static_cast<size_t>(i * dim + i)], mean_sq[static_cast<size_t>(i)],
                  1e-5 * mean_sq[static_cast<size_t>(i)] + 1e-12) << name << " channel " << i;
      for (int64_t j = 0; j < i; ++j) {
        ASSERT_EQ((*gram)[static_cast<size_t>(i * dim + j)], (*gram)[static_cast<size_t>(j * dim + i)]) << name;
      }
    }
  }
  // Matrices reading the same input share one Hessian.
  EXPECT_EQ(stats->gram.at("blk.0.ffn_gate.weight"), stats->gram.at("blk.0.ffn_up.weight"));
  if (c.hybrid()) {
    // Qwen3.5's tiny: layers 0-2 linear attention, layer 3 full attention. Every product is recorded.
    const std::pair<const char*, int64_t> inputs[] = {
        {"blk.0.attn_qkv.weight", c.n_embd}, {"blk.0.attn_gate.weight", c.n_embd}, {"blk.0.ssm_beta.weight", c.n_embd},
        {"blk.0.ssm_alpha.weight", c.n_embd}, {"blk.2.ssm_out.weight", c.ssm_value_dim()},
        {"blk.3.attn_q.weight", c.n_embd}, {"blk.3.attn_output.weight", c.q_dim()}};
    for (const auto& [name, dim] : inputs) {
      ASSERT_NE(stats->find(name), nullptr) << name;
      EXPECT_EQ(static_cast<int64_t>(stats->find(name)->size()), dim) << name;
    }
    EXPECT_EQ(stats->gram.at("blk.0.attn_qkv.weight"), stats->gram.at("blk.0.ssm_alpha.weight"));
    EXPECT_EQ(stats->gram.at("blk.3.attn_q.weight"), stats->gram.at("blk.3.attn_v.weight"));
  } else if (!c.fused_qkv) {
    EXPECT_EQ(stats->gram.at("blk.0.attn_q.weight"), stats->gram.at("blk.0.attn_v.weight"));
  }
}

// Data-free calibration: the model's own samples, reproducible for a seed, valid ids, BOS/EOS first.
TEST_P(CalibrationPerArch, SelfSampledTokensAreReproducible) {
  test::TempDir dir;
  auto model = Model::load(test::write_tiny_gguf(dir.path(), test::tiny_config(GetParam())));
  ASSERT_TRUE(model.ok()) << model.error().message;
  ThreadPool pool(2);
  auto a = sample_calibration_tokens(**model, 48, 16, 7, pool);
  auto b = sample_calibration_tokens(**model, 48, 16, 7, pool);
  auto other = sample_calibration_tokens(**model, 48, 16, 8, pool);
  ASSERT_TRUE(a.ok() && b.ok() && other.ok()) << (a.ok() ? "" : a.error().message);
  ASSERT_EQ(a->size(), 48u);
  EXPECT_EQ(*a, *b);
  EXPECT_NE(*a, *other);
  for (size_t i = 0; i < a->size(); ++i) {
    ASSERT_TRUE((*a)[i] >= 0 && (*a)[i] < (*model)->config().n_vocab) << i;
    if (i % 16 == 0) {
      EXPECT_EQ((*a)[i], (*a)[0]) << "every sequence starts with the same start token";
    }
  }
}

// Qwen3.5 read from its Hugging Face directory (value heads grouped) and from GGUF (llama.cpp's tiled order):
// the statistics are recorded as the GGUF file holds the weights, so both give the same, name by name.
TEST(CalibrationHybrid, HfDirectoryAndGgufRecordTheSameStatistics) {
  test::TempDir dir;
  const ModelConfig config = test::tiny_config(Arch::kQwen35);
  auto hf = Model::load(test::write_tiny_hf(dir.path(), config));
  auto gguf = Model::load(test::write_tiny_gguf(dir.path(), config));
  ASSERT_TRUE(hf.ok() && gguf.ok());
  ASSERT_FALSE((*hf)->config().ssm_v_heads_tiled);
  ASSERT_TRUE((*gguf)->config().ssm_v_heads_tiled);
  const std::vector<int32_t> tokens = {1, 17, 300, 42, 511, 0, 99, 7, 256, 128, 64, 3, 5, 8, 13, 21, 34, 55, 89};
  ThreadPool pool(2);
  auto from_hf = collect_activation_stats(**hf, tokens, 64, pool, nullptr, /*with_gram=*/false);
  auto from_gguf = collect_activation_stats(**gguf, tokens, 64, pool, nullptr, /*with_gram=*/false);
  ASSERT_TRUE(from_hf.ok() && from_gguf.ok());
  ASSERT_EQ(from_hf->mean_sq.size(), from_gguf->mean_sq.size());
  for (const auto& [name, want] : from_gguf->mean_sq) {
    const std::vector<float>* got = from_hf->find(name);
    ASSERT_NE(got, nullptr) << name;
    ASSERT_EQ(got->size(), want.size()) << name;
    for (size_t j = 0; j < want.size(); ++j) {
      EXPECT_NEAR((*got)[j], want[j], 1e-4 * want[j] + 1e-9) << name << " channel " << j;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllArchitectures, CalibrationPerArch,
                         ::testing::Values(Arch::kLlama, Arch::kQwen, Arch::kQwen2, Arch::kQwen3, Arch::kQwen35),
                         [](const auto& info) { return std::string(arch_name(info.param)); });

}  // namespace
}  // namespace edgellm
