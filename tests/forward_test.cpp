// Forward pass invariants on tiny synthetic models of every architecture: GGUF and HF loads agree,
// prefill equals token-by-token decode, chunking and thread count do not change results, f16 KV is close.
#include <gtest/gtest.h>

#include <cmath>

#include "model/model.h"
#include "model/transformer.h"
#include "support/test_env.h"
#include "support/tiny_models.h"

namespace edgellm {
namespace {

using test::TempDir;

const std::vector<int32_t> kPrompt = {1, 17, 300, 42, 511, 0, 99, 7, 256, 128, 64};

// Logits of every prompt position, computed with the given settings.
std::vector<float> all_logits(const Model& model, const std::vector<int32_t>& tokens, int threads, int64_t batch,
                              DType kv_type, bool one_by_one = false) {
  auto kv = KvCache::create(model.config(), 64, kv_type);
  EXPECT_TRUE(kv.ok());
  ThreadPool pool(threads);
  ForwardScratch scratch(model.config(), batch, 64, pool.n_threads());
  Transformer tf(model);
  std::vector<float> logits, out;
  if (one_by_one) {
    for (int32_t t : tokens) {
      EXPECT_TRUE(tf.forward(&t, 1, *kv, scratch, pool, LogitsMode::kLast, logits).ok());
      out.insert(out.end(), logits.begin(), logits.end());
    }
    return out;
  }
  const Status st = tf.forward(tokens.data(), static_cast<int64_t>(tokens.size()), *kv, scratch, pool,
                               LogitsMode::kAll, logits);
  EXPECT_TRUE(st.ok()) << st.error().message;
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

class ForwardPerArch : public ::testing::TestWithParam<Arch> {};

TEST_P(ForwardPerArch, GgufAndHfDirectoryGiveTheSameLogits) {
  TempDir dir;
  const ModelConfig c = test::tiny_config(GetParam());
  auto from_gguf = Model::load(test::write_tiny_gguf(dir.path(), c));
  auto from_hf = Model::load(test::write_tiny_hf(dir.path(), c));
  ASSERT_TRUE(from_gguf.ok()) << from_gguf.error().message;
  ASSERT_TRUE(from_hf.ok()) << from_hf.error().message;
  EXPECT_EQ((*from_gguf)->config().rope_style,
            GetParam() == Arch::kLlama ? RopeStyle::kInterleaved : RopeStyle::kNeox);
  const auto a = all_logits(**from_gguf, kPrompt, 1, 64, DType::kF32);
  const auto b = all_logits(**from_hf, kPrompt, 1, 64, DType::kF32);
  EXPECT_LT(max_rel_error(a, b), 1e-6);
}

TEST_P(ForwardPerArch, PrefillEqualsDecodeAndChunking) {
  TempDir dir;
  auto model = Model::load(test::write_tiny_gguf(dir.path(), test::tiny_config(GetParam())));
  ASSERT_TRUE(model.ok()) << model.error().message;
  const auto full = all_logits(**model, kPrompt, 1, 64, DType::kF32);
  const auto stepwise = all_logits(**model, kPrompt, 1, 64, DType::kF32, /*one_by_one=*/true);
  const auto chunked = all_logits(**model, kPrompt, 1, 3, DType::kF32);
  EXPECT_LT(max_rel_error(stepwise, full), 1e-5);
  EXPECT_LT(max_rel_error(chunked, full), 1e-5);
}

TEST_P(ForwardPerArch, ThreadCountDoesNotChangeResults) {
  TempDir dir;
  auto model = Model::load(test::write_tiny_gguf(dir.path(), test::tiny_config(GetParam()), DType::kQ8_0));
  ASSERT_TRUE(model.ok()) << model.error().message;
  EXPECT_EQ(all_logits(**model, kPrompt, 1, 64, DType::kF16), all_logits(**model, kPrompt, 2, 64, DType::kF16));
}

TEST_P(ForwardPerArch, F16CacheIsCloseToF32) {
  TempDir dir;
  auto model = Model::load(test::write_tiny_gguf(dir.path(), test::tiny_config(GetParam())));
  ASSERT_TRUE(model.ok());
  EXPECT_LT(max_rel_error(all_logits(**model, kPrompt, 1, 64, DType::kF16),
                          all_logits(**model, kPrompt, 1, 64, DType::kF32)),
            1e-2);
}

INSTANTIATE_TEST_SUITE_P(AllArchitectures, ForwardPerArch,
                         ::testing::Values(Arch::kLlama, Arch::kQwen, Arch::kQwen2, Arch::kQwen3, Arch::kQwen35),
                         [](const auto& info) { return std::string(arch_name(info.param)); });

TEST(Forward, TiedEmbeddingsUseTheTokenEmbedding) {
  TempDir dir;
  auto model = Model::load(test::write_tiny_gguf(dir.path(), test::tiny_config(Arch::kQwen2, /*tied=*/true)));
  ASSERT_TRUE(model.ok()) << model.error().message;
  EXPECT_TRUE((*model)->config().tied_embeddings);
  EXPECT_EQ((*model)->weights().output.data, (*model)->weights().token_embd.data);
}

TEST(Forward, RejectsOutOfRangeTokensAndFullContext) {
  TempDir dir;
  auto model = Model::load(test::write_tiny_gguf(dir.path(), test::tiny_config(Arch::kQwen2)));
  ASSERT_TRUE(model.ok());
  auto kv = KvCache::create((*model)->config(), 4, DType::kF16);
  ASSERT_TRUE(kv.ok());
  ThreadPool pool(1);
  ForwardScratch scratch((*model)->config(), 8, 4, 1);
  Transformer tf(**model);
  std::vector<float> logits;
  const int32_t bad[] = {5, 512};
  auto st = tf.forward(bad, 2, *kv, scratch, pool, LogitsMode::kLast, logits);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("token id 512 at index 1"), std::string::npos) << st.error().message;
  EXPECT_EQ(kv->n_past(), 0);
  const int32_t five[] = {1, 2, 3, 4, 5};
  st = tf.forward(five, 5, *kv, scratch, pool, LogitsMode::kLast, logits);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kContextFull);
  EXPECT_TRUE(tf.forward(five, 4, *kv, scratch, pool, LogitsMode::kLast, logits).ok());  // still usable
}

TEST(QwenLongContext, NtkAlphaAndLognFollowModelingQwen) {
  EXPECT_EQ(qwen_ntk_alpha(100, 2048), 1.0f);
  EXPECT_EQ(qwen_ntk_alpha(2048, 2048), 1.0f);
  EXPECT_EQ(qwen_ntk_alpha(2049, 2048), 3.0f);  // log2(1.0005) + 1 -> ceil 2 -> 2^2 - 1
  EXPECT_EQ(qwen_ntk_alpha(4096, 2048), 3.0f);
  EXPECT_EQ(qwen_ntk_alpha(4097, 2048), 7.0f);
  EXPECT_EQ(qwen_logn_scale(10, 2048), 1.0f);
  EXPECT_FLOAT_EQ(qwen_logn_scale(4095, 2048), static_cast<float>(std::log(4096.0) / std::log(2048.0)));
}

}  // namespace
}  // namespace edgellm
