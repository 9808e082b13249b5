// Qwen 1 (Qwen-1_8B/7B/14B(-Chat), QWenLMHeadModel remote code): fused c_attn with bias, MLP named
// w1 (up) / w2 (gate) / c_proj (down), NeoX RoPE, and beyond the training length dynamic NTK RoPE and
// log-n attention scaling (modeling_qwen.py).
#include "model/arch.h"

namespace edgellm {
namespace {

Expected<ModelConfig> qwen_config_from_hf(const nlohmann::json& j, const std::string& source) {
  using namespace hf_config;
  ModelConfig c;
  c.arch = Arch::kQwen;
  EDGELLM_ASSIGN_OR_RETURN(c.n_vocab, get_int(j, "vocab_size", source));
  EDGELLM_ASSIGN_OR_RETURN(c.n_embd, get_int(j, "hidden_size", source));
  EDGELLM_ASSIGN_OR_RETURN(c.n_layer, get_int(j, "num_hidden_layers", source));
  EDGELLM_ASSIGN_OR_RETURN(c.n_head, get_int(j, "num_attention_heads", source));
  c.n_head_kv = c.n_head;
  // config.json's intermediate_size counts w1 and w2 together: each is half of it.
  EDGELLM_ASSIGN_OR_RETURN(const int64_t intermediate, get_int(j, "intermediate_size", source));
  c.n_ff = intermediate / 2;
  if (c.n_head <= 0) return make_error(ErrorCode::kFormat, source + ": key 'num_attention_heads' must be > 0");
  EDGELLM_ASSIGN_OR_RETURN(c.head_dim, get_int_or(j, "kv_channels", c.n_embd / c.n_head, source));
  EDGELLM_ASSIGN_OR_RETURN(const double rotary_pct, get_float_or(j, "rotary_pct", 1.0, source));
  c.n_rot = static_cast<int64_t>(static_cast<double>(c.head_dim) * rotary_pct);
  EDGELLM_ASSIGN_OR_RETURN(c.n_ctx_train, get_int_or(j, "seq_length", 2048, source));
  EDGELLM_ASSIGN_OR_RETURN(const double eps, get_float_or(j, "layer_norm_epsilon", 1e-6, source));
  EDGELLM_ASSIGN_OR_RETURN(const double base, get_float_or(j, "rotary_emb_base", 10000.0, source));
  c.rms_eps = static_cast<float>(eps);
  c.rope_theta = static_cast<float>(base);
  c.rope_style = RopeStyle::kNeox;
  c.qkv_bias = true;
  c.fused_qkv = true;
  EDGELLM_ASSIGN_OR_RETURN(c.tied_embeddings, get_bool_or(j, "tie_word_embeddings", false, source));
  EDGELLM_ASSIGN_OR_RETURN(c.dynamic_ntk, get_bool_or(j, "use_dynamic_ntk", false, source));
  EDGELLM_ASSIGN_OR_RETURN(c.logn_attn, get_bool_or(j, "use_logn_attn", false, source));
  return c;
}

}  // namespace

const ArchSpec& qwen_arch_spec() {
  static const ArchSpec spec{Arch::kQwen, "qwen", {"qwen"}, NameScheme::kHfQwen1, &qwen_config_from_hf};
  return spec;
}

}  // namespace edgellm
