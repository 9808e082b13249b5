// A loaded model: its config and weight views, from a GGUF file or a Hugging Face directory.
// Weights stay in the mmapped files and are used in place; only small vectors (norms, biases) are
// converted to f32 copies at load. For inference, repack_for_matmul() then copies the matrices that the
// active int8 matmul kernels read in a packed layout (kernels/matmul.h: matmul_repack).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "format/gguf.h"
#include "format/hf_dir.h"
#include "format/tensor_ref.h"
#include "model/arch.h"
#include "model/config.h"
#include "util/expected.h"
#include "util/huge_pages.h"

namespace edgellm {

class ThreadPool;

// Absent optional tensors have data == nullptr.
struct LayerWeights {
  TensorRef attn_norm;                    // [n_embd] f32
  TensorRef wq, wk, wv;                   // [n_embd] -> q_dim / kv_dim (unfused families)
  TensorRef bq, bk, bv;                   // f32 biases (qwen2; optional for llama)
  TensorRef wqkv, bqkv;                   // qwen: [n_embd] -> q_dim + 2 kv_dim, bias f32
  TensorRef wo;                           // q_dim -> n_embd
  TensorRef q_norm, k_norm;               // qwen3: [head_dim] f32
  TensorRef ffn_norm;                     // [n_embd] f32
  TensorRef w_gate, w_up, w_down;         // SwiGLU: down(silu(gate(x)) * up(x))
  // Qwen3.5 full-attention layers: wq gives [q_h | gate_h] per head (2 q_dim rows); the attention output
  // is multiplied by sigmoid(gate). Qwen3.5 linear-attention (Gated DeltaNet) layers, instead of wq..wo:
  TensorRef ssm_in_qkv;                   // n_embd -> conv_dim (q | k | v of all heads)
  TensorRef ssm_in_z;                     // n_embd -> Hv * Dv, the output gate
  TensorRef ssm_beta, ssm_alpha;          // n_embd -> Hv
  TensorRef ssm_conv;                     // f32 [K][conv_dim] (transposed at load from the file's [conv_dim][K])
  TensorRef ssm_dt_bias;                  // f32 [Hv]
  TensorRef ssm_a;                        // f32 [Hv]: -exp(A_log)
  TensorRef ssm_norm;                     // f32 [Dv]
  TensorRef ssm_out;                      // Hv * Dv -> n_embd
};

struct ModelWeights {
  TensorRef token_embd;   // ne = {n_embd, n_vocab}
  TensorRef output_norm;  // [n_embd] f32
  TensorRef output;       // ne = {n_embd, n_vocab}; the token embedding when tied
  TensorRef rope_freqs;   // optional [n_rot/2] f32 divisors (llama.cpp's Llama 3.1 scaling)
  std::vector<LayerWeights> layers;
};

struct ModelLoadOptions {
  bool prefetch = false;  // ask the kernel to read the weights ahead (preload)
  // The key of an encrypted model file (security/encrypted_model.h): a key file, or "" for the
  // environment's (find_model_key). Plain files ignore it.
  std::string key_file;
};

// The tensor `name` (Hugging Face's scheme) of a checkpoint, also under the "model.language_model." prefix
// multimodal checkpoints give their language model; nullptr when absent.
const SafetensorsTensor* find_hf_tensor(const Safetensors& weights, const std::string& name);

class Model {
 public:
  // `path` is a .gguf file or a Hugging Face directory (config.json + safetensors). Errors name the file
  // and the tensor or key: missing tensors, shape or type mismatches, unsupported architectures.
  static Expected<std::unique_ptr<Model>> load(const std::string& path, const ModelLoadOptions& options = {});

  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  const std::string& path() const { return path_; }
  const GgufFile* gguf() const { return gguf_ ? &*gguf_ : nullptr; }
  const HfDirectory* hf() const { return hf_ ? &*hf_ : nullptr; }
  // Bytes of all weight tensors as stored (what one decode step reads).
  size_t weight_bytes() const { return weight_bytes_; }
  // Elements of all weight tensors (the parameter count), and the type most of the matrices' bytes are in.
  int64_t n_params() const { return n_params_; }
  DType main_weight_type() const { return main_type_; }
  // GGUF files: repacks the matrices the default matmul kernels of this CPU read in a packed layout
  // (TensorRef::packed) and releases their file pages, so the copies replace the file's bytes in memory;
  // a tied embedding's rows are then read from the copy too. Nothing for other files, types or CPUs.
  // For inference only (converters read the file's rows); call once, before any forward pass. `pool`
  // (optional) repacks in parallel.
  void repack_for_matmul(ThreadPool* pool = nullptr);
  // Releases the file pages of the repacked matrices again, after something read the whole file (e.g. a
  // content digest): their bytes stay valid (a later read faults them back in from the file).
  void release_repacked_file_pages() const;

 private:
  Model() = default;
  Status bind_weights(const ArchSpec& spec);
  Expected<TensorRef> lookup(TensorRole role, int64_t layer, bool required) const;
  Expected<TensorRef> as_f32(TensorRef ref);
  // An owned f32 copy of `ref` with f (if not null) applied to every value (ref may be f32, f16 or bf16).
  Expected<TensorRef> f32_copy(TensorRef ref, float (*f)(float));
  Status bind_linear_attention(int64_t layer, LayerWeights& L);

  std::string path_;
  std::optional<GgufFile> gguf_;
  std::optional<HfDirectory> hf_;
  NameScheme scheme_ = NameScheme::kGguf;
  ModelConfig config_;
  ModelWeights weights_;
  std::vector<std::unique_ptr<std::vector<float>>> owned_f32_;
  HugePageBuffer packed_;  // the TensorRef::packed copies, one arena
  size_t weight_bytes_ = 0;
  int64_t n_params_ = 0;
  DType main_type_ = DType::kF32;
};

}  // namespace edgellm
