// The int8-activation matmul with the dot-product extension (SDOT: Cortex-A55/A76 and later, e.g.
// RK3588's big cores; RK3576's A72/A53 lack it). Compiled with -march=armv8.2-a+dotprod
// (cmake/isa_flags.cmake) and used only when HWCAP_ASIMDDP is set (kernel_table.cpp). The rest of the
// table (f32 activations, the activation quantizer) is the NEON one: SDOT changes only how the 16-byte
// integer dot products are formed, so outputs are bit-identical to matmul_neon.cpp's.
#if defined(__aarch64__)

#include <arm_neon.h>

#include "kernels/arm/matmul_q8act_neon.h"
#include "kernels/kernel_table.h"

namespace edgellm::kernels {
namespace {

struct DotSdot {
  static int32x4_t dot(int32x4_t acc, int8x16_t w, int8x16_t x) { return vdotq_s32(acc, w, x); }
};

KernelTable make_table() {
  KernelTable table = neon_kernels();
  table.isa = Isa::kNeonDot;
  arm::fill_q8act_column<DotSdot>(table);
  return table;
}

}  // namespace

const KernelTable& neon_dot_kernels() {
  static const KernelTable table = make_table();
  return table;
}

}  // namespace edgellm::kernels

#endif  // __aarch64__
