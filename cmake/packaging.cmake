# The Debian package: `cpack` in a build directory writes edgellm_<version>-<release>_<arch>.deb from the
# install rules (cmake/install.cmake). One package holds the command, both shared libraries with their
# headers and pkg-config/CMake files, the manual page, the docs and the (disabled) systemd unit: a board
# gets everything with `apt install ./edgellm_*_arm64.deb`. Depends: is computed by dpkg-shlibdeps from the
# Debian libraries the binaries link (OpenSSL, ICU, PCRE2, libedit, cpp-httplib, toml++, libsodium, SQLite, libstdc++).
# scripts/package.sh builds, checks (lintian) and test-installs it; docs/boards.md explains lintian's notes.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME edgellm)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "the edgellm developers")
# Who answers for the package; the project has no mail domain of its own yet (docs/boards.md, lintian notes).
set(EDGELLM_PACKAGE_MAINTAINER "edgellm maintainers <maintainers@users.noreply.r-seed-91bf8755.example>"
  CACHE STRING "Maintainer: field of the Debian package")
set(CPACK_PACKAGE_CONTACT "${EDGELLM_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "run Qwen-family and Llama language models on small CPUs, offline")
# The synopsis is CPACK_PACKAGE_DESCRIPTION_SUMMARY; this is the long description (CPack indents each line
# and turns an empty one into " .").
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
"edgellm converts Hugging Face models to quantized GGUF files and runs them on
the CPU of small boards (Rockchip RK3576/RK3588) and PCs, with hand-tuned
kernels for ARM NEON and x86 AVX2/AVX-512.

This package contains the edgellm command (convert, quantize, run, chat,
bench, serve, doctor), the edgellm.service unit for its OpenAI- and
Ollama-compatible HTTP server, libedgellm.so with edgellm.h, and
librkllmrt.so with rkllm.h so that applications written for the RKLLM
runtime build and run unchanged.")
set(CPACK_DEBIAN_PACKAGE_SECTION utils)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# The control files debhelper would write: shlibs (libedgellm.so.0; librkllmrt.so has the vendor's
# unversioned soname, which shlibs cannot express), the ldconfig trigger, and postinst/postrm that reload
# systemd's units. Shipping our own postinst/postrm also keeps CPack from writing ones that call ldconfig
# directly, which Debian replaced by the trigger.
configure_file(${PROJECT_SOURCE_DIR}/cmake/package/shlibs.in ${PROJECT_BINARY_DIR}/package/shlibs @ONLY)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${PROJECT_BINARY_DIR}/package/shlibs ${PROJECT_SOURCE_DIR}/cmake/package/triggers
  ${PROJECT_SOURCE_DIR}/cmake/package/postinst ${PROJECT_SOURCE_DIR}/cmake/package/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
# Debian's architecture name of the target (a cross build packages for the target, not the build host).
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64)$")
  set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE arm64)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE amd64)
endif()
include(CPack)
