// Model hyper-parameters, read from GGUF metadata (llama.cpp's key names) or a Hugging Face config.json.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "util/expected.h"

namespace edgellm {

enum class Arch { kLlama, kQwen, kQwen2, kQwen3, kQwen35 };

const char* arch_name(Arch arch);  // GGUF names: "llama", "qwen", "qwen2", "qwen3", "qwen35"

// How rotary pairs are formed. NeoX (Hugging Face's rotate_half): element i pairs with i + n_rot/2.
// Interleaved (GPT-J, and what llama.cpp's converter prepares for Llama by permuting q/k): 2i with 2i+1.
enum class RopeStyle { kNeox, kInterleaved };

enum class RopeScalingType { kNone, kLinear, kLlama3 };

struct RopeScaling {
  RopeScalingType type = RopeScalingType::kNone;
  float factor = 1.0f;
  int64_t original_context = 0;  // llama3: original_max_position_embeddings
  float low_freq_factor = 1.0f;  // llama3
  float high_freq_factor = 4.0f; // llama3
};

struct ModelConfig {
  Arch arch = Arch::kLlama;
  int64_t n_vocab = 0;
  int64_t n_embd = 0;
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;   // per-head size of q and k (and v)
  int64_t n_ff = 0;       // feed-forward inner size
  int64_t n_rot = 0;      // rotary dimensions per head (== head_dim for every supported family)
  int64_t n_ctx_train = 0;
  float rms_eps = 1e-6f;
  float rope_theta = 10000.0f;
  RopeStyle rope_style = RopeStyle::kNeox;
  RopeScaling rope_scaling;
  bool qkv_bias = false;   // qwen2, qwen (fused)
  bool qk_norm = false;    // qwen3
  bool fused_qkv = false;  // qwen: one c_attn / attn_qkv matrix
  bool tied_embeddings = false;
  // Qwen 1 beyond its training length (modeling_qwen.py): rotary base grows with the prompt length
  // (dynamic NTK) and queries are scaled by log_{n_ctx_train}(position) (log-n attention).
  bool dynamic_ntk = false;
  bool logn_attn = false;

  // Qwen3.5 (hybrid): most layers run Gated DeltaNet linear attention (a causal depthwise convolution over
  // q/k/v, then the gated delta rule with a fixed-size state per value head) instead of full attention.
  // `recurrent` is empty for every other family.
  std::vector<uint8_t> recurrent;  // [n_layer]: 1 = linear-attention layer, 0 = full attention
  int64_t ssm_conv_kernel = 0;     // K: the convolution's taps (the state keeps the last K - 1 inputs)
  int64_t ssm_n_k_heads = 0;       // Hk: query/key heads of the linear layers
  int64_t ssm_n_v_heads = 0;       // Hv: value heads (and gates, decays), a multiple of Hk
  int64_t ssm_k_head_dim = 0;      // Dk
  int64_t ssm_v_head_dim = 0;      // Dv
  // Which key head value head h reads: h % Hk (llama.cpp's GGUF order, "tiled") or h / (Hv / Hk) (Hugging
  // Face's order, "grouped"). Every per-value-head tensor of a file is in its order.
  bool ssm_v_heads_tiled = false;
  bool attn_output_gate = false;   // qwen35: the q projection also gives a sigmoid gate per head and dim
  std::vector<int64_t> rope_sections;  // qwen35: multimodal rotary sections (text uses one position for all)

  bool hybrid() const { return !recurrent.empty(); }
  bool is_recurrent(int64_t layer) const { return hybrid() && recurrent[static_cast<size_t>(layer)] != 0; }
  int64_t n_recurrent_layers() const;
  int64_t n_attention_layers() const { return n_layer - n_recurrent_layers(); }
  int64_t ssm_key_dim() const { return ssm_n_k_heads * ssm_k_head_dim; }
  int64_t ssm_value_dim() const { return ssm_n_v_heads * ssm_v_head_dim; }
  int64_t ssm_conv_dim() const { return 2 * ssm_key_dim() + ssm_value_dim(); }
  // The key head that value head h of a linear layer reads.
  int64_t ssm_key_head_of(int64_t v_head) const {
    return ssm_v_heads_tiled ? v_head % ssm_n_k_heads : v_head / (ssm_n_v_heads / ssm_n_k_heads);
  }

  int64_t q_dim() const { return n_head * head_dim; }
  int64_t kv_dim() const { return n_head_kv * head_dim; }

  // Checks every field (positive sizes, divisibility, finite floats); errors name `source` and the key
  // the value came from (see ConfigKeyNames).
  Status validate(const std::string& source, const struct ConfigKeyNames& keys) const;
  Status validate(const std::string& source) const;  // field names as keys (synthetic configs)
};

// The user-visible name of each config field in its source (a GGUF key or a config.json key), so that
// errors point at what the user can fix.
struct ConfigKeyNames {
  std::string n_vocab = "n_vocab", n_embd = "n_embd", n_layer = "n_layer", n_head = "n_head", n_head_kv = "n_head_kv",
              head_dim = "head_dim", n_ff = "n_ff", n_rot = "n_rot", rms_eps = "rms_eps", rope_theta = "rope_theta",
              rope_scaling = "rope_scaling", n_ctx_train = "n_ctx_train", recurrent = "recurrent",
              ssm_conv_kernel = "ssm_conv_kernel", ssm_n_k_heads = "ssm_n_k_heads", ssm_n_v_heads = "ssm_n_v_heads",
              ssm_k_head_dim = "ssm_k_head_dim", ssm_v_head_dim = "ssm_v_head_dim";
};
ConfigKeyNames gguf_config_keys(Arch arch);
ConfigKeyNames hf_config_keys(Arch arch);

}  // namespace edgellm
