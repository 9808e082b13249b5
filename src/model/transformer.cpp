#include "model/transformer.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/delta_rule.h"
#include "kernels/elementwise.h"
#include "kernels/matmul.h"
#include "kernels/rope.h"
#include "model/attention.h"
#include "model/lora.h"
#include "util/check.h"
#include "util/half.h"

namespace edgellm {

ForwardScratch::ForwardScratch(const ModelConfig& c, int64_t batch, int64_t n_ctx, int n_threads)
    : max_batch(batch),
      x(static_cast<size_t>(batch * c.n_embd)),
      xn(static_cast<size_t>(batch * c.n_embd)),
      qkv(static_cast<size_t>(batch * (c.q_dim() + 2 * c.kv_dim()))),
      attn_out(static_cast<size_t>(batch * c.q_dim())),
      proj(static_cast<size_t>(batch * c.n_embd)),
      gate(static_cast<size_t>(batch * c.n_ff)),
      up(static_cast<size_t>(batch * c.n_ff)),
      attn_work_floats(attention_work_floats(c.head_dim, c.n_head / std::max<int64_t>(1, c.n_head_kv))),
      attn_work(static_cast<size_t>(std::max(1, n_threads)) * attn_work_floats),
      attn_max_parts((std::max<int64_t>(1, n_ctx) + kAttnDecodeSplit - 1) / kAttnDecodeSplit),
      attn_part_out(static_cast<size_t>(attn_max_parts * c.q_dim())),
      attn_part_ms(static_cast<size_t>(attn_max_parts * 2 * c.n_head)),
      hidden(static_cast<size_t>(c.n_embd)) {
  if (c.attn_output_gate) {
    attn_q_gate.resize(static_cast<size_t>(batch * 2 * c.q_dim()));
    attn_gate.resize(static_cast<size_t>(batch * c.q_dim()));
  }
  if (c.hybrid()) {
    const int64_t CD = c.ssm_conv_dim(), VD = c.ssm_value_dim(), Hv = c.ssm_n_v_heads;
    lin_mixed.resize(static_cast<size_t>(batch * CD));
    lin_window.resize(static_cast<size_t>((c.ssm_conv_kernel - 1 + batch) * CD));
    lin_conv.resize(static_cast<size_t>(batch * CD));
    lin_z.resize(static_cast<size_t>(batch * VD));
    lin_beta.resize(static_cast<size_t>(batch * Hv));
    lin_g.resize(static_cast<size_t>(batch * Hv));
    lin_out.resize(static_cast<size_t>(batch * VD));
    delta_work_floats = delta_rule_work_floats(c.ssm_k_head_dim, c.ssm_v_head_dim);
    delta_work.resize(static_cast<size_t>(std::max(1, n_threads)) * delta_work_floats);
  }
}

float qwen_ntk_alpha(int64_t length, int64_t n_ctx_train) {
  if (length <= n_ctx_train) return 1.0f;
  const double context_value = std::log2(static_cast<double>(length) / static_cast<double>(n_ctx_train)) + 1.0;
  return static_cast<float>(std::max(1.0, std::pow(2.0, std::ceil(context_value)) - 1.0));
}

float qwen_logn_scale(int64_t pos, int64_t n_ctx_train) {
  if (pos + 1 <= n_ctx_train) return 1.0f;
  return static_cast<float>(std::log(static_cast<double>(pos + 1)) / std::log(static_cast<double>(n_ctx_train)));
}

std::vector<float> model_rope_inv_freq(const ModelConfig& c, const float* freq_factors, float ntk_alpha) {
  float theta = c.rope_theta;
  if (ntk_alpha != 1.0f) {
    // modeling_qwen.py: base * ntk_alpha ** (dim / (dim - 2))
    theta = static_cast<float>(theta * std::pow(static_cast<double>(ntk_alpha),
                                                static_cast<double>(c.n_rot) / static_cast<double>(c.n_rot - 2)));
  }
  std::vector<float> inv = rope_inv_freq(theta, c.n_rot);
  const RopeScaling& rs = c.rope_scaling;
  if (rs.type == RopeScalingType::kLinear) {
    for (float& f : inv) f /= rs.factor;
  } else if (rs.type == RopeScalingType::kLlama3) {
    // transformers' _compute_llama3_parameters.
    const double pi = 3.14159265358979323846;
    const double old_ctx = static_cast<double>(rs.original_context);
    const double low_wavelen = old_ctx / rs.low_freq_factor;
    const double high_wavelen = old_ctx / rs.high_freq_factor;
    for (float& f : inv) {
      const double wavelen = 2 * pi / f;
      if (wavelen > low_wavelen) {
        f = static_cast<float>(f / rs.factor);
      } else if (wavelen >= high_wavelen) {
        const double smooth = (old_ctx / wavelen - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
        f = static_cast<float>((1 - smooth) * f / rs.factor + smooth * f);
      }
    }
  }
  if (freq_factors != nullptr) {
    for (size_t i = 0; i < inv.size(); ++i) inv[i] /= freq_factors[i];
  }
  return inv;
}

Transformer::Transformer(const Model& model) : model_(model) {
  const ModelConfig& c = model.config();
  int64_t n_attention = 0, n_recurrent = 0;
  for (int64_t il = 0; il < c.n_layer; ++il) layer_slot_.push_back(c.is_recurrent(il) ? n_recurrent++ : n_attention++);
}

void Transformer::update_rope_table(float ntk_alpha, ForwardScratch& s) const {
  if (s.rope_ntk_alpha == ntk_alpha && !s.rope_inv_freq.empty()) return;
  const auto* factors = static_cast<const float*>(model_.weights().rope_freqs.data);
  s.rope_inv_freq = model_rope_inv_freq(config(), factors, ntk_alpha);
  s.rope_ntk_alpha = ntk_alpha;
}

void Transformer::project(const TensorRef& w, TensorRole role, int64_t layer, const float* x, int64_t n, float* y,
                          ForwardScratch& s, ThreadPool& pool, const std::vector<LoraSpan>& loras) const {
  if (s.observer) s.observer(&role, 1, layer, x, n, w.ne[0]);
  matmul(w, x, n, y, pool);
  add_loras(role, layer, x, y, w.n_rows(), loras, s, pool);
}

void Transformer::project_same_input(const Projection* ps, int n_projections, int64_t layer, const float* x,
                                     int64_t n, ForwardScratch& s, ThreadPool& pool) const {
  MatmulOutput outputs[4];
  EDGELLM_CHECK(n_projections <= 4);
  for (int i = 0; i < n_projections; ++i) outputs[i] = {ps[i].w, ps[i].y, ps[i].y_stride};
  if (s.observer) {
    TensorRole roles[4];
    for (int i = 0; i < n_projections; ++i) roles[i] = ps[i].role;
    s.observer(roles, n_projections, layer, x, n, ps[0].w->ne[0]);
  }
  matmul_same_input(outputs, n_projections, x, n, pool);
  for (int i = 0; i < n_projections; ++i) {
    const Projection& p = ps[i];
    add_loras(p.role, layer, x, p.y, p.y_stride, s.token_loras, s, pool);
    if (p.bias != nullptr && p.bias->data != nullptr) {
      const int64_t rows = p.w->n_rows();
      for (int64_t t = 0; t < n; ++t) add_inplace(p.y + t * p.y_stride, static_cast<const float*>(p.bias->data), rows);
    }
  }
}

void Transformer::add_loras(TensorRole role, int64_t layer, const float* x_all, float* y_all, int64_t y_stride,
                            const std::vector<LoraSpan>& loras, ForwardScratch& s, ThreadPool& pool) const {
  for (const LoraSpan& span : loras) {
    const LoraPair* p = span.lora.adapter->find(role, layer);
    if (p == nullptr) continue;
    const int64_t n = span.n_rows, r = p->rank;
    const float* x = x_all + span.first_row * p->n_in;
    float* y = y_all + span.first_row * y_stride;
    if (s.lora_tmp.size() < static_cast<size_t>(n * r)) s.lora_tmp.resize(static_cast<size_t>(s.max_batch * r));
    const float scale = p->scale * span.lora.scale;
    for (int64_t t = 0; t < n; ++t) {
      float* ax = &s.lora_tmp[static_cast<size_t>(t * r)];
      for (int64_t k = 0; k < r; ++k) ax[k] = dot_f32(&p->a[static_cast<size_t>(k * p->n_in)], x + t * p->n_in, p->n_in);
    }
    pool.parallel_for(p->n_out, [&](int64_t begin, int64_t end, int) {
      for (int64_t t = 0; t < n; ++t) {
        const float* ax = &s.lora_tmp[static_cast<size_t>(t * r)];
        for (int64_t o = begin; o < end; ++o) {
          y[t * y_stride + o] += scale * dot_f32(&p->b[static_cast<size_t>(o * r)], ax, r);
        }
      }
    }, 64);
  }
}

namespace {

// Appends rows [first, first + n) running with `lora` to `spans` (merged with the previous span when it
// runs with the same adapter and scale and ends where this one starts); rows without an adapter are left out.
void add_lora_span(std::vector<LoraSpan>& spans, int64_t first, int64_t n, const ActiveLora& lora) {
  if (lora.adapter == nullptr || n == 0) return;
  if (!spans.empty()) {
    LoraSpan& last = spans.back();
    if (last.lora.adapter == lora.adapter && last.lora.scale == lora.scale && last.first_row + last.n_rows == first) {
      last.n_rows += n;
      return;
    }
  }
  spans.push_back({first, n, lora});
}

// Cache row of position `pos` of a sequence (forward_batch's BatchSequence layout).
inline int64_t cache_row(const BatchSequence& q, int block_shift, int64_t pos) {
  if (q.block_table == nullptr) return pos;
  return (static_cast<int64_t>(q.block_table[pos >> block_shift]) << block_shift) | (pos & ((int64_t{1} << block_shift) - 1));
}

}  // namespace

Status Transformer::forward(const int32_t* tokens, int64_t n_tokens, KvCache& kv, ForwardScratch& s,
                            ThreadPool& pool, LogitsMode mode, std::vector<float>& logits,
                            const ActiveLora& lora) const {
  const ModelConfig& c = config();
  if (n_tokens <= 0) return make_error(ErrorCode::kInvalidArgument, "forward: no tokens to process");
  const int64_t pos0 = kv.n_past();
  if (pos0 + n_tokens > kv.n_ctx()) {
    return make_error(ErrorCode::kContextFull, "context full: " + std::to_string(pos0) + " cached + " +
                                                   std::to_string(n_tokens) + " new tokens exceed the context of " +
                                                   std::to_string(kv.n_ctx()));
  }
  // Every token is checked before the first step, so an error leaves the cache as it was.
  for (int64_t i = 0; i < n_tokens; ++i) {
    if (tokens[i] < 0 || tokens[i] >= c.n_vocab) {
      return make_error(ErrorCode::kInvalidArgument, "token id " + std::to_string(tokens[i]) + " at index " +
                                                         std::to_string(i) + " is outside the vocabulary [0, " +
                                                         std::to_string(c.n_vocab) + ")");
    }
  }

  // Qwen 1 dynamic NTK: a prefill fixes the multiplier from the whole sequence length; decode steps keep
  // the one the cached keys were rotated with (as modeling_qwen.py caches ntk_alpha across a generate call).
  float ntk_alpha = 1.0f;
  if (c.dynamic_ntk) {
    ntk_alpha = (n_tokens > 1 || pos0 == 0) ? qwen_ntk_alpha(pos0 + n_tokens, c.n_ctx_train) : kv.ntk_alpha();
  }

  const int64_t V = c.n_vocab;
  if (mode == LogitsMode::kAll) logits.resize(static_cast<size_t>(n_tokens * V));
  if (mode == LogitsMode::kLast) logits.resize(static_cast<size_t>(V));
  for (int64_t done = 0; done < n_tokens;) {
    const int64_t n = std::min(s.max_batch, n_tokens - done);
    BatchSequence q;
    q.tokens = tokens + done;
    q.n_tokens = n;
    q.pos0 = pos0 + done;
    q.lora = lora;
    q.ntk_alpha = ntk_alpha;
    q.state = kv.hybrid() ? &kv.recurrent() : nullptr;
    float* out = nullptr;
    if (mode == LogitsMode::kAll) {
      q.logits = LogitsMode::kAll;
      out = logits.data() + done * V;
    } else if (mode == LogitsMode::kLast && done + n == n_tokens) {
      q.logits = LogitsMode::kLast;
      out = logits.data();
    }
    EDGELLM_TRY(forward_batch(&q, 1, kv, 0, s, pool, out));
    if (c.dynamic_ntk) kv.set_ntk_alpha(ntk_alpha);
    done += n;
    kv.set_n_past(pos0 + done);
  }
  return {};
}

Status Transformer::check_batch(const BatchSequence* seqs, int n_seqs, const KvCache& kv, int block_shift,
                                const ForwardScratch& s) const {
  const ModelConfig& c = config();
  if (n_seqs <= 0) return make_error(ErrorCode::kInvalidArgument, "forward: no sequences in the step");
  if (kv.n_layer() != c.n_attention_layers() || kv.kv_dim() != c.kv_dim()) {
    return make_error(ErrorCode::kInvalidArgument, "KV cache shape does not match the model");
  }
  if (block_shift < 0 || block_shift > 20) {
    return make_error(ErrorCode::kInvalidArgument, "forward: block shift " + std::to_string(block_shift) +
                                                       " is out of range [0, 20]");
  }
  int64_t total = 0;
  for (int i = 0; i < n_seqs; ++i) {
    const BatchSequence& q = seqs[i];
    const std::string which = "sequence " + std::to_string(i) + " of the step";
    if (q.n_tokens <= 0 || q.tokens == nullptr) {
      return make_error(ErrorCode::kInvalidArgument, "forward: " + which + " has no tokens");
    }
    if (q.pos0 < 0) return make_error(ErrorCode::kInvalidArgument, "forward: " + which + " starts at a negative position");
    if (c.hybrid() && (q.state == nullptr || q.state->n_layer() != c.n_recurrent_layers())) {
      return make_error(ErrorCode::kInvalidArgument, "forward: " + which + " has no linear-attention state of the "
                                                     "model's shape (a hybrid model needs one per sequence)");
    }
    total += q.n_tokens;
    for (int64_t t = 0; t < q.n_tokens; ++t) {
      if (q.tokens[t] < 0 || q.tokens[t] >= c.n_vocab) {
        return make_error(ErrorCode::kInvalidArgument, "token id " + std::to_string(q.tokens[t]) + " at index " +
                                                           std::to_string(t) + " of " + which +
                                                           " is outside the vocabulary [0, " +
                                                           std::to_string(c.n_vocab) + ")");
      }
    }
    const int64_t end = q.pos0 + q.n_tokens;
    if (q.block_table == nullptr) {
      if (end > kv.n_ctx()) {
        return make_error(ErrorCode::kContextFull, "context full: " + std::to_string(q.pos0) + " cached + " +
                                                       std::to_string(q.n_tokens) + " new tokens exceed the context of " +
                                                       std::to_string(kv.n_ctx()));
      }
      continue;
    }
    const int64_t n_blocks_needed = ((end - 1) >> block_shift) + 1;
    if (n_blocks_needed > q.block_table_len) {
      return make_error(ErrorCode::kContextFull, "forward: " + which + " needs " + std::to_string(n_blocks_needed) +
                                                     " blocks for position " + std::to_string(end - 1) +
                                                     " but its block table has " + std::to_string(q.block_table_len));
    }
    const int64_t n_cache_blocks = kv.n_ctx() >> block_shift;
    for (int64_t b = 0; b < n_blocks_needed; ++b) {
      if (q.block_table[b] < 0 || q.block_table[b] >= n_cache_blocks) {
        return make_error(ErrorCode::kInvalidArgument, "forward: " + which + " has block " +
                                                           std::to_string(q.block_table[b]) + " outside the cache's " +
                                                           std::to_string(n_cache_blocks) + " blocks");
      }
    }
  }
  if (total > s.max_batch) {
    return make_error(ErrorCode::kInvalidArgument, "forward: the step has " + std::to_string(total) +
                                                       " tokens, more than the scratch's " + std::to_string(s.max_batch));
  }
  return {};
}

void Transformer::plan_step(const BatchSequence* seqs, int n_seqs, ForwardScratch& s) const {
  const ModelConfig& c = config();
  s.step.resize(static_cast<size_t>(n_seqs));
  s.attn_tasks.clear();
  s.token_loras.clear();
  s.output_loras.clear();
  int64_t first_token = 0, n_parts_total = 0, first_output = 0;
  for (int i = 0; i < n_seqs; ++i) {
    const BatchSequence& q = seqs[i];
    ForwardScratch::StepSequence& st = s.step[static_cast<size_t>(i)];
    st.first_token = first_token;
    add_lora_span(s.token_loras, first_token, q.n_tokens, q.lora);
    const int64_t n_outputs = q.logits == LogitsMode::kAll ? q.n_tokens : q.logits == LogitsMode::kLast ? 1 : 0;
    add_lora_span(s.output_loras, first_output, n_outputs, q.lora);
    first_output += n_outputs;
    first_token += q.n_tokens;
    // Decode over a long context: (part of the keys, KV head) tasks, merged after. A prefill block: one
    // task per (block of query tokens, KV head), whose queries of all `group` heads read each cached row
    // once; the causal mask makes later blocks costlier, so blocks are listed from both ends (0, last,
    // 1, last - 1, ...) to even out the static ranges of the pool.
    const int64_t n_parts = (q.pos0 + 1 + kAttnDecodeSplit - 1) / kAttnDecodeSplit;
    if (q.n_tokens == 1 && n_parts > 1) {
      st.first_part = n_parts_total;
      st.n_parts = n_parts;
      n_parts_total += n_parts;
      for (int64_t part = 0; part < n_parts; ++part) {
        for (int64_t kvh = 0; kvh < c.n_head_kv; ++kvh) {
          s.attn_tasks.push_back({i, static_cast<int32_t>(kvh), static_cast<int32_t>(part), true});
        }
      }
      continue;
    }
    st.first_part = st.n_parts = 0;
    const int64_t n_blocks = (q.n_tokens + kAttnQueryTile - 1) / kAttnQueryTile;
    for (int64_t fold = 0; fold < n_blocks; ++fold) {
      const int64_t block_idx = fold % 2 == 0 ? fold / 2 : n_blocks - 1 - fold / 2;
      for (int64_t kvh = 0; kvh < c.n_head_kv; ++kvh) {
        s.attn_tasks.push_back({i, static_cast<int32_t>(kvh), static_cast<int32_t>(block_idx), false});
      }
    }
  }
  const size_t part_floats = static_cast<size_t>(n_parts_total * c.q_dim());
  if (s.attn_part_out.size() < part_floats) s.attn_part_out.resize(part_floats);
  const size_t ms_floats = static_cast<size_t>(n_parts_total * 2 * c.n_head);
  if (s.attn_part_ms.size() < ms_floats) s.attn_part_ms.resize(ms_floats);
}

Status Transformer::forward_batch(const BatchSequence* seqs, int n_seqs, KvCache& kv, int block_shift,
                                  ForwardScratch& s, ThreadPool& pool, float* logits) const {
  EDGELLM_TRY(check_batch(seqs, n_seqs, kv, block_shift, s));
  const ModelConfig& c = config();
  const ModelWeights& w = model_.weights();
  const int64_t V = c.n_vocab, E = c.n_embd;
  plan_step(seqs, n_seqs, s);
  forward_layers(seqs, n_seqs, kv, block_shift, s, pool);

  // Final norm of the rows whose logits are wanted, gathered into xn (free now), then one product.
  int64_t n_rows = 0;
  for (int i = 0; i < n_seqs; ++i) {
    const BatchSequence& q = seqs[i];
    const int64_t first = s.step[static_cast<size_t>(i)].first_token;
    const int64_t t0 = q.logits == LogitsMode::kAll ? 0 : q.n_tokens - 1;
    if (q.logits == LogitsMode::kNone) continue;
    for (int64_t t = t0; t < q.n_tokens; ++t, ++n_rows) {
      rms_norm(&s.x[(first + t) * E], static_cast<const float*>(w.output_norm.data), &s.xn[n_rows * E], E, c.rms_eps);
    }
  }
  const int64_t last = s.step.back().first_token + seqs[n_seqs - 1].n_tokens - 1;
  rms_norm(&s.x[last * E], static_cast<const float*>(w.output_norm.data), s.hidden.data(), E, c.rms_eps);
  if (n_rows > 0) {
    EDGELLM_CHECK(logits != nullptr);
    if (s.observer) {
      const TensorRole output = TensorRole::kOutput;
      s.observer(&output, 1, -1, s.xn.data(), n_rows, E);
    }
    matmul(w.output, s.xn.data(), n_rows, logits, pool);
    add_loras(TensorRole::kOutput, -1, s.xn.data(), logits, V, s.output_loras, s, pool);
  }
  return {};
}

void Transformer::forward_layers(const BatchSequence* seqs, int n_seqs, KvCache& kv, int block_shift,
                                 ForwardScratch& s, ThreadPool& pool) const {
  const ModelConfig& c = config();
  const ModelWeights& w = model_.weights();
  const int64_t E = c.n_embd, Q = c.q_dim(), KV = c.kv_dim();
  const int64_t QKV = Q + 2 * KV;
  const int64_t n = s.step.back().first_token + seqs[n_seqs - 1].n_tokens;
  const auto pairing = c.rope_style == RopeStyle::kNeox ? RopePairing::kNeox : RopePairing::kInterleaved;
  const int64_t R = c.n_rot / 2 * 2;
  s.rope_cos_sin.resize(static_cast<size_t>(s.max_batch * R));
  for (int i = 0; i < n_seqs; ++i) {
    const BatchSequence& q = seqs[i];
    const int64_t first = s.step[static_cast<size_t>(i)].first_token;
    update_rope_table(q.ntk_alpha, s);
    for (int64_t t = 0; t < q.n_tokens; ++t) {
      get_row(w.token_embd, q.tokens[t], &s.x[(first + t) * E]);
      rope_cos_sin(c.n_rot, q.pos0 + t, s.rope_inv_freq.data(), &s.rope_cos_sin[(first + t) * R]);
    }
  }

  for (int64_t il = 0; il < c.n_layer; ++il) {
    const LayerWeights& L = w.layers[static_cast<size_t>(il)];
    const int64_t slot = layer_slot_[static_cast<size_t>(il)];

    // ---- attention block ----
    for (int64_t t = 0; t < n; ++t) {
      rms_norm(&s.x[t * E], static_cast<const float*>(L.attn_norm.data), &s.xn[t * E], E, c.rms_eps);
    }
    if (c.is_recurrent(il)) {
      linear_attention(il, seqs, n_seqs, s, pool);
      add_inplace(s.x.data(), s.proj.data(), n * E);
      mlp_block(il, n, s, pool);
      continue;
    }
    if (c.attn_output_gate) {
      // q_proj gives [q_h | gate_h] per head: q goes to the qkv rows, the gate aside.
      const Projection qkv[3] = {{&L.wq, TensorRole::kAttnQ, s.attn_q_gate.data(), 2 * Q, nullptr},
                                 {&L.wk, TensorRole::kAttnK, &s.qkv[static_cast<size_t>(Q)], QKV, nullptr},
                                 {&L.wv, TensorRole::kAttnV, &s.qkv[static_cast<size_t>(Q + KV)], QKV, nullptr}};
      project_same_input(qkv, 3, il, s.xn.data(), n, s, pool);
      const int64_t D = c.head_dim;
      for (int64_t t = 0; t < n; ++t) {
        for (int64_t h = 0; h < c.n_head; ++h) {
          const float* src = &s.attn_q_gate[static_cast<size_t>(t * 2 * Q + h * 2 * D)];
          std::copy(src, src + D, &s.qkv[static_cast<size_t>(t * QKV + h * D)]);
          std::copy(src + D, src + 2 * D, &s.attn_gate[static_cast<size_t>(t * Q + h * D)]);
        }
      }
    } else if (c.fused_qkv) {
      project(L.wqkv, TensorRole::kAttnQkv, il, s.xn.data(), n, s.qkv.data(), s, pool, s.token_loras);
      if (L.bqkv.data) {
        for (int64_t t = 0; t < n; ++t) add_inplace(&s.qkv[t * QKV], static_cast<const float*>(L.bqkv.data), QKV);
      }
    } else {
      // q, k and v land side by side in each token's qkv row.
      const Projection qkv[3] = {{&L.wq, TensorRole::kAttnQ, &s.qkv[0], QKV, &L.bq},
                                 {&L.wk, TensorRole::kAttnK, &s.qkv[static_cast<size_t>(Q)], QKV, &L.bk},
                                 {&L.wv, TensorRole::kAttnV, &s.qkv[static_cast<size_t>(Q + KV)], QKV, &L.bv}};
      project_same_input(qkv, 3, il, s.xn.data(), n, s, pool);
    }
    for (int i = 0; i < n_seqs; ++i) {
      const BatchSequence& q = seqs[i];
      const int64_t first = s.step[static_cast<size_t>(i)].first_token;
      for (int64_t t = 0; t < q.n_tokens; ++t) {
        float* qv = &s.qkv[(first + t) * QKV];
        float* k = qv + Q;
        if (c.qk_norm) {
          for (int64_t h = 0; h < c.n_head; ++h) {
            rms_norm(qv + h * c.head_dim, static_cast<const float*>(L.q_norm.data), qv + h * c.head_dim, c.head_dim,
                     c.rms_eps);
          }
          for (int64_t h = 0; h < c.n_head_kv; ++h) {
            rms_norm(k + h * c.head_dim, static_cast<const float*>(L.k_norm.data), k + h * c.head_dim, c.head_dim,
                     c.rms_eps);
          }
        }
        const float* cos_sin = &s.rope_cos_sin[(first + t) * R];
        rope_apply_cos_sin(qv, c.n_head, c.head_dim, c.n_rot, cos_sin, pairing);
        rope_apply_cos_sin(k, c.n_head_kv, c.head_dim, c.n_rot, cos_sin, pairing);
        if (c.logn_attn) {
          const float scale = qwen_logn_scale(q.pos0 + t, c.n_ctx_train);
          for (int64_t j = 0; j < Q; ++j) qv[j] *= scale;
        }
        kv.store(slot, cache_row(q, block_shift, q.pos0 + t), k, k + KV);
      }
    }
    attention(slot, seqs, n_seqs, kv, block_shift, s, pool);
    if (c.attn_output_gate) {
      for (int64_t i = 0; i < n * Q; ++i) s.attn_out[static_cast<size_t>(i)] /= 1.0f + std::exp(-s.attn_gate[static_cast<size_t>(i)]);
    }
    project(L.wo, TensorRole::kAttnOut, il, s.attn_out.data(), n, s.proj.data(), s, pool, s.token_loras);
    add_inplace(s.x.data(), s.proj.data(), n * E);
    mlp_block(il, n, s, pool);
  }
}

void Transformer::mlp_block(int64_t il, int64_t n, ForwardScratch& s, ThreadPool& pool) const {
  const ModelConfig& c = config();
  const LayerWeights& L = model_.weights().layers[static_cast<size_t>(il)];
  const int64_t E = c.n_embd, F = c.n_ff;
  for (int64_t t = 0; t < n; ++t) {
    rms_norm(&s.x[t * E], static_cast<const float*>(L.ffn_norm.data), &s.xn[t * E], E, c.rms_eps);
  }
  const Projection gate_up[2] = {{&L.w_gate, TensorRole::kFfnGate, s.gate.data(), F, nullptr},
                                 {&L.w_up, TensorRole::kFfnUp, s.up.data(), F, nullptr}};
  project_same_input(gate_up, 2, il, s.xn.data(), n, s, pool);
  swiglu(s.gate.data(), s.up.data(), s.gate.data(), n * F);
  project(L.w_down, TensorRole::kFfnDown, il, s.gate.data(), n, s.proj.data(), s, pool, s.token_loras);
  add_inplace(s.x.data(), s.proj.data(), n * E);
}

void Transformer::attention(int64_t layer, const BatchSequence* seqs, int n_seqs, KvCache& kv, int block_shift,
                            ForwardScratch& s, ThreadPool& pool) const {
  (void)n_seqs;
  const ModelConfig& c = config();
  const int64_t Q = c.q_dim(), KV = c.kv_dim(), D = c.head_dim, H = c.n_head;
  const int64_t group = c.n_head / c.n_head_kv;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));

  pool.parallel_for(static_cast<int64_t>(s.attn_tasks.size()), [&](int64_t begin, int64_t end, int thread_idx) {
    float* work = &s.attn_work[static_cast<size_t>(thread_idx) * s.attn_work_floats];
    for (int64_t i = begin; i < end; ++i) {
      const AttentionTask& task = s.attn_tasks[static_cast<size_t>(i)];
      const BatchSequence& q = seqs[task.seq];
      const ForwardScratch::StepSequence& st = s.step[static_cast<size_t>(task.seq)];
      const int64_t t0 = task.split ? 0 : int64_t{task.index} * kAttnQueryTile;
      AttentionBlock b;
      b.kv_type = kv.type();
      b.k = kv.k_head(layer, task.kvh);
      b.v = kv.v_head(layer, task.kvh);
      b.kv_row_bytes = kv.head_row_bytes();
      b.block_table = q.block_table;
      b.block_shift = block_shift;
      b.head_dim = D;
      b.q = &s.qkv[static_cast<size_t>((st.first_token + t0) * (Q + 2 * KV) + task.kvh * group * D)];
      b.q_token_stride = Q + 2 * KV;
      b.n_tokens = task.split ? 1 : std::min(kAttnQueryTile, q.n_tokens - t0);
      b.n_group = group;
      b.n_keys0 = q.pos0 + t0 + 1;
      b.scale = scale;
      b.out = &s.attn_out[static_cast<size_t>((st.first_token + t0) * Q + task.kvh * group * D)];
      b.out_token_stride = Q;
      if (task.split) {
        const int64_t part = st.first_part + task.index;
        b.key_begin = int64_t{task.index} * kAttnDecodeSplit;
        b.key_end = b.key_begin + kAttnDecodeSplit;
        b.out = &s.attn_part_out[static_cast<size_t>(part * Q + task.kvh * group * D)];
        b.partial_max = &s.attn_part_ms[static_cast<size_t>(part * 2 * H + task.kvh * group)];
        b.partial_sum = b.partial_max + H;
      }
      attention_block(b, work);
    }
  });

  // Merge the key parts of split decodes.
  for (const ForwardScratch::StepSequence& st : s.step) {
    if (st.n_parts == 0) continue;
    const float* outs = &s.attn_part_out[static_cast<size_t>(st.first_part * Q)];
    const float* ms = &s.attn_part_ms[static_cast<size_t>(st.first_part * 2 * H)];
    for (int64_t h = 0; h < H; ++h) {
      merge_attention_parts(outs + h * D, Q, ms + h, ms + H + h, 2 * H, st.n_parts, D,
                            &s.attn_out[static_cast<size_t>(st.first_token * Q + h * D)]);
    }
  }
}

}  // namespace edgellm
