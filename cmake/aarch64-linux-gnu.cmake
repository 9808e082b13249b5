# Cross build for 64-bit ARM Linux (RK3576 / RK3588 boards) with Debian's cross compiler
# (g++-aarch64-linux-gnu) and Debian multiarch: the product's libraries for arm64 (libssl-dev:arm64,
# libicu-dev:arm64, ... — scripts/setup.sh installs them after `dpkg --add-architecture arm64`) live in
# /usr/lib/aarch64-linux-gnu and /usr/include/aarch64-linux-gnu beside the host's. The binaries are
# ordinary dynamically linked arm64 programs: on the build host they run under qemu-aarch64, which finds
# the arm64 loader and libraries where multiarch put them (/lib/ld-linux-aarch64.so.1).
#   cmake -S . -B build-aarch64 -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
# With -DEDGELLM_KERNELS_ONLY=ON only the kernels and their tests are built, linked statically (no arm64
# packages needed beyond the cross compiler's libc6-dev-arm64-cross).
# See docs/boards.md.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

set(EDGELLM_CROSS_PREFIX aarch64-linux-gnu- CACHE STRING "Prefix of the cross tools (gcc, g++)")
set(CMAKE_C_COMPILER ${EDGELLM_CROSS_PREFIX}gcc)
set(CMAKE_CXX_COMPILER ${EDGELLM_CROSS_PREFIX}g++)

# Libraries and headers only from the cross compiler's own tree and the arm64 multiarch directories
# (CMAKE_LIBRARY_ARCHITECTURE makes find_* look in lib/aarch64-linux-gnu and include/aarch64-linux-gnu
# under each root; the x86-64 libraries are in lib/x86_64-linux-gnu and never match).
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu /)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# pkg-config reads the arm64 .pc files (and the architecture-independent ones), not the host's.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")

# try_run, gtest_discover_tests and ctest run target binaries through this.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 CACHE STRING "Runs aarch64 binaries on the build host")
