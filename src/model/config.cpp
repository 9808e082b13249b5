#include "model/config.h"

#include <cmath>

namespace edgellm {

const char* arch_name(Arch arch) {
  switch (arch) {
    case Arch::kLlama: return "llama";
    case Arch::kQwen: return "qwen";
    case Arch::kQwen2: return "qwen2";
    case Arch::kQwen3: return "qwen3";
  }
  return "?";
}

Status ModelConfig::validate(const std::string& source) const {
  auto bad = [&](const std::string& what) {
    return make_error(ErrorCode::kFormat, source + ": invalid model config: " + what);
  };
  struct Field {
    const char* name;
    int64_t value;
  };
  const Field positive[] = {{"n_vocab", n_vocab}, {"n_embd", n_embd}, {"n_layer", n_layer}, {"n_head", n_head},
                            {"n_head_kv", n_head_kv}, {"head_dim", head_dim}, {"n_ff", n_ff}, {"n_rot", n_rot}};
  for (const auto& f : positive) {
    if (f.value <= 0) return bad(std::string(f.name) + " = " + std::to_string(f.value) + ", expected > 0");
    if (f.value > (int64_t{1} << 24)) return bad(std::string(f.name) + " = " + std::to_string(f.value) + " is too large");
  }
  if (n_layer > 1024) return bad("n_layer = " + std::to_string(n_layer) + " is too large");
  if (n_head % n_head_kv != 0) {
    return bad("n_head = " + std::to_string(n_head) + " is not a multiple of n_head_kv = " + std::to_string(n_head_kv));
  }
  if (n_rot > head_dim || n_rot % 2 != 0) {
    return bad("n_rot = " + std::to_string(n_rot) + " must be even and <= head_dim = " + std::to_string(head_dim));
  }
  if (!std::isfinite(rms_eps) || rms_eps <= 0) return bad("rms_norm_eps = " + std::to_string(rms_eps));
  if (!std::isfinite(rope_theta) || rope_theta <= 0) return bad("rope_theta = " + std::to_string(rope_theta));
  if (!std::isfinite(rope_scaling.factor) || rope_scaling.factor <= 0) {
    return bad("rope scaling factor = " + std::to_string(rope_scaling.factor));
  }
  if (!std::isfinite(rope_scaling.low_freq_factor) || !std::isfinite(rope_scaling.high_freq_factor)) {
    return bad("rope scaling low/high frequency factors must be finite");
  }
  if (rope_scaling.type == RopeScalingType::kLlama3 &&
      (rope_scaling.original_context <= 0 || rope_scaling.high_freq_factor <= rope_scaling.low_freq_factor)) {
    return bad("llama3 rope scaling needs original_max_position_embeddings > 0 and high_freq_factor > low_freq_factor");
  }
  if ((dynamic_ntk || logn_attn) && n_ctx_train <= 1) return bad("dynamic NTK / log-n attention need the training length");
  return {};
}

}  // namespace edgellm
