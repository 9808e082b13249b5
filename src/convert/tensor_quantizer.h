// The per-tensor quantization step shared by `edgellm convert` (Hugging Face -> GGUF) and
// `edgellm quantize` (GGUF -> GGUF): rows in f32 -> the recipe's type, with the scale search of
// quant/scale_search.h and optional importance weights from calibration (quant/calibration.h).
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "convert/quant_recipe.h"
#include "format/gguf.h"
#include "quant/calibration.h"
#include "quant/gptq.h"
#include "quant/scale_search.h"
#include "util/expected.h"
#include "util/thread_pool.h"

namespace edgellm {

struct QuantizeSettings {
  bool search = true;  // false: plain round-to-nearest (for Q4_0/Q4_1/Q8_0 ggml's reference quantizers), for comparisons
  ScaleSearchOptions search_options;
  // With calibration second moments (stats->gram), matrices are quantized with GPTQ's error compensation
  // (quant/gptq.h) unless this is false (--no-gptq: the diagonal importance weighting only).
  bool gptq = true;
  GptqOptions gptq_options;
  std::shared_ptr<const ActivationStats> stats;  // null without --calib
  std::string calib_description;                 // "file.txt sha256:... (N tokens)" for metadata
};

// Importance weights of one tensor's input channels from calibration statistics: sqrt(E[a_j^2] + floor),
// the floor 1e-3 of their mean so no channel that was silent in the calibration text is ignored entirely.
// Empty when there are no statistics for `gguf_name` or their length is not `row_length`.
std::vector<float> tensor_importance(const ActivationStats* stats, const std::string& gguf_name, int64_t row_length);

// Quantizes n_rows rows of row_length floats into `out` (resized to dtype_row_bytes * n_rows), in
// parallel over rows on `pool`. `importance` is row_length weights or empty (uniform). When the
// calibration holds a Hessian for `gguf_name` (and search and gptq are on), GPTQ quantizes the matrix.
Status quantize_tensor_rows(DType type, const float* values, int64_t row_length, int64_t n_rows,
                            const std::vector<float>& importance, const QuantizeSettings& settings,
                            ThreadPool& pool, std::vector<uint8_t>& out, const std::string& gguf_name = {});

// Recipe, search method, calibration and the list of edgellm-only types in use
// (`edgellm.quant.edgellm_only_types`, absent when the file uses only standard GGUF types).
void write_quant_metadata(GgufWriter& w, const QuantRecipe& recipe, const QuantizeSettings& settings,
                          const std::set<DType>& types_used);

// `--calib self`: the model samples its own calibration text
// (quant/calibration.h, sample_calibration_tokens); `--calib none`: no calibration.
inline constexpr const char* kSelfCalibration = "self";
inline constexpr int64_t kSelfCalibrationTokens = 2048;  // 8 sequences of 256
inline constexpr int64_t kSelfCalibrationWindow = 256;
inline constexpr uint64_t kSelfCalibrationSeed = 7;
inline constexpr int64_t kTextCalibrationTokens = 8192;

// Runs the model at `model_path` (f32/f16/bf16 weights) over the first `max_tokens` tokens of the text
// file (max_tokens <= 0: kTextCalibrationTokens), in windows of `window` tokens; or, when text_path is
// kSelfCalibration, over max_tokens (<= 0: kSelfCalibrationTokens) tokens it samples itself. Errors name
// the file.
Expected<QuantizeSettings> calibrate(const std::string& model_path, const std::string& text_path, int64_t max_tokens,
                                     int64_t window, QuantizeSettings settings, ThreadPool& pool);

}  // namespace edgellm
