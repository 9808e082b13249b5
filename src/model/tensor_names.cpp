#include "model/tensor_names.h"

#include <array>

namespace edgellm {
namespace {

struct NameRow {
  TensorRole role;
  bool per_layer;
  const char* gguf;      // llama.cpp names; "{L}" is the layer index
  const char* hf_llama;  // model.layers.{L}... (LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM)
  const char* hf_qwen1;  // transformer.h.{L}... (Qwen 1 remote code, QWenLMHeadModel)
};

constexpr std::array<NameRow, static_cast<size_t>(TensorRole::kCount)> kNames = {{
    {TensorRole::kTokenEmbd, false, "token_embd.weight", "model.embed_tokens.weight", "transformer.wte.weight"},
    {TensorRole::kOutputNorm, false, "output_norm.weight", "model.norm.weight", "transformer.ln_f.weight"},
    {TensorRole::kOutput, false, "output.weight", "lm_head.weight", "lm_head.weight"},
    {TensorRole::kRopeFreqs, false, "rope_freqs.weight", nullptr, nullptr},
    {TensorRole::kAttnNorm, true, "blk.{L}.attn_norm.weight", "model.layers.{L}.input_layernorm.weight",
     "transformer.h.{L}.ln_1.weight"},
    {TensorRole::kAttnQ, true, "blk.{L}.attn_q.weight", "model.layers.{L}.self_attn.q_proj.weight", nullptr},
    {TensorRole::kAttnQBias, true, "blk.{L}.attn_q.bias", "model.layers.{L}.self_attn.q_proj.bias", nullptr},
    {TensorRole::kAttnK, true, "blk.{L}.attn_k.weight", "model.layers.{L}.self_attn.k_proj.weight", nullptr},
    {TensorRole::kAttnKBias, true, "blk.{L}.attn_k.bias", "model.layers.{L}.self_attn.k_proj.bias", nullptr},
    {TensorRole::kAttnV, true, "blk.{L}.attn_v.weight", "model.layers.{L}.self_attn.v_proj.weight", nullptr},
    {TensorRole::kAttnVBias, true, "blk.{L}.attn_v.bias", "model.layers.{L}.self_attn.v_proj.bias", nullptr},
    // Qwen 1's fused c_attn; Qwen3.5's linear-attention layers' in_proj_qkv (q | k | v rows).
    {TensorRole::kAttnQkv, true, "blk.{L}.attn_qkv.weight", "model.layers.{L}.linear_attn.in_proj_qkv.weight",
     "transformer.h.{L}.attn.c_attn.weight"},
    {TensorRole::kAttnQkvBias, true, "blk.{L}.attn_qkv.bias", nullptr, "transformer.h.{L}.attn.c_attn.bias"},
    {TensorRole::kAttnOut, true, "blk.{L}.attn_output.weight", "model.layers.{L}.self_attn.o_proj.weight",
     "transformer.h.{L}.attn.c_proj.weight"},
    {TensorRole::kAttnQNorm, true, "blk.{L}.attn_q_norm.weight", "model.layers.{L}.self_attn.q_norm.weight", nullptr},
    {TensorRole::kAttnKNorm, true, "blk.{L}.attn_k_norm.weight", "model.layers.{L}.self_attn.k_norm.weight", nullptr},
    {TensorRole::kFfnNorm, true, "blk.{L}.ffn_norm.weight", "model.layers.{L}.post_attention_layernorm.weight",
     "transformer.h.{L}.ln_2.weight"},
    // Qwen 1: w2 is the gate (silu applied to it), w1 the up projection (modeling_qwen.py QWenMLP).
    {TensorRole::kFfnGate, true, "blk.{L}.ffn_gate.weight", "model.layers.{L}.mlp.gate_proj.weight",
     "transformer.h.{L}.mlp.w2.weight"},
    {TensorRole::kFfnUp, true, "blk.{L}.ffn_up.weight", "model.layers.{L}.mlp.up_proj.weight",
     "transformer.h.{L}.mlp.w1.weight"},
    {TensorRole::kFfnDown, true, "blk.{L}.ffn_down.weight", "model.layers.{L}.mlp.down_proj.weight",
     "transformer.h.{L}.mlp.c_proj.weight"},
    {TensorRole::kPostAttnNorm, true, "blk.{L}.post_attention_norm.weight",
     "model.layers.{L}.post_attention_layernorm.weight", nullptr},
    {TensorRole::kSsmInZ, true, "blk.{L}.attn_gate.weight", "model.layers.{L}.linear_attn.in_proj_z.weight", nullptr},
    {TensorRole::kSsmBeta, true, "blk.{L}.ssm_beta.weight", "model.layers.{L}.linear_attn.in_proj_b.weight", nullptr},
    {TensorRole::kSsmAlpha, true, "blk.{L}.ssm_alpha.weight", "model.layers.{L}.linear_attn.in_proj_a.weight", nullptr},
    {TensorRole::kSsmConv, true, "blk.{L}.ssm_conv1d.weight", "model.layers.{L}.linear_attn.conv1d.weight", nullptr},
    {TensorRole::kSsmDtBias, true, "blk.{L}.ssm_dt.bias", "model.layers.{L}.linear_attn.dt_bias", nullptr},
    {TensorRole::kSsmA, true, "blk.{L}.ssm_a", "model.layers.{L}.linear_attn.A_log", nullptr},
    {TensorRole::kSsmNorm, true, "blk.{L}.ssm_norm.weight", "model.layers.{L}.linear_attn.norm.weight", nullptr},
    {TensorRole::kSsmOut, true, "blk.{L}.ssm_out.weight", "model.layers.{L}.linear_attn.out_proj.weight", nullptr},
}};

const NameRow& row(TensorRole role) { return kNames[static_cast<size_t>(role)]; }

}  // namespace

bool tensor_role_is_per_layer(TensorRole role) { return row(role).per_layer; }

bool tensor_role_in_arch(Arch arch, TensorRole role) {
  const bool qwen35 = arch == Arch::kQwen35;
  switch (role) {
    case TensorRole::kFfnNorm: return !qwen35;
    case TensorRole::kPostAttnNorm:
    case TensorRole::kSsmInZ:
    case TensorRole::kSsmBeta:
    case TensorRole::kSsmAlpha:
    case TensorRole::kSsmConv:
    case TensorRole::kSsmDtBias:
    case TensorRole::kSsmA:
    case TensorRole::kSsmNorm:
    case TensorRole::kSsmOut: return qwen35;
    default: return true;
  }
}

const char* tensor_role_label(TensorRole role) {
  const char* gguf = row(role).gguf;
  // Skip the "blk.{L}." prefix for display.
  return row(role).per_layer ? gguf + 8 : gguf;
}

std::optional<std::string> tensor_name(NameScheme scheme, TensorRole role, int64_t layer) {
  const NameRow& r = row(role);
  const char* pattern = scheme == NameScheme::kGguf ? r.gguf : scheme == NameScheme::kHfLlama ? r.hf_llama : r.hf_qwen1;
  if (pattern == nullptr) return std::nullopt;
  std::string name(pattern);
  const auto at = name.find("{L}");
  if (at != std::string::npos) name.replace(at, 3, std::to_string(layer));
  return name;
}

}  // namespace edgellm
