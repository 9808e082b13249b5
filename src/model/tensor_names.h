// The one table of tensor names: each weight's role, its GGUF name (llama.cpp's convention) and its
// Hugging Face names (Llama-style modules used by llama/qwen2/qwen3, and Qwen 1's remote-code modules).
#pragma once

#include <optional>
#include <string>
#include <string_view>

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
  kCount,
};

enum class NameScheme { kGguf, kHfLlama, kHfQwen1 };

bool tensor_role_is_per_layer(TensorRole role);
const char* tensor_role_label(TensorRole role);  // e.g. "attn_q.weight"

// The tensor name for a role (and layer, for per-layer roles) in a naming scheme, or nullopt if the
// scheme has no such tensor.
std::optional<std::string> tensor_name(NameScheme scheme, TensorRole role, int64_t layer = -1);

}  // namespace edgellm
