// The one table of tensor names: each weight's role, its GGUF name (llama.cpp's convention) and its
// Hugging Face names (Llama-style modules used by llama/qwen2/qwen3, and Qwen 1's remote-code modules).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "model/config.h"

namespace edgellm {

enum class TensorRole {
  kTokenEmbd,
  kOutputNorm,
  kOutput,
  kRopeFreqs,  // llama.cpp's per-dimension frequency factors (Llama 3.1 rope scaling)
  kAttnNorm,
  kAttnQ,
  kAttnQBias,
  kAttnK,
  kAttnKBias,
  kAttnV,
  kAttnVBias,
  kAttnQkv,      // Qwen 1 fused c_attn
  kAttnQkvBias,
  kAttnOut,
  kAttnQNorm,    // Qwen3 per-head RMSNorm of q
  kAttnKNorm,
  kFfnNorm,
  kFfnGate,
  kFfnUp,
  kFfnDown,
  // Qwen3.5: the norm before the MLP has llama.cpp's qwen35 name, and the Gated DeltaNet (linear attention)
  // layers' tensors. Their q/k/v input projection is kAttnQkv ("attn_qkv", HF in_proj_qkv).
  kPostAttnNorm,
  kSsmInZ,       // output gate z (attn_gate, HF in_proj_z): n_embd -> Hv * Dv
  kSsmBeta,      // n_embd -> Hv, beta = sigmoid(.)
  kSsmAlpha,     // n_embd -> Hv, decay input
  kSsmConv,      // [conv_dim][K] depthwise causal convolution
  kSsmDtBias,    // [Hv]
  kSsmA,         // [Hv]: GGUF holds -exp(A_log), Hugging Face A_log
  kSsmNorm,      // [Dv] gated RMSNorm weight
  kSsmOut,       // Hv * Dv -> n_embd
  kCount,
};

enum class NameScheme { kGguf, kHfLlama, kHfQwen1 };

bool tensor_role_is_per_layer(TensorRole role);
// Whether an architecture's files can hold the role (Qwen3.5 names the MLP norm post_attention_norm and is
// the only one with the ssm_* tensors).
bool tensor_role_in_arch(Arch arch, TensorRole role);
const char* tensor_role_label(TensorRole role);  // e.g. "attn_q.weight"

// The tensor name for a role (and layer, for per-layer roles) in a naming scheme, or nullopt if the
// scheme has no such tensor.
std::optional<std::string> tensor_name(NameScheme scheme, TensorRole role, int64_t layer = -1);

}  // namespace edgellm
