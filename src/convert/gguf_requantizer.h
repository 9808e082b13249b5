// edgellm quantize IN.gguf -o OUT.gguf --quant TYPE: re-quantizes the matrices of an f32/f16/bf16 GGUF
// to a recipe, copying every other tensor and all metadata (general.file_type, the edgellm.quant.*
// keys and the content digest are rewritten). Memory is bounded by the largest tensor; the output
// appears only when complete (GgufWriter).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "convert/hf_converter.h"
#include "util/expected.h"

namespace edgellm {

// Uses ConvertOptions' quant, n_threads, search, calib_* and progress fields.
// Errors: unreadable or invalid input (from Model::load), unknown recipe, a matrix already stored in a
// quantized type other than the target (re-quantizing loses quality twice: convert from the f16 file).
Status requantize_gguf(const std::string& in_path, const std::string& out_path, const ConvertOptions& options);

}  // namespace edgellm
