// Model loading errors: each names the file and the tensor or key.
#include <gtest/gtest.h>

#include <fstream>

#include "format/gguf.h"
#include "model/model.h"
#include "runtime/loaded_model.h"
#include "support/test_env.h"
#include "support/tiny_models.h"

namespace edgellm {
namespace {

using test::TempDir;

// Copies a GGUF, letting `edit` change metadata and decide per tensor (drop / new shape / new type).
struct TensorEdit {
  bool drop = false;
  std::vector<int64_t> ne;  // empty: unchanged
  std::optional<DType> type;
};

std::string rewrite(const std::string& src, const std::string& dst,
                    const std::function<void(GgufWriter&)>& edit_metadata,
                    const std::function<TensorEdit(const std::string&)>& edit_tensor) {
  auto in = GgufFile::open(src);
  EXPECT_TRUE(in.ok());
  GgufWriter w;
  for (const auto& [key, value] : in->metadata()) w.set(key, value);
  if (edit_metadata) edit_metadata(w);
  for (const auto& info : in->tensors()) {
    TensorEdit e = edit_tensor ? edit_tensor(info.name) : TensorEdit{};
    if (e.drop) continue;
    TensorRef ref = in->tensor_ref(info);
    const std::vector<int64_t> ne = e.ne.empty() ? info.ne : e.ne;
    const DType type = e.type.value_or(info.type);
    int64_t n = 1;
    for (int64_t d : ne) n *= d;
    std::vector<uint8_t> bytes(dtype_row_bytes(type, n));
    std::memcpy(bytes.data(), ref.data, std::min(bytes.size(), ref.size_bytes));
    EXPECT_TRUE(w.add_tensor(info.name, type, ne, bytes.data(), bytes.size()).ok());
  }
  EXPECT_TRUE(w.write(dst).ok());
  return dst;
}

class ModelLoad : public ::testing::Test {
 protected:
  void SetUp() override { good_ = test::write_tiny_gguf(dir_.path(), test::tiny_config(Arch::kQwen2)); }
  Error load_error(const std::string& path) {
    auto m = Model::load(path);
    EXPECT_FALSE(m.ok()) << "expected an error loading " << path;
    return m.ok() ? Error{} : m.error();
  }
  TempDir dir_;
  std::string good_;
};

TEST_F(ModelLoad, GoodFileLoads) {
  auto m = Model::load(good_);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ((*m)->config().arch, Arch::kQwen2);
  EXPECT_EQ((*m)->config().n_vocab, 512);
  EXPECT_TRUE((*m)->config().qkv_bias);
}

TEST_F(ModelLoad, MissingTensorIsNamed) {
  const auto path = rewrite(good_, dir_.file("m.gguf"), nullptr, [](const std::string& name) {
    return TensorEdit{name == "blk.1.ffn_up.weight", {}, {}};
  });
  Error e = load_error(path);
  EXPECT_EQ(e.code, ErrorCode::kNotFound);
  EXPECT_NE(e.message.find("m.gguf: missing tensor 'blk.1.ffn_up.weight'"), std::string::npos) << e.message;
}

TEST_F(ModelLoad, ShapeMismatchShowsExpectedAndGot) {
  const auto path = rewrite(good_, dir_.file("m.gguf"), nullptr, [](const std::string& name) {
    TensorEdit e;
    if (name == "blk.0.attn_q.weight") e.ne = {64, 32};
    return e;
  });
  Error e = load_error(path);
  EXPECT_NE(e.message.find("tensor 'blk.0.attn_q.weight': shape [64, 32], expected [64, 64]"), std::string::npos)
      << e.message;
}

TEST_F(ModelLoad, UnsupportedWeightTypeIsNamed) {
  const auto path = rewrite(good_, dir_.file("m.gguf"), nullptr, [](const std::string& name) {
    TensorEdit e;
    if (name == "blk.0.ffn_down.weight") e.type = DType::kI32;
    return e;
  });
  Error e = load_error(path);
  EXPECT_NE(e.message.find("'blk.0.ffn_down.weight'"), std::string::npos) << e.message;
}

TEST_F(ModelLoad, UnsupportedArchitecture) {
  const auto path = rewrite(
      good_, dir_.file("m.gguf"), [](GgufWriter& w) { w.set_string("general.architecture", "gpt2"); }, nullptr);
  Error e = load_error(path);
  EXPECT_EQ(e.code, ErrorCode::kUnsupported);
  EXPECT_NE(e.message.find("unsupported architecture 'gpt2'"), std::string::npos) << e.message;
}

TEST_F(ModelLoad, NanAndMistypedMetadata) {
  auto path = rewrite(
      good_, dir_.file("nan.gguf"),
      [](GgufWriter& w) { w.set_f32("qwen2.attention.layer_norm_rms_epsilon", std::nanf("")); }, nullptr);
  Error e = load_error(path);
  EXPECT_NE(e.message.find("key 'qwen2.attention.layer_norm_rms_epsilon'"), std::string::npos) << e.message;
  path = rewrite(
      good_, dir_.file("typed.gguf"), [](GgufWriter& w) { w.set_string("qwen2.block_count", "two"); }, nullptr);
  e = load_error(path);
  EXPECT_NE(e.message.find("'qwen2.block_count': expected an integer"), std::string::npos) << e.message;
  path = rewrite(
      good_, dir_.file("heads.gguf"), [](GgufWriter& w) { w.set_u32("qwen2.attention.head_count_kv", 3); }, nullptr);
  e = load_error(path);
  EXPECT_NE(e.message.find("key 'qwen2.attention.head_count_kv'"), std::string::npos) << e.message;
}

TEST_F(ModelLoad, HfDirectoryErrors) {
  const std::string hf = test::write_tiny_hf(dir_.path(), test::tiny_config(Arch::kQwen3));
  ASSERT_TRUE(Model::load(hf).ok());
  // NaN (as Python's json module writes it) is not JSON: a parse error naming config.json.
  std::string cfg = test::read_file(hf + "/config.json");
  const auto at = cfg.find("\"rms_norm_eps\": ");
  ASSERT_NE(at, std::string::npos);
  std::string nan_cfg = cfg;
  nan_cfg.replace(at, cfg.find(',', at) - at, "\"rms_norm_eps\": NaN");
  test::write_file(hf + "/config.json", nan_cfg);
  Error e = load_error(hf);
  EXPECT_NE(e.message.find("config.json: malformed JSON"), std::string::npos) << e.message;
  std::string bad_type = cfg;
  bad_type.replace(bad_type.find("\"model_type\": \"qwen3\""), 21, "\"model_type\": \"bert\"");
  test::write_file(hf + "/config.json", bad_type);
  e = load_error(hf);
  EXPECT_NE(e.message.find("unsupported architecture 'bert'"), std::string::npos) << e.message;
}

// Resident bytes of this process (Linux), or 0 where /proc/self/statm does not exist.
size_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  size_t pages_total = 0, pages_resident = 0;
  if (!(statm >> pages_total >> pages_resident)) return 0;
  return pages_resident * 4096;
}

// A prompt cache needs the weights' digest; a GGUF without a stored one is hashed whole, which reads the
// file pages of the repacked matrices back in. They are released again: the copies replace them.
TEST(LoadedModel, ContentDigestLeavesTheRepackedFilePagesReleased) {
  test::TempDir dir;
  ModelConfig c = test::tiny_config(Arch::kQwen2);
  c.n_embd = 512, c.n_head = 8, c.n_head_kv = 4, c.head_dim = 64, c.n_rot = 64, c.n_ff = 2048, c.n_layer = 2;
  auto lm = LoadedModel::load(test::write_tiny_gguf(dir.path(), c, DType::kQ4_0));
  ASSERT_TRUE(lm.ok()) << lm.error().message;
  const LayerWeights& L = (*lm)->model().weights().layers[0];
  if (L.w_up.packed == nullptr) GTEST_SKIP() << "this CPU's kernels read Q4_0 as stored (no repacked copies)";
  if (resident_bytes() == 0) GTEST_SKIP() << "no /proc/self/statm";
  size_t matrix_bytes = 0;
  for (const LayerWeights& layer : (*lm)->model().weights().layers) {
    for (const TensorRef* t : {&layer.wq, &layer.wk, &layer.wv, &layer.wo, &layer.w_gate, &layer.w_up, &layer.w_down}) {
      matrix_bytes += t->size_bytes;
    }
  }
  const size_t before = resident_bytes();
  EXPECT_EQ((*lm)->weights_digest().size(), 64u);
  const size_t after = resident_bytes();
  EXPECT_LT(after > before ? after - before : 0, matrix_bytes / 4)
      << "hashing left " << (after - before) << " bytes of the file resident; the matrices are " << matrix_bytes;
}

}  // namespace
}  // namespace edgellm
