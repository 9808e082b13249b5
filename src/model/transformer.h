// The forward pass shared by every supported family: embeddings -> n_layer x (RMSNorm, attention with
// RoPE and GQA over the KV cache, residual, RMSNorm, SwiGLU MLP, residual) -> RMSNorm -> logits.
// Family differences are config flags: q/k/v bias (qwen2, qwen), fused qkv (qwen), per-head q/k norm
// (qwen3), rope pairing and scaling, Qwen 1's dynamic NTK and log-n attention.
#pragma once

#include <cstdint>
#include <vector>

#include "model/kv_cache.h"
#include "model/model.h"
#include "model/tensor_names.h"
#include "util/expected.h"
#include "util/thread_pool.h"

namespace edgellm {

enum class LogitsMode { kNone, kLast, kAll };

class LoraAdapter;

// The LoRA adapter a call runs with (none by default) and its strength.
struct ActiveLora {
  const LoraAdapter* adapter = nullptr;
  float scale = 1.0f;
};

// Activation buffers for up to `max_batch` tokens per step (karpathy/llama2.c's RunState). Allocated
// once per session; the decode loop allocates nothing.
struct ForwardScratch {
  ForwardScratch(const ModelConfig& config, int64_t max_batch, int64_t n_ctx, int n_threads);

  int64_t max_batch;
  std::vector<float> x;         // [max_batch][n_embd] residual stream
  std::vector<float> xn;        // [max_batch][n_embd] normalised input of a block
  std::vector<float> qkv;       // [max_batch][q_dim + 2 kv_dim] (q | k | v per token)
  std::vector<float> attn_out;  // [max_batch][q_dim]
  std::vector<float> proj;      // [max_batch][n_embd]
  std::vector<float> gate;      // [max_batch][n_ff]
  std::vector<float> up;        // [max_batch][n_ff]
  size_t attn_work_floats;      // per thread, attention_work_floats(head_dim, n_head / n_head_kv)
  std::vector<float> attn_work; // [n_threads][attn_work_floats] key/value tiles and online-softmax state
  int64_t attn_max_parts;       // decode key parts the buffers below hold: ceil(n_ctx / kAttnDecodeSplit)
  std::vector<float> attn_part_out;  // [attn_max_parts][q_dim] unnormalised partial outputs of decode
  std::vector<float> attn_part_ms;   // [attn_max_parts][2][n_head] their running max and sum
  std::vector<float> hidden;    // [n_embd] final normalised hidden state of the last token
  std::vector<float> lora_tmp;       // [max_batch][adapter rank] A x, sized when an adapter is first used
  std::vector<float> rope_inv_freq;  // frequencies in use (differs from the model's under dynamic NTK)
  std::vector<float> rope_cos_sin;   // [max_batch][n_rot] this chunk's cosines and sines (kernels/rope.h)
  float rope_ntk_alpha = 0.0f;       // the alpha rope_inv_freq was computed for (0: not yet)
};

class Transformer {
 public:
  explicit Transformer(const Model& model);

  const Model& model() const { return model_; }
  const ModelConfig& config() const { return model_.config(); }

  // Runs `n_tokens` tokens at positions [kv.n_past(), kv.n_past() + n_tokens), appends them to the KV
  // cache and advances kv.n_past(). Logits: kLast -> logits holds [n_vocab]; kAll -> [n_tokens][n_vocab].
  // Errors: token id out of range (kInvalidArgument), cache full (kContextFull).
  Status forward(const int32_t* tokens, int64_t n_tokens, KvCache& kv, ForwardScratch& scratch, ThreadPool& pool,
                 LogitsMode mode, std::vector<float>& logits, const ActiveLora& lora = {}) const;

 private:
  void forward_chunk(const int32_t* tokens, int64_t n, int64_t pos0, KvCache& kv, ForwardScratch& s,
                     ThreadPool& pool, const ActiveLora& lora) const;
  // y[n][rows] = W x (+ the adapter's scale * B A x for this weight, if the active LoRA has one).
  void project(const TensorRef& w, TensorRole role, int64_t layer, const float* x, int64_t n, float* y,
               ForwardScratch& s, ThreadPool& pool, const ActiveLora& lora) const;
  // One weight of project_same_input(): y[t * y_stride + r] = (W x)[t][r] (+ its LoRA, + bias).
  struct Projection {
    const TensorRef* w;
    TensorRole role;
    float* y;
    int64_t y_stride;
    const TensorRef* bias;  // f32 [rows], or one with no data
  };
  // Several projections of the same x in one job over the pool (kernels/matmul.h: matmul_same_input).
  void project_same_input(const Projection* ps, int n_projections, int64_t layer, const float* x, int64_t n,
                          ForwardScratch& s, ThreadPool& pool, const ActiveLora& lora) const;
  // y[t * y_stride + o] += the active adapter's scale * (B A x[t])[o], if it has a pair for (role, layer).
  void add_lora(TensorRole role, int64_t layer, const float* x, int64_t n, float* y, int64_t y_stride,
                ForwardScratch& s, ThreadPool& pool, const ActiveLora& lora) const;
  void attention(int64_t layer, int64_t n, int64_t pos0, KvCache& kv, ForwardScratch& s, ThreadPool& pool) const;
  void update_rope_table(float ntk_alpha, ForwardScratch& s) const;

  const Model& model_;
};

// Rotary frequencies of a model: theta, the rope scaling of its config, llama.cpp's rope_freqs factors,
// and a Qwen 1 dynamic-NTK multiplier (1 = none).
std::vector<float> model_rope_inv_freq(const ModelConfig& config, const float* freq_factors, float ntk_alpha);

// Qwen 1's dynamic NTK multiplier for a sequence of `length` tokens (modeling_qwen.py get_ntk_alpha):
// 1 up to the training length, then 2^ceil(log2(length / n_ctx_train) + 1) - 1.
float qwen_ntk_alpha(int64_t length, int64_t n_ctx_train);
// Qwen 1's log-n query scale at 0-based position `pos`: log(pos + 1) / log(n_ctx_train) beyond training.
float qwen_logn_scale(int64_t pos, int64_t n_ctx_train);

}  // namespace edgellm
