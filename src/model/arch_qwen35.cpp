// Qwen3.5 (Qwen3_5ForCausalLM / the text part of Qwen3_5ForConditionalGeneration): a hybrid of Gated
// DeltaNet linear-attention layers and full-attention layers (every fourth by default) whose q projection
// also yields a sigmoid output gate, with per-head q/k RMSNorm and rotary embedding on the first
// partial_rotary_factor of each head (multimodal sections, which for text all take the same position).
// Hugging Face RMSNorm weights are stored as w - 1 (the loader adds 1, as llama.cpp's converter does),
// except the linear layers' gated norm.
#include "model/arch.h"

namespace edgellm {
namespace {

Expected<ModelConfig> qwen35_config_from_hf(const nlohmann::json& outer, const std::string& source) {
  // A multimodal checkpoint (model_type qwen3_5) keeps the language model's settings in text_config.
  const bool nested = outer.contains("text_config") && outer["text_config"].is_object();
  const nlohmann::json& j = nested ? outer["text_config"] : outer;
  const std::string where = nested ? source + " (text_config)" : source;
  EDGELLM_ASSIGN_OR_RETURN(ModelConfig c, hf_config::llama_style(j, where, Arch::kQwen35));
  if (nested && outer.contains("tie_word_embeddings")) {
    EDGELLM_ASSIGN_OR_RETURN(c.tied_embeddings, hf_config::get_bool_or(outer, "tie_word_embeddings", false, source));
  }
  EDGELLM_ASSIGN_OR_RETURN(const bool bias, hf_config::get_bool_or(j, "attention_bias", false, where));
  if (bias) return make_error(ErrorCode::kUnsupported, where + ": key 'attention_bias' = true is not supported");
  c.qk_norm = true;
  c.attn_output_gate = true;

  // Rotary embedding on the first head_dim * partial_rotary_factor dimensions.
  const nlohmann::json* rope = j.contains("rope_parameters") && j["rope_parameters"].is_object() ? &j["rope_parameters"] : nullptr;
  double factor = 0.25;
  if (rope && rope->contains("partial_rotary_factor")) {
    EDGELLM_ASSIGN_OR_RETURN(factor, hf_config::get_float_or(*rope, "partial_rotary_factor", 0.25, where));
  } else {
    EDGELLM_ASSIGN_OR_RETURN(factor, hf_config::get_float_or(j, "partial_rotary_factor", 0.25, where));
  }
  if (!(factor > 0 && factor <= 1)) {
    return make_error(ErrorCode::kFormat, where + ": key 'partial_rotary_factor' = " + std::to_string(factor) +
                                              ", expected a number in (0, 1]");
  }
  c.n_rot = static_cast<int64_t>(static_cast<double>(c.head_dim) * factor);
  c.rope_sections = {11, 11, 10};
  if (rope && rope->contains("mrope_section")) {
    const auto& sec = (*rope)["mrope_section"];
    if (!sec.is_array()) return make_error(ErrorCode::kFormat, where + ": key 'mrope_section' is not a list");
    c.rope_sections.clear();
    for (const auto& v : sec) {
      if (!v.is_number_integer() || v.get<int64_t>() < 0) {
        return make_error(ErrorCode::kFormat, where + ": key 'mrope_section' holds " + v.dump() +
                                                  ", expected non-negative integers");
      }
      c.rope_sections.push_back(v.get<int64_t>());
    }
  }

  // Which layers are linear attention: layer_types, or every full_attention_interval-th is full attention.
  if (c.n_layer <= 0 || c.n_layer > 1024) {
    return make_error(ErrorCode::kFormat, where + ": invalid model config: key 'num_hidden_layers' = " +
                                              std::to_string(c.n_layer));
  }
  c.recurrent.assign(static_cast<size_t>(std::max<int64_t>(0, c.n_layer)), 0);
  if (j.contains("layer_types") && !j["layer_types"].is_null()) {
    const auto& types = j["layer_types"];
    if (!types.is_array() || static_cast<int64_t>(types.size()) != c.n_layer) {
      return make_error(ErrorCode::kFormat, where + ": key 'layer_types' must list one type per layer (" +
                                                std::to_string(c.n_layer) + ")");
    }
    for (size_t i = 0; i < types.size(); ++i) {
      const std::string t = types[i].is_string() ? types[i].get<std::string>() : types[i].dump();
      if (t == "linear_attention") {
        c.recurrent[i] = 1;
      } else if (t != "full_attention") {
        return make_error(ErrorCode::kUnsupported, where + ": key 'layer_types'[" + std::to_string(i) + "] = '" + t +
                                                       "' (supported: linear_attention, full_attention)");
      }
    }
  } else {
    EDGELLM_ASSIGN_OR_RETURN(const int64_t interval, hf_config::get_int_or(j, "full_attention_interval", 4, where));
    if (interval <= 0) return make_error(ErrorCode::kFormat, where + ": key 'full_attention_interval' must be > 0");
    for (int64_t i = 0; i < c.n_layer; ++i) c.recurrent[static_cast<size_t>(i)] = (i + 1) % interval != 0;
  }
  EDGELLM_ASSIGN_OR_RETURN(c.ssm_conv_kernel, hf_config::get_int_or(j, "linear_conv_kernel_dim", 4, where));
  EDGELLM_ASSIGN_OR_RETURN(c.ssm_k_head_dim, hf_config::get_int_or(j, "linear_key_head_dim", 128, where));
  EDGELLM_ASSIGN_OR_RETURN(c.ssm_v_head_dim, hf_config::get_int_or(j, "linear_value_head_dim", 128, where));
  EDGELLM_ASSIGN_OR_RETURN(c.ssm_n_k_heads, hf_config::get_int_or(j, "linear_num_key_heads", 16, where));
  EDGELLM_ASSIGN_OR_RETURN(c.ssm_n_v_heads, hf_config::get_int_or(j, "linear_num_value_heads", 32, where));
  c.ssm_v_heads_tiled = false;  // Hugging Face order: value head h reads key head h / (Hv / Hk)
  return c;
}

}  // namespace

const ArchSpec& qwen35_arch_spec() {
  static const ArchSpec spec{Arch::kQwen35, "qwen35", {"qwen3_5", "qwen3_5_text"}, NameScheme::kHfLlama,
                             &qwen35_config_from_hf};
  return spec;
}

}  // namespace edgellm
