#include "model/config.h"

#include <cmath>

namespace edgellm {

const char* arch_name(Arch arch) {
  switch (arch) {
    case Arch::kLlama: return "llama";
    case Arch::kQwen: return "qwen";
    case Arch::kQwen2: return "qwen2";
    case Arch::kQwen3: return "qwen3";
    case Arch::kQwen35: return "qwen35";
  }
  return "?";
}

int64_t ModelConfig::n_recurrent_layers() const {
  int64_t n = 0;
  for (uint8_t r : recurrent) n += r != 0;
  return n;
}

ConfigKeyNames gguf_config_keys(Arch arch) {
  const std::string a = arch_name(arch);
  ConfigKeyNames k;
  k.n_vocab = a + ".vocab_size' (or the rows of 'token_embd.weight'";
  k.n_embd = a + ".embedding_length";
  k.n_layer = a + ".block_count";
  k.n_head = a + ".attention.head_count";
  k.n_head_kv = a + ".attention.head_count_kv";
  k.head_dim = a + ".attention.key_length";
  k.n_ff = a + ".feed_forward_length";
  k.n_rot = a + ".rope.dimension_count";
  k.rms_eps = a + ".attention.layer_norm_rms_epsilon";
  k.rope_theta = a + ".rope.freq_base";
  k.rope_scaling = a + ".rope.scaling.factor";
  k.n_ctx_train = a + ".context_length";
  k.recurrent = a + ".attention.recurrent_layers";
  k.ssm_conv_kernel = a + ".ssm.conv_kernel";
  k.ssm_n_k_heads = a + ".ssm.group_count";
  k.ssm_n_v_heads = a + ".ssm.time_step_rank";
  k.ssm_k_head_dim = a + ".ssm.state_size";
  k.ssm_v_head_dim = a + ".ssm.inner_size";
  return k;
}

ConfigKeyNames hf_config_keys(Arch arch) {
  ConfigKeyNames k;
  k.n_vocab = "vocab_size";
  k.n_embd = "hidden_size";
  k.n_layer = "num_hidden_layers";
  k.n_head = "num_attention_heads";
  k.n_head_kv = arch == Arch::kQwen ? "num_attention_heads" : "num_key_value_heads";
  k.head_dim = arch == Arch::kQwen ? "kv_channels" : "head_dim";
  k.n_ff = "intermediate_size";
  k.n_rot = arch == Arch::kQwen ? "rotary_pct" : "head_dim";
  k.rms_eps = arch == Arch::kQwen ? "layer_norm_epsilon" : "rms_norm_eps";
  k.rope_theta = arch == Arch::kQwen ? "rotary_emb_base" : "rope_theta";
  k.rope_scaling = "rope_scaling";
  k.n_ctx_train = arch == Arch::kQwen ? "seq_length" : "max_position_embeddings";
  k.n_rot = arch == Arch::kQwen35 ? "partial_rotary_factor" : k.n_rot;
  k.recurrent = "layer_types";
  k.ssm_conv_kernel = "linear_conv_kernel_dim";
  k.ssm_n_k_heads = "linear_num_key_heads";
  k.ssm_n_v_heads = "linear_num_value_heads";
  k.ssm_k_head_dim = "linear_key_head_dim";
  k.ssm_v_head_dim = "linear_value_head_dim";
  return k;
}

Status ModelConfig::validate(const std::string& source) const { return validate(source, ConfigKeyNames{}); }

Status ModelConfig::validate(const std::string& source, const ConfigKeyNames& keys) const {
  auto bad = [&](const std::string& key, const std::string& what) {
    return make_error(ErrorCode::kFormat, source + ": invalid model config: key '" + key + "' " + what);
  };
  struct Field {
    const std::string& key;
    int64_t value;
  };
  const Field positive[] = {{keys.n_vocab, n_vocab}, {keys.n_embd, n_embd},     {keys.n_layer, n_layer},
                            {keys.n_head, n_head},   {keys.n_head_kv, n_head_kv}, {keys.head_dim, head_dim},
                            {keys.n_ff, n_ff},       {keys.n_rot, n_rot}};
  for (const auto& f : positive) {
    if (f.value <= 0) return bad(f.key, "= " + std::to_string(f.value) + ", expected > 0");
    if (f.value > (int64_t{1} << 24)) return bad(f.key, "= " + std::to_string(f.value) + " is too large");
  }
  if (n_layer > 1024) return bad(keys.n_layer, "= " + std::to_string(n_layer) + " is too large");
  if (n_head % n_head_kv != 0) {
    return bad(keys.n_head_kv, "= " + std::to_string(n_head_kv) + " does not divide " + keys.n_head + " = " +
                                   std::to_string(n_head));
  }
  if (n_rot > head_dim || n_rot % 2 != 0) {
    return bad(keys.n_rot, ": " + std::to_string(n_rot) + " rotary dimensions, must be even and <= head_dim " +
                               std::to_string(head_dim));
  }
  if (!std::isfinite(rms_eps) || rms_eps <= 0) return bad(keys.rms_eps, "= " + std::to_string(rms_eps) + ", expected a positive number");
  if (!std::isfinite(rope_theta) || rope_theta <= 0) {
    return bad(keys.rope_theta, "= " + std::to_string(rope_theta) + ", expected a positive number");
  }
  if (!std::isfinite(rope_scaling.factor) || rope_scaling.factor <= 0) {
    return bad(keys.rope_scaling, "factor = " + std::to_string(rope_scaling.factor) + ", expected a positive number");
  }
  if (!std::isfinite(rope_scaling.low_freq_factor) || !std::isfinite(rope_scaling.high_freq_factor)) {
    return bad(keys.rope_scaling, "low/high frequency factors must be finite");
  }
  if (rope_scaling.type == RopeScalingType::kLlama3 &&
      (rope_scaling.original_context <= 0 || rope_scaling.high_freq_factor <= rope_scaling.low_freq_factor)) {
    return bad(keys.rope_scaling, "(llama3) needs original_max_position_embeddings > 0 and high_freq_factor > low_freq_factor");
  }
  if (hybrid()) {
    if (static_cast<int64_t>(recurrent.size()) != n_layer) {
      return bad(keys.recurrent, "has " + std::to_string(recurrent.size()) + " entries for " +
                                     std::to_string(n_layer) + " layers");
    }
    const Field ssm[] = {{keys.ssm_conv_kernel, ssm_conv_kernel}, {keys.ssm_n_k_heads, ssm_n_k_heads},
                         {keys.ssm_n_v_heads, ssm_n_v_heads},     {keys.ssm_k_head_dim, ssm_k_head_dim},
                         {keys.ssm_v_head_dim, ssm_v_head_dim}};
    for (const auto& f : ssm) {
      if (f.value <= 0) return bad(f.key, "= " + std::to_string(f.value) + ", expected > 0");
      if (f.value > 4096) return bad(f.key, "= " + std::to_string(f.value) + " is too large");
    }
    // Far above any released model (Qwen3.5: conv_dim <= 12288, 1M state floats per layer), far below sizes
    // that would make a file of a few bytes allocate gigabytes per sequence.
    if (ssm_conv_dim() > (int64_t{1} << 20)) {
      return bad(keys.ssm_n_v_heads, "and the head sizes make " + std::to_string(ssm_conv_dim()) +
                                         " convolution channels, more than 1048576");
    }
    if (ssm_n_v_heads * ssm_k_head_dim * ssm_v_head_dim > (int64_t{1} << 26)) {
      return bad(keys.ssm_n_v_heads, "and the head sizes make a state of " +
                                         std::to_string(ssm_n_v_heads * ssm_k_head_dim * ssm_v_head_dim) +
                                         " values per layer, more than 67108864");
    }
    if (ssm_n_v_heads % ssm_n_k_heads != 0) {
      return bad(keys.ssm_n_v_heads, "= " + std::to_string(ssm_n_v_heads) + " is not a multiple of " +
                                         keys.ssm_n_k_heads + " = " + std::to_string(ssm_n_k_heads));
    }
  }
  if ((dynamic_ntk || logn_attn) && n_ctx_train <= 1) {
    return bad(keys.n_ctx_train, "= " + std::to_string(n_ctx_train) + ": dynamic NTK / log-n attention need the training length");
  }
  return {};
}

}  // namespace edgellm
