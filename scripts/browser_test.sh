#!/usr/bin/env bash
# The web chat page in a browser (tests/browser/, docs/serving.md): Debian's headless chromium, driven by
# playwright-core (the npm package pinned in tests/browser/package-lock.json), against a real `edgellm serve`.
# Screenshots go to BUILD_DIR/test-artifacts (EDGELLM_ARTIFACTS_DIR overrides).
# Usage: scripts/browser_test.sh [BUILD_DIR]   (default: build; needs BUILD_DIR/edgellm, node and /usr/bin/chromium)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
if [ ! -x "$BUILD_DIR/edgellm" ]; then
  echo "browser_test: $BUILD_DIR/edgellm not found: build it first" >&2
  exit 1
fi
# node_modules is installed from the lock file, again whenever the lock file changes (its hash is kept beside).
want=$(sha256sum tests/browser/package-lock.json | cut -d' ' -f1)
have=$(cat tests/browser/node_modules/.lock.sha256 2>/dev/null || true)
if [ "$want" != "$have" ]; then
  echo "browser_test: installing playwright-core (npm ci in tests/browser)"
  (cd tests/browser && npm ci --no-audit --no-fund)
  echo "$want" > tests/browser/node_modules/.lock.sha256
fi
EDGELLM_BIN="$BUILD_DIR/edgellm" EDGELLM_ARTIFACTS_DIR="${EDGELLM_ARTIFACTS_DIR:-$BUILD_DIR/test-artifacts}" \
  node --test tests/browser/
