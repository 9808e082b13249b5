// Tiny random models for tests, in every supported architecture, written by the project itself.
#pragma once

#include <string>

#include "model/config.h"
#include "model/synthetic.h"

namespace edgellm::test {

// 2 layers, hidden 64, 4 heads / 2 kv heads (Qwen 1: 4/4), head_dim 16, ffn 96, vocab 512.
ModelConfig tiny_config(Arch arch, bool tied_embeddings = false);

// Writes the model as GGUF (weights of `type`) or as a Hugging Face directory (f32) and returns the path.
std::string write_tiny_gguf(const std::string& dir, const ModelConfig& config, DType type = DType::kF32,
                            uint64_t seed = 7);
std::string write_tiny_hf(const std::string& dir, const ModelConfig& config, uint64_t seed = 7);

}  // namespace edgellm::test
