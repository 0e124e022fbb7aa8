#!/usr/bin/env bash
# Leak-scan throughput (1 MiB body, 100 known secrets in all encodings plus
# every pattern) against memchr/memmem baselines in the same run.
# The driver is built by meson (tests/unit/scan/meson.build: bench-scan).
# Target: >= 300 MiB/s.
set -euo pipefail
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN="$ROOT/$BUILD/tests/unit/scan/bench-scan"
ninja -C "$ROOT/$BUILD" tests/unit/scan/bench-scan >/dev/null
exec "$BIN"
