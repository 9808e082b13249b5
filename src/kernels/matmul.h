// Matrix products of a weight tensor with f32 activations, for every dequantizable weight type.
// The kernels are picked once per process from the CPU (EDGELLM_ISA=scalar|avx2|avx512|neon|neon_dot forces one;
// see kernels/kernel_table.h) and every variant is tested against the scalar reference.
#pragma once

#include <cstdint>

#include "format/tensor_ref.h"
#include "util/thread_pool.h"

namespace edgellm {

// Which activations a matmul multiplies with. kInt8: x is quantized on the fly per token into blocks of
// 32 (kernels/act_quant.h, Q8_0's scheme) and multiplied with integer dot products, as llama.cpp does
// for quantized weights: each product carries an extra relative error of at most ~1/254 of the block's
// largest |x|. Used for Q4_0, IQ4_NL, Q4_1, Q8_0 and e4_g64/g128/g256 when the kernel table has such a kernel;
// other types always use f32. kF32: dequantized weights times f32 activations. kDefault: kInt8 unless
// the environment says EDGELLM_ACTIVATIONS=f32 (read once per process and logged).
enum class MatmulActivations { kDefault, kF32, kInt8 };

// y[t][r] = sum_k W[r][k] * x[t][k] for t < n_tokens, r < R, where W has ne = {K, R} (ggml/PyTorch
// layout: row r of W is contiguous). x is [n_tokens][K] f32 row-major, y is [n_tokens][R].
// Any type with can_dequantize(type). Parallel over output rows with `pool`; results are identical for
// any thread count. Accumulates in f32. x and y must not overlap; W's shape and type are checked
// (a mismatch is a programmer error: the model loader validates files).
// The int8 path quantizes x into a per-calling-thread buffer that grows to the largest call and is reused
// (no allocation in steady state).
void matmul(const TensorRef& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool,
            MatmulActivations activations = MatmulActivations::kDefault);

// One product of matmul_same_input(): y[t * y_stride + r] = sum_k W[r][k] * x[t][k], r < W's rows.
struct MatmulOutput {
  const TensorRef* w = nullptr;
  float* y = nullptr;
  int64_t y_stride = 0;  // >= W's rows
};

// Several products of the same activations (q, k and v of a layer; gate and up) as one job over the
// pool: x is quantized once for all the int8 kernels among them, and the rows of all the weights are
// split among the threads together, so a small matrix (a k or v projection of 64 KiB) costs no fork/join
// of its own. Every W must have x's row length. Values bit-identical to matmul() of each.
void matmul_same_input(const MatmulOutput* outputs, int n_outputs, const float* x, int64_t n_tokens,
                       ThreadPool& pool, MatmulActivations activations = MatmulActivations::kDefault);

// The gated MLP's activation (SwiGLU): out[i] = silu(gate[i]) * up[i] with the active ISA's vector kernel
// (e^x by a polynomial, relative error ~1e-7 against edgellm::silu_mul's std::exp). out may alias.
// Not fused into the gate/up job: interleaving the two weights' rows per thread to apply it on the fly
// made each core's weight stream less sequential and decode ~2% slower than this separate pass over
// 2 x n_ff floats that are still in L1/L2.
void swiglu(const float* gate, const float* up, float* out, int64_t n);

// Rows [row_begin, row_end) of the same product, single-threaded, on the calling thread:
// y[t * y_stride + (r - row_begin)] for every token t. For fused or split projections (e.g. writing
// the q, k and v parts of a fused weight to separate buffers) and for callers that run their own
// parallel_for. Values are bit-identical to those matmul() writes.
void matmul_rows(const TensorRef& w, const float* x, int64_t n_tokens, float* y, int64_t y_stride,
                 int64_t row_begin, int64_t row_end, MatmulActivations activations = MatmulActivations::kDefault);

// Load-time repacking (kernels/repack.h): the bytes of W repacked for the kernels matmul() uses by
// default on this CPU, or 0 when they read W's rows as stored (other types or ISAs, f32 activations).
size_t matmul_packed_bytes(const TensorRef& w);
// Writes that copy to `out` (64-byte aligned, matmul_packed_bytes(w) bytes). With w.packed = out,
// matmul() and matmul_rows() read it instead of w.data whenever they use the int8 kernels; results are
// the same for any thread count, batch and row range, as without it. One range of rows at a time
// (e.g. to release the source's pages as it goes): row_begin a multiple of matmul_repack_rows(), and
// row_end too unless it is w.n_rows(); row_end < 0 means w.n_rows().
void matmul_repack(const TensorRef& w, uint8_t* out, int64_t row_begin = 0, int64_t row_end = -1);
int64_t matmul_repack_rows();

// Row `row` of W (e.g. a token embedding) as K floats, bit-exact with dequantize_row (read from
// w.packed when W has a packed copy).
void get_row(const TensorRef& w, int64_t row, float* out);

// Name of the instruction set the matmul kernels use ("scalar", "avx2", ...), for logs and benchmarks.
const char* matmul_isa_name();

// "int8" or "f32": the activations matmul(..., kDefault) uses for weights of `type` (for logs and status).
const char* matmul_activations_name(DType type);

}  // namespace edgellm
