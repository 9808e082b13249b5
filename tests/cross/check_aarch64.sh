#!/usr/bin/env bash
# The aarch64 build end to end under qemu-aarch64, against the x86-64 build of the same sources (issue 14):
#   1. the trained fixtures (tests/models/*-tiny): every recorded prompt's 32 greedy ids through the `edgellm`
#      CLI, from the Hugging Face directory (f32) and from a q8_0 GGUF (the int8 kernels), under
#      -cpu cortex-a72 (RK3576: NEON) and -cpu cortex-a76 (RK3588: NEON + SDOT): equal to the x86 build's,
#      and the f32 ones to transformers' recorded ids;
#   2. stories260K (tests/data/reference): the 64-step greedy continuation of BOS, equal to llama2.c's;
#   3. the vendor-style RKLLM demo (examples/rkllm_chat) linked against the aarch64 librkllmrt.so: the same
#      reply as on x86, and its SQLite row;
#   4. `edgellm serve` on aarch64: a chat completion over HTTP with the same greedy content as x86's server.
# qemu checks results, not speed. Usage: tests/cross/check_aarch64.sh X86_BUILD_DIR AARCH64_BUILD_DIR
set -euo pipefail
x86=$(realpath "$1")
arm=$(realpath "$2")
src=$(cd "$(dirname "$0")/../.." && pwd)
shared=${EDGELLM_SHARED:-$x86/reference}  # tests/data/reference, unpacked by the x86 build's CMake
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "check_aarch64: FAIL: $*" >&2; exit 1; }
CPUS=(cortex-a72 cortex-a76)
arm_run() { local cpu=$1; shift; qemu-aarch64 -cpu "$cpu" "$@"; }

# ---- 1. trained fixtures ----
n_checked=0
for fx in qwen2-tiny qwen3-tiny; do
  dir=$src/tests/models/$fx
  "$x86/edgellm" convert "$dir" -o "$work/$fx-q8_0.gguf" -q q8_0 >/dev/null 2>&1 || fail "convert $fx"
  while IFS='|' read -r name ids want; do
    for model in "$dir" "$work/$fx-q8_0.gguf"; do
      ref=$("$x86/edgellm" generate -m "$model" --tokens "$ids" -n 32 -t 2)
      if [ "$model" = "$dir" ] && [ "$ref" != "$want" ]; then
        fail "$fx/$name: x86 f32 greedy ids differ from transformers' ($ref vs $want)"
      fi
      for cpu in "${CPUS[@]}"; do
        got=$(arm_run "$cpu" "$arm/edgellm" generate -m "$model" --tokens "$ids" -n 32 -t 2)
        [ "$got" = "$ref" ] || fail "$fx/$name ($(basename "$model"), $cpu): aarch64 ids $got, x86 $ref"
        n_checked=$((n_checked + 1))
      done
    done
  done < <(python3 -c '
import json, sys
for c in json.load(open(sys.argv[1]))["cases"]:
    print(c["name"], ",".join(map(str, c["prompt_ids"])), " ".join(map(str, c["greedy_ids"])), sep="|")
' "$dir/expected.json")
done
echo "check_aarch64: trained fixtures: $n_checked greedy runs (f32 and q8_0, A72 and A76) equal to x86's"

# ---- 2. stories260K ----
stories=$shared/data/stories260K-hf
if [ -f "$stories/config.json" ] && [ -f "$shared/data/stories260K/expected.json" ]; then
  want=$(python3 -c 'import json,sys; print(" ".join(map(str, json.load(open(sys.argv[1]))["greedy_from_bos_64"]["ids"])))' \
    "$shared/data/stories260K/expected.json")
  for cpu in "${CPUS[@]}"; do
    got=$(arm_run "$cpu" "$arm/edgellm" generate -m "$stories" --tokens 1 -n 64 -t 2)
    [ "$got" = "$want" ] || fail "stories260K ($cpu): $got, expected $want"
  done
  echo "check_aarch64: stories260K: 64 greedy ids from BOS equal to llama2.c's on A72 and A76"
else
  echo "check_aarch64: FAILED: $stories not present (tests/data/reference, unpacked by CMake)"; exit 1
fi

# ---- 3. the RKLLM demo ----
model=$work/qwen2-tiny-q8_0.gguf
"$x86/examples/rkllm_chat" "$model" 24 256 "$work/x86.db" "Hello there" >"$work/rkllm_x86.txt" 2>/dev/null ||
  fail "rkllm_chat on x86"
arm_run cortex-a72 "$arm/examples/rkllm_chat" "$model" 24 256 "$work/arm.db" "Hello there" \
  >"$work/rkllm_arm.txt" 2>/dev/null || fail "rkllm_chat on aarch64"
cmp -s "$work/rkllm_x86.txt" "$work/rkllm_arm.txt" ||
  fail "rkllm_chat's output differs: aarch64 '$(cat "$work/rkllm_arm.txt")' vs x86 '$(cat "$work/rkllm_x86.txt")'"
rows=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from exchanges").fetchone()[0])' \
  "$work/arm.db" 2>/dev/null || echo 0)
[ "$rows" = 1 ] || fail "rkllm_chat on aarch64 stored $rows exchanges, expected 1"
echo "check_aarch64: rkllm_chat (librkllmrt.so) on aarch64: the x86 reply, stored in SQLite"

# ---- 4. serve ----
serve_reply() {  # serve_reply LOG CMD...: starts a server on a free port, asks once, prints the content
  local log=$1
  shift
  "$@" serve -m "$model" --alias tiny --port 0 -t 2 --parallel 2 --ctx 256 >"$log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  local port=""
  for _ in $(seq 1 600); do
    port=$(sed -n 's/.*listening on http:\/\/[0-9.]*:\([0-9]*\).*/\1/p' "$log" | head -1)
    [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || fail "the server exited: $(cat "$log")"
    sleep 0.2
  done
  [ -n "$port" ] || fail "the server did not start: $(cat "$log")"
  curl -sf "http://127.0.0.1:$port/v1/chat/completions" -H 'Content-Type: application/json' \
    -d '{"model": "tiny", "messages": [{"role": "user", "content": "Hello there"}], "max_tokens": 16, "temperature": 0}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["choices"][0]["message"]["content"])'
  kill -TERM "$pid"
  wait "$pid" || fail "the server did not exit 0 on SIGTERM: $(cat "$log")"
}
want=$(serve_reply "$work/serve_x86.log" "$x86/edgellm")
got=$(serve_reply "$work/serve_arm.log" qemu-aarch64 -cpu cortex-a76 "$arm/edgellm")
[ -n "$got" ] && [ "$got" = "$want" ] || fail "serve on aarch64 answered '$got', on x86 '$want'"
echo "check_aarch64: edgellm serve on aarch64: /v1/chat/completions answered as on x86"
echo "check_aarch64: ok"
