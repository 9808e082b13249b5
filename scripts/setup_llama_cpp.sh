#!/usr/bin/env bash
# Opt-in: installs llama-cpp-python (requirements-llamacpp.txt) into the project's .venv, built from its
# source distribution as a CPU-only library. Run scripts/setup.sh first. Takes long: it compiles llama.cpp
# (about 70 minutes on 2 busy cores). Tests that need it skip with a message when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  echo "setup_llama_cpp: run scripts/setup.sh first (no .venv)" >&2
  exit 1
fi
if .venv/bin/python -c "import llama_cpp, sys; sys.exit(0 if llama_cpp.__version__ == '0.3.36' else 1)" 2>/dev/null; then
  echo "setup_llama_cpp: llama-cpp-python 0.3.36 already installed"
  exit 0
fi
# CPU build; no network downloads at run time (curl off); no server, examples or tests.
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=ON -DGGML_BLAS=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF}"
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
echo "setup_llama_cpp: building llama-cpp-python from source (CMAKE_ARGS=$CMAKE_ARGS)"
.venv/bin/python -m pip install --no-binary llama-cpp-python -r requirements-llamacpp.txt
echo "setup_llama_cpp: done"
