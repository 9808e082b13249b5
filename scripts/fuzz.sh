#!/usr/bin/env bash
# Runs edgellm's libFuzzer targets (tests/fuzz/fuzz_*.cpp: every parser of files and requests) over their
# corpora: seeds written by make_fuzz_seeds (real files of each format), the regression inputs committed in
# tests/fuzz/corpus/TARGET/, and what earlier runs found (BUILD/fuzz/work/TARGET/).
#   scripts/fuzz.sh TARGET [SECONDS]   one target, 300 s by default (TARGET: gguf, http, ... or fuzz_gguf)
#   scripts/fuzz.sh --all SECONDS      every target for SECONDS each (the test command runs this briefly)
#   scripts/fuzz.sh --list             the targets
# BUILD is $EDGELLM_FUZZ_BUILD, by default build-asan: clang with ASan+UBSan and EDGELLM_FUZZ=ON, as
# scripts/test.sh configures it (configured and built here when missing).
# A crash, leak, hang (30 s per input) or sanitizer report stops the run with the input saved in
# BUILD/fuzz/artifacts/TARGET/: reproduce with `BUILD/tests/fuzz/fuzz_TARGET FILE`, fix it, and commit the
# input to tests/fuzz/corpus/TARGET/ so every later run replays it.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${EDGELLM_FUZZ_BUILD:-build-asan}

targets() { for f in tests/fuzz/fuzz_*.cpp; do basename "$f" .cpp | sed 's/^fuzz_//'; done; }

if [ "${1:-}" = --list ]; then targets; exit 0; fi
if [ $# -lt 1 ]; then sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 2; fi

if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  CC=clang-14 CXX=clang++-14 cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1" "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g1" \
    -DEDGELLM_SANITIZE=address,undefined -DEDGELLM_FUZZ=ON -DEDGELLM_BUILD_BENCH=OFF >/dev/null
fi
if ! grep -q '^EDGELLM_FUZZ:BOOL=ON' "$BUILD/CMakeCache.txt"; then
  echo "fuzz.sh: $BUILD is not configured with EDGELLM_FUZZ=ON (clang); set EDGELLM_FUZZ_BUILD" >&2
  exit 2
fi
mapfile -t all < <(targets)
cmake --build "$BUILD" --target make_fuzz_seeds "${all[@]/#/fuzz_}" >/dev/null
seeds="$BUILD/fuzz/seeds"
if [ ! -d "$seeds" ] || [ tests/fuzz/make_fuzz_seeds.cpp -nt "$seeds" ]; then
  rm -rf "$seeds"
  "$BUILD/tests/fuzz/make_fuzz_seeds" "$seeds"
fi

# run_target NAME SECONDS: prints one line of figures; returns libFuzzer's status.
run_target() {
  local name=${1#fuzz_} seconds=$2
  local work="$BUILD/fuzz/work/$name" artifacts="$BUILD/fuzz/artifacts/$name" log="$BUILD/fuzz/logs/$name.log"
  mkdir -p "$work" "$artifacts" "$(dirname "$log")"
  local corpora=("$work" "$seeds/$name")
  [ -d "tests/fuzz/corpus/$name" ] && corpora+=("tests/fuzz/corpus/$name")
  local status=0
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$BUILD/tests/fuzz/fuzz_$name" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=3072 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "${corpora[@]}" >"$log" 2>&1 || status=$?
  local runs inputs
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  inputs=$(find "$work" -type f | wc -l)
  if [ "$status" -ne 0 ]; then
    echo "fuzz_$name: FAILED after ${runs:-?} executions (exit $status); log $log, input in $artifacts/:"
    grep -E 'ERROR|SUMMARY|runtime error|Test unit written|deadly signal|timeout' "$log" | head -20
    return "$status"
  fi
  printf 'fuzz_%-14s %9s executions in %s s (%s/s), %s new inputs kept, no crash\n' "$name" "${runs:-0}" \
    "$seconds" "$(( ${runs:-0} / seconds ))" "$inputs"
}

if [ "$1" = --all ]; then
  seconds=${2:?--all needs SECONDS}
  failed=0
  for t in "${all[@]}"; do run_target "$t" "$seconds" || failed=1; done
  exit "$failed"
fi
run_target "$1" "${2:-300}"
