// What `edgellm doctor -m MODEL` reads about a model without loading its weights (a model that does not
// fit in memory is exactly the case the doctor must explain, so it only reads the GGUF header, the
// tokenizer and the chat template; the weights stay unread unless the digest is verified).
#pragma once

#include <cstdint>
#include <string>

#include "format/dtype.h"
#include "model/config.h"
#include "util/expected.h"

namespace edgellm::doctor {

struct ModelFacts {
  std::string path;
  std::string arch;  // general.architecture
  ModelConfig config;
  uint64_t file_bytes = 0;
  uint64_t weight_bytes = 0;  // sum of the tensors' bytes: what decode reads per token
  int64_t n_params = 0;
  DType main_type = DType::kF32;  // the type holding most matrix bytes
  std::string stored_digest;      // edgellm.content.sha256, empty when the file has none
  std::string tokenizer;          // "byte-level BPE, 151936 tokens", or the error that loading it gave
  bool tokenizer_ok = false;
  std::string chat_template;      // "qwen2.5 (the model's own template, recognised exactly)"
  bool chat_template_fallback = false;

  double bits_per_weight() const { return n_params > 0 ? 8.0 * static_cast<double>(weight_bytes) / n_params : 0.0; }
  // Bytes of K and V for one position with the given cache type (f16 or q8_0).
  uint64_t kv_bytes_per_position(DType kv_type) const;
};

// Reads `path` (a GGUF file). Errors name the file and what is wrong with it.
Expected<ModelFacts> read_model_facts(const std::string& path);

}  // namespace edgellm::doctor
