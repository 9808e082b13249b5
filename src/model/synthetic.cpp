#include "model/synthetic.h"

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "format/gguf.h"
#include "format/safetensors_writer.h"
#include "kernels/quantize.h"
#include "model/arch.h"
#include "model/config_gguf.h"
#include "model/qwen35_gguf_layout.h"
#include "model/rope_permute.h"
#include "model/tensor_names.h"
#include "tokenizer/tokenizer.h"

namespace edgellm {
namespace {

ModelConfig make_config(Arch arch, int64_t vocab, int64_t embd, int64_t layers, int64_t heads, int64_t kv_heads,
                        int64_t head_dim, int64_t ff, float theta, int64_t ctx, bool tied) {
  ModelConfig c;
  c.arch = arch;
  c.n_vocab = vocab;
  c.n_embd = embd;
  c.n_layer = layers;
  c.n_head = heads;
  c.n_head_kv = kv_heads;
  c.head_dim = head_dim;
  c.n_rot = head_dim;
  c.n_ff = ff;
  c.rope_theta = theta;
  c.n_ctx_train = ctx;
  c.rms_eps = 1e-6f;
  c.tied_embeddings = tied;
  c.qkv_bias = arch == Arch::kQwen2 || arch == Arch::kQwen;
  c.qk_norm = arch == Arch::kQwen3;
  c.fused_qkv = arch == Arch::kQwen;
  c.rope_style = arch == Arch::kLlama ? RopeStyle::kInterleaved : RopeStyle::kNeox;
  return c;
}

// Qwen3.5: linear-attention layers with every `interval`-th layer full attention (head_dim 256, a quarter
// of it rotary), Dk = Dv = 128 and a 4-tap convolution in the linear layers.
ModelConfig make_qwen35_config(int64_t vocab, int64_t embd, int64_t layers, int64_t heads, int64_t kv_heads,
                               int64_t head_dim, int64_t ff, int64_t linear_k_heads, int64_t linear_v_heads,
                               int64_t linear_head_dim, int64_t interval, int64_t ctx, bool tied) {
  ModelConfig c = make_config(Arch::kQwen35, vocab, embd, layers, heads, kv_heads, head_dim, ff, 10000000.0f, ctx, tied);
  c.qk_norm = true;
  c.attn_output_gate = true;
  c.n_rot = head_dim / 4;
  c.rope_sections = {11, 11, 10};
  for (int64_t i = 0; i < layers; ++i) c.recurrent.push_back((i + 1) % interval != 0);
  c.ssm_conv_kernel = 4;
  c.ssm_n_k_heads = linear_k_heads;
  c.ssm_n_v_heads = linear_v_heads;
  c.ssm_k_head_dim = linear_head_dim;
  c.ssm_v_head_dim = linear_head_dim;
  return c;
}

ModelConfig with_qwen1_long_context(ModelConfig c) {
  c.dynamic_ntk = true;
  c.logn_attn = true;
  return c;
}

// splitmix64: a tiny, high-quality counter-based generator; (seed, tensor key, index) -> value.
uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t hash_string(const std::string& s) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char ch : s) h = (h ^ ch) * 1099511628211ull;
  return h;
}

// Approximately normal values (Irwin-Hall of 4 uniforms, rescaled to unit variance) from a counter.
void fill_random(std::vector<float>& out, uint64_t key, float mean, float stddev) {
  const float k = stddev * std::sqrt(3.0f);  // 4 uniforms in [-1,1): variance 4/3
  for (size_t i = 0; i < out.size(); ++i) {
    const uint64_t r1 = splitmix64(key ^ (i * 2));
    const uint64_t r2 = splitmix64(key ^ (i * 2 + 1));
    float sum = 0;
    for (int j = 0; j < 2; ++j) {
      sum += static_cast<float>((r1 >> (32 * j)) & 0xffffffffu) * (2.0f / 4294967296.0f) - 1.0f;
      sum += static_cast<float>((r2 >> (32 * j)) & 0xffffffffu) * (2.0f / 4294967296.0f) - 1.0f;
    }
    out[i] = mean + k * sum * 0.5f;
  }
}

struct TensorPlan {
  TensorRole role;
  int64_t layer;
  std::vector<int64_t> ne;  // ggml order
  bool vector;              // always f32: 1-D norms and biases (and Qwen3.5's convolution taps)
  float mean;
  float stddev = -1.0f;     // < 0: the default for the kind of tensor
};

std::vector<TensorPlan> plan_tensors(const ModelConfig& c) {
  const int64_t E = c.n_embd, Q = c.q_dim(), KV = c.kv_dim(), F = c.n_ff, V = c.n_vocab;
  std::vector<TensorPlan> plan;
  // Qwen3.5's RMSNorm weights are stored as w - 1 in Hugging Face's files: values around 0 here, which
  // write_synthetic_gguf turns into llama.cpp's w.
  const bool qwen35 = c.arch == Arch::kQwen35;
  const float norm_mean = qwen35 ? 0.0f : 1.0f;
  const float norm_std = 0.1f;
  plan.push_back({TensorRole::kTokenEmbd, -1, {E, V}, false, 0.0f});
  for (int64_t il = 0; il < c.n_layer; ++il) {
    plan.push_back({TensorRole::kAttnNorm, il, {E}, true, norm_mean, norm_std});
    if (c.is_recurrent(il)) {
      const int64_t CD = c.ssm_conv_dim(), VD = c.ssm_value_dim(), Hv = c.ssm_n_v_heads;
      plan.push_back({TensorRole::kAttnQkv, il, {E, CD}, false, 0.0f});
      plan.push_back({TensorRole::kSsmInZ, il, {E, VD}, false, 0.0f});
      plan.push_back({TensorRole::kSsmBeta, il, {E, Hv}, false, 0.0f});
      plan.push_back({TensorRole::kSsmAlpha, il, {E, Hv}, false, 0.0f});
      plan.push_back({TensorRole::kSsmConv, il, {c.ssm_conv_kernel, CD}, true, 0.0f, 0.3f});
      plan.push_back({TensorRole::kSsmDtBias, il, {Hv}, true, 0.0f, 0.5f});
      plan.push_back({TensorRole::kSsmA, il, {Hv}, true, 0.0f, 0.5f});  // A_log
      plan.push_back({TensorRole::kSsmNorm, il, {c.ssm_v_head_dim}, true, 1.0f});
      plan.push_back({TensorRole::kSsmOut, il, {VD, E}, false, 0.0f});
      plan.push_back({TensorRole::kPostAttnNorm, il, {E}, true, norm_mean, norm_std});
      plan.push_back({TensorRole::kFfnGate, il, {E, F}, false, 0.0f});
      plan.push_back({TensorRole::kFfnUp, il, {E, F}, false, 0.0f});
      plan.push_back({TensorRole::kFfnDown, il, {F, E}, false, 0.0f});
      continue;
    }
    if (qwen35) {
      plan.push_back({TensorRole::kAttnQ, il, {E, 2 * Q}, false, 0.0f});  // q and gate per head
      plan.push_back({TensorRole::kAttnK, il, {E, KV}, false, 0.0f});
      plan.push_back({TensorRole::kAttnV, il, {E, KV}, false, 0.0f});
    } else if (c.fused_qkv) {
      plan.push_back({TensorRole::kAttnQkv, il, {E, Q + 2 * KV}, false, 0.0f});
      plan.push_back({TensorRole::kAttnQkvBias, il, {Q + 2 * KV}, true, 0.0f});
    } else {
      plan.push_back({TensorRole::kAttnQ, il, {E, Q}, false, 0.0f});
      plan.push_back({TensorRole::kAttnK, il, {E, KV}, false, 0.0f});
      plan.push_back({TensorRole::kAttnV, il, {E, KV}, false, 0.0f});
      if (c.qkv_bias) {
        plan.push_back({TensorRole::kAttnQBias, il, {Q}, true, 0.0f});
        plan.push_back({TensorRole::kAttnKBias, il, {KV}, true, 0.0f});
        plan.push_back({TensorRole::kAttnVBias, il, {KV}, true, 0.0f});
      }
    }
    if (c.qk_norm) {
      plan.push_back({TensorRole::kAttnQNorm, il, {c.head_dim}, true, norm_mean, norm_std});
      plan.push_back({TensorRole::kAttnKNorm, il, {c.head_dim}, true, norm_mean, norm_std});
    }
    plan.push_back({TensorRole::kAttnOut, il, {Q, E}, false, 0.0f});
    plan.push_back({qwen35 ? TensorRole::kPostAttnNorm : TensorRole::kFfnNorm, il, {E}, true, norm_mean, norm_std});
    plan.push_back({TensorRole::kFfnGate, il, {E, F}, false, 0.0f});
    plan.push_back({TensorRole::kFfnUp, il, {E, F}, false, 0.0f});
    plan.push_back({TensorRole::kFfnDown, il, {F, E}, false, 0.0f});
  }
  plan.push_back({TensorRole::kOutputNorm, -1, {E}, true, norm_mean, norm_std});
  if (!c.tied_embeddings) plan.push_back({TensorRole::kOutput, -1, {E, V}, false, 0.0f});
  return plan;
}

std::vector<float> generate(const TensorPlan& p, const SynthOptions& o) {
  int64_t n = 1;
  for (int64_t d : p.ne) n *= d;
  std::vector<float> values(static_cast<size_t>(n));
  const uint64_t key = splitmix64(o.seed ^ hash_string(*tensor_name(NameScheme::kGguf, p.role, p.layer)));
  // Norm weights near 1 and biases small but non-zero, so every tensor matters in comparisons.
  const float stddev = p.stddev >= 0 ? p.stddev : p.vector ? (p.mean == 1.0f ? 0.1f : 0.05f) : o.init_std;
  fill_random(values, key, p.mean, stddev);
  return values;
}

constexpr const char* kChatMlTemplate =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

}  // namespace

const std::vector<SynthPreset>& synth_presets() {
  static const std::vector<SynthPreset> presets = {
      {"qwen2.5-0.5b", "Qwen2.5-0.5B dimensions (qwen2, GQA 14/2, tied embeddings)",
       make_config(Arch::kQwen2, 151936, 896, 24, 14, 2, 64, 4864, 1000000.0f, 32768, true)},
      {"qwen1.5-1.8b", "Qwen1.5-1.8B dimensions (qwen2, 16 heads, untied)",
       make_config(Arch::kQwen2, 151936, 2048, 24, 16, 16, 128, 5504, 1000000.0f, 32768, false)},
      {"qwen-1.8b", "Qwen-1_8B dimensions (qwen 1, fused qkv, untied, dynamic NTK + log-n beyond 8192)",
       with_qwen1_long_context(make_config(Arch::kQwen, 151936, 2048, 24, 16, 16, 128, 5504, 10000.0f, 8192, false))},
      {"qwen3-0.6b", "Qwen3-0.6B dimensions (qwen3, q/k norm, GQA 16/8, head_dim 128, tied)",
       make_config(Arch::kQwen3, 151936, 1024, 28, 16, 8, 128, 3072, 1000000.0f, 40960, true)},
      {"qwen3-1.7b", "Qwen3-1.7B dimensions (qwen3, q/k norm, GQA 16/8, head_dim 128, tied)",
       make_config(Arch::kQwen3, 151936, 2048, 28, 16, 8, 128, 6144, 1000000.0f, 40960, true)},
      {"qwen3.5-0.8b", "Qwen3.5-0.8B dimensions (qwen35: 18 Gated DeltaNet + 6 gated attention layers, GQA 8/2, "
                       "head_dim 256, tied)",
       make_qwen35_config(248320, 1024, 24, 8, 2, 256, 3584, 16, 16, 128, 4, 262144, true)},
      {"qwen3.5-2b", "Qwen3.5-2B dimensions (qwen35: 18 Gated DeltaNet + 6 gated attention layers, GQA 8/2, "
                     "head_dim 256, tied)",
       make_qwen35_config(248320, 2048, 24, 8, 2, 256, 6144, 16, 16, 128, 4, 262144, true)},
      {"qwen35-tiny", "a tiny qwen35 model for tests (4 layers L,L,L,F, hidden 64, 2 key / 4 value linear heads)",
       make_qwen35_config(512, 64, 4, 4, 2, 32, 96, 2, 4, 16, 4, 2048, false)},
      {"tiny", "a tiny qwen2 model for tests (2 layers, hidden 64, vocab 512)",
       make_config(Arch::kQwen2, 512, 64, 2, 4, 2, 16, 128, 10000.0f, 2048, false)},
  };
  return presets;
}

Expected<SynthPreset> find_synth_preset(const std::string& name) {
  std::string names;
  for (const auto& p : synth_presets()) {
    if (p.name == name) return p;
    names += (names.empty() ? "" : ", ") + p.name;
  }
  return make_error(ErrorCode::kInvalidArgument, "unknown preset '" + name + "' (presets: " + names + ")");
}

Status write_synthetic_gguf(const ModelConfig& c, const SynthOptions& o, const std::string& path) {
  EDGELLM_TRY(c.validate("synthetic model"));
  if (!can_dequantize(o.weight_type)) {
    return make_error(ErrorCode::kInvalidArgument,
                      std::string("synthetic weights of type ") + dtype_name(o.weight_type) + " are not supported");
  }
  GgufWriter w;
  write_config_metadata(c, w);
  w.set_string("general.name", std::string("edgellm synthetic ") + arch_name(c.arch));
  w.set_u32("general.file_type", gguf_file_type(o.weight_type));
  if (dtype_traits(o.weight_type).quantized) w.set_u32("general.quantization_version", 2);
  EDGELLM_ASSIGN_OR_RETURN(auto tokenizer, make_synthetic_tokenizer(static_cast<int32_t>(c.n_vocab)));
  tokenizer->write_gguf_metadata(w);
  w.set_string("tokenizer.chat_template", kChatMlTemplate);

  for (const TensorPlan& p : plan_tensors(c)) {
    const std::string name = *tensor_name(NameScheme::kGguf, p.role, p.layer);
    const DType type = p.vector ? DType::kF32 : o.weight_type;
    EDGELLM_TRY(w.add_tensor(name, type, p.ne, [p, o, c, type](std::vector<uint8_t>& out) -> Status {
      std::vector<float> values = generate(p, o);
      if (c.arch == Arch::kLlama && (p.role == TensorRole::kAttnQ || p.role == TensorRole::kAttnK)) {
        const int64_t heads = p.role == TensorRole::kAttnQ ? c.n_head : c.n_head_kv;
        permute_rows_for_interleaved_rope(values, heads, c.head_dim, p.ne[0]);
      }
      if (c.arch == Arch::kQwen35) qwen35_values_to_gguf(c, p.role, values, p.ne[0]);
      int64_t n = static_cast<int64_t>(values.size());
      out.resize(dtype_row_bytes(type, n));
      return quantize_row(type, values.data(), out.data(), n);
    }));
  }
  return w.write(path);
}

Status write_synthetic_hf_dir(const ModelConfig& c, const SynthOptions& o, const std::string& dir) {
  EDGELLM_TRY(c.validate("synthetic model"));
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return make_error(ErrorCode::kIo, dir + ": cannot create directory: " + ec.message());

  nlohmann::ordered_json cfg;
  NameScheme scheme = NameScheme::kHfLlama;
  if (c.arch == Arch::kQwen) {
    scheme = NameScheme::kHfQwen1;
    cfg = {{"architectures", {"QWenLMHeadModel"}},
           {"model_type", "qwen"},
           {"vocab_size", c.n_vocab},
           {"hidden_size", c.n_embd},
           {"num_hidden_layers", c.n_layer},
           {"num_attention_heads", c.n_head},
           {"kv_channels", c.head_dim},
           {"intermediate_size", 2 * c.n_ff},
           {"seq_length", c.n_ctx_train},
           {"layer_norm_epsilon", c.rms_eps},
           {"rotary_emb_base", c.rope_theta},
           {"rotary_pct", 1.0},
           {"use_dynamic_ntk", c.dynamic_ntk},
           {"use_logn_attn", c.logn_attn},
           {"no_bias", true},
           {"tie_word_embeddings", c.tied_embeddings}};
  } else {
    const char* arch_class = c.arch == Arch::kLlama    ? "LlamaForCausalLM"
                             : c.arch == Arch::kQwen2  ? "Qwen2ForCausalLM"
                             : c.arch == Arch::kQwen35 ? "Qwen3_5ForCausalLM"
                                                       : "Qwen3ForCausalLM";
    cfg = {{"architectures", {arch_class}},
           {"model_type", arch_name(c.arch)},
           {"vocab_size", c.n_vocab},
           {"hidden_size", c.n_embd},
           {"num_hidden_layers", c.n_layer},
           {"num_attention_heads", c.n_head},
           {"num_key_value_heads", c.n_head_kv},
           {"head_dim", c.head_dim},
           {"intermediate_size", c.n_ff},
           {"max_position_embeddings", c.n_ctx_train},
           {"rms_norm_eps", c.rms_eps},
           {"rope_theta", c.rope_theta},
           {"hidden_act", "silu"},
           {"tie_word_embeddings", c.tied_embeddings},
           {"torch_dtype", "float32"}};
    if (c.arch == Arch::kLlama) cfg["attention_bias"] = c.qkv_bias;
    if (c.arch == Arch::kQwen35) {
      cfg["model_type"] = "qwen3_5_text";
      nlohmann::ordered_json types = nlohmann::ordered_json::array();
      for (int64_t i = 0; i < c.n_layer; ++i) types.push_back(c.is_recurrent(i) ? "linear_attention" : "full_attention");
      cfg["layer_types"] = types;
      cfg.erase("rope_theta");
      cfg["rope_parameters"] = {{"rope_type", "default"},
                                {"rope_theta", c.rope_theta},
                                {"partial_rotary_factor", static_cast<double>(c.n_rot) / static_cast<double>(c.head_dim)},
                                {"mrope_section", c.rope_sections},
                                {"mrope_interleaved", true}};
      cfg["linear_conv_kernel_dim"] = c.ssm_conv_kernel;
      cfg["linear_key_head_dim"] = c.ssm_k_head_dim;
      cfg["linear_value_head_dim"] = c.ssm_v_head_dim;
      cfg["linear_num_key_heads"] = c.ssm_n_k_heads;
      cfg["linear_num_value_heads"] = c.ssm_n_v_heads;
    }
  }
  {
    std::ofstream out(dir + "/config.json");
    out << cfg.dump(2) << "\n";
    if (!out) return make_error(ErrorCode::kIo, dir + "/config.json: write failed");
  }

  SafetensorsWriter st;
  st.set_metadata("format", "pt");
  for (const TensorPlan& p : plan_tensors(c)) {
    const auto name = tensor_name(scheme, p.role, p.layer);
    if (!name) return make_error(ErrorCode::kInternal, "no Hugging Face name for a synthetic tensor");
    const std::vector<float> values = generate(p, o);
    std::vector<int64_t> shape(p.ne.rbegin(), p.ne.rend());
    if (p.role == TensorRole::kSsmConv) shape = {p.ne[1], 1, p.ne[0]};  // Conv1d's [channels, 1, K]
    EDGELLM_TRY(st.add(*name, DType::kF32, shape, values.data(), values.size() * sizeof(float)));
  }
  return st.write(dir + "/model.safetensors");
}

}  // namespace edgellm
