#!/usr/bin/env bash
# The cost of waking a thread whose CPU went idle, against a back-to-back
# round trip in the same run (wake.c). Informational: no target.
set -euo pipefail
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cc -O2 -Wall -Wextra -pthread "$(dirname "$0")/wake.c" -o "$dir/wake"
"$dir/wake"
