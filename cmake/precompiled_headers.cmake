# Precompiled headers: the standard library, nlohmann-json, CLI11 and GoogleTest are parsed once per target
# (or once for all the tests) instead of once per translation unit. They make no difference to the code, only
# to the build time: every CI stage builds the product (Release, ASan+UBSan, TSan, aarch64) from scratch.
# EDGELLM_PCH=OFF builds without them (e.g. to check that each file includes what it uses).
option(EDGELLM_PCH "Precompile the common headers (faster builds)" ON)

set(EDGELLM_PCH_STD <algorithm> <array> <atomic> <chrono> <cmath> <cstdint> <cstdio> <cstdlib> <cstring>
  <filesystem> <fstream> <functional> <map> <memory> <mutex> <optional> <random> <sstream> <string>
  <string_view> <unordered_map> <utility> <vector>)

# edgellm_precompile_headers(TARGET HEADER...): the standard headers above and HEADERs, for C++ sources
# only. The ISA-specific kernels (cmake/isa_flags.cmake) are compiled with other target flags and skip it.
function(edgellm_precompile_headers target)
  if(NOT EDGELLM_PCH)
    return()
  endif()
  set(headers ${EDGELLM_PCH_STD} ${ARGN})
  list(TRANSFORM headers PREPEND "$<$<COMPILE_LANGUAGE:CXX>:")
  list(TRANSFORM headers APPEND ">")
  target_precompile_headers(${target} PRIVATE ${headers})
  get_target_property(sources ${target} SOURCES)
  foreach(src IN LISTS sources)
    get_source_file_property(options ${src} COMPILE_OPTIONS)
    if(options)
      set_source_files_properties(${src} TARGET_DIRECTORY ${target} PROPERTIES SKIP_PRECOMPILE_HEADERS ON)
    endif()
  endforeach()
endfunction()

# edgellm_reuse_precompiled_headers(TARGET FROM): TARGET uses FROM's precompiled header (same flags).
function(edgellm_reuse_precompiled_headers target from)
  if(EDGELLM_PCH)
    target_precompile_headers(${target} REUSE_FROM ${from})
  endif()
endfunction()
