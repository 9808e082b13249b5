// Matrix products of a weight tensor with f32 activations, for every dequantizable weight type.
// The kernels are picked once per process from the CPU (EDGELLM_ISA=scalar|avx2|avx512 forces one;
// see kernels/kernel_table.h) and every variant is tested against the scalar reference.
#pragma once

#include <cstdint>

#include "format/tensor_ref.h"
#include "util/thread_pool.h"

namespace edgellm {

// y[t][r] = sum_k W[r][k] * x[t][k] for t < n_tokens, r < R, where W has ne = {K, R} (ggml/PyTorch
// layout: row r of W is contiguous). x is [n_tokens][K] f32 row-major, y is [n_tokens][R].
// Any type with can_dequantize(type). Parallel over output rows with `pool`; results are identical for
// any thread count. Accumulates in f32. x and y must not overlap; W's shape and type are checked
// (a mismatch is a programmer error: the model loader validates files).
void matmul(const TensorRef& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool);

// Rows [row_begin, row_end) of the same product, single-threaded, on the calling thread:
// y[t * y_stride + (r - row_begin)] for every token t. For fused or split projections (e.g. writing
// the q, k and v parts of a fused weight to separate buffers) and for callers that run their own
// parallel_for. Values are bit-identical to those matmul() writes.
void matmul_rows(const TensorRef& w, const float* x, int64_t n_tokens, float* y, int64_t y_stride,
                 int64_t row_begin, int64_t row_end);

// Row `row` of W (e.g. a token embedding) as K floats, bit-exact with dequantize_row.
void get_row(const TensorRef& w, int64_t row, float* out);

// Name of the instruction set the matmul kernels use ("scalar", "avx2", ...), for logs and benchmarks.
const char* matmul_isa_name();

}  // namespace edgellm
