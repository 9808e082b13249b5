// Qwen3 (Qwen3ForCausalLM): per-head RMSNorm on q and k before RoPE, no q/k/v bias, explicit head_dim.
#include "model/arch.h"

namespace edgellm {
namespace {

Expected<ModelConfig> qwen3_config_from_hf(const nlohmann::json& j, const std::string& source) {
  EDGELLM_ASSIGN_OR_RETURN(ModelConfig c, hf_config::llama_style(j, source, Arch::kQwen3));
  c.qk_norm = true;
  EDGELLM_ASSIGN_OR_RETURN(c.qkv_bias, hf_config::get_bool_or(j, "attention_bias", false, source));
  EDGELLM_ASSIGN_OR_RETURN(const bool sliding, hf_config::get_bool_or(j, "use_sliding_window", false, source));
  if (sliding) {
    return make_error(ErrorCode::kUnsupported, source + ": key 'use_sliding_window' = true is not supported");
  }
  return c;
}

}  // namespace

const ArchSpec& qwen3_arch_spec() {
  static const ArchSpec spec{Arch::kQwen3, "qwen3", {"qwen3"}, NameScheme::kHfLlama, &qwen3_config_from_hf};
  return spec;
}

}  // namespace edgellm
