// Llama 2 / 3, TinyLlama, SmolLM (LlamaForCausalLM).
#include "model/arch.h"

namespace edgellm {
namespace {

Expected<ModelConfig> llama_config_from_hf(const nlohmann::json& j, const std::string& source) {
  EDGELLM_ASSIGN_OR_RETURN(ModelConfig c, hf_config::llama_style(j, source, Arch::kLlama));
  EDGELLM_ASSIGN_OR_RETURN(c.qkv_bias, hf_config::get_bool_or(j, "attention_bias", false, source));
  EDGELLM_ASSIGN_OR_RETURN(const bool mlp_bias, hf_config::get_bool_or(j, "mlp_bias", false, source));
  if (mlp_bias) return make_error(ErrorCode::kUnsupported, source + ": key 'mlp_bias' = true is not supported");
  return c;
}

}  // namespace

const ArchSpec& llama_arch_spec() {
  static const ArchSpec spec{Arch::kLlama, "llama", {"llama"}, NameScheme::kHfLlama, &llama_config_from_hf};
  return spec;
}

}  // namespace edgellm
