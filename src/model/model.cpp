#include "model/model.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>

#include "kernels/matmul.h"
#include "security/open_model_file.h"
#include "util/half.h"
#include "util/log.h"
#include "util/thread_pool.h"

namespace edgellm {
namespace {

// f(matrix) for the matrices repack_for_matmul() may copy: every layer's projections, then the output
// (LM head). `Weights` is ModelWeights or const ModelWeights.
template <class Weights, class F>
void for_each_matmul_weight(Weights& w, F&& f) {
  for (auto& L : w.layers) {
    for (auto* t : {&L.wq, &L.wk, &L.wv, &L.wqkv, &L.wo, &L.w_gate, &L.w_up, &L.w_down, &L.ssm_in_qkv, &L.ssm_in_z,
                    &L.ssm_beta, &L.ssm_alpha, &L.ssm_out}) {
      if (t->data != nullptr) f(*t);
    }
  }
  f(w.output);
}

}  // namespace

Expected<std::unique_ptr<Model>> Model::load(const std::string& path, const ModelLoadOptions& options) {
  std::unique_ptr<Model> model(new Model());
  model->path_ = path;
  const ArchSpec* spec = nullptr;
  if (is_hf_directory(path)) {
    EDGELLM_ASSIGN_OR_RETURN(HfDirectory hf, open_hf_directory(path));
    const std::string source = path + "/config.json";
    if (!hf.config.contains("model_type") || !hf.config["model_type"].is_string()) {
      return make_error(ErrorCode::kFormat, source + ": missing string key 'model_type'");
    }
    const std::string model_type = hf.config["model_type"].get<std::string>();
    spec = find_arch_by_hf_model_type(model_type);
    if (!spec) {
      return make_error(ErrorCode::kUnsupported, source + ": unsupported architecture '" + model_type +
                                                     "' (supported: " + supported_arch_list() + ")");
    }
    EDGELLM_ASSIGN_OR_RETURN(model->config_, spec->config_from_hf(hf.config, source));
    model->scheme_ = spec->hf_scheme;
    model->hf_ = std::move(hf);
  } else {
    EDGELLM_ASSIGN_OR_RETURN(GgufFile gguf, open_model_gguf(path, options.key_file));
    EDGELLM_ASSIGN_OR_RETURN(const std::string arch, gguf.get_string("general.architecture"));
    spec = find_arch_by_gguf_name(arch);
    if (!spec) {
      return make_error(ErrorCode::kUnsupported, path + ": unsupported architecture '" + arch +
                                                     "' (supported: " + supported_arch_list() + ")");
    }
    EDGELLM_ASSIGN_OR_RETURN(model->config_, config_from_gguf(gguf, *spec));
    model->scheme_ = NameScheme::kGguf;
    if (options.prefetch) gguf.prefetch();
    model->gguf_ = std::move(gguf);
  }
  EDGELLM_TRY(model->bind_weights(*spec));
  return model;
}

// A few MiB of rows at a time (over `pool` when given): their packed panels are written, then their
// file pages are released, so the resident set grows by no more than that over the packed copies (whose
// size equals the file layout's, padded to whole 16-row panels). A tied embedding's row lookups then
// read the packed copy. For a decrypted model (in memory, no file behind it) the same release frees the
// plaintext for good, which is safe: matmul_packed_bytes() > 0 means every default matmul and get_row
// read the packed copy, so the peak stays one copy of the weights plus a few MiB, as for a mapped file.
void Model::repack_for_matmul(ThreadPool* pool) {
  if (!gguf_ || packed_) return;
  std::vector<TensorRef*> matrices;
  for_each_matmul_weight(weights_, [&](TensorRef& t) { matrices.push_back(&t); });
  // One arena for all copies, in huge pages (util/huge_pages.h): a decode step streams all of it.
  std::vector<size_t> offsets(matrices.size(), 0);
  size_t total = 0;
  for (size_t i = 0; i < matrices.size(); ++i) {
    const size_t bytes = matmul_packed_bytes(*matrices[i]);
    offsets[i] = bytes == 0 ? SIZE_MAX : total;
    total += (bytes + 63) / 64 * 64;
  }
  if (total == 0) return;
  packed_ = allocate_huge_pages(total);
  if (!packed_) return;  // keep reading the file layout
  for (size_t i = 0; i < matrices.size(); ++i) {
    if (offsets[i] == SIZE_MAX) continue;
    TensorRef* t = matrices[i];
    uint8_t* buffer = packed_.get() + offsets[i];
    const int64_t n_rows = t->n_rows(), panel = matmul_repack_rows();
    const size_t row_bytes = t->row_bytes();
    const int64_t chunk = std::max<int64_t>(1, static_cast<int64_t>((size_t{2} << 20) / (row_bytes * panel))) * panel;
    const int64_t n_chunks = (n_rows + chunk - 1) / chunk;
    const auto* rows = static_cast<const uint8_t*>(t->data);
    const auto repack_chunks = [&](int64_t first, int64_t last, int /*thread_idx*/) {
      for (int64_t c = first; c < last; ++c) {
        const int64_t begin = c * chunk, end = std::min(n_rows, begin + chunk);
        matmul_repack(*t, buffer, begin, end);
        gguf_->release(rows + static_cast<size_t>(begin) * row_bytes, static_cast<size_t>(end - begin) * row_bytes);
      }
    };
    if (pool != nullptr) {
      pool->parallel_for(n_chunks, repack_chunks, 1);
    } else {
      repack_chunks(0, n_chunks, 0);
    }
    t->packed = buffer;
  }
  // A tied embedding is the output matrix: its row lookups read the packed copy too.
  if (weights_.output.data == weights_.token_embd.data) weights_.token_embd.packed = weights_.output.packed;
}

void Model::release_repacked_file_pages() const {
  if (!gguf_ || !packed_) return;
  for_each_matmul_weight(weights_, [&](const TensorRef& t) {
    if (t.packed != nullptr) gguf_->release(t.data, t.row_bytes() * static_cast<size_t>(t.n_rows()));
  });
}

const SafetensorsTensor* find_hf_tensor(const Safetensors& weights, const std::string& name) {
  if (const SafetensorsTensor* t = weights.find(name)) return t;
  // A multimodal checkpoint (Qwen3.5's Qwen3_5ForConditionalGeneration) nests the language model.
  if (name.rfind("model.", 0) == 0) return weights.find("model.language_model." + name.substr(6));
  return nullptr;
}

Expected<TensorRef> Model::lookup(TensorRole role, int64_t layer, bool required) const {
  const auto name = tensor_name(scheme_, role, layer);
  if (name) {
    if (gguf_) {
      if (const GgufTensorInfo* info = gguf_->find_tensor(*name)) return gguf_->tensor_ref(*info);
    } else if (const SafetensorsTensor* t = find_hf_tensor(hf_->weights, *name)) {
      return t->ref;
    }
  }
  if (required) {
    return make_error(ErrorCode::kNotFound, path_ + ": missing tensor '" +
                                                name.value_or(std::string(tensor_role_label(role))) + "'");
  }
  return TensorRef{};
}

Expected<TensorRef> Model::as_f32(TensorRef ref) {
  if (ref.data == nullptr || ref.type == DType::kF32) return ref;
  return f32_copy(std::move(ref), nullptr);
}

Expected<TensorRef> Model::f32_copy(TensorRef ref, float (*f)(float)) {
  if (ref.data == nullptr) return ref;
  if (ref.type != DType::kF32 && ref.type != DType::kF16 && ref.type != DType::kBF16) {
    return make_error(ErrorCode::kUnsupported, path_ + ": tensor '" + ref.name + "': type " + dtype_name(ref.type) +
                                                   " is not supported for a norm, bias or other small f32 tensor "
                                                   "(expected f32, f16 or bf16)");
  }
  const int64_t n = ref.n_elements();
  auto buffer = std::make_unique<std::vector<float>>(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    float v = 0;
    if (ref.type == DType::kF32) {
      std::memcpy(&v, static_cast<const uint8_t*>(ref.data) + i * 4, 4);
    } else {
      const uint16_t h = static_cast<const uint16_t*>(ref.data)[i];
      v = ref.type == DType::kF16 ? fp16_to_f32(h) : bf16_to_f32(h);
    }
    (*buffer)[static_cast<size_t>(i)] = f ? f(v) : v;
  }
  ref.type = DType::kF32;
  ref.data = buffer->data();
  ref.size_bytes = static_cast<size_t>(n) * sizeof(float);
  owned_f32_.push_back(std::move(buffer));
  return ref;
}

namespace {

float plus_one(float x) { return x + 1.0f; }
float neg_exp(float x) { return static_cast<float>(-std::exp(static_cast<double>(x))); }

Status check_shape(const std::string& path, const TensorRef& t, std::vector<int64_t> expected) {
  if (t.data == nullptr) return {};
  std::vector<int64_t> got = t.ne;
  while (got.size() > expected.size() && got.back() == 1) got.pop_back();
  if (got != expected) {
    return make_error(ErrorCode::kFormat, path + ": tensor '" + t.name + "': shape " + shape_string(t.ne) +
                                              ", expected " + shape_string(expected));
  }
  return {};
}

Status check_matrix_type(const std::string& path, const TensorRef& t) {
  if (t.data == nullptr) return {};
  if (!dtype_is_runnable(t.type)) {
    return make_error(ErrorCode::kUnsupported, path + ": tensor '" + t.name + "': weight type " +
                                                   dtype_name(t.type) + " is not supported");
  }
  return {};
}

}  // namespace

Status Model::bind_weights(const ArchSpec& spec) {
  ModelConfig& c = config_;
  ModelWeights& w = weights_;
  EDGELLM_ASSIGN_OR_RETURN(w.token_embd, lookup(TensorRole::kTokenEmbd, -1, true));
  if (w.token_embd.ne.size() != 2) {
    return make_error(ErrorCode::kFormat, path_ + ": tensor '" + w.token_embd.name + "': shape " +
                                              shape_string(w.token_embd.ne) + ", expected 2 dimensions");
  }
  if (c.n_vocab == 0) c.n_vocab = w.token_embd.ne[1];
  // Qwen3.5's Hugging Face files store RMSNorm weights as w - 1 (its linear layers' gated norm excepted).
  const bool norm_offset = hf_ && c.arch == Arch::kQwen35;
  auto norm = [&](TensorRole role, int64_t layer) -> Expected<TensorRef> {
    EDGELLM_ASSIGN_OR_RETURN(TensorRef t, lookup(role, layer, true));
    return norm_offset ? f32_copy(std::move(t), &plus_one) : as_f32(std::move(t));
  };
  EDGELLM_ASSIGN_OR_RETURN(w.output_norm, norm(TensorRole::kOutputNorm, -1));
  EDGELLM_ASSIGN_OR_RETURN(w.output, lookup(TensorRole::kOutput, -1, false));
  if (w.output.data == nullptr) {
    c.tied_embeddings = true;
    w.output = w.token_embd;
  } else if (hf_ && c.tied_embeddings) {
    // transformers may still save lm_head for tied models; it equals the embedding, use that.
    w.output = w.token_embd;
  }
  EDGELLM_ASSIGN_OR_RETURN(TensorRef rope_freqs, lookup(TensorRole::kRopeFreqs, -1, false));
  EDGELLM_ASSIGN_OR_RETURN(w.rope_freqs, as_f32(rope_freqs));

  // Sizes derived from the tensors where metadata may omit them.
  if (gguf_ && c.arch == Arch::kQwen2 && !gguf_->find("qwen2.attention.key_length")) {
    c.head_dim = c.n_embd / std::max<int64_t>(1, c.n_head);
  }
  if (c.n_layer <= 0 || c.n_layer > 1024) {
    return make_error(ErrorCode::kFormat, path_ + ": invalid model config: n_layer = " + std::to_string(c.n_layer));
  }
  if (hf_) {
    EDGELLM_TRY(c.validate(path_ + "/config.json", hf_config_keys(c.arch)));
  } else {
    EDGELLM_TRY(c.validate(path_, gguf_config_keys(c.arch)));
  }

  const int64_t E = c.n_embd, Q = c.q_dim(), KV = c.kv_dim(), F = c.n_ff;
  EDGELLM_TRY(check_shape(path_, w.token_embd, {E, c.n_vocab}));
  EDGELLM_TRY(check_shape(path_, w.output, {E, c.n_vocab}));
  EDGELLM_TRY(check_shape(path_, w.output_norm, {E}));
  EDGELLM_TRY(check_shape(path_, w.rope_freqs, {c.n_rot / 2}));
  EDGELLM_TRY(check_matrix_type(path_, w.token_embd));
  EDGELLM_TRY(check_matrix_type(path_, w.output));

  // Which optional tensors exist decides the feature flags for GGUF files (e.g. llama with biases).
  w.layers.resize(static_cast<size_t>(c.n_layer));
  for (int64_t il = 0; il < c.n_layer; ++il) {
    LayerWeights& L = w.layers[static_cast<size_t>(il)];
    auto get = [&](TensorRole role, bool required) { return lookup(role, il, required); };
    auto get_f32 = [&](TensorRole role, bool required) -> Expected<TensorRef> {
      EDGELLM_ASSIGN_OR_RETURN(TensorRef t, lookup(role, il, required));
      return as_f32(std::move(t));
    };
    EDGELLM_ASSIGN_OR_RETURN(L.attn_norm, norm(TensorRole::kAttnNorm, il));
    EDGELLM_ASSIGN_OR_RETURN(L.ffn_norm,
                             norm(c.arch == Arch::kQwen35 ? TensorRole::kPostAttnNorm : TensorRole::kFfnNorm, il));
    const bool linear = c.is_recurrent(il);
    if (linear) {
      EDGELLM_TRY(bind_linear_attention(il, L));
    } else if (c.fused_qkv) {
      EDGELLM_ASSIGN_OR_RETURN(L.wqkv, get(TensorRole::kAttnQkv, true));
      EDGELLM_ASSIGN_OR_RETURN(L.bqkv, get_f32(TensorRole::kAttnQkvBias, c.qkv_bias));
      EDGELLM_TRY(check_shape(path_, L.wqkv, {E, Q + 2 * KV}));
      EDGELLM_TRY(check_shape(path_, L.bqkv, {Q + 2 * KV}));
      EDGELLM_TRY(check_matrix_type(path_, L.wqkv));
    } else {
      EDGELLM_ASSIGN_OR_RETURN(L.wq, get(TensorRole::kAttnQ, true));
      EDGELLM_ASSIGN_OR_RETURN(L.wk, get(TensorRole::kAttnK, true));
      EDGELLM_ASSIGN_OR_RETURN(L.wv, get(TensorRole::kAttnV, true));
      const bool bias_required = c.qkv_bias && spec.arch == Arch::kQwen2;
      EDGELLM_ASSIGN_OR_RETURN(L.bq, get_f32(TensorRole::kAttnQBias, bias_required));
      EDGELLM_ASSIGN_OR_RETURN(L.bk, get_f32(TensorRole::kAttnKBias, bias_required));
      EDGELLM_ASSIGN_OR_RETURN(L.bv, get_f32(TensorRole::kAttnVBias, bias_required));
      EDGELLM_TRY(check_shape(path_, L.wq, {E, c.attn_output_gate ? 2 * Q : Q}));
      EDGELLM_TRY(check_shape(path_, L.wk, {E, KV}));
      EDGELLM_TRY(check_shape(path_, L.wv, {E, KV}));
      EDGELLM_TRY(check_shape(path_, L.bq, {Q}));
      EDGELLM_TRY(check_shape(path_, L.bk, {KV}));
      EDGELLM_TRY(check_shape(path_, L.bv, {KV}));
      for (const TensorRef* t : {&L.wq, &L.wk, &L.wv}) EDGELLM_TRY(check_matrix_type(path_, *t));
    }
    if (c.qk_norm && !linear) {
      EDGELLM_ASSIGN_OR_RETURN(L.q_norm, norm(TensorRole::kAttnQNorm, il));
      EDGELLM_ASSIGN_OR_RETURN(L.k_norm, norm(TensorRole::kAttnKNorm, il));
      EDGELLM_TRY(check_shape(path_, L.q_norm, {c.head_dim}));
      EDGELLM_TRY(check_shape(path_, L.k_norm, {c.head_dim}));
    }
    if (!linear) {
      EDGELLM_ASSIGN_OR_RETURN(L.wo, get(TensorRole::kAttnOut, true));
    }
    EDGELLM_ASSIGN_OR_RETURN(L.w_gate, get(TensorRole::kFfnGate, true));
    EDGELLM_ASSIGN_OR_RETURN(L.w_up, get(TensorRole::kFfnUp, true));
    EDGELLM_ASSIGN_OR_RETURN(L.w_down, get(TensorRole::kFfnDown, true));
    EDGELLM_TRY(check_shape(path_, L.attn_norm, {E}));
    EDGELLM_TRY(check_shape(path_, L.ffn_norm, {E}));
    if (!linear) EDGELLM_TRY(check_shape(path_, L.wo, {Q, E}));
    EDGELLM_TRY(check_shape(path_, L.w_gate, {E, F}));
    EDGELLM_TRY(check_shape(path_, L.w_up, {E, F}));
    EDGELLM_TRY(check_shape(path_, L.w_down, {F, E}));
    for (const TensorRef* t : {&L.wo, &L.w_gate, &L.w_up, &L.w_down}) EDGELLM_TRY(check_matrix_type(path_, *t));
  }

  if (hf_ && c.arch == Arch::kQwen35) {
    size_t vision = 0;
    for (const auto& t : hf_->weights.tensors()) vision += t.ref.name.rfind("model.visual.", 0) == 0;
    if (vision > 0) {
      log_message(LogLevel::kInfo, "%s: the vision tower (%zu tensors) is not loaded: edgellm runs the text model",
                  path_.c_str(), vision);
    }
  }

  // Whatever the metadata says, biases that are present are used.
  if (!c.fused_qkv) {
    c.qkv_bias = false;
    for (const LayerWeights& L : w.layers) c.qkv_bias = c.qkv_bias || L.bq.data != nullptr;
  }

  weight_bytes_ = 0;
  n_params_ = 0;
  std::map<DType, size_t> bytes_by_type;
  const auto count = [&](const std::vector<int64_t>& ne, DType type, size_t size_bytes) {
    weight_bytes_ += size_bytes;
    int64_t n = 1;
    for (int64_t d : ne) n *= d;
    n_params_ += n;
    if (ne.size() >= 2) bytes_by_type[type] += size_bytes;  // matrices decide the file's "type"
  };
  if (gguf_) {
    for (const auto& t : gguf_->tensors()) count(t.ne, t.type, t.size_bytes);
  } else {
    for (const auto& t : hf_->weights.tensors()) count(t.ref.ne, t.ref.type, t.ref.size_bytes);
  }
  size_t most = 0;
  for (const auto& [type, bytes] : bytes_by_type) {
    if (bytes > most) {
      most = bytes;
      main_type_ = type;
    }
  }
  return {};
}

}  // namespace edgellm

namespace edgellm {

Status Model::bind_linear_attention(int64_t il, LayerWeights& L) {
  const ModelConfig& c = config_;
  const int64_t E = c.n_embd, Hv = c.ssm_n_v_heads, VD = c.ssm_value_dim(), CD = c.ssm_conv_dim();
  const int64_t K = c.ssm_conv_kernel;
  auto get = [&](TensorRole role) { return lookup(role, il, true); };
  EDGELLM_ASSIGN_OR_RETURN(L.ssm_in_qkv, get(TensorRole::kAttnQkv));
  EDGELLM_ASSIGN_OR_RETURN(L.ssm_in_z, get(TensorRole::kSsmInZ));
  EDGELLM_ASSIGN_OR_RETURN(L.ssm_beta, get(TensorRole::kSsmBeta));
  EDGELLM_ASSIGN_OR_RETURN(L.ssm_alpha, get(TensorRole::kSsmAlpha));
  EDGELLM_ASSIGN_OR_RETURN(L.ssm_out, get(TensorRole::kSsmOut));
  EDGELLM_TRY(check_shape(path_, L.ssm_in_qkv, {E, CD}));
  EDGELLM_TRY(check_shape(path_, L.ssm_in_z, {E, VD}));
  EDGELLM_TRY(check_shape(path_, L.ssm_beta, {E, Hv}));
  EDGELLM_TRY(check_shape(path_, L.ssm_alpha, {E, Hv}));
  EDGELLM_TRY(check_shape(path_, L.ssm_out, {VD, E}));
  for (const TensorRef* t : {&L.ssm_in_qkv, &L.ssm_in_z, &L.ssm_beta, &L.ssm_alpha, &L.ssm_out}) {
    EDGELLM_TRY(check_matrix_type(path_, *t));
  }

  // The convolution: {K, conv_dim} in GGUF, {K, 1, conv_dim} as Hugging Face's Conv1d; kept transposed.
  EDGELLM_ASSIGN_OR_RETURN(TensorRef conv, get(TensorRole::kSsmConv));
  std::vector<int64_t> ne = conv.ne;
  if (ne.size() == 3 && ne[1] == 1) ne.erase(ne.begin() + 1);
  if (ne != std::vector<int64_t>{K, CD}) {
    return make_error(ErrorCode::kFormat, path_ + ": tensor '" + conv.name + "': shape " + shape_string(conv.ne) +
                                              ", expected " + shape_string({K, CD}));
  }
  EDGELLM_ASSIGN_OR_RETURN(TensorRef conv32, f32_copy(conv, nullptr));
  auto transposed = std::make_unique<std::vector<float>>(static_cast<size_t>(K * CD));
  const auto* src = static_cast<const float*>(conv32.data);
  for (int64_t ch = 0; ch < CD; ++ch) {
    for (int64_t j = 0; j < K; ++j) (*transposed)[static_cast<size_t>(j * CD + ch)] = src[ch * K + j];
  }
  conv32.data = transposed->data();
  conv32.ne = {CD, K};
  owned_f32_.push_back(std::move(transposed));
  L.ssm_conv = conv32;

  EDGELLM_ASSIGN_OR_RETURN(TensorRef dt, get(TensorRole::kSsmDtBias));
  EDGELLM_ASSIGN_OR_RETURN(L.ssm_dt_bias, as_f32(dt));
  EDGELLM_ASSIGN_OR_RETURN(TensorRef a, get(TensorRole::kSsmA));
  // Hugging Face stores A_log; llama.cpp's files hold -exp(A_log).
  EDGELLM_ASSIGN_OR_RETURN(L.ssm_a, hf_ ? f32_copy(a, &neg_exp) : as_f32(a));
  EDGELLM_ASSIGN_OR_RETURN(TensorRef n, get(TensorRole::kSsmNorm));
  EDGELLM_ASSIGN_OR_RETURN(L.ssm_norm, as_f32(n));
  EDGELLM_TRY(check_shape(path_, L.ssm_dt_bias, {Hv}));
  EDGELLM_TRY(check_shape(path_, L.ssm_a, {Hv}));
  EDGELLM_TRY(check_shape(path_, L.ssm_norm, {c.ssm_v_head_dim}));
  for (const TensorRef* t : {&L.ssm_dt_bias, &L.ssm_a, &L.ssm_norm}) {
    const auto* v = static_cast<const float*>(t->data);
    for (int64_t i = 0; i < t->n_elements(); ++i) {
      if (!std::isfinite(v[i])) {
        return make_error(ErrorCode::kFormat, path_ + ": tensor '" + t->name + "' holds a non-finite value at " +
                                                  std::to_string(i));
      }
    }
  }
  return {};
}

}  // namespace edgellm
