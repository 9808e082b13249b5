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
  bool gptq = true;           // with calib_path: GPTQ error compensation (quant/gptq.h); false: diagonal weights only
  // Calibration text (importance-weighted search, GPTQ: quant/calibration.h), "self" (the model samples
  // its own, convert/tensor_quantizer.h) or "none"/empty (the default: the data-free scale search only).
  std::string calib_path;
  int64_t calib_tokens = 0;   // 0: 8192 of a text, 2048 self-generated
  int64_t calib_window = 512;
  std::function<void(const ConvertProgress&)> progress;
};

Status convert_hf_to_gguf(const std::string& hf_dir, const std::string& out_path, const ConvertOptions& options);

}  // namespace edgellm
