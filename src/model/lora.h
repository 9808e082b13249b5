// LoRA adapters, applied at run time without merging: y = W x + scale * B (A x).
// Loaded from Hugging Face PEFT directories (adapter_config.json + adapter_model.safetensors) or from
// llama.cpp-style GGUF adapters (general.type = "adapter", adapter.type = "lora", tensors
// "<base tensor name>.lora_a" / ".lora_b"). A and B are kept in f32 (adapters are small).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/model.h"
#include "model/tensor_names.h"
#include "util/expected.h"

namespace edgellm {

struct LoraPair {
  int64_t rank = 0;
  int64_t n_in = 0;
  int64_t n_out = 0;
  std::vector<float> a;  // [rank][n_in]
  std::vector<float> b;  // [n_out][rank]
  float scale = 1.0f;    // alpha / rank (alpha / sqrt(rank) with rsLoRA)
};

class LoraAdapter {
 public:
  // Loads `path` (a PEFT directory or a GGUF adapter) for `model`: every adapted weight must exist in
  // the model with matching shapes (errors name the adapter file and tensor, expected vs got). For a GGUF
  // Llama base, PEFT q/k adapters are permuted like the base weights.
  static Expected<std::shared_ptr<LoraAdapter>> load(const std::string& path, const Model& model);

  const std::string& path() const { return path_; }
  // The adapter of one weight, or nullptr.
  const LoraPair* find(TensorRole role, int64_t layer) const;
  size_t n_pairs() const { return pairs_.size(); }
  int64_t max_rank() const { return max_rank_; }

 private:
  std::string path_;
  std::map<std::pair<int, int64_t>, LoraPair> pairs_;
  int64_t max_rank_ = 0;
};

// W += scale * lora_scale * B A for every adapted weight, as f32 (for `edgellm lora merge` and tests).
// `weight` holds W as [n_out][n_in] floats.
void lora_merge_into(const LoraPair& pair, float lora_scale, std::vector<float>& weight);

}  // namespace edgellm
