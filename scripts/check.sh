#!/usr/bin/env bash
# Builds clawbox twice (normal, and ASan+UBSan), runs every test suite in
# both, runs the project's lint, checks formatting, and ends with one line:
# "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
ASAN_BUILD=${ASAN_BUILD:-build-asan}
passed=0
failed=0

count() { # name, status
  if [ "$2" -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $1"; fi
}

# Adds the per-test results of a meson test log to the totals.
count_log() {
  local log=$1/meson-logs/testlog.json ok bad
  if [ ! -f "$log" ]; then failed=$((failed + 1)); echo "FAILED: no test log in $1"; return; fi
  ok=$(grep -c '"result": "OK"' "$log")
  bad=$(grep -c -E '"result": "(FAIL|TIMEOUT|ERROR|UNEXPECTEDPASS)"' "$log")
  passed=$((passed + ok)); failed=$((failed + bad))
}

setup() { # dir, extra args
  local dir=$1; shift
  [ -f "$dir/build.ninja" ] || meson setup "$dir" "$@" >/dev/null
}

setup "$BUILD" --buildtype=debugoptimized
ninja -C "$BUILD"; count "build" $?
meson test -C "$BUILD" --print-errorlogs --num-processes 2; count_log "$BUILD"

setup "$ASAN_BUILD" --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false
ninja -C "$ASAN_BUILD"; count "asan-build" $?
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  meson test -C "$ASAN_BUILD" --print-errorlogs --num-processes 2 --suite unit --suite fuzz-replay \
  --suite e2e --timeout-multiplier 3
count_log "$ASAN_BUILD"

scripts/lint.sh; count "lint" $?

files=$(git ls-files '*.c' '*.h')
clang-format --dry-run -Werror $files; count "clang-format" $?

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
