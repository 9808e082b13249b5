# EDGELLM_KERNELS_ONLY=ON: only the matmul/quantization kernels (src/kernels, with the few pieces of
# src/util and src/format they use), the attention kernels (src/model/attention*.cpp) and their GoogleTest
# tests, with no other dependency than a C++20 compiler and GoogleTest's sources (/usr/src/googletest,
# from Debian's libgtest-dev). This is how the aarch64 kernels are cross-built and tested under qemu
# (scripts/test.sh, ARM stage; docs/boards.md): OpenSSL, ICU, PCRE2 and SQLite are not installed for
# arm64 on the build machine.
# Included from the top-level CMakeLists.txt, which returns right after.

include(${CMAKE_CURRENT_LIST_DIR}/isa_flags.cmake)
find_package(Threads REQUIRED)
# Cross-built kernel tests link statically: they run under qemu-aarch64 with no arm64 libraries installed.
if(CMAKE_CROSSCOMPILING)
  add_link_options(-static)
endif()

file(GLOB_RECURSE EDGELLM_KERNEL_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/kernels/*.cpp)
# The attention kernels (scalar, AVX2, AVX-512, NEON variants) need nothing else either.
file(GLOB EDGELLM_ATTENTION_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/model/attention*.cpp)
list(APPEND EDGELLM_KERNEL_SOURCES ${EDGELLM_ATTENTION_SOURCES})
list(APPEND EDGELLM_KERNEL_SOURCES
  ${PROJECT_SOURCE_DIR}/src/util/log.cpp
  ${PROJECT_SOURCE_DIR}/src/util/error.cpp
  ${PROJECT_SOURCE_DIR}/src/util/thread_pool.cpp
  ${PROJECT_SOURCE_DIR}/src/util/cpu_topology.cpp
  ${PROJECT_SOURCE_DIR}/src/util/huge_pages.cpp
  ${PROJECT_SOURCE_DIR}/src/format/dtype.cpp
  ${PROJECT_SOURCE_DIR}/src/format/tensor_ref.cpp)
edgellm_set_isa_flags(${EDGELLM_KERNEL_SOURCES})
add_library(edgellm_kernels STATIC ${EDGELLM_KERNEL_SOURCES})
target_include_directories(edgellm_kernels PUBLIC ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(edgellm_kernels PUBLIC Threads::Threads)

if(EDGELLM_BUILD_TESTS)
  enable_testing()
  set(EDGELLM_GTEST_SOURCE_DIR /usr/src/googletest CACHE PATH "GoogleTest sources (Debian: libgtest-dev)")
  set(BUILD_GMOCK OFF CACHE BOOL "" FORCE)
  set(INSTALL_GTEST OFF CACHE BOOL "" FORCE)
  add_subdirectory(${EDGELLM_GTEST_SOURCE_DIR} ${PROJECT_BINARY_DIR}/googletest EXCLUDE_FROM_ALL SYSTEM)
  target_compile_options(gtest PRIVATE -w)  # GCC 12 -Wrestrict noise in gtest.cc, not ours
  # The kernel tests: every tests/kernels_*_test.cpp, and the quantizers' rounding (quant_test). A test
  # named kernels_*_test.cpp may use only src/kernels and the util/format files above: it runs here.
  file(GLOB EDGELLM_KERNEL_TESTS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/kernels_*_test.cpp)
  list(APPEND EDGELLM_KERNEL_TESTS ${PROJECT_SOURCE_DIR}/tests/quant_test.cpp)
  foreach(test_src IN LISTS EDGELLM_KERNEL_TESTS)
    get_filename_component(test_name ${test_src} NAME_WE)
    add_executable(${test_name} ${test_src})
    set_target_properties(${test_name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/tests)
    target_link_libraries(${test_name} PRIVATE edgellm_kernels GTest::gtest_main)
    # Cross builds run through CMAKE_CROSSCOMPILING_EMULATOR (qemu-aarch64; see the toolchain file).
    add_test(NAME ${test_name} COMMAND ${test_name})
  endforeach()
endif()
