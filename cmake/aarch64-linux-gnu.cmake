# Cross build for 64-bit ARM Linux (RK3576 / RK3588 boards) with Debian's cross compiler
# (g++-aarch64-linux-gnu, installed by scripts/setup.sh). Usage, kernels and their tests only, run
# under qemu-aarch64 (the product's other dependencies are not installed for arm64 here):
#   cmake -S . -B build-aarch64 -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
#         -DEDGELLM_KERNELS_ONLY=ON
# See docs/boards.md.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(EDGELLM_CROSS_PREFIX aarch64-linux-gnu- CACHE STRING "Prefix of the cross tools (gcc, g++)")
set(CMAKE_C_COMPILER ${EDGELLM_CROSS_PREFIX}gcc)
set(CMAKE_CXX_COMPILER ${EDGELLM_CROSS_PREFIX}g++)

# Debian's cross packages install the target's headers and libraries under /usr/aarch64-linux-gnu.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Static executables run under qemu-aarch64 without an arm64 sysroot (-L) and copy to a board as is.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
# try_run and gtest_discover_tests run target binaries through this.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 CACHE STRING "Runs aarch64 binaries on the build host")
