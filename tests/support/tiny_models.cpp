#include "support/tiny_models.h"

#include <gtest/gtest.h>

namespace edgellm::test {

ModelConfig tiny_config(Arch arch, bool tied_embeddings) {
  if (arch == Arch::kQwen35) {
    ModelConfig c = find_synth_preset("qwen35-tiny").value().config;
    c.tied_embeddings = tied_embeddings;
    return c;
  }
  ModelConfig c = find_synth_preset("tiny").value().config;
  c.arch = arch;
  c.n_ff = 96;
  c.tied_embeddings = tied_embeddings;
  c.qkv_bias = arch == Arch::kQwen2 || arch == Arch::kQwen;
  c.qk_norm = arch == Arch::kQwen3;
  c.fused_qkv = arch == Arch::kQwen;
  c.rope_style = arch == Arch::kLlama ? RopeStyle::kInterleaved : RopeStyle::kNeox;
  if (arch == Arch::kQwen) c.n_head_kv = c.n_head;
  return c;
}

std::string write_tiny_gguf(const std::string& dir, const ModelConfig& config, DType type, uint64_t seed) {
  SynthOptions o;
  o.weight_type = type;
  o.seed = seed;
  const std::string path = dir + "/tiny-" + arch_name(config.arch) + "-" + dtype_name(type) + ".gguf";
  const Status st = write_synthetic_gguf(config, o, path);
  EXPECT_TRUE(st.ok()) << st.error().message;
  return path;
}

std::string write_tiny_hf(const std::string& dir, const ModelConfig& config, uint64_t seed) {
  SynthOptions o;
  o.seed = seed;
  const std::string path = dir + "/tiny-" + arch_name(config.arch) + "-hf";
  const Status st = write_synthetic_hf_dir(config, o, path);
  EXPECT_TRUE(st.ok()) << st.error().message;
  return path;
}

}  // namespace edgellm::test
