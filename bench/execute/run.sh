#!/usr/bin/env bash
# POST /execute of the echo tool over HTTP, measured with wrk:
#   - p50/p99 latency at concurrency 1 (target p50 <= 1 ms);
#   - executions/s at concurrency 16 (target >= 2,000/s on 2 cores).
# Baseline in the same run: GET /health at the same concurrencies, so the
# printed ratios are comparable across noisy runs. Every response must be a
# 2xx (wrk's "Non-2xx" and socket-error lines), otherwise the bench fails.
set -euo pipefail
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN="$ROOT/$BUILD/src/cli/clawbox"
TOOLS="$ROOT/$BUILD/tools/wasm"
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-2}
CONC=16
for f in "$BIN" "$TOOLS/echo.wasm" "$TOOLS/echo.json"; do
  [ -e "$f" ] || { echo "execute: missing $f (run ninja -C $BUILD)" >&2; exit 1; }
done
command -v wrk >/dev/null || { echo "execute: wrk not installed (scripts/deps.sh bench)" >&2; exit 1; }

BENCH=execute
# shellcheck source=../lib.sh
. "$ROOT/bench/lib.sh"


server_config
mkdir -p "$work/tools"
cp "$TOOLS/echo.wasm" "$TOOLS/echo.json" "$work/tools/"
cat >> "$work/clawbox.toml" <<TOML
max_concurrent_executions = $CONC
[sandbox]
tool_dir = "$work/tools"
cache_dir = "$work/cache"
[logging]
level = "error"
audit_dir = "$work/audit"
TOML
start_server echo

body='{"tool":"echo","params":{"hello":"world"}}'
resp=$(curl -s -w '\n%{http_code}' -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -d "$body" "$base/execute")
[ "${resp##*$'\n'}" = 200 ] || fail "POST /execute: ${resp}"
case "$resp" in *'"status":"ok"'*'"hello":"world"'*) ;; *) fail "unexpected /execute answer: $resp" ;; esac

cat > "$work/execute.lua" <<LUA
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $token"
LUA

# run_wrk NAME THREADS CONNS DURATION URL [wrk args...]: output in $work/NAME.
run_wrk() {
  local name=$1 t=$2 c=$3 d=$4 url=$5; shift 5
  wrk -t"$t" -c"$c" -d"${d}s" --timeout 10s "$@" "$url" > "$work/$name" 2>&1 || fail "wrk ($name) failed: $(cat "$work/$name")"
  kill -0 "$server_pid" 2>/dev/null || fail "server died during $name"
  if grep -q 'Non-2xx' "$work/$name"; then fail "$name: $(grep 'Non-2xx' "$work/$name") ($(grep 'requests in' "$work/$name"))"; fi
  if grep -q 'Socket errors' "$work/$name"; then fail "$name: $(grep 'Socket errors' "$work/$name")"; fi
  local n; n=$(awk '/requests in/ {print $1}' "$work/$name")
  [ "${n:-0}" -gt 0 ] || fail "$name: no requests completed"
}
rps() { awk '/Requests\/sec/ {print $2}' "$work/$1"; }
# Latency percentile from wrk --latency, in ms.
pct_ms() {
  awk -v p="$2%" '$1 == p { v = $2
    if (v ~ /us$/) { sub(/us$/, "", v); print v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); print v + 0 }
    else if (v ~ /s$/) { sub(/s$/, "", v); print v * 1000 }
    found = 1 } END { if (!found) exit 1 }' "$work/$1"
}

# Warm up: zygote and pre-forked children, page cache, connection setup.
run_wrk warmup 2 "$CONC" 2 "$base/execute" -s "$work/execute.lua"

# a. latency at concurrency 1, beside /health at concurrency 1.
run_wrk lat_exec 1 1 "$DURATION" "$base/execute" -s "$work/execute.lua" --latency
run_wrk lat_health 1 1 "$DURATION" "$base/health" --latency
ex_p50=$(pct_ms lat_exec 50) || fail "no p50 in wrk output"
ex_p99=$(pct_ms lat_exec 99) || fail "no p99 in wrk output"
he_p50=$(pct_ms lat_health 50) || fail "no p50 in wrk output"
printf 'c=1: /execute p50 %.3f ms p99 %.3f ms (%s req/s); /health p50 %.3f ms (%s req/s)\n' \
  "$ex_p50" "$ex_p99" "$(rps lat_exec)" "$he_p50" "$(rps lat_health)"

# b/c. throughput at concurrency 16, interleaved with /health.
ex_total=0; he_total=0
for round in $(seq "$ROUNDS"); do
  run_wrk tp_exec 2 "$CONC" "$DURATION" "$base/execute" -s "$work/execute.lua"
  run_wrk tp_health 2 "$CONC" "$DURATION" "$base/health"
  ex=$(rps tp_exec); he=$(rps tp_health)
  echo "round $round (c=$CONC): /execute ${ex} exec/s, /health ${he} req/s"
  ex_total=$(echo "$ex_total + $ex" | bc -l); he_total=$(echo "$he_total + $he" | bc -l)
done
ex_avg=$(echo "$ex_total / $ROUNDS" | bc -l)
he_avg=$(echo "$he_total / $ROUNDS" | bc -l)

# d. baselines outside the server: the same echo.wasm under node:wasi,
# re-instantiated per call in one process, and a native echo per call via
# posix_spawn.
read -r node_p50 node_p99 node_rate < <(node --expose-gc "$(dirname "$0")/node_echo.mjs" "$TOOLS/echo.wasm" 2000)
cc -O2 -o "$work/spawn_echo" "$(dirname "$0")/spawn_echo.c" || fail "cannot build spawn_echo"
read -r sp_p50 sp_p99 sp_rate < <("$work/spawn_echo" 2000)
printf 'baseline: node:wasi echo p50 %.3f ms p99 %.3f ms (%s calls/s, one process); posix_spawn echo p50 %.3f ms p99 %.3f ms (%s/s)\n' \
  "$node_p50" "$node_p99" "$node_rate" "$sp_p50" "$sp_p99" "$sp_rate"

verdict() { if [ "$(echo "$1" | bc -l)" = 1 ]; then echo "ok"; else echo "MISSED"; fi; }
printf 'execute: p50 %.3f ms at c=1 (target <= 1 ms: %s); /execute/health p50 = %.1fx; vs node:wasi %.2fx; vs posix_spawn %.2fx\n' \
  "$ex_p50" "$(verdict "$ex_p50 <= 1")" "$(echo "$ex_p50 / $he_p50" | bc -l)" \
  "$(echo "$ex_p50 / $node_p50" | bc -l)" "$(echo "$ex_p50 / $sp_p50" | bc -l)"
printf 'execute: %.0f exec/s at c=%s (target >= 2000: %s); /execute/health = %.2fx (/health %.0f req/s, %s rounds of %ss)\n' \
  "$ex_avg" "$CONC" "$(verdict "$ex_avg >= 2000")" "$(echo "$ex_avg / $he_avg" | bc -l)" "$he_avg" "$ROUNDS" "$DURATION"
