#include "support/tiny_lora.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <vector>

#include "format/safetensors_writer.h"

namespace edgellm::test {

std::string write_q_proj_adapter(const std::string& dir, const ModelConfig& c, int64_t n_in, uint32_t variant) {
  constexpr int64_t kRank = 2;
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/adapter_config.json")
      << R"({"r": 2, "lora_alpha": 4, "peft_type": "LORA", "target_modules": ["q_proj"]})";
  SafetensorsWriter w;
  std::vector<std::vector<float>> keep;  // the writer refers to the data until write()
  const size_t shift = static_cast<size_t>(variant) * 31;
  for (int64_t layer = 0; layer < c.n_layer; ++layer) {
    const std::string prefix = "base_model.model.model.layers." + std::to_string(layer) + ".self_attn.q_proj";
    keep.emplace_back(static_cast<size_t>(kRank * n_in));
    for (size_t i = 0; i < keep.back().size(); ++i) keep.back()[i] = (((i + shift) * 7919) % 13) / 6.0f - 1.0f;
    EXPECT_TRUE(w.add(prefix + ".lora_A.weight", DType::kF32, {kRank, n_in}, keep.back().data(),
                      keep.back().size() * 4).ok());
    keep.emplace_back(static_cast<size_t>(c.q_dim() * kRank));
    for (size_t i = 0; i < keep.back().size(); ++i) keep.back()[i] = (((i + shift) * 104729) % 11) / 5.0f - 1.0f;
    EXPECT_TRUE(w.add(prefix + ".lora_B.weight", DType::kF32, {c.q_dim(), kRank}, keep.back().data(),
                      keep.back().size() * 4).ok());
  }
  EXPECT_TRUE(w.write(dir + "/adapter_model.safetensors").ok());
  return dir;
}

}  // namespace edgellm::test
