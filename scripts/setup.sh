#!/usr/bin/env bash
# Installs everything edgellm and its tests need on Debian 12, idempotently:
#   - Debian packages (compiler, CMake, libraries, test frameworks, the aarch64 cross compiler and
#     qemu-user for the ARM kernel tests) via apt-get
#   - the pinned Python test oracles (requirements-dev.txt) into .venv
#   - the browser test's npm packages (tests/browser/package-lock.json) into tests/browser/node_modules
# Re-running it is cheap: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libgtest-dev libgmock-dev libbenchmark-dev libssl-dev
  nlohmann-json3-dev libcli11-dev libpcre2-dev libicu-dev libsqlite3-dev libedit-dev libcpp-httplib-dev libtomlplusplus-dev
  libsodium-dev
  python3-venv
  # the reference data in tests/data/reference is stored zstd-compressed (unpacked at configure time)
  zstd
  # signed models: the real minisign verifies edgellm's signatures and signs files edgellm verifies
  minisign
  # tests of `edgellm serve`: promtool checks the /metrics exposition, curl the raw SSE/NDJSON framing
  prometheus curl
  # the Debian package's checks (tests/package/check_deb.sh)
  lintian dpkg-dev
  # the sanitizer build and the libFuzzer targets (tests/fuzz/, scripts/fuzz.sh): clang with libFuzzer
  clang-14 libclang-rt-14-dev
  # the web chat page's browser test (scripts/browser_test.sh): Debian's headless chromium, driven from node
  chromium
  # the fleet test (tests/python/test_fleet_nginx.py): nginx in front of three servers
  nginx-light
)
# node and npm for the browser test: Debian's, unless the machine already has them (e.g. from NodeSource,
# whose nodejs package conflicts with Debian's npm).
command -v node >/dev/null || APT_PACKAGES+=(nodejs)
command -v npm >/dev/null || APT_PACKAGES+=(npm)
# ARM stage of scripts/test.sh on an x86-64 machine: cross-build the whole product for aarch64 with Debian
# multiarch (the arm64 -dev packages of its libraries beside the host's) and run it under qemu-aarch64.
# On an arm64 board the native build runs everything (docs/boards.md).
ARM64_DEV_PACKAGES=(libssl-dev libicu-dev libpcre2-dev libedit-dev libcpp-httplib-dev libtomlplusplus-dev libsqlite3-dev libgtest-dev
  libgmock-dev libsodium-dev)
if [ "$(dpkg --print-architecture)" = amd64 ]; then
  APT_PACKAGES+=(g++-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)
  for pkg in "${ARM64_DEV_PACKAGES[@]}"; do APT_PACKAGES+=("$pkg:arm64"); done
fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
if [ "$(dpkg --print-architecture)" = amd64 ] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "setup: adding the arm64 architecture (Debian multiarch) for the aarch64 cross build"
  $SUDO dpkg --add-architecture arm64
fi
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
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
# The browser test's npm packages (playwright-core, pinned in tests/browser/package-lock.json), again whenever
# the lock file changes; scripts/browser_test.sh checks the same stamp.
want=$(sha256sum tests/browser/package-lock.json | cut -d' ' -f1)
have=$(cat tests/browser/node_modules/.lock.sha256 2>/dev/null || true)
if [ "$want" != "$have" ]; then
  echo "setup: installing the browser test's npm packages (npm ci in tests/browser)"
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" > tests/browser/node_modules/.lock.sha256
fi
echo "setup: done"
