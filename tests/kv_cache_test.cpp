// KV cache types: sizes and layout of f32/f16/q8_0 rows, store() rounding, and prompt caches saved from
// one KV type and loaded into another (through f32; q8_0 rows stay within Q8_0's rounding of f16).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "kernels/quantize.h"
#include "model/kv_cache.h"
#include "runtime/loaded_model.h"
#include "runtime/session.h"
#include "support/test_env.h"
#include "support/tiny_models.h"

namespace edgellm {
namespace {

ModelConfig config_d32() {
  ModelConfig c = test::tiny_config(Arch::kQwen2);  // 2 layers, 4 heads / 2 KV heads
  c.n_embd = 128;
  c.head_dim = 32;
  c.n_rot = 32;
  return c;
}

TEST(KvCache, SizesPerType) {
  const ModelConfig c = config_d32();  // kv_dim 64
  for (auto [type, row] : {std::pair{DType::kF32, 256}, std::pair{DType::kF16, 128}, std::pair{DType::kQ8_0, 68}}) {
    auto kv = KvCache::create(c, 10, type);
    ASSERT_TRUE(kv.ok()) << kv.error().message;
    EXPECT_EQ(kv->row_bytes(), static_cast<size_t>(row)) << dtype_name(type);
    EXPECT_EQ(kv->size_bytes(), 2u * 2u * 10u * static_cast<size_t>(row));
    EXPECT_EQ(KvCache::bytes_needed(c, 10, type), kv->size_bytes());
    EXPECT_EQ(kv->head_row_bytes(), static_cast<size_t>(row / 2));
    // Head-major: a head's rows are contiguous, the second head's after all of the first's.
    EXPECT_EQ(kv->k_head(1, 1) - kv->k_head(1, 0), static_cast<ptrdiff_t>(10 * row / 2));
    EXPECT_EQ(kv->k_head(1, 0) - kv->k_head(0, 0), static_cast<ptrdiff_t>(10 * row));
  }
  EXPECT_FALSE(KvCache::create(c, 10, DType::kQ4_0).ok());
  EXPECT_EQ(KvCache::bytes_needed(c, 10, DType::kQ4_0), 0u);
}

TEST(KvCache, Q8_0StoreRoundsEachBlockOfEachHead) {
  const ModelConfig c = config_d32();
  auto kv = KvCache::create(c, 3, DType::kQ8_0);
  ASSERT_TRUE(kv.ok());
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> dist(-3, 3);
  std::vector<float> k(64), v(64), back(64);
  for (float& x : k) x = dist(rng);
  for (float& x : v) x = dist(rng);
  kv->store(1, 2, k.data(), v.data());
  std::vector<uint8_t> row(kv->row_bytes());
  kv->read_row(false, 1, 2, row.data());
  ASSERT_TRUE(dequantize_row(DType::kQ8_0, row.data(), back.data(), 64).ok());
  // The same bytes where attention reads them: each head's row 2.
  EXPECT_EQ(std::memcmp(kv->k_head(1, 0) + 2 * 34, row.data(), 34), 0);
  EXPECT_EQ(std::memcmp(kv->k_head(1, 1) + 2 * 34, row.data() + 34, 34), 0);
  for (int blk = 0; blk < 2; ++blk) {
    float amax = 0;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(k[blk * 32 + i]));
    for (int i = 0; i < 32; ++i) EXPECT_LE(std::fabs(back[blk * 32 + i] - k[blk * 32 + i]), amax * (1.0f / 254 + 1.0f / 1024));
  }
}

TEST(KvCache, PromptCachesConvertBetweenKvTypes) {
  test::TempDir dir;
  auto lm = LoadedModel::load(test::write_tiny_gguf(dir.path(), config_d32(), DType::kF32));
  ASSERT_TRUE(lm.ok()) << lm.error().message;
  const std::vector<int32_t> prompt = {1, 5, 9, 200, 17, 33, 64, 3, 8};
  for (DType saved : {DType::kF16, DType::kQ8_0, DType::kF32}) {
    SessionOptions o;
    o.n_ctx = 32;
    o.kv_type = saved;
    auto a = Session::create(*lm, o);
    ASSERT_TRUE(a.ok());
    ASSERT_TRUE((*a)->prefill(prompt).ok());
    const std::string path = dir.file(std::string("state-") + dtype_name(saved) + ".bin");
    ASSERT_TRUE((*a)->save_state(path).ok());
    for (DType loaded : {DType::kF16, DType::kQ8_0, DType::kF32}) {
      o.kv_type = loaded;
      auto b = Session::create(*lm, o);
      ASSERT_TRUE(b.ok());
      const Status st = (*b)->load_state(path);
      ASSERT_TRUE(st.ok()) << dtype_name(saved) << " -> " << dtype_name(loaded) << ": " << st.error().message;
      EXPECT_EQ((*b)->cached_tokens(), prompt);
    }
  }
}

}  // namespace
}  // namespace edgellm
