#include "model/config_gguf.h"

#include "kernels/rope.h"
#include "model/transformer.h"

namespace edgellm {

namespace {

// llama.cpp's qwen35 keys: the linear layers' sizes, which layers are recurrent, the rotary sections.
void write_qwen35_metadata(const ModelConfig& c, GgufWriter& w) {
  const std::string a = "qwen35";
  w.set_u32(a + ".ssm.conv_kernel", static_cast<uint32_t>(c.ssm_conv_kernel));
  w.set_u32(a + ".ssm.state_size", static_cast<uint32_t>(c.ssm_k_head_dim));
  w.set_u32(a + ".ssm.group_count", static_cast<uint32_t>(c.ssm_n_k_heads));
  w.set_u32(a + ".ssm.time_step_rank", static_cast<uint32_t>(c.ssm_n_v_heads));
  w.set_u32(a + ".ssm.inner_size", static_cast<uint32_t>(c.ssm_value_dim()));
  std::vector<GgufValue> recurrent;
  for (uint8_t r : c.recurrent) recurrent.push_back(GgufValue::boolean(r != 0));
  w.set(a + ".attention.recurrent_layers", GgufValue::array(GgufType::kBool, std::move(recurrent)));
  // The interval, where the layers follow one (llama.cpp reads it only without recurrent_layers).
  for (int64_t interval = 1; interval <= c.n_layer; ++interval) {
    bool matches = true;
    for (int64_t i = 0; i < c.n_layer && matches; ++i) matches = c.is_recurrent(i) == ((i + 1) % interval != 0);
    if (matches) {
      w.set_u32(a + ".full_attention_interval", static_cast<uint32_t>(interval));
      break;
    }
  }
  std::vector<int32_t> sections(4, 0);
  for (size_t i = 0; i < c.rope_sections.size() && i < 4; ++i) sections[i] = static_cast<int32_t>(c.rope_sections[i]);
  w.set(a + ".rope.dimension_sections", GgufValue::i32_array(sections));
}

}  // namespace

void write_config_metadata(const ModelConfig& c, GgufWriter& w) {
  const std::string a = arch_name(c.arch);
  w.set_string("general.architecture", a);
  w.set_u32(a + ".context_length", static_cast<uint32_t>(c.n_ctx_train));
  w.set_u32(a + ".embedding_length", static_cast<uint32_t>(c.n_embd));
  w.set_u32(a + ".block_count", static_cast<uint32_t>(c.n_layer));
  // Qwen 1: llama.cpp stores intermediate_size (both MLP halves), twice each matrix's size.
  w.set_u32(a + ".feed_forward_length", static_cast<uint32_t>(c.arch == Arch::kQwen ? 2 * c.n_ff : c.n_ff));
  w.set_u32(a + ".attention.head_count", static_cast<uint32_t>(c.n_head));
  w.set_u32(a + ".attention.head_count_kv", static_cast<uint32_t>(c.n_head_kv));
  w.set_f32(a + ".attention.layer_norm_rms_epsilon", c.rms_eps);
  w.set_f32(a + ".rope.freq_base", c.rope_theta);
  w.set_u32(a + ".vocab_size", static_cast<uint32_t>(c.n_vocab));
  if (c.head_dim != c.n_embd / c.n_head || c.arch == Arch::kQwen35) {
    w.set_u32(a + ".attention.key_length", static_cast<uint32_t>(c.head_dim));
    w.set_u32(a + ".attention.value_length", static_cast<uint32_t>(c.head_dim));
  }
  if (c.arch == Arch::kQwen || c.arch == Arch::kLlama || c.n_rot != c.head_dim) {
    w.set_u32(a + ".rope.dimension_count", static_cast<uint32_t>(c.n_rot));
  }
  if (c.rope_scaling.type == RopeScalingType::kLinear) {
    w.set_string(a + ".rope.scaling.type", "linear");
    w.set_f32(a + ".rope.scaling.factor", c.rope_scaling.factor);
  }
  if (c.arch == Arch::kQwen35) write_qwen35_metadata(c, w);
  if (c.arch == Arch::kQwen) {
    // Not llama.cpp keys: llama.cpp ignores them and runs Qwen 1 without long-context scaling.
    w.set_bool("qwen.use_dynamic_ntk", c.dynamic_ntk);
    w.set_bool("qwen.use_logn_attn", c.logn_attn);
  }
}

uint32_t gguf_file_type(DType t) {
  switch (t) {
    case DType::kF32: return 0;
    case DType::kF16: return 1;
    case DType::kQ4_0: return 2;
    case DType::kQ4_1: return 3;
    case DType::kQ8_0: return 7;
    case DType::kQ5_0: return 8;
    case DType::kQ5_1: return 9;
    case DType::kIQ4_NL: return 25;  // LLAMA_FTYPE_MOSTLY_IQ4_NL
    case DType::kBF16: return 32;
    default: return 1024;  // "guessed": not specified
  }
}

std::vector<float> llama3_rope_factors(const ModelConfig& c) {
  ModelConfig plain = c;
  plain.rope_scaling = RopeScaling{};
  const std::vector<float> base = model_rope_inv_freq(plain, nullptr, 1.0f);
  const std::vector<float> scaled = model_rope_inv_freq(c, nullptr, 1.0f);
  std::vector<float> factors(base.size());
  for (size_t i = 0; i < base.size(); ++i) factors[i] = base[i] / scaled[i];
  return factors;
}

}  // namespace edgellm
