// Synthetic models: seeded random weights at real (or tiny) dimensions, written as GGUF or as a
// Hugging Face directory. For benchmarks at real sizes and for tests that need no downloaded model.
// A tensor's values depend only on (seed, tensor role, layer), so the GGUF and the HF directory written
// with the same seed hold the same model (Llama's q/k rows are permuted for GGUF as llama.cpp does).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "format/dtype.h"
#include "model/config.h"
#include "util/expected.h"

namespace edgellm {

struct SynthPreset {
  std::string name;
  std::string description;
  ModelConfig config;
};

const std::vector<SynthPreset>& synth_presets();
Expected<SynthPreset> find_synth_preset(const std::string& name);

struct SynthOptions {
  DType weight_type = DType::kF16;  // matrices; norms and biases are always f32
  uint64_t seed = 42;
  float init_std = 0.02f;
};

// Writes a GGUF with llama.cpp's metadata keys, a synthetic byte-level BPE tokenizer of n_vocab tokens
// and a ChatML template. Atomic (temporary file + rename).
Status write_synthetic_gguf(const ModelConfig& config, const SynthOptions& options, const std::string& path);

// Writes config.json + model.safetensors (f32) in the layout transformers' save_pretrained uses for
// the architecture (Qwen 1 uses its remote-code names and config keys). Creates `dir` if needed.
Status write_synthetic_hf_dir(const ModelConfig& config, const SynthOptions& options, const std::string& dir);

}  // namespace edgellm
