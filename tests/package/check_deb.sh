#!/usr/bin/env bash
# Checks an edgellm Debian package as its users meet it (scripts/test.sh runs it on the amd64 and arm64
# packages; issue 14):
#   1. lintian: no error or warning but the ones explained in cmake/package/lintian-explained;
#   2. the files a user, an application and a build need are there; Depends: is resolvable here (amd64);
#   3. unpacked into a fresh root (dpkg-deb -x; no system files are touched), the packaged `edgellm` prints
#      its version and generates the same greedy text as the build tree's binary;
#   4. programs built outside the tree against the unpacked package — with find_package(edgellm) and with
#      pkg-config — run: the C API (edgellm.h, libedgellm.so) and an RKLLM-style program (rkllm.h,
#      librkllmrt.so).
# Usage: tests/package/check_deb.sh PACKAGE.deb REFERENCE_EDGELLM [EMULATOR ARGS...]
#   REFERENCE_EDGELLM: the build tree's binary of the same architecture (writes the test model, and its
#   greedy text is what the packaged binary must print). EMULATOR: how to run the package's binaries when
#   they are for another architecture (qemu-aarch64 -cpu cortex-a72); the build then uses
#   cmake/aarch64-linux-gnu.cmake.
set -euo pipefail
deb=$(realpath "$1")
ref_bin=$(realpath "$2")
shift 2
emu=("$@")
src=$(cd "$(dirname "$0")/../.." && pwd)
arch=$(dpkg-deb -f "$deb" Architecture)
multiarch=$(dpkg-architecture -a "$arch" -qDEB_HOST_MULTIARCH 2>/dev/null)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "check_deb: FAIL: $*" >&2; exit 1; }
echo "check_deb: $(basename "$deb") ($arch)"

# 1. lintian
lintian --fail-on error,warning --suppress-tags-from-file "$src/cmake/package/lintian-explained" "$deb" ||
  fail "lintian reported an error or warning not explained in cmake/package/lintian-explained"
echo "check_deb: lintian: no unexplained errors or warnings"

# 2. contents and dependencies
root=$work/root
dpkg-deb -x "$deb" "$root"
lib=usr/lib/$multiarch
for f in usr/bin/edgellm "$lib/libedgellm.so.0" "$lib/libedgellm.so" "$lib/librkllmrt.so" \
  usr/include/edgellm/edgellm.h usr/include/rkllm.h "$lib/pkgconfig/edgellm.pc" "$lib/pkgconfig/rkllmrt.pc" \
  "$lib/cmake/edgellm/edgellmConfig.cmake" usr/share/man/man1/edgellm.1.gz usr/share/doc/edgellm/copyright \
  usr/lib/systemd/system/edgellm.service usr/share/doc/edgellm/docs/serving.md; do
  [ -e "$root/$f" ] || fail "the package lacks /$f"
done
depends=$(dpkg-deb -f "$deb" Depends)
for dep in libc6 libstdc++6 libssl3 libicu72 libpcre2-8-0 libedit2 libcpp-httplib0.11 libsodium23 libsqlite3-0; do
  [[ "$depends" == *"$dep "* || "$depends" == *"$dep," || "$depends" == *"$dep" ]] ||
    fail "Depends: lacks $dep ($depends)"
done
if [ "$arch" = "$(dpkg --print-architecture)" ]; then
  apt-get install --simulate --no-install-recommends "$deb" >"$work/apt.log" 2>&1 ||
    { cat "$work/apt.log" >&2; fail "apt cannot resolve the package's dependencies"; }
fi
if command -v systemd-analyze >/dev/null; then
  # Not installed here, so its ExecStart binary and man page are not found: those two lines are expected.
  problems=$(systemd-analyze verify "$root/usr/lib/systemd/system/edgellm.service" 2>&1 |
    grep -v -e "is not executable" -e "Command 'man edgellm(1)' failed" -e '^$' || true)
  [ -z "$problems" ] || fail "systemd-analyze verify: $problems"
fi
echo "check_deb: contents and Depends: ok ($depends)"

# 3. the packaged command
packaged=("${emu[@]}" "$root/usr/bin/edgellm")
version=$("${packaged[@]}" --version)
[ "$version" = "edgellm $(dpkg-deb -f "$deb" Version | sed 's/-[^-]*$//')" ] || fail "--version printed '$version'"
model=$work/tiny.gguf
"${emu[@]}" "$ref_bin" synth --preset tiny --type q8_0 -o "$model" >/dev/null
want=$("${emu[@]}" "$ref_bin" run -m "$model" -p "Once upon a time" -n 12 --temp 0 -t 1 --raw 2>/dev/null)
got=$("${packaged[@]}" run -m "$model" -p "Once upon a time" -n 12 --temp 0 -t 1 --raw 2>/dev/null)
[ -n "$got" ] && [ "$got" = "$want" ] || fail "the packaged edgellm generated '$got', the build tree's '$want'"
echo "check_deb: packaged edgellm: $version, greedy text equal to the build tree's"

# 4. applications built against the package
toolchain=()
cc=${CC:-cc}
if [ ${#emu[@]} -gt 0 ]; then
  toolchain=(-DCMAKE_TOOLCHAIN_FILE="$src/cmake/aarch64-linux-gnu.cmake")
  cc=aarch64-linux-gnu-gcc
fi
cmake -S "$src/tests/package/consumer" -B "$work/consumer" -G Ninja "${toolchain[@]}" \
  -DCMAKE_PREFIX_PATH="$root/usr" -DCMAKE_FIND_ROOT_PATH="$root" >"$work/consumer.log" 2>&1 ||
  { cat "$work/consumer.log" >&2; fail "find_package(edgellm) against the package"; }
cmake --build "$work/consumer" >>"$work/consumer.log" 2>&1 || { cat "$work/consumer.log" >&2; fail "consumer build"; }
export PKG_CONFIG_SYSROOT_DIR=$root PKG_CONFIG_LIBDIR=$root/$lib/pkgconfig
# shellcheck disable=SC2046
$cc -std=c99 -Wall -o "$work/edgellm_hello_pc" "$src/tests/package/consumer/edgellm_hello.c" $(pkg-config --cflags --libs edgellm)
# shellcheck disable=SC2046
$cc -std=gnu99 -Wall -o "$work/rkllm_hello_pc" "$src/tests/package/consumer/rkllm_hello.c" $(pkg-config --cflags --libs rkllmrt)
unset PKG_CONFIG_SYSROOT_DIR PKG_CONFIG_LIBDIR
for prog in "$work/consumer/edgellm_hello" "$work/edgellm_hello_pc" "$work/consumer/rkllm_hello" "$work/rkllm_hello_pc"; do
  out=$(LD_LIBRARY_PATH="$root/$lib" "${emu[@]}" "$prog" "$model" "Once upon a time" 8) ||
    fail "$(basename "$prog") failed: $out"
  case "$prog" in
    *edgellm_hello*) [[ "$out" == *"edgellm 0."*": ok"* ]] || fail "$(basename "$prog") printed '$out'" ;;
    *rkllm_hello*) [[ "$out" == *"rkllm_run: 0"* ]] || fail "$(basename "$prog") printed '$out'" ;;
  esac
done
echo "check_deb: C API and RKLLM programs built with find_package(edgellm) and with pkg-config run"
echo "check_deb: $(basename "$deb") ok"
