// Architecture lookup, GGUF config keys, and config.json helpers shared by the architecture files.
#include <cmath>

#include "format/gguf.h"
#include "model/arch.h"

namespace edgellm {

const ArchSpec* find_arch_by_gguf_name(std::string_view name) {
  for (const ArchSpec* spec : {&llama_arch_spec(), &qwen_arch_spec(), &qwen2_arch_spec(), &qwen3_arch_spec(), &qwen35_arch_spec()}) {
    if (name == spec->gguf_name) return spec;
  }
  return nullptr;
}

const ArchSpec* find_arch_by_hf_model_type(std::string_view model_type) {
  for (const ArchSpec* spec : {&llama_arch_spec(), &qwen_arch_spec(), &qwen2_arch_spec(), &qwen3_arch_spec(), &qwen35_arch_spec()}) {
    for (const auto& t : spec->hf_model_types) {
      if (model_type == t) return spec;
    }
  }
  return nullptr;
}

std::string supported_arch_list() { return "llama, qwen, qwen2, qwen3, qwen35"; }

namespace {

// llama.cpp's qwen35 keys: the linear layers' sizes (ssm.*), which layers are recurrent, and the
// multi-token-prediction layers counted in block_count (edgellm runs the model without them).
Status read_qwen35_gguf_keys(const GgufFile& gguf, ModelConfig& c) {
  const std::string a = "qwen35";
  c.attn_output_gate = true;
  c.ssm_v_heads_tiled = true;  // llama.cpp's converter reorders value heads so that h reads key head h % Hk
  if (c.n_layer <= 0 || c.n_layer > 1024) {
    return make_error(ErrorCode::kFormat, gguf.path() + ": invalid model config: key '" + a + ".block_count' = " +
                                              std::to_string(c.n_layer));
  }
  EDGELLM_ASSIGN_OR_RETURN(const int64_t n_nextn, gguf.get_int_or(a + ".nextn_predict_layers", 0));
  if (n_nextn < 0 || n_nextn >= c.n_layer) {
    return make_error(ErrorCode::kFormat, gguf.path() + ": key '" + a + ".nextn_predict_layers' = " +
                                              std::to_string(n_nextn) + " does not fit block_count " +
                                              std::to_string(c.n_layer));
  }
  EDGELLM_ASSIGN_OR_RETURN(c.ssm_conv_kernel, gguf.get_int(a + ".ssm.conv_kernel"));
  EDGELLM_ASSIGN_OR_RETURN(c.ssm_k_head_dim, gguf.get_int(a + ".ssm.state_size"));
  EDGELLM_ASSIGN_OR_RETURN(c.ssm_n_k_heads, gguf.get_int(a + ".ssm.group_count"));
  EDGELLM_ASSIGN_OR_RETURN(c.ssm_n_v_heads, gguf.get_int(a + ".ssm.time_step_rank"));
  EDGELLM_ASSIGN_OR_RETURN(const int64_t inner, gguf.get_int(a + ".ssm.inner_size"));
  if (c.ssm_n_v_heads <= 0 || inner <= 0 || inner % c.ssm_n_v_heads != 0) {
    return make_error(ErrorCode::kFormat, gguf.path() + ": key '" + a + ".ssm.inner_size' = " + std::to_string(inner) +
                                              " is not a positive multiple of ssm.time_step_rank = " +
                                              std::to_string(c.ssm_n_v_heads));
  }
  c.ssm_v_head_dim = inner / c.ssm_n_v_heads;
  std::vector<int64_t> recurrent;
  if (gguf.find(a + ".attention.recurrent_layers")) {
    const GgufValue* v = gguf.find(a + ".attention.recurrent_layers");
    if (!v->is_array()) {
      return make_error(ErrorCode::kFormat, gguf.path() + ": key '" + a + ".attention.recurrent_layers' is not an array");
    }
    for (size_t i = 0; i < v->array_size(); ++i) {
      const auto b = v->element(i).as_int();
      if (!b) {
        return make_error(ErrorCode::kFormat, gguf.path() + ": key '" + a +
                                                  ".attention.recurrent_layers' holds a non-boolean element");
      }
      recurrent.push_back(*b != 0);
    }
    if (static_cast<int64_t>(recurrent.size()) < c.n_layer - n_nextn) {
      return make_error(ErrorCode::kFormat, gguf.path() + ": key '" + a + ".attention.recurrent_layers' has " +
                                                std::to_string(recurrent.size()) + " entries for " +
                                                std::to_string(c.n_layer - n_nextn) + " layers");
    }
  } else {
    EDGELLM_ASSIGN_OR_RETURN(const int64_t interval, gguf.get_int_or(a + ".full_attention_interval", 4));
    if (interval <= 0) {
      return make_error(ErrorCode::kFormat, gguf.path() + ": key '" + a + ".full_attention_interval' must be > 0");
    }
    for (int64_t i = 0; i < c.n_layer; ++i) recurrent.push_back((i + 1) % interval != 0);
  }
  c.n_layer -= n_nextn;
  c.recurrent.assign(recurrent.begin(), recurrent.begin() + c.n_layer);
  if (gguf.find(a + ".rope.dimension_sections")) {
    EDGELLM_ASSIGN_OR_RETURN(c.rope_sections, gguf.get_int_array(a + ".rope.dimension_sections"));
  }
  return {};
}

}  // namespace

Expected<ModelConfig> config_from_gguf(const GgufFile& gguf, const ArchSpec& spec) {
  const std::string a = spec.gguf_name;
  ModelConfig c;
  c.arch = spec.arch;
  EDGELLM_ASSIGN_OR_RETURN(c.n_embd, gguf.get_int(a + ".embedding_length"));
  EDGELLM_ASSIGN_OR_RETURN(c.n_layer, gguf.get_int(a + ".block_count"));
  EDGELLM_ASSIGN_OR_RETURN(c.n_ff, gguf.get_int(a + ".feed_forward_length"));
  EDGELLM_ASSIGN_OR_RETURN(c.n_head, gguf.get_int(a + ".attention.head_count"));
  EDGELLM_ASSIGN_OR_RETURN(c.n_head_kv, gguf.get_int_or(a + ".attention.head_count_kv", c.n_head));
  EDGELLM_ASSIGN_OR_RETURN(c.n_ctx_train, gguf.get_int_or(a + ".context_length", 2048));
  EDGELLM_ASSIGN_OR_RETURN(c.n_vocab, gguf.get_int_or(a + ".vocab_size", 0));
  const int64_t default_head_dim = c.n_head > 0 ? c.n_embd / c.n_head : 0;
  EDGELLM_ASSIGN_OR_RETURN(c.head_dim, gguf.get_int_or(a + ".attention.key_length", default_head_dim));
  EDGELLM_ASSIGN_OR_RETURN(const int64_t value_length, gguf.get_int_or(a + ".attention.value_length", c.head_dim));
  if (value_length != c.head_dim) {
    return make_error(ErrorCode::kUnsupported, gguf.path() + ": key '" + a + ".attention.value_length' = " +
                                                   std::to_string(value_length) + " differs from key_length " +
                                                   std::to_string(c.head_dim));
  }
  EDGELLM_ASSIGN_OR_RETURN(c.n_rot, gguf.get_int_or(a + ".rope.dimension_count", c.head_dim));
  EDGELLM_ASSIGN_OR_RETURN(const double eps, gguf.get_float_or(a + ".attention.layer_norm_rms_epsilon", 1e-6));
  EDGELLM_ASSIGN_OR_RETURN(const double theta, gguf.get_float_or(a + ".rope.freq_base", 10000.0));
  c.rms_eps = static_cast<float>(eps);
  c.rope_theta = static_cast<float>(theta);

  EDGELLM_ASSIGN_OR_RETURN(const std::string scaling, gguf.get_string_or(a + ".rope.scaling.type", "none"));
  if (scaling == "linear") {
    c.rope_scaling.type = RopeScalingType::kLinear;
    EDGELLM_ASSIGN_OR_RETURN(const double f, gguf.get_float(a + ".rope.scaling.factor"));
    c.rope_scaling.factor = static_cast<float>(f);
  } else if (scaling != "none") {
    return make_error(ErrorCode::kUnsupported, gguf.path() + ": key '" + a + ".rope.scaling.type' = '" + scaling +
                                                   "' is not supported (supported: none, linear; llama3 via rope_freqs)");
  }
  // Llama 3.1 scaling arrives as a rope_freqs tensor (per-dimension divisors); the loader applies it.

  // llama.cpp's converter permutes Llama's q/k rows so that interleaved (normal) RoPE applies; every
  // Qwen family keeps Hugging Face's layout and uses NeoX RoPE.
  c.rope_style = spec.arch == Arch::kLlama ? RopeStyle::kInterleaved : RopeStyle::kNeox;
  c.qk_norm = spec.arch == Arch::kQwen3 || spec.arch == Arch::kQwen35;
  c.fused_qkv = spec.arch == Arch::kQwen;
  if (spec.arch == Arch::kQwen) {
    // llama.cpp's Qwen 1 convention: feed_forward_length is config.json's intermediate_size, which counts
    // w1 and w2 together; each matrix has half of it.
    c.n_ff /= 2;
    EDGELLM_ASSIGN_OR_RETURN(c.dynamic_ntk, gguf.get_bool_or("qwen.use_dynamic_ntk", false));
    EDGELLM_ASSIGN_OR_RETURN(c.logn_attn, gguf.get_bool_or("qwen.use_logn_attn", false));
  }
  if (spec.arch == Arch::kQwen35) EDGELLM_TRY(read_qwen35_gguf_keys(gguf, c));
  return c;
}

namespace hf_config {

namespace {
Error bad_key(const std::string& source, const char* key, const std::string& what) {
  return make_error(ErrorCode::kFormat, source + ": key '" + key + "': " + what);
}
}  // namespace

Expected<int64_t> get_int(const nlohmann::json& j, const char* key, const std::string& source) {
  if (!j.contains(key) || j[key].is_null()) return make_error(ErrorCode::kNotFound, source + ": missing key '" + key + "'");
  const auto& v = j[key];
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d)) return static_cast<int64_t>(d);
  }
  return bad_key(source, key, "expected an integer, got " + v.dump());
}

Expected<int64_t> get_int_or(const nlohmann::json& j, const char* key, int64_t fallback, const std::string& source) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  return get_int(j, key, source);
}

Expected<double> get_float_or(const nlohmann::json& j, const char* key, double fallback, const std::string& source) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  const auto& v = j[key];
  if (!v.is_number()) return bad_key(source, key, "expected a number, got " + v.dump());
  const double d = v.get<double>();
  if (!std::isfinite(d)) return bad_key(source, key, "not a finite number");
  return d;
}

Expected<bool> get_bool_or(const nlohmann::json& j, const char* key, bool fallback, const std::string& source) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_boolean()) return bad_key(source, key, "expected true or false, got " + j[key].dump());
  return j[key].get<bool>();
}

Expected<ModelConfig> llama_style(const nlohmann::json& j, const std::string& source, Arch arch) {
  ModelConfig c;
  c.arch = arch;
  EDGELLM_ASSIGN_OR_RETURN(c.n_vocab, get_int(j, "vocab_size", source));
  EDGELLM_ASSIGN_OR_RETURN(c.n_embd, get_int(j, "hidden_size", source));
  EDGELLM_ASSIGN_OR_RETURN(c.n_layer, get_int(j, "num_hidden_layers", source));
  EDGELLM_ASSIGN_OR_RETURN(c.n_head, get_int(j, "num_attention_heads", source));
  EDGELLM_ASSIGN_OR_RETURN(c.n_head_kv, get_int_or(j, "num_key_value_heads", c.n_head, source));
  EDGELLM_ASSIGN_OR_RETURN(c.n_ff, get_int(j, "intermediate_size", source));
  EDGELLM_ASSIGN_OR_RETURN(c.n_ctx_train, get_int_or(j, "max_position_embeddings", 2048, source));
  if (c.n_head <= 0) return bad_key(source, "num_attention_heads", "must be > 0");
  EDGELLM_ASSIGN_OR_RETURN(c.head_dim, get_int_or(j, "head_dim", c.n_embd / c.n_head, source));
  c.n_rot = c.head_dim;
  EDGELLM_ASSIGN_OR_RETURN(const double eps, get_float_or(j, "rms_norm_eps", 1e-6, source));
  c.rms_eps = static_cast<float>(eps);
  EDGELLM_ASSIGN_OR_RETURN(c.tied_embeddings, get_bool_or(j, "tie_word_embeddings", false, source));
  if (j.contains("hidden_act") && j["hidden_act"] != "silu") {
    return make_error(ErrorCode::kUnsupported, source + ": key 'hidden_act' = " + j["hidden_act"].dump() +
                                                   " (only silu is supported)");
  }

  // transformers 5 nests rope settings in "rope_parameters"; older configs keep rope_theta/rope_scaling
  // at the top level.
  const nlohmann::json* rope = nullptr;
  if (j.contains("rope_parameters") && j["rope_parameters"].is_object()) rope = &j["rope_parameters"];
  const nlohmann::json* scaling = rope;
  if (j.contains("rope_scaling") && j["rope_scaling"].is_object()) scaling = &j["rope_scaling"];
  double theta = 10000.0;
  if (rope && rope->contains("rope_theta")) {
    EDGELLM_ASSIGN_OR_RETURN(theta, get_float_or(*rope, "rope_theta", 10000.0, source));
  } else {
    EDGELLM_ASSIGN_OR_RETURN(theta, get_float_or(j, "rope_theta", 10000.0, source));
  }
  c.rope_theta = static_cast<float>(theta);
  if (scaling) {
    std::string type = "default";
    for (const char* k : {"rope_type", "type"}) {
      if (scaling->contains(k) && (*scaling)[k].is_string()) type = (*scaling)[k].get<std::string>();
    }
    if (type == "linear") {
      c.rope_scaling.type = RopeScalingType::kLinear;
      EDGELLM_ASSIGN_OR_RETURN(const double f, get_float_or(*scaling, "factor", 1.0, source));
      c.rope_scaling.factor = static_cast<float>(f);
    } else if (type == "llama3") {
      c.rope_scaling.type = RopeScalingType::kLlama3;
      EDGELLM_ASSIGN_OR_RETURN(const double f, get_float_or(*scaling, "factor", 8.0, source));
      EDGELLM_ASSIGN_OR_RETURN(const double lo, get_float_or(*scaling, "low_freq_factor", 1.0, source));
      EDGELLM_ASSIGN_OR_RETURN(const double hi, get_float_or(*scaling, "high_freq_factor", 4.0, source));
      EDGELLM_ASSIGN_OR_RETURN(c.rope_scaling.original_context,
                               get_int_or(*scaling, "original_max_position_embeddings", 8192, source));
      c.rope_scaling.factor = static_cast<float>(f);
      c.rope_scaling.low_freq_factor = static_cast<float>(lo);
      c.rope_scaling.high_freq_factor = static_cast<float>(hi);
    } else if (type != "default") {
      return make_error(ErrorCode::kUnsupported, source + ": rope scaling type '" + type +
                                                     "' is not supported (supported: default, linear, llama3)");
    }
  }
  c.rope_style = RopeStyle::kNeox;  // Hugging Face's rotate_half layout for every family
  return c;
}

}  // namespace hf_config
}  // namespace edgellm
