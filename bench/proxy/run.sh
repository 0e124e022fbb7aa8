#!/usr/bin/env bash
# The egress proxy, in one run:
#   a. leak scan of a 1 MiB body against 100 known secrets in all encodings
#      plus every pattern, in MiB/s (target >= 300), by bench-scan (built by
#      meson, also run by bench/scan);
#   b. a GET through the full pipeline from a tool (POST /execute of the
#      http_request example tool, allowlisted for 127.0.0.1) against a direct
#      curl GET of the same loopback upstream, as a ratio of median
#      per-request latency. The same /execute of the echo tool is measured
#      too, so the execution overhead (sandbox issue) can be subtracted and
#      the proxy's own share is visible. Target: pipeline <= 1.5x direct +
#      execution overhead.
# Each side is one curl process doing N sequential requests over one
# keep-alive connection (the proxy pools its upstream connections too);
# latency is curl's time_total per request, so process start-up is not
# counted. The upstream is nginx when installed, else python's http.server.
set -euo pipefail
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN="$ROOT/$BUILD/src/cli/clawbox"
TOOLS="$ROOT/$BUILD/tools/wasm"
N=${N:-300}
ninja -C "$ROOT/$BUILD" src/cli/clawbox tests/unit/scan/bench-scan >/dev/null
for f in "$BIN" "$TOOLS/echo.wasm" "$TOOLS/http_request.wasm" "$ROOT/$BUILD/tests/unit/scan/bench-scan"; do
  [ -e "$f" ] || { echo "proxy: missing $f (run ninja -C $BUILD)" >&2; exit 1; }
done

umask 077
bench_cleanup_extra() {
  case "${audit_dir:-}" in /dev/shm/clawbox-bench-audit.*) rm -rf "$audit_dir" ;; esac
}
BENCH=proxy
# shellcheck source=../lib.sh
. "$ROOT/bench/lib.sh"

# a. leak scan.
echo "a. leak scan (bench-scan):"
"$ROOT/$BUILD/tests/unit/scan/bench-scan" | awk '{print "  " $0}'

# b. upstream: a fixed 1 KiB body.
up_port=$(free_port)
body_www
if command -v nginx >/dev/null; then
  upstream_kind=nginx
  start_nginx "  server { listen 127.0.0.1:$up_port; location / { root $work/www; } }" 64
else
  upstream_kind=python
  (cd "$work/www" && exec python3 -c '
import http.server, sys
class H(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()' "$up_port") &
  pids+=($!)
fi
up_url="http://127.0.0.1:$up_port/body.txt"
for _ in $(seq 100); do curl -sf -o /dev/null "$up_url" && break; sleep 0.05; done
curl -sf -o /dev/null "$up_url" || fail "upstream ($upstream_kind) did not start"

# Every audit line is fdatasync'ed before the answer, and a proxied call
# writes two (the request and the execution) where echo writes one. On a
# slow disk that sync dominates, so by default the audit log is on tmpfs
# (/dev/shm) and the figures are the pipeline's own; AUDIT_ON_DISK=1 keeps
# it under the work directory to include the disk.
if [ "${AUDIT_ON_DISK:-0}" != 1 ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
  audit_dir=$(mktemp -d /dev/shm/clawbox-bench-audit.XXXXXX)
  audit_where="tmpfs"
else
  audit_dir="$work/audit"
  audit_where="disk"
fi
server_config
mkdir -p "$work/tools"
cp "$TOOLS/echo.wasm" "$TOOLS/echo.json" "$TOOLS/http_request.wasm" "$TOOLS/http_request.json" "$work/tools/"
cat >> "$work/clawbox.toml" <<TOML
[sandbox]
tool_dir = "$work/tools"
cache_dir = "$work/cache"
[proxy]
allow_private_cidrs = ["127.0.0.0/8"]
rate_limit = 1000000
rate_limit_burst = 1000000
[logging]
level = "error"
audit_dir = "$audit_dir"
TOML
start_server echo http_request
auth=(-H "Authorization: Bearer $token" -H 'Content-Type: application/json')

manifest='{"tool":{"name":"http_request","description":"bench","version":"0.1.0"},"network":{"allowlist":["127.0.0.1"]}}'
code=$(curl -s -o "$work/reg" -w '%{http_code}' "${auth[@]}" -d "$manifest" "$base/tools/register")
case "$code" in 200|201) ;; *) fail "POST /tools/register: $code $(cat "$work/reg")" ;; esac

proxy_body="{\"tool\":\"http_request\",\"params\":{\"url\":\"$up_url\"}}"
echo_body='{"tool":"echo","params":{"hello":"world"}}'
# The same tool and host call, refused by the allowlist before any network
# I/O: the tool's own execution cost, without forwarding.
denied_body='{"tool":"http_request","params":{"url":"http://denied.invalid/"}}'
# Checks one answer of each before timing.
resp=$(curl -s "${auth[@]}" -d "$proxy_body" "$base/execute")
case "$resp" in *'"status":"ok"'*'"status":200'*xxxxxxxx*) ;; *) fail "proxied GET: $resp" ;; esac
resp=$(curl -s "${auth[@]}" -d "$echo_body" "$base/execute")
case "$resp" in *'"status":"ok"'*'"hello":"world"'*) ;; *) fail "echo: $resp" ;; esac
resp=$(curl -s "${auth[@]}" -d "$denied_body" "$base/execute")
case "$resp" in *'not in the allowlist'*) ;; *) fail "denied GET: $resp" ;; esac

# times NAME URL [curl args for each request]: N sequential requests over
# one connection, each time_total in ms appended to $work/NAME.ms. Every
# status must be 200.
times() {
  local name=$1 url=$2; shift 2
  local args=() i
  for i in $(seq "$N"); do
    args+=("$@" -o /dev/null -w '%{http_code} %{time_total}\n' "$url")
    [ "$i" -lt "$N" ] && args+=(--next)
  done
  curl -s "${args[@]}" > "$work/$name" || fail "$name: curl failed"
  kill -0 "$server_pid" 2>/dev/null || fail "server died during $name"
  [ "$(grep -c '^200 ' "$work/$name")" = "$N" ] || fail "$name: not every request returned 200"
  awk '{print $2 * 1000}' "$work/$name" >> "$work/$name.ms"
}
median() {
  sort -g "$work/$1.ms" | awk '{v[NR] = $1} END {
    if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Rounds interleave the four paths so that load from elsewhere on the
# machine falls on all of them alike; the first round is a warm-up (pooled
# connections, worker processes, page cache) and is discarded.
ROUNDS=${ROUNDS:-4}
per=$(( (N + ROUNDS - 1) / ROUNDS ))
total=$(( per * ROUNDS ))
N=$per
for round in $(seq 0 "$ROUNDS"); do
  times direct "$up_url"
  times proxied "$base/execute" "${auth[@]}" -d "$proxy_body"
  times echo "$base/execute" "${auth[@]}" -d "$echo_body"
  times denied "$base/execute" "${auth[@]}" -d "$denied_body"
  if [ "$round" = 0 ]; then rm -f "$work"/*.ms; fi
done
N=$total
direct=$(median direct)
proxied=$(median proxied)
echo_ms=$(median echo)
denied=$(median denied)

share=$(echo "$proxied - $echo_ms" | bc -l)
echo "b. GET of a 1 KiB body from a loopback $upstream_kind, median of $N sequential requests each (audit log on $audit_where):"
printf '  direct curl                          %8.3f ms\n' "$direct"
printf '  /execute http_request (full pipeline) %7.3f ms  = %.1fx direct\n' "$proxied" "$(echo "$proxied / $direct" | bc -l)"
printf '  /execute echo (execution overhead)    %7.3f ms\n' "$echo_ms"
printf '  /execute http_request, allowlist-denied %5.3f ms  (the tool and host call, no network)\n' "$denied"
printf '  pipeline minus echo execution         %7.3f ms  = %.2fx direct\n' "$share" "$(echo "$share / $direct" | bc -l)"
fwd=$(echo "$proxied - $denied" | bc -l)
printf '  pipeline minus denied call (forwarding) %5.3f ms  = %.2fx direct\n' "$fwd" "$(echo "$fwd / $direct" | bc -l)"
verdict=$(if [ "$(echo "$proxied <= 1.5 * $direct + $echo_ms" | bc -l)" = 1 ]; then echo met; else echo MISSED; fi)
printf 'proxy: target pipeline <= 1.5x direct + execution overhead (%.3f ms): %s\n' \
  "$(echo "1.5 * $direct + $echo_ms" | bc -l)" "$verdict"
