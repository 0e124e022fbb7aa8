#!/usr/bin/env bash
# Runs every benchmark under bench/. Each prints its own ratio line.
set -euo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
for b in bench/*/run.sh; do
  echo "== ${b%/run.sh}"
  "$b" "$BUILD"
done
