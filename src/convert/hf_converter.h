// edgellm convert: a Hugging Face model directory -> one GGUF file (architecture, tokenizer, chat
// template, default sampling parameters, provenance, quantized weights). Memory is bounded by the
// largest tensor; the output appears only when complete (see GgufWriter).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "util/expected.h"

namespace edgellm {

struct ConvertProgress {
  size_t tensors_done = 0;
  size_t tensors_total = 0;
  uint64_t bytes_written = 0;
  double seconds = 0;
};

struct ConvertOptions {
  std::string quant = "f16";  // a recipe name (convert/quant_recipe.h)
  int n_threads = 0;          // 0: one per CPU
  bool search = true;         // false: plain round-to-nearest (convert/tensor_quantizer.h)
  std::string calib_path;     // calibration text: importance-weighted search (quant/calibration.h)
  int64_t calib_tokens = 8192;
  int64_t calib_window = 512;
  std::function<void(const ConvertProgress&)> progress;
};

Status convert_hf_to_gguf(const std::string& hf_dir, const std::string& out_path, const ConvertOptions& options);

}  // namespace edgellm
