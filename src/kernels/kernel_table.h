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
// to y[t * y_stride + (r - row_begin)]. The int8-activation kernels read `xq` instead of `x`:
// [n_tokens][xq_row_bytes], the table's quantize_act output (kernels/act_quant.h).
struct MatmulArgs {
  DType type = DType::kF32;
  const uint8_t* w = nullptr;
  size_t w_row_bytes = 0;
  int64_t k = 0;
  const float* x = nullptr;
  int64_t n_tokens = 0;
  float* y = nullptr;
  int64_t y_stride = 0;
  const uint8_t* xq = nullptr;
  size_t xq_row_bytes = 0;
  // Optional, with xq: [n_tokens][ceil(k / 32)] the sum of each 32-block's int8 activations
  // (act_block_sums), computed once per product instead of by every call over a range of rows.
  const int32_t* xq_block_sums = nullptr;
};

// Computes rows [row_begin, row_end) for all tokens. Single-threaded; allocates nothing. The value
// written for (r, t) depends only on row r and token t, never on the range or on other tokens, so
// any split over threads gives identical output.
using MatmulRowsFn = void (*)(const MatmulArgs& args, int64_t row_begin, int64_t row_end);

// Quantizes one token's k activations into the int8 activation format (kernels/act_quant.h):
// act_row_bytes(k) bytes at `out`. Every ISA's quantizer writes the same bytes.
using QuantizeActFn = void (*)(const float* x, int64_t k, uint8_t* out);

// out[i] = silu(gate[i]) * up[i] = gate[i] / (1 + e^-gate[i]) * up[i] (SwiGLU); out may alias gate or up.
// The vector variants compute e^x with a polynomial (relative error ~1e-7 against std::exp).
using SiluMulFn = void (*)(const float* gate, const float* up, float* out, int64_t n);

inline constexpr size_t kNumTypeSlots = 31;  // ggml DType values are < 31
// The edgellm-only types (DType 1000..1002) get the slots after ggml's (type_slot()).
inline constexpr size_t kNumSlots = kNumTypeSlots + 3;

// Index of a type in the table columns, or kNumSlots if it has none.
inline size_t type_slot(DType type) {
  const auto id = static_cast<size_t>(type);
  if (id < kNumTypeSlots) return id;
  if (id >= 1000 && id < 1003) return kNumTypeSlots + (id - 1000);
  return kNumSlots;
}

struct KernelTable {
  Isa isa = Isa::kScalar;
  // Weight type -> kernel with f32 activations (nullptr: type not runnable).
  // (Plain arrays: std::array's inline members would be instantiated in ISA-flagged TUs too.)
  MatmulRowsFn matmul_f32act[kNumSlots] = {};
  // Weight type -> kernel with int8 activations (integer dot products; reads MatmulArgs::xq), and the
  // quantizer that writes them. nullptr (any entry, or quantize_act): matmul() uses f32 activations,
  // so a table that fills only matmul_f32act keeps working.
  MatmulRowsFn matmul_q8act[kNumSlots] = {};
  QuantizeActFn quantize_act = nullptr;
  // Weight type -> int8-activation kernel over weights repacked at load (kernels/repack.h; MatmulArgs::w
  // is then the packed matrix and w_row_bytes unused), or nullptr: the type is not repacked for this ISA.
  MatmulRowsFn matmul_q8act_packed[kNumSlots] = {};
  // SwiGLU's elementwise step (edgellm::silu_mul, the scalar reference, when nullptr).
  SiluMulFn silu_mul = nullptr;

  MatmulRowsFn matmul_for(DType type) const {
    const size_t slot = type_slot(type);
    return slot < kNumSlots ? matmul_f32act[slot] : nullptr;
  }
  MatmulRowsFn matmul_q8act_for(DType type) const {
    const size_t slot = type_slot(type);
    return slot < kNumSlots && quantize_act != nullptr ? matmul_q8act[slot] : nullptr;
  }
  MatmulRowsFn matmul_q8act_packed_for(DType type) const {
    const size_t slot = type_slot(type);
    return slot < kNumSlots && quantize_act != nullptr ? matmul_q8act_packed[slot] : nullptr;
  }
};

// The table matmul() uses: the best ISA this CPU supports, or the one EDGELLM_ISA=scalar|avx2|avx512|neon|neon_dot
// asks for. Chosen on first use and logged (info level; a forced choice the CPU cannot run is a warning).
const KernelTable& active_kernels();
// What the CPU can run (CPUID): AVX2 with FMA and F16C; AVX-512 F/BW/VL/DQ with VNNI. false off x86-64.
bool cpu_has_avx2();
bool cpu_has_avx512();

// The table of one ISA, or nullptr if it is not built in or this CPU lacks the instructions.
// For tests and benchmarks that compare variants.
const KernelTable* kernels_for_isa(Isa isa);

// Per-ISA tables (defined in their own translation units).
const KernelTable& scalar_kernels();
#if defined(__x86_64__) || defined(_M_X64)
const KernelTable& avx2_kernels();
const KernelTable& avx512_kernels();
// Fill the int8-activation column (x86/matmul_q8act_avx2.cpp, x86/matmul_q8act_avx512.cpp).
void fill_q8act_avx2(KernelTable& table);
void fill_q8act_avx512(KernelTable& table);
void silu_mul_avx2(const float* gate, const float* up, float* out, int64_t n);    // x86/silu_avx2.cpp
void silu_mul_avx512(const float* gate, const float* up, float* out, int64_t n);  // x86/silu_avx512.cpp
#endif
#if defined(__aarch64__)
const KernelTable& neon_kernels();      // kernels/arm/matmul_neon.cpp
const KernelTable& neon_dot_kernels();  // kernels/arm/matmul_neon_dot.cpp (needs HWCAP_ASIMDDP)
void silu_mul_neon(const float* gate, const float* up, float* out, int64_t n);  // kernels/arm/silu_neon.cpp
#endif

}  // namespace edgellm::kernels
