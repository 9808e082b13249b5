#include "kernels/matmul.h"

#include "kernels/kernel_table.h"
#include "kernels/quant_edgellm.h"
#include "kernels/quantize.h"
#include "kernels/ref/quant_ref.h"
#include "util/check.h"

namespace edgellm {
namespace {

// Rows per parallel_for grain: the AVX2 decode tile is 4 rows; 16 keeps ranges tile-aligned and
// still splits the smallest projections (a few hundred rows) over the cores.
constexpr int64_t kRowGrain = 16;

kernels::MatmulArgs make_args(const TensorRef& w, const float* x, int64_t n_tokens, float* y,
                              int64_t y_stride) {
  EDGELLM_CHECK(w.data != nullptr && !w.ne.empty());
  EDGELLM_CHECK(w.ne.size() <= 2 || w.n_elements() == w.dim(0) * w.dim(1));
  EDGELLM_CHECK(can_dequantize(w.type));
  EDGELLM_CHECK(w.ne[0] % dtype_traits(w.type).block_size == 0);
  EDGELLM_CHECK(w.size_bytes == 0 || w.size_bytes >= w.row_bytes() * static_cast<size_t>(w.n_rows()));
  EDGELLM_CHECK(n_tokens >= 0 && (n_tokens == 0 || (x != nullptr && y != nullptr)));
  kernels::MatmulArgs args;
  args.type = w.type;
  args.w = static_cast<const uint8_t*>(w.data);
  args.w_row_bytes = w.row_bytes();
  args.k = w.ne[0];
  args.x = x;
  args.n_tokens = n_tokens;
  args.y = y;
  args.y_stride = y_stride;
  return args;
}

kernels::MatmulRowsFn kernel_for(DType type) {
  // edgellm-only types (ids >= 1000) sit outside the per-ISA tables; one scalar kernel serves them.
  if (dtype_is_edgellm_only(type)) return ref::matmul_rows_e4;
  const kernels::MatmulRowsFn fn = kernels::active_kernels().matmul_for(type);
  EDGELLM_CHECK(fn != nullptr);
  return fn;
}

}  // namespace

void matmul(const TensorRef& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool) {
  const int64_t n_rows = w.n_rows();
  const kernels::MatmulArgs args = make_args(w, x, n_tokens, y, n_rows);
  if (n_tokens == 0 || n_rows == 0) return;
  const kernels::MatmulRowsFn fn = kernel_for(w.type);
  pool.parallel_for(
      n_rows,
      [&](int64_t begin, int64_t end, int /*thread_idx*/) {
        kernels::MatmulArgs part = args;
        part.y = args.y + begin;
        fn(part, begin, end);
      },
      kRowGrain);
}

void matmul_rows(const TensorRef& w, const float* x, int64_t n_tokens, float* y, int64_t y_stride,
                 int64_t row_begin, int64_t row_end) {
  EDGELLM_CHECK(0 <= row_begin && row_begin <= row_end && row_end <= w.n_rows());
  EDGELLM_CHECK(y_stride >= row_end - row_begin);
  const kernels::MatmulArgs args = make_args(w, x, n_tokens, y, y_stride);
  if (n_tokens == 0 || row_begin == row_end) return;
  kernel_for(w.type)(args, row_begin, row_end);
}

void get_row(const TensorRef& w, int64_t row, float* out) {
  EDGELLM_CHECK(w.data != nullptr && !w.ne.empty());
  EDGELLM_CHECK(0 <= row && row < w.n_rows());
  const auto* bytes = static_cast<const uint8_t*>(w.data) + static_cast<size_t>(row) * w.row_bytes();
  if (dtype_is_edgellm_only(w.type)) {
    EDGELLM_CHECK(ref::dequantize_row_e4(w.type, bytes, out, w.ne[0]));
    return;
  }
  EDGELLM_CHECK(ref::dequantize_row(w.type, bytes, out, w.ne[0]));
}

const char* matmul_isa_name() { return kernels::isa_name(kernels::active_kernels().isa); }

}  // namespace edgellm
