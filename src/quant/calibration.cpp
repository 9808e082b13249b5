#include "quant/calibration.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "kernels/elementwise.h"
#include "kernels/matmul.h"
#include "kernels/rope.h"
#include "model/kv_cache.h"
#include "model/qwen35_gguf_layout.h"
#include "model/tensor_names.h"
#include "model/transformer.h"
#include "tokenizer/tokenizer.h"

namespace edgellm {
namespace {

// Sums of a_j^2 per tensor, in double (a few hundred thousand tokens of small squares), and optionally
// sums of a a^T per input (f32: dim^2 of them must fit in memory; a window's sum is formed in f32 too).
class StatsAccumulator {
 public:
  StatsAccumulator(bool with_gram, ThreadPool& pool) : with_gram_(with_gram), pool_(pool) {}

  // `names`: the matrices reading input a [n_tokens][dim].
  void add(std::initializer_list<std::string> names, const float* a, int64_t n_tokens, int64_t dim) {
    add(std::vector<std::string>(names), a, n_tokens, dim);
  }
  void add(const std::vector<std::string>& names, const float* a, int64_t n_tokens, int64_t dim) {
    for (const std::string& name : names) {
      std::vector<double>& s = sums_[name];
      if (s.empty()) s.assign(static_cast<size_t>(dim), 0.0);
      for (int64_t t = 0; t < n_tokens; ++t) {
        for (int64_t j = 0; j < dim; ++j) {
          const double v = a[t * dim + j];
          s[static_cast<size_t>(j)] += v * v;
        }
      }
    }
    if (!with_gram_ || dim > kMaxGramDim) return;
    std::shared_ptr<std::vector<float>>& g = grams_[*names.begin()];
    if (!g) g = std::make_shared<std::vector<float>>(static_cast<size_t>(dim * dim), 0.0f);
    for (const std::string& name : names) gram_of_[name] = g;
    // Lower triangle, row i over tokens: each row's sum is one thread's, so the result does not depend
    // on the thread count.
    float* gd = g->data();
    pool_.parallel_for(
        dim,
        [&](int64_t begin, int64_t end, int) {
          for (int64_t i = begin; i < end; ++i) {
            float* gi = gd + i * dim;
            for (int64_t t = 0; t < n_tokens; ++t) {
              const float* at = a + t * dim;
              const float ai = at[i];
              for (int64_t j = 0; j <= i; ++j) gi[j] += ai * at[j];
            }
          }
        },
        8);
  }

  ActivationStats finish(int64_t n_tokens) {
    ActivationStats out;
    out.n_tokens = n_tokens;
    const double inv_n = 1.0 / static_cast<double>(std::max<int64_t>(1, n_tokens));
    for (const auto& [name, s] : sums_) {
      std::vector<float>& m = out.mean_sq[name];
      m.resize(s.size());
      for (size_t j = 0; j < s.size(); ++j) m[j] = static_cast<float>(s[j] * inv_n);
    }
    for (auto& [first, g] : grams_) {
      const auto dim = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(g->size()))));
      float* gd = g->data();
      for (int64_t i = 0; i < dim; ++i) {
        for (int64_t j = 0; j <= i; ++j) {
          gd[i * dim + j] = static_cast<float>(gd[i * dim + j] * inv_n);
          gd[j * dim + i] = gd[i * dim + j];
        }
      }
    }
    for (const auto& [name, g] : gram_of_) out.gram[name] = g;
    return out;
  }

 private:
  bool with_gram_;
  ThreadPool& pool_;
  std::map<std::string, std::vector<double>> sums_;
  std::map<std::string, std::shared_ptr<std::vector<float>>> grams_;   // by the first name of each input
  std::map<std::string, std::shared_ptr<std::vector<float>>> gram_of_;  // every name -> its input's
};

std::string gguf_name(TensorRole role, int64_t layer = -1) { return *tensor_name(NameScheme::kGguf, role, layer); }

// One window through the model from position 0, as Transformer::forward_chunk + attention compute it
// (f32 keys and values instead of the cache), recording every matmul input.
void window_forward(const Model& model, const int32_t* tokens, int64_t n, ThreadPool& pool, StatsAccumulator& acc,
                    std::vector<float>* logits) {
  const ModelConfig& c = model.config();
  const ModelWeights& w = model.weights();
  const int64_t E = c.n_embd, Q = c.q_dim(), KV = c.kv_dim(), F = c.n_ff, D = c.head_dim;
  const int64_t QKV = Q + 2 * KV;
  const auto pairing = c.rope_style == RopeStyle::kNeox ? RopePairing::kNeox : RopePairing::kInterleaved;
  const float ntk_alpha = c.dynamic_ntk ? qwen_ntk_alpha(n, c.n_ctx_train) : 1.0f;
  const std::vector<float> inv_freq =
      model_rope_inv_freq(c, static_cast<const float*>(w.rope_freqs.data), ntk_alpha);
  std::vector<float> cos_sin(static_cast<size_t>(c.n_rot / 2 * 2));  // one position's (kernels/rope.h)

  const auto sz = [](int64_t v) { return static_cast<size_t>(v); };
  std::vector<float> x(sz(n * E)), xn(sz(n * E)), qkv(sz(n * QKV)), tmp(sz(n * std::max(QKV, E))),
      attn(sz(n * Q)), gate(sz(n * F)), up(sz(n * F)), scores(sz(n));

  for (int64_t t = 0; t < n; ++t) get_row(w.token_embd, tokens[t], &x[sz(t * E)]);

  for (int64_t il = 0; il < c.n_layer; ++il) {
    const LayerWeights& L = w.layers[sz(il)];
    for (int64_t t = 0; t < n; ++t) {
      rms_norm(&x[sz(t * E)], static_cast<const float*>(L.attn_norm.data), &xn[sz(t * E)], E, c.rms_eps);
    }
    if (c.fused_qkv) {
      acc.add({gguf_name(TensorRole::kAttnQkv, il)}, xn.data(), n, E);
      matmul(L.wqkv, xn.data(), n, qkv.data(), pool);
      if (L.bqkv.data) {
        for (int64_t t = 0; t < n; ++t) add_inplace(&qkv[sz(t * QKV)], static_cast<const float*>(L.bqkv.data), QKV);
      }
    } else {
      const TensorRef* mats[3] = {&L.wq, &L.wk, &L.wv};
      const TensorRef* biases[3] = {&L.bq, &L.bk, &L.bv};
      const TensorRole roles[3] = {TensorRole::kAttnQ, TensorRole::kAttnK, TensorRole::kAttnV};
      const int64_t widths[3] = {Q, KV, KV}, offsets[3] = {0, Q, Q + KV};
      acc.add({gguf_name(roles[0], il), gguf_name(roles[1], il), gguf_name(roles[2], il)}, xn.data(), n, E);
      for (int m = 0; m < 3; ++m) {
        matmul(*mats[m], xn.data(), n, tmp.data(), pool);
        for (int64_t t = 0; t < n; ++t) {
          float* dst = &qkv[sz(t * QKV + offsets[m])];
          std::memcpy(dst, &tmp[sz(t * widths[m])], sz(widths[m]) * sizeof(float));
          if (biases[m]->data) add_inplace(dst, static_cast<const float*>(biases[m]->data), widths[m]);
        }
      }
    }
    for (int64_t t = 0; t < n; ++t) {
      float* q = &qkv[sz(t * QKV)];
      float* k = q + Q;
      if (c.qk_norm) {
        for (int64_t h = 0; h < c.n_head; ++h) {
          rms_norm(q + h * D, static_cast<const float*>(L.q_norm.data), q + h * D, D, c.rms_eps);
        }
        for (int64_t h = 0; h < c.n_head_kv; ++h) {
          rms_norm(k + h * D, static_cast<const float*>(L.k_norm.data), k + h * D, D, c.rms_eps);
        }
      }
      rope_cos_sin(c.n_rot, t, inv_freq.data(), cos_sin.data());
      rope_apply_cos_sin(q, c.n_head, D, c.n_rot, cos_sin.data(), pairing);
      rope_apply_cos_sin(k, c.n_head_kv, D, c.n_rot, cos_sin.data(), pairing);
      if (c.logn_attn) {
        const float scale = qwen_logn_scale(t, c.n_ctx_train);
        for (int64_t i = 0; i < Q; ++i) q[i] *= scale;
      }
    }
    // Causal attention with grouped KV heads, straight from the qkv rows.
    const int64_t group = c.n_head / c.n_head_kv;
    const float scale = 1.0f / std::sqrt(static_cast<float>(D));
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t h = 0; h < c.n_head; ++h) {
        const float* q = &qkv[sz(t * QKV + h * D)];
        const int64_t kv_off = (h / group) * D;
        for (int64_t j = 0; j <= t; ++j) scores[sz(j)] = dot_f32(q, &qkv[sz(j * QKV + Q + kv_off)], D) * scale;
        softmax_inplace(scores.data(), t + 1);
        float* out = &attn[sz(t * Q + h * D)];
        std::fill(out, out + D, 0.0f);
        for (int64_t j = 0; j <= t; ++j) {
          const float* v = &qkv[sz(j * QKV + Q + KV + kv_off)];
          for (int64_t d = 0; d < D; ++d) out[d] += scores[sz(j)] * v[d];
        }
      }
    }
    acc.add({gguf_name(TensorRole::kAttnOut, il)}, attn.data(), n, Q);
    matmul(L.wo, attn.data(), n, tmp.data(), pool);
    add_inplace(x.data(), tmp.data(), n * E);

    for (int64_t t = 0; t < n; ++t) {
      rms_norm(&x[sz(t * E)], static_cast<const float*>(L.ffn_norm.data), &xn[sz(t * E)], E, c.rms_eps);
    }
    acc.add({gguf_name(TensorRole::kFfnGate, il), gguf_name(TensorRole::kFfnUp, il)}, xn.data(), n, E);
    matmul(L.w_gate, xn.data(), n, gate.data(), pool);
    matmul(L.w_up, xn.data(), n, up.data(), pool);
    silu_mul(gate.data(), up.data(), gate.data(), n * F);
    acc.add({gguf_name(TensorRole::kFfnDown, il)}, gate.data(), n, F);
    matmul(L.w_down, gate.data(), n, tmp.data(), pool);
    add_inplace(x.data(), tmp.data(), n * E);
  }
  for (int64_t t = 0; t < n; ++t) {
    rms_norm(&x[sz(t * E)], static_cast<const float*>(w.output_norm.data), &xn[sz(t * E)], E, c.rms_eps);
  }
  acc.add({gguf_name(c.tied_embeddings ? TensorRole::kTokenEmbd : TensorRole::kOutput)}, xn.data(), n, E);
  if (logits) {
    logits->resize(sz(n * c.n_vocab));
    matmul(w.output, xn.data(), n, logits->data(), pool);
  }
}

// Hybrid models (Qwen3.5): one window through Transformer::forward itself (f32 KV cache, a fresh
// linear-attention state), recording the input of every product through ForwardScratch::observer. The output
// projection's input is recorded for every token (as window_forward does), so the window runs in pieces of
// kPiece tokens with all their logits. Inputs are recorded as the GGUF file will hold the weights: out_proj's
// input columns (value heads) in llama.cpp's tiled order when the model was read in Hugging Face's.
Status window_forward_hybrid(const Model& model, const int32_t* tokens, int64_t n, ThreadPool& pool,
                             StatsAccumulator& acc, std::vector<float>* logits) {
  constexpr int64_t kPiece = 64;
  const ModelConfig& c = model.config();
  EDGELLM_ASSIGN_OR_RETURN(KvCache kv, KvCache::create(c, n, DType::kF32));
  ForwardScratch scratch(c, std::min(n, kPiece), n, pool.n_threads());
  std::vector<float> tiled;
  std::vector<std::string> names;
  scratch.observer = [&](const TensorRole* roles, int n_roles, int64_t layer, const float* x, int64_t n_tokens,
                         int64_t dim) {
    names.clear();
    for (int i = 0; i < n_roles; ++i) {
      const TensorRole role = roles[i] == TensorRole::kOutput && c.tied_embeddings ? TensorRole::kTokenEmbd : roles[i];
      names.push_back(gguf_name(role, layer));
    }
    if (roles[0] == TensorRole::kSsmOut && !c.ssm_v_heads_tiled) {
      tiled.assign(x, x + n_tokens * dim);
      qwen35_values_to_gguf(c, TensorRole::kSsmOut, tiled, dim);
      x = tiled.data();
    }
    acc.add(names, x, n_tokens, dim);
  };
  const Transformer transformer(model);
  std::vector<float> piece_logits;
  if (logits) logits->clear();
  for (int64_t start = 0; start < n; start += kPiece) {
    const int64_t m = std::min(kPiece, n - start);
    EDGELLM_TRY(transformer.forward(tokens + start, m, kv, scratch, pool, LogitsMode::kAll, piece_logits));
    if (logits) logits->insert(logits->end(), piece_logits.begin(), piece_logits.end());
  }
  return {};
}

}  // namespace

Expected<ActivationStats> collect_activation_stats(const Model& model, const std::vector<int32_t>& tokens,
                                                   int64_t window, ThreadPool& pool, std::vector<float>* logits,
                                                   bool with_gram) {
  const ModelConfig& c = model.config();
  if (tokens.empty()) return make_error(ErrorCode::kInvalidArgument, "calibration: no tokens");
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= c.n_vocab) {
      return make_error(ErrorCode::kInvalidArgument, "calibration: token id " + std::to_string(tokens[i]) +
                                                         " at index " + std::to_string(i) + " is outside [0, " +
                                                         std::to_string(c.n_vocab) + ")");
    }
  }
  window = std::max<int64_t>(1, std::min(window, c.n_ctx_train > 0 ? c.n_ctx_train : window));
  StatsAccumulator acc(with_gram, pool);
  const int64_t n_total = static_cast<int64_t>(tokens.size());
  for (int64_t start = 0; start < n_total; start += window) {
    const int64_t n = std::min(window, n_total - start);
    std::vector<float>* window_logits = start + n == n_total ? logits : nullptr;
    if (c.hybrid()) {
      EDGELLM_TRY(window_forward_hybrid(model, tokens.data() + start, n, pool, acc, window_logits));
    } else {
      window_forward(model, tokens.data() + start, n, pool, acc, window_logits);
    }
  }
  return acc.finish(n_total);
}

Expected<std::vector<int32_t>> sample_calibration_tokens(const Model& model, int64_t n_tokens, int64_t window,
                                                         uint64_t seed, ThreadPool& pool) {
  const ModelConfig& c = model.config();
  EDGELLM_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tok, Tokenizer::from_path(model.path()));
  const int32_t start = tok->add_bos() && tok->bos_id() ? *tok->bos_id() : tok->eos_id().value_or(0);
  window = std::max<int64_t>(2, window);
  const int64_t n_seq = std::max<int64_t>(1, n_tokens / window);
  EDGELLM_ASSIGN_OR_RETURN(KvCache kv, KvCache::create(c, window, DType::kF32));
  ForwardScratch scratch(c, 1, window, std::max(pool.n_threads(), 1));
  // One token per step: on a small model the fork/join of every op costs more than the op (18 s instead of
  // 1.3 s for stories260K's 2048 tokens on 2 busy cores), so small models sample on the calling thread.
  const int64_t approx_params = c.n_layer * (4 * c.n_embd * c.n_embd + 3 * c.n_embd * c.n_ff);
  ThreadPool single(1);
  ThreadPool& gen_pool = approx_params < (int64_t{32} << 20) ? single : pool;
  const Transformer transformer(model);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::vector<float> logits;
  std::vector<double> probs(static_cast<size_t>(c.n_vocab));
  std::vector<int32_t> out;
  out.reserve(static_cast<size_t>(n_seq * window));
  for (int64_t s = 0; s < n_seq; ++s) {
    EDGELLM_ASSIGN_OR_RETURN(kv, KvCache::create(c, window, DType::kF32));
    int32_t token = start;
    out.push_back(token);
    for (int64_t t = 1; t < window; ++t) {
      EDGELLM_TRY(transformer.forward(&token, 1, kv, scratch, gen_pool, LogitsMode::kLast, logits));
      const float mx = *std::max_element(logits.begin(), logits.begin() + c.n_vocab);
      double total = 0;
      for (int64_t v = 0; v < c.n_vocab; ++v) total += probs[static_cast<size_t>(v)] = std::exp(logits[static_cast<size_t>(v)] - mx);
      double r = uniform(rng) * total;
      token = static_cast<int32_t>(c.n_vocab - 1);
      for (int64_t v = 0; v < c.n_vocab; ++v) {
        r -= probs[static_cast<size_t>(v)];
        if (r <= 0) {
          token = static_cast<int32_t>(v);
          break;
        }
      }
      out.push_back(token);
    }
  }
  return out;
}

Expected<std::vector<int32_t>> tokenize_calibration_file(const Model& model, const std::string& text_path,
                                                         int64_t max_tokens) {
  std::ifstream in(text_path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kNotFound, text_path + ": cannot read the calibration text");
  std::ostringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  if (text.empty()) return make_error(ErrorCode::kInvalidArgument, text_path + ": the calibration text is empty");
  EDGELLM_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tok, Tokenizer::from_path(model.path()));
  // Only as much text as the token budget needs (~16 bytes per token is generous for any tokenizer).
  const size_t max_bytes = static_cast<size_t>(std::max<int64_t>(1, max_tokens)) * 16;
  std::string_view view(text);
  if (view.size() > max_bytes) {
    size_t cut = max_bytes;
    while (cut > 0 && (static_cast<unsigned char>(view[cut]) & 0xC0) == 0x80) --cut;  // whole UTF-8 characters
    view = view.substr(0, cut);
  }
  EDGELLM_ASSIGN_OR_RETURN(std::vector<int32_t> ids, tok->encode(view, false));
  if (tok->add_bos() && tok->bos_id()) ids.insert(ids.begin(), *tok->bos_id());
  if (static_cast<int64_t>(ids.size()) > max_tokens) ids.resize(static_cast<size_t>(max_tokens));
  if (ids.empty()) return make_error(ErrorCode::kInvalidArgument, text_path + ": no tokens in the calibration text");
  return ids;
}

}  // namespace edgellm
