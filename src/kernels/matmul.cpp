#include "kernels/matmul.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "kernels/act_quant.h"
#include "kernels/elementwise.h"
#include "kernels/kernel_table.h"
#include "kernels/quant_edgellm.h"
#include "kernels/quantize.h"
#include "kernels/repack.h"
#include "kernels/ref/quant_ref.h"
#include "util/check.h"
#include "util/log.h"

namespace edgellm {
namespace {

// Rows per parallel_for grain: the AVX2 decode tile is 4 rows and the packed AVX-512 panels 16
// (kernels/repack.h); 16 keeps ranges tile-aligned and still splits the smallest projections (a few
// hundred rows) over the cores.
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
  const kernels::MatmulRowsFn fn = kernels::active_kernels().matmul_for(type);
  if (fn != nullptr) return fn;
  // A table without the edgellm-only types (e.g. one still being written for a new ISA).
  if (dtype_is_edgellm_only(type)) return ref::matmul_rows_e4;
  EDGELLM_CHECK(fn != nullptr);
  return fn;
}

// EDGELLM_ACTIVATIONS=f32|int8, read once; anything else is a warning and the default (int8).
bool int8_by_default() {
  static const bool int8 = [] {
    const char* env = std::getenv("EDGELLM_ACTIVATIONS");
    bool use_int8 = true;
    if (env != nullptr && *env != '\0') {
      if (std::strcmp(env, "f32") == 0) {
        use_int8 = false;
      } else if (std::strcmp(env, "int8") != 0) {
        EDGELLM_LOG_WARN("kernels: EDGELLM_ACTIVATIONS=%s is not f32|int8; using int8", env);
      }
    }
    const kernels::KernelTable& table = kernels::active_kernels();
    EDGELLM_LOG_INFO("kernels: %s activations for q4_0=%s iq4_nl=%s q8_0=%s e4=%s (EDGELLM_ACTIVATIONS=%s)",
                     use_int8 ? "int8" : "f32",
                     use_int8 && table.matmul_q8act_for(DType::kQ4_0) ? "int8" : "f32",
                     use_int8 && table.matmul_q8act_for(DType::kIQ4_NL) ? "int8" : "f32",
                     use_int8 && table.matmul_q8act_for(DType::kQ8_0) ? "int8" : "f32",
                     use_int8 && table.matmul_q8act_for(DType::kE4G128) ? "int8" : "f32",
                     env != nullptr ? env : "(unset)");
    return use_int8;
  }();
  return int8;
}

// The int8 kernel for this call, or nullptr for f32 activations.
kernels::MatmulRowsFn int8_kernel_for(DType type, MatmulActivations activations) {
  if (activations == MatmulActivations::kF32) return nullptr;
  if (activations == MatmulActivations::kDefault && !int8_by_default()) return nullptr;
  return kernels::active_kernels().matmul_q8act_for(type);
}

// The kernel over w's packed copy when w has one and the int8 kernel `fn` is used (else `fn`); points
// args.w at the matrix it reads.
kernels::MatmulRowsFn use_packed(const TensorRef& w, kernels::MatmulRowsFn fn, kernels::MatmulArgs& args) {
  if (fn == nullptr || w.packed == nullptr) return fn;
  const kernels::MatmulRowsFn packed = kernels::active_kernels().matmul_q8act_packed_for(w.type);
  if (packed == nullptr) return fn;
  args.w = static_cast<const uint8_t*>(w.packed);
  return packed;
}

// Quantized activations of the calling thread: grows to the largest call, then reused.
struct FreeAligned {
  void operator()(uint8_t* p) const { std::free(p); }
};
uint8_t* act_scratch(size_t size_bytes) {
  thread_local std::unique_ptr<uint8_t, FreeAligned> buffer;
  thread_local size_t capacity = 0;
  if (size_bytes > capacity) {
    capacity = (size_bytes + 4095) / 4096 * 4096;
    buffer.reset(static_cast<uint8_t*>(std::aligned_alloc(64, capacity)));
    EDGELLM_CHECK(buffer != nullptr);
  }
  return buffer.get();
}

// Fills args.xq from args.x with the active table's quantizer, and args.xq_block_sums; over the pool
// when there is a batch.
void quantize_activations(kernels::MatmulArgs& args, ThreadPool* pool) {
  const kernels::QuantizeActFn quantize = kernels::active_kernels().quantize_act;
  args.xq_row_bytes = kernels::act_row_bytes(args.k);
  const int64_t n_blocks = kernels::act_blocks(args.k);
  const size_t xq_bytes = args.xq_row_bytes * static_cast<size_t>(args.n_tokens);
  uint8_t* xq = act_scratch(xq_bytes + static_cast<size_t>(args.n_tokens * n_blocks) * sizeof(int32_t));
  auto* sums = reinterpret_cast<int32_t*>(xq + xq_bytes);  // xq_bytes is a multiple of 64
  args.xq = xq;
  args.xq_block_sums = sums;
  const auto quantize_range = [&](int64_t begin, int64_t end, int /*thread_idx*/) {
    for (int64_t t = begin; t < end; ++t) {
      uint8_t* row = xq + t * args.xq_row_bytes;
      quantize(args.x + t * args.k, args.k, row);
      kernels::act_block_sums(row, args.k, sums + t * n_blocks);
    }
  };
  if (pool != nullptr && args.n_tokens >= 4) {
    pool->parallel_for(args.n_tokens, quantize_range, 1);
  } else {
    quantize_range(0, args.n_tokens, 0);
  }
}

constexpr int kMaxOutputs = 8;

// One weight of a job over several products of the same x: its kernel, arguments and grains.
struct Product {
  kernels::MatmulArgs args;
  kernels::MatmulRowsFn fn = nullptr;
  bool int8 = false;
  int64_t n_rows = 0;
  int64_t first_grain = 0;  // index of its first kRowGrain rows among all products' grains
  int64_t n_grains = 0;
};

// Fills products[0, n) for `outputs` (checked: same row length), quantizes x once for those that use the
// int8 kernels (over `pool` when there is a batch) and returns the total number of grains.
int64_t prepare_products(const MatmulOutput* outputs, int n, const float* x, int64_t n_tokens, ThreadPool& pool,
                         MatmulActivations activations, Product* products) {
  EDGELLM_CHECK(0 < n && n <= kMaxOutputs);
  int64_t n_grains = 0;
  bool any_int8 = false;
  for (int i = 0; i < n; ++i) {
    const MatmulOutput& o = outputs[i];
    EDGELLM_CHECK(o.w != nullptr && !o.w->ne.empty() && o.w->ne[0] == outputs[0].w->ne[0]);
    Product& p = products[i];
    p.n_rows = o.w->n_rows();
    EDGELLM_CHECK(o.y_stride >= p.n_rows);
    p.args = make_args(*o.w, x, n_tokens, o.y, o.y_stride);
    p.fn = use_packed(*o.w, int8_kernel_for(o.w->type, activations), p.args);
    p.int8 = p.fn != nullptr;
    if (!p.int8) p.fn = kernel_for(o.w->type);
    any_int8 = any_int8 || p.int8;
    p.first_grain = n_grains;
    p.n_grains = (p.n_rows + kRowGrain - 1) / kRowGrain;
    n_grains += p.n_grains;
  }
  if (any_int8 && n_tokens > 0) {
    kernels::MatmulArgs q = products[0].args;
    quantize_activations(q, &pool);
    for (int i = 0; i < n; ++i) {
      if (!products[i].int8) continue;
      products[i].args.xq = q.xq;
      products[i].args.xq_row_bytes = q.xq_row_bytes;
      products[i].args.xq_block_sums = q.xq_block_sums;
    }
  }
  return n_grains;
}

}  // namespace

void matmul(const TensorRef& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool,
            MatmulActivations activations) {
  const MatmulOutput output{&w, y, w.n_rows()};
  matmul_same_input(&output, 1, x, n_tokens, pool, activations);
}

void matmul_same_input(const MatmulOutput* outputs, int n_outputs, const float* x, int64_t n_tokens,
                       ThreadPool& pool, MatmulActivations activations) {
  Product products[kMaxOutputs];
  const int64_t n_grains = prepare_products(outputs, n_outputs, x, n_tokens, pool, activations, products);
  if (n_tokens == 0 || n_grains == 0) return;
  pool.parallel_for(n_grains, [&](int64_t grain_begin, int64_t grain_end, int /*thread_idx*/) {
    for (int i = 0; i < n_outputs; ++i) {
      const Product& p = products[i];
      const int64_t g0 = std::max(grain_begin, p.first_grain) - p.first_grain;
      const int64_t g1 = std::min(grain_end, p.first_grain + p.n_grains) - p.first_grain;
      if (g0 >= g1) continue;
      const int64_t begin = g0 * kRowGrain, end = std::min(p.n_rows, g1 * kRowGrain);
      kernels::MatmulArgs args = p.args;
      args.y = p.args.y + begin;  // the kernel writes row r at y[r - begin]
      p.fn(args, begin, end);
    }
  });
}

void swiglu(const float* gate, const float* up, float* out, int64_t n) {
  const kernels::SiluMulFn fn = kernels::active_kernels().silu_mul;
  if (fn != nullptr) {
    fn(gate, up, out, n);
  } else {
    silu_mul(gate, up, out, n);
  }
}

void matmul_rows(const TensorRef& w, const float* x, int64_t n_tokens, float* y, int64_t y_stride,
                 int64_t row_begin, int64_t row_end, MatmulActivations activations) {
  EDGELLM_CHECK(0 <= row_begin && row_begin <= row_end && row_end <= w.n_rows());
  EDGELLM_CHECK(y_stride >= row_end - row_begin);
  kernels::MatmulArgs args = make_args(w, x, n_tokens, y, y_stride);
  if (n_tokens == 0 || row_begin == row_end) return;
  kernels::MatmulRowsFn fn = use_packed(w, int8_kernel_for(w.type, activations), args);
  if (fn != nullptr) {
    quantize_activations(args, nullptr);
  } else {
    fn = kernel_for(w.type);
  }
  fn(args, row_begin, row_end);
}

size_t matmul_packed_bytes(const TensorRef& w) {
  if (w.data == nullptr || w.ne.empty() || !kernels::packable(w.type)) return 0;
  if (w.ne.size() > 2 && w.n_elements() != w.dim(0) * w.dim(1)) return 0;
  if (w.ne[0] % dtype_traits(w.type).block_size != 0) return 0;
  if (int8_kernel_for(w.type, MatmulActivations::kDefault) == nullptr) return 0;
  if (kernels::active_kernels().matmul_q8act_packed_for(w.type) == nullptr) return 0;
  return kernels::packed_bytes(w.type, w.n_rows(), w.ne[0]);
}

void matmul_repack(const TensorRef& w, uint8_t* out, int64_t row_begin, int64_t row_end) {
  const int64_t n_rows = w.n_rows();
  if (row_end < 0) row_end = n_rows;
  EDGELLM_CHECK(matmul_packed_bytes(w) > 0 && out != nullptr);
  EDGELLM_CHECK(reinterpret_cast<uintptr_t>(out) % 64 == 0);
  EDGELLM_CHECK(0 <= row_begin && row_begin <= row_end && row_end <= n_rows);
  EDGELLM_CHECK(row_begin % kernels::kPackRows == 0 && (row_end % kernels::kPackRows == 0 || row_end == n_rows));
  kernels::repack(w.type, static_cast<const uint8_t*>(w.data), w.row_bytes(), n_rows, w.ne[0], row_begin, row_end,
                  out);
}

int64_t matmul_repack_rows() { return kernels::kPackRows; }

void get_row(const TensorRef& w, int64_t row, float* out) {
  EDGELLM_CHECK(w.data != nullptr && !w.ne.empty());
  EDGELLM_CHECK(0 <= row && row < w.n_rows());
  const auto* bytes = static_cast<const uint8_t*>(w.data) + static_cast<size_t>(row) * w.row_bytes();
  if (w.packed != nullptr && kernels::packable(w.type)) {
    // From the packed copy: the file's pages of a repacked (e.g. tied embedding) matrix stay released.
    thread_local std::vector<uint8_t> unpacked;
    unpacked.resize(w.row_bytes());
    kernels::unpack_row(w.type, static_cast<const uint8_t*>(w.packed), w.ne[0], row, unpacked.data());
    bytes = unpacked.data();
  }
  if (dtype_is_edgellm_only(w.type)) {
    EDGELLM_CHECK(ref::dequantize_row_e4(w.type, bytes, out, w.ne[0]));
    return;
  }
  EDGELLM_CHECK(ref::dequantize_row(w.type, bytes, out, w.ne[0]));
}

const char* matmul_isa_name() { return kernels::isa_name(kernels::active_kernels().isa); }

const char* matmul_activations_name(DType type) {
  return int8_kernel_for(type, MatmulActivations::kDefault) != nullptr ? "int8" : "f32";
}

}  // namespace edgellm
