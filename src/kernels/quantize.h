// Row quantization and dequantization for the weight types of format/dtype.h, in ggml's block
// layouts (kernels/quant_blocks.h). Thread-safe; no allocation.
#pragma once

#include <cstdint>

#include "format/dtype.h"
#include "util/expected.h"

namespace edgellm {

// Reference quantization of n floats into `dst` (dtype_row_bytes(type, n) bytes), bit-exact with
// ggml's *_ref functions: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1; and IQ4_NL by plain rounding
// to the nearest codebook value (ref/quant_ref.h; not ggml's scale search).
// Errors: kInvalidArgument if n is not a multiple of the block size, kUnsupported for other types.
Status quantize_row(DType type, const float* src, void* dst, int64_t n);

// Dequantization of n elements of `type` into f32, bit-exact with ggml's dequantize_row_*:
// F32, F16, BF16, Q4_0, IQ4_NL, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K.
// Errors as quantize_row.
Status dequantize_row(DType type, const void* src, float* dst, int64_t n);

bool can_quantize(DType type);
bool can_dequantize(DType type);

}  // namespace edgellm
