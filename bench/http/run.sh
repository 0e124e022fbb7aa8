#!/usr/bin/env bash
# GET /health requests/s with wrk at 64 connections, beside nginx serving a
# static file of the same size, in the same run. Prints the ratio.
# Target: clawbox >= 0.7x nginx.
set -euo pipefail
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN="$ROOT/$BUILD/src/cli/clawbox"
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-2}
BENCH=http
# shellcheck source=../lib.sh
. "$ROOT/bench/lib.sh"
chmod 755 "$work"

wait_http() { for _ in $(seq 100); do curl -sf -o /dev/null "$1" && return 0; sleep 0.05; done; echo "no answer from $1" >&2; exit 1; }
rps() { wrk -t2 -c64 -d"${DURATION}s" "$1" | awk '/Requests\/sec/ {print $2}'; }

cb_port=$(free_port)
cat > "$work/clawbox.toml" <<TOML
[server]
port = $cb_port
auth_token = "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
data_dir = "$work/data"
[logging]
level = "error"
audit_dir = "$work/audit"
TOML
"$BIN" serve --config "$work/clawbox.toml" 2>"$work/clawbox.log" &
pids+=($!)
wait_http "http://127.0.0.1:$cb_port/health"

# A static file with the same body size as /health.
size=$(curl -s "http://127.0.0.1:$cb_port/health" | wc -c)
mkdir -p "$work/www"
chmod 755 "$work/www"
head -c "$size" /dev/zero | tr '\0' 'x' > "$work/www/health"
chmod 644 "$work/www/health"
ng_port=$(free_port)
cat > "$work/nginx.conf" <<NGINX
worker_processes auto;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  default_type application/json;
  client_body_temp_path $work;
  server { listen 127.0.0.1:$ng_port; root $work/www; }
}
NGINX
nginx -c "$work/nginx.conf" -p "$work" 2>/dev/null &
pids+=($!)
wait_http "http://127.0.0.1:$ng_port/health"

cb_total=0; ng_total=0
for round in $(seq "$ROUNDS"); do
  cb=$(rps "http://127.0.0.1:$cb_port/health")
  ng=$(rps "http://127.0.0.1:$ng_port/health")
  echo "round $round: clawbox /health ${cb} req/s, nginx static ${ng} req/s"
  cb_total=$(echo "$cb_total + $cb" | bc -l); ng_total=$(echo "$ng_total + $ng" | bc -l)
done
ratio=$(echo "$cb_total / $ng_total" | bc -l)
printf 'http: clawbox/nginx = %.2fx (body %s bytes, 64 connections, %s rounds of %ss; target >= 0.70x)\n' \
  "$ratio" "$size" "$ROUNDS" "$DURATION"
