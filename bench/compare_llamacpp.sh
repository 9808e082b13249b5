#!/usr/bin/env bash
# edgellm against llama.cpp (llama-cpp-python, scripts/setup_llama_cpp.sh) on one GGUF file, same threads:
#   bench/compare_llamacpp.sh MODEL.gguf [-t N] [-p 32,64,128] [-n 128] [-r 3]
# One line per figure with both values and edgellm/llama.cpp; last line prefill_ratio=... decode_ratio=...
# EDGELLM_BIN picks the edgellm binary (default: build/edgellm, then build-*/edgellm).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ $# -lt 1 ] || [ "${1:0:1}" = "-" ]; then
  echo "usage: $0 MODEL.gguf [-t N] [-p 32,64,128] [-n 128] [-r REPS]" >&2
  exit 2
fi
python="${PYTHON:-$root/.venv/bin/python}"
if [ ! -x "$python" ]; then
  echo "compare_llamacpp: no $python; run scripts/setup.sh, then scripts/setup_llama_cpp.sh" >&2
  exit 1
fi
if [ -z "${EDGELLM_BIN:-}" ]; then
  for candidate in "$root/build/edgellm" "$root"/build-*/edgellm; do
    if [ -x "$candidate" ]; then EDGELLM_BIN="$candidate"; break; fi
  done
fi
if [ -z "${EDGELLM_BIN:-}" ] || [ ! -x "$EDGELLM_BIN" ]; then
  echo "compare_llamacpp: no edgellm binary; build it (cmake -S . -B build -G Ninja && ninja -C build edgellm) or set EDGELLM_BIN" >&2
  exit 1
fi
export EDGELLM_BIN
exec "$python" "$root/bench/compare_llamacpp.py" "$@"
