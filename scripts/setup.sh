#!/usr/bin/env bash
# Installs everything edgellm and its tests need on Debian 12, idempotently:
#   - Debian packages (compiler, CMake, libraries, test frameworks, the aarch64 cross compiler and
#     qemu-user for the ARM kernel tests) via apt-get
#   - the pinned Python test oracles (requirements-dev.txt) into .venv
# Re-running it is cheap: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libgtest-dev libgmock-dev libbenchmark-dev libssl-dev
  nlohmann-json3-dev libcli11-dev libpcre2-dev libicu-dev libsqlite3-dev libedit-dev libcpp-httplib-dev
  python3-venv
  # tests of `edgellm serve`: promtool checks the /metrics exposition, curl the raw SSE/NDJSON framing
  prometheus curl
)
# ARM stage of scripts/test.sh on an x86-64 machine: cross-build the kernels for aarch64 (static, so
# libc6-dev-arm64-cross's libc.a) and run their tests under qemu-aarch64. On an arm64 board the native
# build runs them (docs/boards.md).
if [ "$(dpkg --print-architecture)" = amd64 ]; then
  APT_PACKAGES+=(g++-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)
fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Python test oracles. The stamp holds a hash of requirements-dev.txt so edits trigger a re-install.
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
want=$(sha256sum requirements-dev.txt | cut -d' ' -f1)
have=$(cat .venv/.requirements.sha256 2>/dev/null || true)
if [ "$want" != "$have" ]; then
  echo "setup: installing Python test oracles into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements-dev.txt
  echo "$want" > .venv/.requirements.sha256
fi
echo "setup: done"
