#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: install what is needed, build edgellm, convert the bundled
# trained Qwen2 model (tests/models/qwen2-tiny, a Hugging Face directory) to a 4-bit GGUF, and chat
# with it. On a terminal the chat is interactive; otherwise a short scripted conversation is shown.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)"

MODEL_DIR=${MODEL_DIR:-tests/models/qwen2-tiny}
if [ ! -f "$MODEL_DIR/config.json" ]; then
  echo "quickstart: $MODEL_DIR has no model; using stories260K (tests/data/reference) instead" >&2
  MODEL_DIR=build/reference/data/stories260K-hf
fi
QUANT=${QUANT:-w4a16_g32}
mkdir -p out
OUT="out/$(basename "$MODEL_DIR")-$QUANT.gguf"
./build/edgellm convert "$MODEL_DIR" -o "$OUT" -q "$QUANT"
./build/edgellm inspect "$OUT" --no-tensors --no-metadata

if [ -t 0 ]; then
  exec ./build/edgellm chat -m "$OUT" --verbose
fi
printf '%s\n' "Tell me a story about a monkey king." "什么是西游记?" | ./build/edgellm chat -m "$OUT" -n 48 --verbose
