#!/usr/bin/env bash
# Builds edgellm and runs every test:
#   1. installs what is missing (scripts/setup.sh, idempotent),
#   2. Release build + all tests (C++ unit tests and the Python reference tests against transformers,
#      tokenizers, gguf),
#   3. ASan+UBSan build + the C++ unit tests.
# Usage: scripts/test.sh [ctest -R filter]
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}
FILTER=()
[ $# -gt 0 ] && FILTER=(-R "$1")

./scripts/setup.sh

echo "== Release build"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$JOBS"
echo "== Release tests"
(cd build && ctest --output-on-failure -j "$JOBS" --timeout 1200 "${FILTER[@]}")

echo "== ASan+UBSan build"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEDGELLM_SANITIZE=address,undefined \
  -DEDGELLM_BUILD_BENCH=OFF >/dev/null
cmake --build build-asan -j "$JOBS"
echo "== ASan+UBSan tests"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --output-on-failure -j "$JOBS" --timeout 1200 "${FILTER[@]}")
echo "== all tests passed"
