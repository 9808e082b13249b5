#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: install what is needed, build edgellm, convert the bundled
# trained Qwen2 model (tests/models/qwen2-tiny, a Hugging Face directory) to a 4-bit GGUF, chat with it (a
# short scripted conversation), then serve it: on a terminal, `edgellm serve` with its web chat page until
# Ctrl-C (the address to open is printed); otherwise one request goes through the server and it stops.
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

# The scripted conversation (on a terminal too: it shows the model works before the server starts).
printf '%s\n' "Tell me a story about a monkey king." "什么是西游记?" | ./build/edgellm chat -m "$OUT" -n 48 --verbose

# Then the same model behind `edgellm serve` with its web chat page. HOST=0.0.0.0 serves the local network
# (with an API key, made here and printed once); PORT picks the port.
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8080}
SERVE=(./build/edgellm serve -m "$OUT" --host "$HOST" --db out/conversations.db)
case "$HOST" in
  127.*|localhost|::1) ;;
  *)
    rm -f out/keys.txt
    KEY=$(./build/edgellm keys add quickstart --file out/keys.txt 2>/dev/null)
    SERVE+=(--api-keys-file out/keys.txt)
    echo "quickstart: API key for the page's key field and for clients: $KEY" ;;
esac
if [ -t 0 ] && [ -t 1 ]; then
  echo
  echo "quickstart: serving $OUT with the web chat page — open http://$([ "$HOST" = 0.0.0.0 ] && hostname -I | awk '{print $1}' || echo "$HOST"):$PORT/ in a browser (Ctrl-C stops)"
  echo "quickstart: the conversations are saved in out/conversations.db (./build/edgellm history list --db out/conversations.db)"
  exec "${SERVE[@]}" --port "$PORT"
fi
# Without a terminal: one request through the server, then stop it.
LOG=$(mktemp)
"${SERVE[@]}" --port 0 2>"$LOG" &
SERVER_PID=$!
trap 'kill "$SERVER_PID" 2>/dev/null || true; rm -f "$LOG"' EXIT
URL=""
for _ in $(seq 1 600); do
  URL=$(grep -o 'listening on http://[^ ]*' "$LOG" | head -n 1 | cut -d' ' -f3 || true)
  if [ -n "$URL" ] && curl -sf "$URL/health" >/dev/null 2>&1; then break; fi
  sleep 0.1
done
echo "quickstart: the server answers at $URL (web page at $URL/); one request through it:"
AUTH=()
[ -n "${KEY:-}" ] && AUTH=(-H "Authorization: Bearer $KEY")
curl -sf "${AUTH[@]}" "$URL/v1/chat/completions" -H 'Content-Type: application/json' \
  -d '{"messages": [{"role": "user", "content": "Tell me a story about a monkey king."}], "max_tokens": 48}' |
  python3 -c 'import json, sys; r = json.load(sys.stdin); print(r["choices"][0]["message"]["content"]); print("(%d prompt + %d generated tokens)" % (r["usage"]["prompt_tokens"], r["usage"]["completion_tokens"]))'
curl -sf -o /dev/null "$URL/" && echo "quickstart: the web chat page is served at $URL/"
kill "$SERVER_PID"
wait "$SERVER_PID" || true
./build/edgellm history list --db out/conversations.db -n 1
