// Qwen1.5 / Qwen2 / Qwen2.5 (Qwen2ForCausalLM): q/k/v projections carry a bias, GQA, NeoX RoPE.
#include "model/arch.h"

namespace edgellm {
namespace {

Expected<ModelConfig> qwen2_config_from_hf(const nlohmann::json& j, const std::string& source) {
  EDGELLM_ASSIGN_OR_RETURN(ModelConfig c, hf_config::llama_style(j, source, Arch::kQwen2));
  c.qkv_bias = true;
  EDGELLM_ASSIGN_OR_RETURN(const bool sliding, hf_config::get_bool_or(j, "use_sliding_window", false, source));
  if (sliding) {
    return make_error(ErrorCode::kUnsupported, source + ": key 'use_sliding_window' = true is not supported");
  }
  return c;
}

}  // namespace

const ArchSpec& qwen2_arch_spec() {
  static const ArchSpec spec{Arch::kQwen2, "qwen2", {"qwen2"}, NameScheme::kHfLlama, &qwen2_config_from_hf};
  return spec;
}

}  // namespace edgellm
