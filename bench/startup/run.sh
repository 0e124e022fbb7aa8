#!/usr/bin/env bash
# The first start of a new user, measured the way the README tells it: a
# fresh clone, `make run` with an empty home, until every example tool is
# listed by GET /tools as ready (served from its quick -O0 build); then
# until every tool's -O2 build, which follows in the background, is in;
# then a warm restart of the same server until every tool is ready again.
# Targets: cold (build included, packages installed) under 25 s, warm
# under 1 s. Prints each time and its ratio to the target, and the CPU
# seconds of the build (make and all it ran but the server) and of the
# server (with its compilers) at the moment all tools were ready: on a
# shared machine the CPU time is the steadier figure.
# Needs port 9800 free (the default configuration's port).
set -euo pipefail
BENCH=startup
# The clone builds into its own build/, whatever build the other benches use.
cd "$(dirname "$0")/../.."
repo=$PWD
. bench/lib.sh

COLD_TARGET=25
WARM_TARGET=1
base=http://127.0.0.1:9800
curl -s -o /dev/null "$base/health" && fail "port 9800 is in use; stop the server on it first"

git clone --quiet --local --no-hardlinks "$repo" "$work/src"
# Uncommitted changes count too: the bench measures the tree as it is.
git -C "$repo" diff HEAD | git -C "$work/src" apply --allow-empty
mkdir -p "$work/home"
ntools=$(ls "$repo"/tools/*/manifest.json | wc -l)

now() { date +%s.%N; }
# wait_ready START INTERVAL: waits until GET /tools lists $ntools ready
# tools, looking every INTERVAL seconds; prints the seconds since START to
# the first /health answer and to ready. Each look runs a few processes
# (curl, grep): every 20 ms they would take a good part of a small
# machine's CPU from the build being measured, so the cold start, which
# takes seconds, is looked at every 200 ms, the warm restart every 20 ms.
wait_ready() {
  local start=$1 interval=$2 token n first=""
  local tries
  tries=$(echo "120 / $interval" | bc)
  for _ in $(seq "$tries"); do
    if [ -z "$first" ] && curl -s -o /dev/null "$base/health"; then
      first=$(echo "$(now) - $start" | bc)
    fi
    token=$(cat "$work/home/.clawbox/token" 2>/dev/null || true)
    if [ -n "$first" ] && [ -n "$token" ]; then
      n=$({ curl -s -H "Authorization: Bearer $token" "$base/tools" || true; } |
        { grep -o '"state":"ready"' || true; } | wc -l)
      if [ "$n" -ge "$ntools" ]; then
        echo "$first $(echo "$(now) - $start" | bc)"
        return
      fi
    fi
    sleep "$interval"
  done
  fail "tools never became ready (wanted $ntools); see $work/run.log"
}
stop_group() { kill -- -"$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
# cpu_of PID: CPU seconds of the process and of the children it reaped.
cpu_of() {
  local f
  read -r -a f < <(sed 's/.*) //' "/proc/$1/stat")
  echo "(${f[11]} + ${f[12]} + ${f[13]} + ${f[14]}) / $(getconf CLK_TCK)" | bc -l
}
# wait_optimised START: waits (up to 10 minutes) until $work/run.log says
# every tool's -O2 build is in; prints the seconds since START, or "none".
wait_optimised() {
  local start=$1
  for _ in $(seq 30000); do
    if [ "$(grep -c '"msg":"tool [^ ]* optimised' "$work/run.log")" -ge "$ntools" ]; then
      echo "$(now) - $start" | bc
      return
    fi
    sleep 0.02
  done
  echo none
}

start=$(now)
# setsid execs make (the shell's background child leads no group), so
# $pid is make's; the server is its child.
HOME="$work/home" setsid make -C "$work/src" run >"$work/run.log" 2>&1 &
pid=$!
pids+=("$pid")
read -r cold_health cold < <(wait_ready "$start" 0.2)
server=$(ps -o pid=,comm= --ppid "$pid" | awk '$2 == "clawbox" {print $1}')
[ -n "$server" ] || fail "no clawbox server under make (pid $pid)"
build_cpu=$(cpu_of "$pid")
serve_cpu=$(cpu_of "$server")
optimised=$(wait_optimised "$start")
stop_group "$pid"

start=$(now)
HOME="$work/home" setsid "$work/src/build/src/cli/clawbox" serve \
  --config "$work/home/.clawbox/config/clawbox.toml" >"$work/warm.log" 2>&1 &
pid=$!
pids+=("$pid")
read -r warm_health warm < <(wait_ready "$start" 0.02)
stop_group "$pid"

printf 'startup: cold make run: first /health %.1f s, %d tools ready %.1f s (target %d s, ratio %.2f)\n' \
  "$cold_health" "$ntools" "$cold" "$COLD_TARGET" "$(echo "$cold / $COLD_TARGET" | bc -l)"
printf 'startup: cold make run: CPU %.1f s building, %.1f s serving and compiling (quick builds) until ready\n' \
  "$build_cpu" "$serve_cpu"
if [ "$optimised" = none ]; then
  echo "startup: cold make run: the -O2 builds were not all in within 10 minutes"
else
  printf 'startup: cold make run: all %d -O2 builds in %.1f s after the start\n' "$ntools" "$optimised"
fi
printf 'startup: warm restart: first /health %.2f s, %d tools ready %.2f s (target %d s, ratio %.2f)\n' \
  "$warm_health" "$ntools" "$warm" "$WARM_TARGET" "$(echo "$warm / $WARM_TARGET" | bc -l)"
