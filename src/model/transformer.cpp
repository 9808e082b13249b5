#include "model/transformer.h"

#include <algorithm>
#include <cmath>
#include <cstring>

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
      hidden(static_cast<size_t>(c.n_embd)) {}

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

Transformer::Transformer(const Model& model) : model_(model) {}

void Transformer::update_rope_table(float ntk_alpha, ForwardScratch& s) const {
  if (s.rope_ntk_alpha == ntk_alpha && !s.rope_inv_freq.empty()) return;
  const auto* factors = static_cast<const float*>(model_.weights().rope_freqs.data);
  s.rope_inv_freq = model_rope_inv_freq(config(), factors, ntk_alpha);
  s.rope_ntk_alpha = ntk_alpha;
}

void Transformer::project(const TensorRef& w, TensorRole role, int64_t layer, const float* x, int64_t n, float* y,
                          ForwardScratch& s, ThreadPool& pool, const ActiveLora& lora) const {
  matmul(w, x, n, y, pool);
  add_lora(role, layer, x, n, y, w.n_rows(), s, pool, lora);
}

void Transformer::project_same_input(const Projection* ps, int n_projections, int64_t layer, const float* x,
                                     int64_t n, ForwardScratch& s, ThreadPool& pool, const ActiveLora& lora) const {
  MatmulOutput outputs[4];
  EDGELLM_CHECK(n_projections <= 4);
  for (int i = 0; i < n_projections; ++i) outputs[i] = {ps[i].w, ps[i].y, ps[i].y_stride};
  matmul_same_input(outputs, n_projections, x, n, pool);
  for (int i = 0; i < n_projections; ++i) {
    const Projection& p = ps[i];
    add_lora(p.role, layer, x, n, p.y, p.y_stride, s, pool, lora);
    if (p.bias != nullptr && p.bias->data != nullptr) {
      const int64_t rows = p.w->n_rows();
      for (int64_t t = 0; t < n; ++t) add_inplace(p.y + t * p.y_stride, static_cast<const float*>(p.bias->data), rows);
    }
  }
}

void Transformer::add_lora(TensorRole role, int64_t layer, const float* x, int64_t n, float* y, int64_t y_stride,
                           ForwardScratch& s, ThreadPool& pool, const ActiveLora& lora) const {
  if (lora.adapter == nullptr) return;
  const LoraPair* p = lora.adapter->find(role, layer);
  if (p == nullptr) return;
  const int64_t r = p->rank;
  if (s.lora_tmp.size() < static_cast<size_t>(n * r)) s.lora_tmp.resize(static_cast<size_t>(s.max_batch * r));
  const float scale = p->scale * lora.scale;
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

Status Transformer::forward(const int32_t* tokens, int64_t n_tokens, KvCache& kv, ForwardScratch& s,
                            ThreadPool& pool, LogitsMode mode, std::vector<float>& logits,
                            const ActiveLora& lora) const {
  const ModelConfig& c = config();
  if (n_tokens <= 0) return make_error(ErrorCode::kInvalidArgument, "forward: no tokens to process");
  for (int64_t i = 0; i < n_tokens; ++i) {
    if (tokens[i] < 0 || tokens[i] >= c.n_vocab) {
      return make_error(ErrorCode::kInvalidArgument, "token id " + std::to_string(tokens[i]) + " at index " +
                                                         std::to_string(i) + " is outside the vocabulary [0, " +
                                                         std::to_string(c.n_vocab) + ")");
    }
  }
  const int64_t pos0 = kv.n_past();
  if (pos0 + n_tokens > kv.n_ctx()) {
    return make_error(ErrorCode::kContextFull, "context full: " + std::to_string(pos0) + " cached + " +
                                                   std::to_string(n_tokens) + " new tokens exceed the context of " +
                                                   std::to_string(kv.n_ctx()));
  }
  if (kv.n_layer() != c.n_layer || kv.kv_dim() != c.kv_dim()) {
    return make_error(ErrorCode::kInvalidArgument, "KV cache shape does not match the model");
  }

  // Qwen 1 dynamic NTK: a prefill fixes the multiplier from the whole sequence length; decode steps keep
  // the one the cached keys were rotated with (as modeling_qwen.py caches ntk_alpha across a generate call).
  float ntk_alpha = 1.0f;
  if (c.dynamic_ntk) {
    ntk_alpha = (n_tokens > 1 || pos0 == 0) ? qwen_ntk_alpha(pos0 + n_tokens, c.n_ctx_train) : kv.ntk_alpha();
    kv.set_ntk_alpha(ntk_alpha);
  }
  update_rope_table(ntk_alpha, s);

  const int64_t V = c.n_vocab, E = c.n_embd;
  if (mode == LogitsMode::kAll) logits.resize(static_cast<size_t>(n_tokens * V));
  if (mode == LogitsMode::kLast) logits.resize(static_cast<size_t>(V));

  const ModelWeights& w = model_.weights();
  for (int64_t done = 0; done < n_tokens;) {
    const int64_t n = std::min(s.max_batch, n_tokens - done);
    forward_chunk(tokens + done, n, pos0 + done, kv, s, pool, lora);
    kv.set_n_past(pos0 + done + n);
    if (mode == LogitsMode::kAll) {
      for (int64_t t = 0; t < n; ++t) {
        rms_norm(&s.x[t * E], static_cast<const float*>(w.output_norm.data), &s.xn[t * E], E, c.rms_eps);
      }
      project(w.output, TensorRole::kOutput, -1, s.xn.data(), n, logits.data() + done * V, s, pool, lora);
    }
    done += n;
    if (done == n_tokens) {
      rms_norm(&s.x[(n - 1) * E], static_cast<const float*>(w.output_norm.data), s.hidden.data(), E, c.rms_eps);
      if (mode == LogitsMode::kLast) {
        project(w.output, TensorRole::kOutput, -1, s.hidden.data(), 1, logits.data(), s, pool, lora);
      }
    }
  }
  return {};
}

void Transformer::forward_chunk(const int32_t* tokens, int64_t n, int64_t pos0, KvCache& kv, ForwardScratch& s,
                                ThreadPool& pool, const ActiveLora& lora) const {
  const ModelConfig& c = config();
  const ModelWeights& w = model_.weights();
  const int64_t E = c.n_embd, Q = c.q_dim(), KV = c.kv_dim(), F = c.n_ff;
  const int64_t QKV = Q + 2 * KV;
  const auto pairing = c.rope_style == RopeStyle::kNeox ? RopePairing::kNeox : RopePairing::kInterleaved;

  for (int64_t t = 0; t < n; ++t) get_row(w.token_embd, tokens[t], &s.x[t * E]);
  const int64_t R = c.n_rot / 2 * 2;
  s.rope_cos_sin.resize(static_cast<size_t>(s.max_batch * R));
  for (int64_t t = 0; t < n; ++t) rope_cos_sin(c.n_rot, pos0 + t, s.rope_inv_freq.data(), &s.rope_cos_sin[t * R]);

  for (int64_t il = 0; il < c.n_layer; ++il) {
    const LayerWeights& L = w.layers[static_cast<size_t>(il)];

    // ---- attention block ----
    for (int64_t t = 0; t < n; ++t) {
      rms_norm(&s.x[t * E], static_cast<const float*>(L.attn_norm.data), &s.xn[t * E], E, c.rms_eps);
    }
    if (c.fused_qkv) {
      project(L.wqkv, TensorRole::kAttnQkv, il, s.xn.data(), n, s.qkv.data(), s, pool, lora);
      if (L.bqkv.data) {
        for (int64_t t = 0; t < n; ++t) add_inplace(&s.qkv[t * QKV], static_cast<const float*>(L.bqkv.data), QKV);
      }
    } else {
      // q, k and v land side by side in each token's qkv row.
      const Projection qkv[3] = {{&L.wq, TensorRole::kAttnQ, &s.qkv[0], QKV, &L.bq},
                                 {&L.wk, TensorRole::kAttnK, &s.qkv[static_cast<size_t>(Q)], QKV, &L.bk},
                                 {&L.wv, TensorRole::kAttnV, &s.qkv[static_cast<size_t>(Q + KV)], QKV, &L.bv}};
      project_same_input(qkv, 3, il, s.xn.data(), n, s, pool, lora);
    }
    for (int64_t t = 0; t < n; ++t) {
      float* q = &s.qkv[t * QKV];
      float* k = q + Q;
      if (c.qk_norm) {
        for (int64_t h = 0; h < c.n_head; ++h) {
          rms_norm(q + h * c.head_dim, static_cast<const float*>(L.q_norm.data), q + h * c.head_dim, c.head_dim,
                   c.rms_eps);
        }
        for (int64_t h = 0; h < c.n_head_kv; ++h) {
          rms_norm(k + h * c.head_dim, static_cast<const float*>(L.k_norm.data), k + h * c.head_dim, c.head_dim,
                   c.rms_eps);
        }
      }
      rope_apply_cos_sin(q, c.n_head, c.head_dim, c.n_rot, &s.rope_cos_sin[t * R], pairing);
      rope_apply_cos_sin(k, c.n_head_kv, c.head_dim, c.n_rot, &s.rope_cos_sin[t * R], pairing);
      if (c.logn_attn) {
        const float scale = qwen_logn_scale(pos0 + t, c.n_ctx_train);
        for (int64_t i = 0; i < Q; ++i) q[i] *= scale;
      }
      kv.store(il, pos0 + t, k, k + KV);
    }
    attention(il, n, pos0, kv, s, pool);
    project(L.wo, TensorRole::kAttnOut, il, s.attn_out.data(), n, s.proj.data(), s, pool, lora);
    add_inplace(s.x.data(), s.proj.data(), n * E);

    // ---- MLP block ----
    for (int64_t t = 0; t < n; ++t) {
      rms_norm(&s.x[t * E], static_cast<const float*>(L.ffn_norm.data), &s.xn[t * E], E, c.rms_eps);
    }
    const Projection gate_up[2] = {{&L.w_gate, TensorRole::kFfnGate, s.gate.data(), F, nullptr},
                                   {&L.w_up, TensorRole::kFfnUp, s.up.data(), F, nullptr}};
    project_same_input(gate_up, 2, il, s.xn.data(), n, s, pool, lora);
    swiglu(s.gate.data(), s.up.data(), s.gate.data(), n * F);
    project(L.w_down, TensorRole::kFfnDown, il, s.gate.data(), n, s.proj.data(), s, pool, lora);
    add_inplace(s.x.data(), s.proj.data(), n * E);
  }
}

void Transformer::attention(int64_t layer, int64_t n, int64_t pos0, KvCache& kv, ForwardScratch& s,
                            ThreadPool& pool) const {
  const ModelConfig& c = config();
  const int64_t Q = c.q_dim(), KV = c.kv_dim(), D = c.head_dim;
  const int64_t group = c.n_head / c.n_head_kv;
  const int64_t n_blocks = (n + kAttnQueryTile - 1) / kAttnQueryTile;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  auto block_for = [&](int64_t kvh, int64_t t0, int64_t n_tokens) {
    AttentionBlock b;
    b.kv_type = kv.type();
    b.k = static_cast<const uint8_t*>(kv.k_row(layer, 0)) + kv.head_offset_bytes(kvh, D);
    b.v = static_cast<const uint8_t*>(kv.v_row(layer, 0)) + kv.head_offset_bytes(kvh, D);
    b.kv_row_bytes = kv.row_bytes();
    b.head_dim = D;
    b.q = &s.qkv[static_cast<size_t>(t0 * (Q + 2 * KV) + kvh * group * D)];
    b.q_token_stride = Q + 2 * KV;
    b.n_tokens = n_tokens;
    b.n_group = group;
    b.n_keys0 = pos0 + t0 + 1;
    b.scale = scale;
    b.out = &s.attn_out[static_cast<size_t>(t0 * Q + kvh * group * D)];
    b.out_token_stride = Q;
    return b;
  };

  // Decode over a long context: (KV head, part of the keys) tasks, then a merge of the parts.
  const int64_t n_parts = (pos0 + 1 + kAttnDecodeSplit - 1) / kAttnDecodeSplit;
  if (n == 1 && n_parts > 1 && n_parts <= s.attn_max_parts) {
    pool.parallel_for(n_parts * c.n_head_kv, [&](int64_t begin, int64_t end, int thread_idx) {
      float* work = &s.attn_work[static_cast<size_t>(thread_idx) * s.attn_work_floats];
      for (int64_t task = begin; task < end; ++task) {
        const int64_t part = task / c.n_head_kv, kvh = task % c.n_head_kv;
        AttentionBlock b = block_for(kvh, 0, 1);
        b.key_begin = part * kAttnDecodeSplit;
        b.key_end = b.key_begin + kAttnDecodeSplit;
        b.out = &s.attn_part_out[static_cast<size_t>(part * Q + kvh * group * D)];
        b.partial_max = &s.attn_part_ms[static_cast<size_t>(part * 2 * c.n_head + kvh * group)];
        b.partial_sum = b.partial_max + c.n_head;
        attention_block(b, work);
      }
    });
    for (int64_t h = 0; h < c.n_head; ++h) {
      merge_attention_parts(&s.attn_part_out[static_cast<size_t>(h * D)], Q, &s.attn_part_ms[static_cast<size_t>(h)],
                            &s.attn_part_ms[static_cast<size_t>(c.n_head + h)], 2 * c.n_head, n_parts, D,
                            &s.attn_out[static_cast<size_t>(h * D)]);
    }
    return;
  }

  // One task per (block of query tokens, KV head): the block's queries of all `group` heads that share
  // the KV head read each cached row once. The causal mask makes later blocks costlier, so blocks are
  // visited from both ends (0, last, 1, last - 1, ...) to even out the static ranges of the pool.
  pool.parallel_for(n_blocks * c.n_head_kv, [&](int64_t begin, int64_t end, int thread_idx) {
    float* work = &s.attn_work[static_cast<size_t>(thread_idx) * s.attn_work_floats];
    for (int64_t task = begin; task < end; ++task) {
      const int64_t fold = task / c.n_head_kv;
      const int64_t block_idx = fold % 2 == 0 ? fold / 2 : n_blocks - 1 - fold / 2;
      const int64_t kvh = task % c.n_head_kv;
      const int64_t t0 = block_idx * kAttnQueryTile;
      attention_block(block_for(kvh, t0, std::min(kAttnQueryTile, n - t0)), work);
    }
  });
}

}  // namespace edgellm
