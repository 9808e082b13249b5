# Compile flags of the ISA-specific kernel translation units, chosen by file name. The kernels in them are
# picked at run time (kernels/kernel_table.cpp), so only these files get the extra instructions; the rest
# of the build runs on the baseline (x86-64, or ARMv8.0-A with NEON on aarch64, e.g. Cortex-A72/A53).
#
#   *_avx2.cpp        -mavx2 -mfma -mf16c
#   *_avx512.cpp      AVX-512 F/BW/VL/DQ/VNNI
#   *_neon_dot.cpp    -march=armv8.2-a+dotprod (SDOT/UDOT: Cortex-A55/A76 and later, e.g. RK3588's A76)
#
# Floating-point contraction is off for the scalar references (kernels/ref/) and the NEON kernels: on
# aarch64 GCC fuses a * b + c into FMA by default (FMA is baseline there, and GCC implements
# vmulq_f32/vaddq_f32 as plain operators), which would break the references' bit-exactness with ggml and
# the NEON dequantizers' bit-identity with the reference weights. The NEON kernels use vfmaq_f32
# explicitly where they mean FMA.
# Each file of one architecture is guarded by #if for it, so on the other it compiles to nothing, without flags.
function(edgellm_set_isa_flags)
  set(x86 OFF)
  set(arm64 OFF)
  if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
    set(x86 ON)
  elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
    set(arm64 ON)
  endif()
  foreach(src IN LISTS ARGN)
    if(x86 AND src MATCHES "_avx2\\.cpp$")
      set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma;-mf16c")
    elseif(x86 AND src MATCHES "_avx512\\.cpp$")
      set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS "-mavx512f;-mavx512bw;-mavx512vl;-mavx512dq;-mavx512vnni;-mavx2;-mfma;-mf16c")
    elseif(arm64 AND src MATCHES "/kernels/arm/.*_dot\\.cpp$")
      set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS "-march=armv8.2-a+dotprod;-ffp-contract=off")
    elseif(src MATCHES "/kernels/(arm|ref)/")
      set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS "-ffp-contract=off")
    endif()
  endforeach()
endfunction()
