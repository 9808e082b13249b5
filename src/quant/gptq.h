// GPTQ-style error compensation (Frantar et al., "GPTQ: Accurate Post-Training Quantization for
// Generative Pre-trained Transformers", 2022, Algorithm 1), for the grid types of quant/scale_search.h.
//
// A matrix W [n_rows][n_cols] (a row = one output, the columns = input channels) sees inputs a with
// second moment H = E[a a^T] (quant/calibration.h collects it). The output error of one row is
// (w - w_q)^T H (w - w_q). GPTQ quantizes the columns of a row in order; after rounding column i it
// moves the rounding error onto the columns not yet quantized, in the direction that minimises that
// quadratic form given the columns already fixed:
//     w[j] -= (w[i] - q[i]) / U[i][i] * U[i][j]   for j > i,
// where U is the upper Cholesky factor of H^-1 (H^-1 = U^T U). Each row is independent (H is shared).
// Groups: when the quantizer reaches the first column of a block, the block's scale (and offset) is
// chosen by the scale search on the error-updated weights, weighted by diag(H); then its columns are
// rounded onto that grid one by one. The output is the standard block layout of the type (a GPTQ Q4_0
// row is a plain Q4_0 row for every reader).
#pragma once

#include <cstdint>

#include "format/dtype.h"
#include "quant/scale_search.h"
#include "util/expected.h"
#include "util/thread_pool.h"

namespace edgellm {

struct GptqOptions {
  // Added to H's diagonal, as a fraction of its mean: keeps the Cholesky factorisations stable and
  // bounds the updates along directions the calibration text hardly excited (GPTQ's default 0.01).
  double damp = 0.01;
  ScaleSearchOptions search;
};

// Quantizes w [n_rows][n_cols] (row-major f32) to `type` (has_scale_search(type), n_cols a multiple of
// its block size) into out (n_rows * dtype_row_bytes(type, n_cols) bytes). hessian: [n_cols][n_cols]
// row-major, symmetric, positive semi-definite (the mean of a a^T over calibration tokens). Rows run in
// parallel on `pool`; the result does not depend on the thread count. Memory: n_cols^2 doubles plus one
// row per thread. Errors: bad sizes or type (kInvalidArgument), an H that stays indefinite after
// damping is raised a hundredfold (kInvalidArgument, naming `what`).
Status quantize_matrix_gptq(DType type, const float* w, int64_t n_rows, int64_t n_cols, const float* hessian,
                            const GptqOptions& options, ThreadPool& pool, uint8_t* out,
                            const std::string& what = "matrix");

}  // namespace edgellm
