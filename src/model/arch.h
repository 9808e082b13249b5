// Supported architectures: how each is recognised and how its Hugging Face config.json is read.
// One file per architecture (arch_llama.cpp, arch_qwen.cpp, arch_qwen2.cpp, arch_qwen3.cpp, arch_qwen35.cpp);
// the forward pass is shared and switches on the config's feature flags (bias, q/k norm, fused qkv, and
// Qwen3.5's linear-attention layers and output gate).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/config.h"
#include "model/tensor_names.h"
#include "util/expected.h"

namespace edgellm {

class GgufFile;

struct ArchSpec {
  Arch arch;
  const char* gguf_name;                    // general.architecture
  std::vector<std::string> hf_model_types;  // config.json "model_type"
  NameScheme hf_scheme;
  // Reads config.json; `source` names the file for errors.
  Expected<ModelConfig> (*config_from_hf)(const nlohmann::json& config, const std::string& source);
};

const ArchSpec& llama_arch_spec();
const ArchSpec& qwen_arch_spec();
const ArchSpec& qwen2_arch_spec();
const ArchSpec& qwen3_arch_spec();
const ArchSpec& qwen35_arch_spec();

const ArchSpec* find_arch_by_gguf_name(std::string_view name);
const ArchSpec* find_arch_by_hf_model_type(std::string_view model_type);
std::string supported_arch_list();  // "llama, qwen, qwen2, qwen3, qwen35"

// Reads the `{arch}.*` keys llama.cpp defines. n_vocab comes from the token embedding's shape when
// `{arch}.vocab_size` is absent (the loader fills it).
Expected<ModelConfig> config_from_gguf(const GgufFile& gguf, const ArchSpec& spec);

// Helpers for config.json fields with errors that name the file and key.
namespace hf_config {
Expected<int64_t> get_int(const nlohmann::json& j, const char* key, const std::string& source);
Expected<int64_t> get_int_or(const nlohmann::json& j, const char* key, int64_t fallback, const std::string& source);
Expected<double> get_float_or(const nlohmann::json& j, const char* key, double fallback, const std::string& source);
Expected<bool> get_bool_or(const nlohmann::json& j, const char* key, bool fallback, const std::string& source);
// The fields shared by Llama-style configs (hidden_size, heads, layers, rope, eps, tie_word_embeddings).
Expected<ModelConfig> llama_style(const nlohmann::json& j, const std::string& source, Arch arch);
}  // namespace hf_config

}  // namespace edgellm
