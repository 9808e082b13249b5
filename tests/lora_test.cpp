// LoRA at run time (y = W x + s B A x) against the merged-weights reference, for PEFT and GGUF adapters.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "format/gguf.h"
#include "format/safetensors.h"
#include "format/safetensors_writer.h"
#include "model/lora.h"
#include "model/model.h"
#include "model/transformer.h"
#include "support/test_env.h"
#include "support/tiny_models.h"

namespace edgellm {
namespace {

using test::TempDir;

constexpr int64_t kRank = 4;
const std::vector<int32_t> kPrompt = {3, 99, 250, 17, 400, 5, 77};

std::vector<float> seeded(size_t n, uint32_t seed, float scale) {
  std::vector<float> v(n);
  uint32_t s = seed;
  for (auto& x : v) {
    s = s * 1664525u + 1013904223u;
    x = (static_cast<float>(s >> 8) / 16777216.0f - 0.5f) * scale;
  }
  return v;
}

struct AdapterSpec {
  std::string hf_module;  // e.g. model.layers.0.self_attn.q_proj
  std::string gguf_name;  // e.g. blk.0.attn_q.weight
  int64_t n_in, n_out;
  std::vector<float> a, b;  // [r][in], [out][r]
};

std::vector<AdapterSpec> make_specs(const ModelConfig& c) {
  std::vector<AdapterSpec> specs;
  uint32_t seed = 1;
  for (int64_t il = 0; il < c.n_layer; ++il) {
    const std::string L = std::to_string(il);
    struct Target {
      const char* hf;
      const char* gguf;
      int64_t n_in, n_out;
    };
    const int64_t q_rows = c.attn_output_gate ? 2 * c.q_dim() : c.q_dim();  // Qwen3.5: q and its gate
    std::vector<Target> targets = {{"self_attn.q_proj", "attn_q", c.n_embd, q_rows},
                                   {"self_attn.v_proj", "attn_v", c.n_embd, c.kv_dim()},
                                   {"self_attn.k_proj", "attn_k", c.n_embd, c.kv_dim()},
                                   {"mlp.down_proj", "ffn_down", c.n_ff, c.n_embd}};
    if (c.is_recurrent(il)) {  // a Qwen3.5 linear-attention layer: every projection in and out
      targets = {{"linear_attn.in_proj_qkv", "attn_qkv", c.n_embd, c.ssm_conv_dim()},
                 {"linear_attn.in_proj_z", "attn_gate", c.n_embd, c.ssm_value_dim()},
                 {"linear_attn.in_proj_b", "ssm_beta", c.n_embd, c.ssm_n_v_heads},
                 {"linear_attn.in_proj_a", "ssm_alpha", c.n_embd, c.ssm_n_v_heads},
                 {"linear_attn.out_proj", "ssm_out", c.ssm_value_dim(), c.n_embd},
                 {"mlp.down_proj", "ffn_down", c.n_ff, c.n_embd}};
    }
    for (const auto& t : targets) {
      specs.push_back({"model.layers." + L + "." + t.hf, "blk." + L + "." + t.gguf + ".weight", t.n_in, t.n_out,
                       seeded(static_cast<size_t>(kRank * t.n_in), seed++, 0.5f),
                       seeded(static_cast<size_t>(t.n_out * kRank), seed++, 0.5f)});
    }
  }
  return specs;
}

std::string write_peft(const std::string& dir, const std::vector<AdapterSpec>& specs, float alpha) {
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/adapter_config.json") << R"({"r": )" << kRank << R"(, "lora_alpha": )" << alpha
                                              << R"(, "peft_type": "LORA", "target_modules": ["q_proj","k_proj","v_proj","down_proj",)"
                                              << R"("in_proj_qkv","in_proj_z","in_proj_b","in_proj_a","out_proj"]})";
  SafetensorsWriter w;
  for (const auto& s : specs) {
    EXPECT_TRUE(w.add("base_model.model." + s.hf_module + ".lora_A.weight", DType::kF32, {kRank, s.n_in}, s.a.data(),
                      s.a.size() * 4).ok());
    EXPECT_TRUE(w.add("base_model.model." + s.hf_module + ".lora_B.weight", DType::kF32, {s.n_out, kRank}, s.b.data(),
                      s.b.size() * 4).ok());
  }
  EXPECT_TRUE(w.write(dir + "/adapter_model.safetensors").ok());
  return dir;
}

std::string write_gguf_adapter(const std::string& path, const std::vector<AdapterSpec>& specs, float alpha) {
  GgufWriter w;
  w.set_string("general.architecture", "qwen2");
  w.set_string("general.type", "adapter");
  w.set_string("adapter.type", "lora");
  w.set_f32("adapter.lora.alpha", alpha);
  for (const auto& s : specs) {
    EXPECT_TRUE(w.add_tensor(s.gguf_name + ".lora_a", DType::kF32, {s.n_in, kRank}, s.a.data(), s.a.size() * 4).ok());
    EXPECT_TRUE(w.add_tensor(s.gguf_name + ".lora_b", DType::kF32, {kRank, s.n_out}, s.b.data(), s.b.size() * 4).ok());
  }
  EXPECT_TRUE(w.write(path).ok());
  return path;
}

// The base HF directory with every adapted weight replaced by W + alpha/r * B A.
std::string write_merged_hf(const std::string& base_dir, const std::string& out_dir,
                            const std::vector<AdapterSpec>& specs, float alpha) {
  std::filesystem::create_directories(out_dir);
  std::filesystem::copy_file(base_dir + "/config.json", out_dir + "/config.json");
  auto st = Safetensors::open(base_dir);
  EXPECT_TRUE(st.ok());
  SafetensorsWriter w;
  for (const auto& t : st->tensors()) {
    std::vector<float> v(static_cast<const float*>(t.ref.data),
                         static_cast<const float*>(t.ref.data) + t.ref.n_elements());
    for (const auto& s : specs) {
      if (t.ref.name != s.hf_module + ".weight") continue;
      LoraPair p{kRank, s.n_in, s.n_out, s.a, s.b, alpha / kRank};
      lora_merge_into(p, 1.0f, v);
    }
    EXPECT_TRUE(w.add(t.ref.name, DType::kF32, t.shape, v.data(), v.size() * 4).ok());
  }
  EXPECT_TRUE(w.write(out_dir + "/model.safetensors").ok());
  return out_dir;
}

std::vector<float> logits_of(const Model& model, const LoraAdapter* adapter, float scale = 1.0f) {
  auto kv = KvCache::create(model.config(), 32, DType::kF32);
  ThreadPool pool(2);
  ForwardScratch scratch(model.config(), 4, 32, pool.n_threads());  // batch 4: exercises chunking with LoRA
  std::vector<float> logits;
  const Status st = Transformer(model).forward(kPrompt.data(), static_cast<int64_t>(kPrompt.size()), *kv, scratch,
                                               pool, LogitsMode::kAll, logits, ActiveLora{adapter, scale});
  EXPECT_TRUE(st.ok()) << st.error().message;
  return logits;
}

double max_rel(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0, m = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    d = std::max(d, std::fabs(static_cast<double>(a[i]) - b[i]));
    m = std::max(m, std::fabs(static_cast<double>(b[i])));
  }
  return d / m;
}

class LoraPerArch : public ::testing::TestWithParam<Arch> {};

TEST_P(LoraPerArch, RuntimeAdapterEqualsMergedWeights) {
  TempDir dir;
  const ModelConfig c = test::tiny_config(GetParam());
  const std::string hf = test::write_tiny_hf(dir.path(), c);
  const auto specs = make_specs(c);
  const float alpha = 8.0f;
  auto base_hf = Model::load(hf);
  auto base_gguf = Model::load(test::write_tiny_gguf(dir.path(), c));
  auto merged = Model::load(write_merged_hf(hf, dir.file("merged"), specs, alpha));
  ASSERT_TRUE(base_hf.ok() && base_gguf.ok() && merged.ok());
  const std::string peft = write_peft(dir.file("peft"), specs, alpha);

  auto on_hf = LoraAdapter::load(peft, **base_hf);
  ASSERT_TRUE(on_hf.ok()) << on_hf.error().message;
  EXPECT_EQ((*on_hf)->n_pairs(), specs.size());
  // The GGUF base (Llama: permuted q/k) with the same PEFT adapter.
  auto on_gguf = LoraAdapter::load(peft, **base_gguf);
  ASSERT_TRUE(on_gguf.ok()) << on_gguf.error().message;
  const auto reference = logits_of(**merged, nullptr);
  const double err_hf = max_rel(logits_of(**base_hf, on_hf->get()), reference);
  const double err_gguf = max_rel(logits_of(**base_gguf, on_gguf->get()), reference);
  EXPECT_LT(err_hf, 1e-5);
  EXPECT_LT(err_gguf, 1e-5);
  // The adapter changes the output noticeably, so the comparison means something.
  EXPECT_GT(max_rel(logits_of(**base_hf, nullptr), reference), 1e-3);
  // Scale 0 is the base model.
  EXPECT_LT(max_rel(logits_of(**base_hf, on_hf->get(), 0.0f), logits_of(**base_hf, nullptr)), 1e-7);
}

INSTANTIATE_TEST_SUITE_P(Arches, LoraPerArch, ::testing::Values(Arch::kLlama, Arch::kQwen2, Arch::kQwen3, Arch::kQwen35),
                         [](const auto& info) { return std::string(arch_name(info.param)); });

TEST(Lora, GgufAdapterEqualsPeftAdapter) {
  TempDir dir;
  const ModelConfig c = test::tiny_config(Arch::kQwen2);
  auto base = Model::load(test::write_tiny_gguf(dir.path(), c));
  ASSERT_TRUE(base.ok());
  const auto specs = make_specs(c);
  auto peft = LoraAdapter::load(write_peft(dir.file("peft"), specs, 16.0f), **base);
  auto gguf = LoraAdapter::load(write_gguf_adapter(dir.file("a.gguf"), specs, 16.0f), **base);
  ASSERT_TRUE(peft.ok()) << peft.error().message;
  ASSERT_TRUE(gguf.ok()) << gguf.error().message;
  EXPECT_EQ(logits_of(**base, peft->get()), logits_of(**base, gguf->get()));
}

TEST(Lora, AdaptersThatDoNotFitAreRejected) {
  TempDir dir;
  const ModelConfig c = test::tiny_config(Arch::kQwen2);
  auto base = Model::load(test::write_tiny_gguf(dir.path(), c));
  ASSERT_TRUE(base.ok());
  auto specs = make_specs(c);
  specs[0].n_in = 32;  // q_proj A with the wrong input size
  specs[0].a.resize(static_cast<size_t>(kRank * 32));
  auto bad_shape = LoraAdapter::load(write_peft(dir.file("bad"), specs, 8.0f), **base);
  ASSERT_FALSE(bad_shape.ok());
  EXPECT_NE(bad_shape.error().message.find("do not fit weight 'blk.0.attn_q.weight'"), std::string::npos)
      << bad_shape.error().message;

  auto other = make_specs(c);
  other[1].hf_module = "model.layers.9.self_attn.v_proj";  // no layer 9
  auto bad_name = LoraAdapter::load(write_peft(dir.file("other"), other, 8.0f), **base);
  ASSERT_FALSE(bad_name.ok());
  EXPECT_NE(bad_name.error().message.find("layers.9"), std::string::npos) << bad_name.error().message;

  auto missing = LoraAdapter::load(dir.file("nope"), **base);
  EXPECT_FALSE(missing.ok());
  auto not_adapter = LoraAdapter::load(test::write_tiny_gguf(dir.path(), c, DType::kF16), **base);
  ASSERT_FALSE(not_adapter.ok());
}

}  // namespace
}  // namespace edgellm
