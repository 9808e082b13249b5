// Picks the kernel table once, from CPUID and EDGELLM_ISA, and logs the choice.
#include "kernels/kernel_table.h"

#include <cstdlib>
#include <cstring>
#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#endif

#if defined(__aarch64__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

#include "kernels/act_quant.h"
#include "kernels/quant_edgellm.h"
#include "kernels/quantize.h"
#include "kernels/ref/matmul_ref.h"
#include "util/log.h"

namespace edgellm::kernels {
namespace {

KernelTable make_scalar_table() {
  KernelTable table;
  table.isa = Isa::kScalar;
  for (size_t slot = 0; slot < kNumTypeSlots; ++slot) {
    const auto traits = dtype_traits(static_cast<uint32_t>(slot));
    if (traits && can_dequantize(static_cast<DType>(slot))) table.matmul_f32act[slot] = ref::matmul_rows;
  }
  for (DType type : {DType::kE4G64, DType::kE4G128, DType::kE4G256}) {
    table.matmul_f32act[type_slot(type)] = ref::matmul_rows_e4;
  }
  for (DType type : {DType::kQ4_0, DType::kIQ4_NL, DType::kQ4_1, DType::kQ8_0, DType::kE4G64, DType::kE4G128,
                     DType::kE4G256}) {
    if (ref::q8act_supported(type)) table.matmul_q8act[type_slot(type)] = ref::matmul_rows_q8act;
  }
  table.quantize_act = ref::quantize_act;
  return table;
}

// ---- aarch64: NEON is baseline; the dot-product extension is read from the kernel's HWCAP bits ----
bool cpu_has_neon_dot() {
#if defined(__aarch64__)
  return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#else
  return false;
#endif
}
// ---- end aarch64 ----

const KernelTable& select_kernels() {
  const KernelTable* best = kernels_for_isa(Isa::kAvx512);
  if (best == nullptr) best = kernels_for_isa(Isa::kAvx2);
  if (best == nullptr) best = kernels_for_isa(Isa::kNeonDot);
  if (best == nullptr) best = kernels_for_isa(Isa::kNeon);
  if (best == nullptr) best = &scalar_kernels();

  const char* forced = std::getenv("EDGELLM_ISA");
  const KernelTable* chosen = best;
  if (forced != nullptr && *forced != '\0') {
    const Isa candidates[] = {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kNeon, Isa::kNeonDot};
    bool known = false;
    for (Isa isa : candidates) {
      if (std::strcmp(forced, isa_name(isa)) != 0) continue;
      known = true;
      if (const KernelTable* table = kernels_for_isa(isa)) {
        chosen = table;
      } else {
        EDGELLM_LOG_WARN("kernels: EDGELLM_ISA=%s is not available (this CPU lacks the instructions); using %s",
                         forced, isa_name(best->isa));
      }
    }
    if (!known) {
      EDGELLM_LOG_WARN("kernels: EDGELLM_ISA=%s is not one of scalar|avx2|avx512|neon|neon_dot; using %s", forced,
                       isa_name(best->isa));
    }
  }
  EDGELLM_LOG_INFO("kernels: using %s matmul kernels (cpu: avx2=%d avx512=%d asimddp=%d; EDGELLM_ISA=%s)",
                   isa_name(chosen->isa), cpu_has_avx2() ? 1 : 0, cpu_has_avx512() ? 1 : 0,
                   cpu_has_neon_dot() ? 1 : 0, forced != nullptr ? forced : "(unset)");
  return *chosen;
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
    case Isa::kNeon: return "neon";
    case Isa::kNeonDot: return "neon_dot";
  }
  return "unknown";
}

const KernelTable& scalar_kernels() {
  static const KernelTable table = make_scalar_table();
  return table;
}

const KernelTable* kernels_for_isa(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return &scalar_kernels();
    case Isa::kAvx2:
#if defined(__x86_64__) || defined(_M_X64)
      if (cpu_has_avx2()) return &avx2_kernels();
#endif
      return nullptr;
    case Isa::kAvx512:
#if defined(__x86_64__) || defined(_M_X64)
      if (cpu_has_avx512()) return &avx512_kernels();
#endif
      return nullptr;
    case Isa::kNeon:
#if defined(__aarch64__)
      return &neon_kernels();
#endif
      return nullptr;
    case Isa::kNeonDot:
#if defined(__aarch64__)
      if (cpu_has_neon_dot()) return &neon_dot_kernels();
#endif
      return nullptr;
  }
  return nullptr;
}

const KernelTable& active_kernels() {
  static const KernelTable& table = select_kernels();
  return table;
}

bool cpu_has_avx2() {
#if defined(__x86_64__) || defined(_M_X64)
  // F16C from CPUID leaf 1 (ECX bit 29): clang before 15 has no "f16c" for __builtin_cpu_supports.
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & (1u << 29)) != 0;
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
#else
  return false;
#endif
}

bool cpu_has_avx512() {
#if defined(__x86_64__) || defined(_M_X64)
  return cpu_has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vnni");
#else
  return false;
#endif
}

}  // namespace edgellm::kernels
