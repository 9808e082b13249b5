// Writes a ModelConfig as llama.cpp's `{arch}.*` metadata keys (the inverse of config_from_gguf).
#pragma once

#include "format/gguf.h"
#include "model/config.h"

namespace edgellm {

void write_config_metadata(const ModelConfig& config, GgufWriter& w);

// llama.cpp's LLAMA_FTYPE number for general.file_type given the main matrix type.
uint32_t gguf_file_type(DType matrix_type);

// Llama 3 rope scaling as llama.cpp stores it: per-frequency divisors (the rope_freqs tensor), such that
// inv_freq / factor equals transformers' llama3-scaled inv_freq. n_rot/2 values.
std::vector<float> llama3_rope_factors(const ModelConfig& config);

}  // namespace edgellm
