// The forward pass shared by every supported family: embeddings -> n_layer x (RMSNorm, attention with
// RoPE and GQA over the KV cache, residual, RMSNorm, SwiGLU MLP, residual) -> RMSNorm -> logits.
// Family differences are config flags: q/k/v bias (qwen2, qwen), fused qkv (qwen), per-head q/k norm
// (qwen3), rope pairing and scaling, Qwen 1's dynamic NTK and log-n attention.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "model/kv_cache.h"
#include "model/model.h"
#include "model/recurrent_state.h"
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

// One sequence's part of a batched step (Transformer::forward_batch): its new tokens, where its cached
// keys and values are, which logits it wants back and the adapter it runs with.
struct BatchSequence {
  const int32_t* tokens = nullptr;  // the new tokens, at positions [pos0, pos0 + n_tokens)
  int64_t n_tokens = 0;
  int64_t pos0 = 0;                 // positions [0, pos0) are already in the cache
  // Cache rows of its positions: position p is row p (nullptr), or paged through a block table of
  // block_table_len entries (position p in row p mod 2^block_shift of block block_table[p >> block_shift]).
  const int32_t* block_table = nullptr;
  int64_t block_table_len = 0;
  LogitsMode logits = LogitsMode::kNone;  // kLast: one row after its last token; kAll: one per token
  ActiveLora lora;
  float ntk_alpha = 1.0f;  // Qwen 1 dynamic NTK: the rotary multiplier its new keys are rotated with
  // Hybrid models: the sequence's linear-attention state after position pos0, advanced in place.
  RecurrentState* state = nullptr;
};

// One attention job of a step: a block of query tokens (or, for a long decode, a part of the keys) of one
// sequence and one KV head.
struct AttentionTask {
  int32_t seq = 0;    // index into the step's sequences
  int32_t kvh = 0;    // KV head
  int32_t index = 0;  // block of kAttnQueryTile query tokens, or (split) part of kAttnDecodeSplit keys
  bool split = false;
};

// Activation buffers for up to `max_batch` tokens per step (karpathy/llama2.c's RunState), over all the
// step's sequences. Allocated once per session or engine; after the first steps at the largest batch and
// context the decode loop allocates nothing.
// Rows [first_row, first_row + n_rows) of a step's activations that run with one adapter.
struct LoraSpan {
  int64_t first_row = 0;
  int64_t n_rows = 0;
  ActiveLora lora;
};

// Sees the input of every matrix product of a forward pass (calibration, quant/calibration.h): `roles` (the
// weights of `layer` that read it; layer -1 and kOutput for the output projection), rows [n_tokens][dim].
using ActivationObserver = std::function<void(const TensorRole* roles, int n_roles, int64_t layer, const float* x,
                                              int64_t n_tokens, int64_t dim)>;

struct ForwardScratch {
  ForwardScratch(const ModelConfig& config, int64_t max_batch, int64_t n_ctx, int n_threads);

  ActivationObserver observer;  // optional; called before each product

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
  int64_t attn_max_parts;       // decode key parts first allocated for: ceil(n_ctx / kAttnDecodeSplit)
  // Split decodes (grown when a step has more parts in all, e.g. several long sequences):
  std::vector<float> attn_part_out;  // [parts][q_dim] unnormalised partial outputs
  std::vector<float> attn_part_ms;   // [parts][2][n_head] their running max and sum
  std::vector<float> hidden;    // [n_embd] final normalised hidden state of the last token
  std::vector<float> lora_tmp;       // [max_batch][adapter rank] A x, sized when an adapter is first used
  std::vector<float> rope_inv_freq;  // frequencies in use (differs from the model's under dynamic NTK)
  std::vector<float> rope_cos_sin;   // [max_batch][n_rot] this chunk's cosines and sines (kernels/rope.h)
  float rope_ntk_alpha = 0.0f;       // the alpha rope_inv_freq was computed for (0: not yet)

  // The current step (forward_batch): per sequence its first token in the step's rows and, for a split
  // decode, its first part in attn_part_out; the attention tasks of every layer.
  struct StepSequence {
    int64_t first_token = 0;
    int64_t first_part = 0;
    int64_t n_parts = 0;  // > 0: decode split into key parts
  };
  std::vector<StepSequence> step;
  std::vector<AttentionTask> attn_tasks;
  std::vector<LoraSpan> token_loras;   // the step's token rows that run with an adapter
  std::vector<LoraSpan> output_loras;  // the same for its logits rows

  // Qwen3.5 (empty for other models). Full-attention layers: q projection with the gate, and the gate.
  std::vector<float> attn_q_gate;  // [max_batch][2 q_dim]
  std::vector<float> attn_gate;    // [max_batch][q_dim]
  // Linear-attention layers:
  std::vector<float> lin_mixed;    // [max_batch][conv_dim] q | k | v before the convolution
  std::vector<float> lin_window;   // [K - 1 + max_batch][conv_dim] one sequence's convolution input
  std::vector<float> lin_conv;     // [max_batch][conv_dim] after the convolution (q, k normalised)
  std::vector<float> lin_z;        // [max_batch][Hv * Dv] output gate
  std::vector<float> lin_beta;     // [max_batch][Hv]
  std::vector<float> lin_g;        // [max_batch][Hv] log-decay
  std::vector<float> lin_out;      // [max_batch][Hv * Dv]
  size_t delta_work_floats = 0;
  std::vector<float> delta_work;   // [n_threads][delta_work_floats] chunked delta rule
};

class Transformer {
 public:
  explicit Transformer(const Model& model);

  const Model& model() const { return model_; }
  const ModelConfig& config() const { return model_.config(); }

  // Runs `n_tokens` tokens at positions [kv.n_past(), kv.n_past() + n_tokens), appends them to the KV
  // cache and advances kv.n_past(). Logits: kLast -> logits holds [n_vocab]; kAll -> [n_tokens][n_vocab].
  // Runs in steps of scratch.max_batch tokens (forward_batch with one contiguous sequence).
  // Errors: token id out of range (kInvalidArgument), cache full (kContextFull).
  Status forward(const int32_t* tokens, int64_t n_tokens, KvCache& kv, ForwardScratch& scratch, ThreadPool& pool,
                 LogitsMode mode, std::vector<float>& logits, const ActiveLora& lora = {}) const;

  // One step over several sequences: every weight is read once for all their tokens (at most
  // scratch.max_batch in all), attention runs per sequence over its own cached rows of `kv` (paged ones
  // in blocks of 2^block_shift rows), and their new keys and values are stored there.
  // A sequence's results do not depend on the others in the step: every matmul output of a token depends
  // only on that token, and its attention reads only its own rows, in the same tile order as alone.
  // Logits go to `logits` in sequence order: a kLast sequence's row after its last token, a kAll one's
  // row per token, [rows][n_vocab]. scratch.hidden ends as the last sequence's final normalised state.
  // Errors (nothing is written then): no sequences or tokens, more than max_batch tokens, a token id
  // outside the vocabulary, positions beyond the cache or the block table (kInvalidArgument / kContextFull).
  Status forward_batch(const BatchSequence* seqs, int n_seqs, KvCache& kv, int block_shift, ForwardScratch& scratch,
                       ThreadPool& pool, float* logits) const;

 private:
  Status check_batch(const BatchSequence* seqs, int n_seqs, const KvCache& kv, int block_shift,
                     const ForwardScratch& s) const;
  void plan_step(const BatchSequence* seqs, int n_seqs, ForwardScratch& s) const;
  void forward_layers(const BatchSequence* seqs, int n_seqs, KvCache& kv, int block_shift, ForwardScratch& s,
                      ThreadPool& pool) const;
  void attention(int64_t layer, const BatchSequence* seqs, int n_seqs, KvCache& kv, int block_shift,
                 ForwardScratch& s, ThreadPool& pool) const;
  // RMSNorm, SwiGLU MLP and residual of layer il over the step's n token rows.
  void mlp_block(int64_t il, int64_t n, ForwardScratch& s, ThreadPool& pool) const;
  // A Qwen3.5 Gated DeltaNet layer on s.xn: its output projection lands in s.proj.
  void linear_attention(int64_t layer, const BatchSequence* seqs, int n_seqs, ForwardScratch& s,
                        ThreadPool& pool) const;

  // y[n][rows] = W x (+ each span's adapter scale * B A x on its rows, if it has a pair for this weight).
  void project(const TensorRef& w, TensorRole role, int64_t layer, const float* x, int64_t n, float* y,
               ForwardScratch& s, ThreadPool& pool, const std::vector<LoraSpan>& loras) const;
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
                          ForwardScratch& s, ThreadPool& pool) const;
  // y[t * y_stride + o] += scale * (B A x[t])[o] for the rows of every span whose adapter has a pair for
  // (role, layer).
  void add_loras(TensorRole role, int64_t layer, const float* x, float* y, int64_t y_stride,
                 const std::vector<LoraSpan>& loras, ForwardScratch& s, ThreadPool& pool) const;
  void update_rope_table(float ntk_alpha, ForwardScratch& s) const;

  const Model& model_;
  // Per layer: its row in the KV cache (full attention) or in the recurrent state (linear attention).
  std::vector<int64_t> layer_slot_;
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
