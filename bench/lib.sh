# shellcheck shell=bash
# Shared set-up of the benchmarks. Source it after setting BENCH (the name
# used in messages). It provides $work (a temporary directory removed on
# exit), the array pids (processes killed on exit), fail, free_port and
# start_server. A script that needs more clean-up defines
# bench_cleanup_extra.
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if declare -F bench_cleanup_extra >/dev/null; then bench_cleanup_extra; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
  echo "$BENCH: FAIL: $*" >&2
  if [ -s "$work/clawbox.log" ]; then echo "--- server log" >&2; tail -n 30 "$work/clawbox.log" >&2; fi
  exit 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# server_config: picks $port, $token and $base and writes the
# [server] table of $work/clawbox.toml (loopback, that port and token,
# data_dir under $work); the caller appends the rest with >>, its own
# [server] keys first.
server_config() {
  port=$(free_port)
  token=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
  base="http://127.0.0.1:$port"
  cat > "$work/clawbox.toml" <<TOML
[server]
host = "127.0.0.1"
port = $port
auth_token = "$token"
data_dir = "$work/data"
TOML
}

# import_test_image: the e2e tests' busybox image into the store of
# $work/clawbox.toml, as clawbox/test-busybox:latest. Uses $ROOT, $BUILD
# and $BIN.
import_test_image() {
  CLAWBOX_E2E_CTPROBE="$ROOT/$BUILD/tests/fixtures/ctprobe" \
    CLAWBOX_E2E_IMAGES="$ROOT/$BUILD/e2e-images" \
    python3 -c "import sys; sys.path.insert(0, '$ROOT/tests/e2e'); import ctimage; \
ctimage.import_busybox('$work/clawbox.toml', binary='$BIN', env=dict(__import__('os').environ, HOME='$work'))"
}

# start_server TOOL...: starts `clawbox serve` on $work/clawbox.toml and
# waits until it answers /health (up to 30 s), then until GET /tools/TOOL
# answers 200 for each tool (the first start
# compiles them; up to 90 s), and then, for a tool served from its quick
# -O0 build, until its -O2 build is in (up to 10 minutes): a benchmark
# measures the code users run after the first minute. Uses $BIN, $base and
# $token; sets server_pid.
start_server() {
  HOME="$work" "$BIN" serve --config "$work/clawbox.toml" >"$work/clawbox.log" 2>&1 &
  pids+=($!)
  server_pid=$!
  local tool code _
  for _ in $(seq 300); do
    kill -0 "$server_pid" 2>/dev/null || fail "server exited during start"
    curl -s -o /dev/null "$base/health" && break
    sleep 0.1
  done
  for tool in "$@"; do
    for _ in $(seq 900); do
      kill -0 "$server_pid" 2>/dev/null || fail "server exited during start"
      code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" \
        "$base/tools/$tool" || true)
      [ "$code" = 200 ] && break
      sleep 0.1
    done
    [ "$code" = 200 ] || fail "GET /tools/$tool never returned 200"
  done
  for tool in "$@"; do
    grep -q "tool $tool ready .*quick (-O0) build" "$work/clawbox.log" || continue
    for _ in $(seq 6000); do
      kill -0 "$server_pid" 2>/dev/null || fail "server exited while optimising $tool"
      grep -q "tool $tool optimised\|tool $tool: the -O2 build failed" "$work/clawbox.log" && break
      sleep 0.1
    done
    grep -q "tool $tool optimised" "$work/clawbox.log" || fail "tool $tool has no -O2 build"
  done
}

# body_www: $work/www/body.txt, 1 KiB, the upstream's answer. Only www/ is
# readable by others (nginx workers may run as another user).
body_www() {
  chmod 711 "$work"
  mkdir -m 755 "$work/www"
  head -c 1024 /dev/zero | tr '\0' 'x' > "$work/www/body.txt"
  chmod 644 "$work/www/body.txt"
}

# start_nginx BLOCKS [CONNECTIONS] [NAME]: an nginx in $work/NAME (default
# nginx) with the settings every benchmark shares (no access log, temp
# files under $work, long keep-alive) and BLOCKS (its upstream and server
# blocks) inside http {}. Each NAME is its own master and worker.
start_nginx() {
  local d="$work/${3:-nginx}"
  mkdir -p "$d/logs"
  cat > "$d/nginx.conf" <<NGINX
daemon off;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/logs/error.log;
events { worker_connections ${2:-256}; }
http {
  access_log off;
  client_body_temp_path $d;
  proxy_temp_path $d;
  fastcgi_temp_path $d;
  uwsgi_temp_path $d;
  scgi_temp_path $d;
  keepalive_requests 100000;
$1
}
NGINX
  nginx -p "$d" -c "$d/nginx.conf" 2>"$d/stderr" &
  pids+=($!)
}
