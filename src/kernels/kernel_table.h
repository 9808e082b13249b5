// Kernel tables: one const table per instruction set, chosen once at startup from CPUID
// (google/highway: hwy/examples/skeleton.cc). Internal to kernels/ and its tests; the rest of the
// engine calls kernels/matmul.h.
#pragma once

#include <cstddef>
#include <cstdint>

#include "format/dtype.h"

namespace edgellm::kernels {

// kNeon: ARMv8.0-A Advanced SIMD (every aarch64 core); kNeonDot: plus the dot-product extension
// (SDOT, HWCAP_ASIMDDP: Cortex-A55/A76 and later, e.g. RK3588's big cores, not RK3576's A72/A53).
enum class Isa { kScalar = 0, kAvx2 = 1, kAvx512 = 2, kNeon = 3, kNeonDot = 4 };
const char* isa_name(Isa isa);  // "scalar", "avx2", "avx512", "neon", "neon_dot"

// One matmul over a range of weight rows. W is row-major with `w_row_bytes` bytes per row of `k`
// elements (ggml layout, ne = {k, n_rows}); x is [n_tokens][k] f32; the output of row r, token t goes
// to y[t * y_stride + (r - row_begin)].
struct MatmulArgs {
  DType type = DType::kF32;
  const uint8_t* w = nullptr;
  size_t w_row_bytes = 0;
  int64_t k = 0;
  const float* x = nullptr;
  int64_t n_tokens = 0;
  float* y = nullptr;
  int64_t y_stride = 0;
};

// Computes rows [row_begin, row_end) for all tokens. Single-threaded; allocates nothing. The value
// written for (r, t) depends only on row r and token t, never on the range or on other tokens, so
// any split over threads gives identical output.
using MatmulRowsFn = void (*)(const MatmulArgs& args, int64_t row_begin, int64_t row_end);

inline constexpr size_t kNumTypeSlots = 31;  // DType values are < 31

struct KernelTable {
  Isa isa = Isa::kScalar;
  // Weight type -> kernel with f32 activations (nullptr: type not runnable).
  // TODO(#6): a second column for activations quantized to Q8 on the fly (integer dot products);
  // matmul() will choose it per call once that numerics change is decided.
  // (A plain array: std::array's inline members would be instantiated in ISA-flagged TUs too.)
  MatmulRowsFn matmul_f32act[kNumTypeSlots] = {};

  MatmulRowsFn matmul_for(DType type) const {
    const auto slot = static_cast<size_t>(type);
    return slot < kNumTypeSlots ? matmul_f32act[slot] : nullptr;
  }
};

// The table matmul() uses: the best ISA this CPU supports, or the one EDGELLM_ISA=scalar|avx2|avx512
// asks for. Chosen on first use and logged (info level; a forced choice the CPU cannot run is a warning).
const KernelTable& active_kernels();

// The table of one ISA, or nullptr if it is not built in or this CPU lacks the instructions.
// For tests and benchmarks that compare variants.
const KernelTable* kernels_for_isa(Isa isa);

// Per-ISA tables (defined in their own translation units).
const KernelTable& scalar_kernels();
#if defined(__x86_64__) || defined(_M_X64)
const KernelTable& avx2_kernels();
const KernelTable& avx512_kernels();
#endif
#if defined(__aarch64__)
const KernelTable& neon_kernels();  // kernels/arm/matmul_neon.cpp
#endif

}  // namespace edgellm::kernels
