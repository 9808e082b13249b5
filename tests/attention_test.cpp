// Attention end to end through the forward pass: Q8_0 KV cache at odd lengths and its head_dim check,
// long-context decode (split into parts) against prefill. The kernel against its reference, per ISA:
// kernels_attention_test.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "kernels/quantize.h"
#include "model/attention.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "model/transformer.h"
#include "support/test_env.h"
#include "support/tiny_models.h"

namespace edgellm {
namespace {

TEST(Attention, Q8_0CacheNeedsHeadDimMultipleOf32) {
  ModelConfig c = test::tiny_config(Arch::kQwen2);  // head_dim 16
  auto kv = KvCache::create(c, 8, DType::kQ8_0);
  ASSERT_FALSE(kv.ok());
  EXPECT_NE(kv.error().message.find("multiple of 32"), std::string::npos) << kv.error().message;
}

// A tiny model with head_dim 32 (so Q8_0 KV applies), odd prompt lengths crossing query and key tiles.
ModelConfig tiny_config_d32(Arch arch) {
  ModelConfig c = test::tiny_config(arch);
  c.n_embd = 128;
  c.head_dim = 32;
  c.n_rot = 32;
  return c;
}

std::vector<float> all_logits(const Model& model, const std::vector<int32_t>& tokens, int threads, int64_t batch,
                              DType kv_type, bool one_by_one) {
  auto kv = KvCache::create(model.config(), 160, kv_type);
  EXPECT_TRUE(kv.ok()) << kv.error().message;
  ThreadPool pool(threads);
  ForwardScratch scratch(model.config(), batch, 160, pool.n_threads());
  Transformer tf(model);
  std::vector<float> logits, out;
  if (one_by_one) {
    for (int32_t t : tokens) {
      EXPECT_TRUE(tf.forward(&t, 1, *kv, scratch, pool, LogitsMode::kLast, logits).ok());
      out.insert(out.end(), logits.begin(), logits.end());
    }
    return out;
  }
  EXPECT_TRUE(tf.forward(tokens.data(), static_cast<int64_t>(tokens.size()), *kv, scratch, pool, LogitsMode::kAll,
                         logits).ok());
  return logits;
}

double max_rel_error(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double max_diff = 0, max_ref = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    max_diff = std::max(max_diff, std::fabs(static_cast<double>(a[i]) - b[i]));
    max_ref = std::max(max_ref, std::fabs(static_cast<double>(b[i])));
  }
  return max_ref > 0 ? max_diff / max_ref : max_diff;
}

TEST(Attention, ForwardWithQ8_0CacheAtOddLengths) {
  test::TempDir dir;
  for (Arch arch : {Arch::kQwen2, Arch::kLlama}) {
    auto model = Model::load(test::write_tiny_gguf(dir.path(), tiny_config_d32(arch)));
    ASSERT_TRUE(model.ok()) << model.error().message;
    for (int64_t n : {1, 17, 67, 131}) {
      std::vector<int32_t> tokens(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) tokens[static_cast<size_t>(i)] = static_cast<int32_t>((i * 37 + 11) % 512);
      const auto f32 = all_logits(**model, tokens, 1, 64, DType::kF32, false);
      const auto f16 = all_logits(**model, tokens, 2, 64, DType::kF16, false);
      const auto q8 = all_logits(**model, tokens, 2, 64, DType::kQ8_0, false);
      const auto q8_steps = all_logits(**model, tokens, 1, 64, DType::kQ8_0, true);
      const auto q8_chunks = all_logits(**model, tokens, 2, 5, DType::kQ8_0, false);
      // f16 KV rounds to 2^-11 relative, Q8_0 to about 1/254 of each block's largest value: through two
      // layers of random weights the logits move by well under 1e-2 and 5e-2 of their largest magnitude.
      EXPECT_LT(max_rel_error(f16, f32), 1e-2) << arch_name(arch) << " n " << n;
      EXPECT_LT(max_rel_error(q8, f16), 5e-2) << arch_name(arch) << " n " << n;
      // The same positions see the same tiles whatever the batching, so decode and chunked prefill agree.
      EXPECT_LT(max_rel_error(q8_steps, q8), 1e-5) << arch_name(arch) << " n " << n;
      EXPECT_LT(max_rel_error(q8_chunks, q8), 1e-5) << arch_name(arch) << " n " << n;
    }
  }
}

}  // namespace
}  // namespace edgellm

namespace edgellm {
namespace {

TEST(Attention, LongContextDecodeMatchesPrefill) {
  test::TempDir dir;
  auto model = Model::load(test::write_tiny_gguf(dir.path(), tiny_config_d32(Arch::kQwen2)));
  ASSERT_TRUE(model.ok()) << model.error().message;
  const int64_t n = 1100;  // decode steps at 1090..1099 see 3 parts
  std::vector<int32_t> tokens(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) tokens[static_cast<size_t>(i)] = static_cast<int32_t>((i * 131 + 7) % 512);
  for (DType kv_type : {DType::kF16, DType::kQ8_0}) {
    std::vector<float> all[2];
    for (int threads : {1, 2}) {
      auto kv = KvCache::create((*model)->config(), n, kv_type);
      ASSERT_TRUE(kv.ok());
      ThreadPool pool(threads);
      ForwardScratch scratch((*model)->config(), 64, n, pool.n_threads());
      Transformer tf(**model);
      std::vector<float> logits;
      ASSERT_TRUE(tf.forward(tokens.data(), n - 10, *kv, scratch, pool, LogitsMode::kLast, logits).ok());
      for (int64_t i = n - 10; i < n; ++i) {
        ASSERT_TRUE(tf.forward(&tokens[static_cast<size_t>(i)], 1, *kv, scratch, pool, LogitsMode::kLast, logits).ok());
        all[threads - 1].insert(all[threads - 1].end(), logits.begin(), logits.end());
      }
    }
    EXPECT_EQ(all[0], all[1]) << "thread count changed the result";
    auto kv = KvCache::create((*model)->config(), n, kv_type);
    ThreadPool pool(2);
    ForwardScratch scratch((*model)->config(), 64, n, pool.n_threads());
    Transformer tf(**model);
    std::vector<float> logits;
    ASSERT_TRUE(tf.forward(tokens.data(), n, *kv, scratch, pool, LogitsMode::kAll, logits).ok());
    const std::vector<float> prefill_tail(logits.end() - 10 * (*model)->config().n_vocab, logits.end());
    EXPECT_LT(max_rel_error(all[0], prefill_tail), 1e-5) << dtype_name(kv_type);
  }
}

}  // namespace
}  // namespace edgellm
