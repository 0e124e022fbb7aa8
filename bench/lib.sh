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

# start_server TOOL...: starts `clawbox serve` on $work/clawbox.toml and
# waits until GET /tools/TOOL answers 200 for each tool (the first start
# compiles them; up to 90 s). Uses $BIN, $base and $token; sets server_pid.
start_server() {
  HOME="$work" "$BIN" serve --config "$work/clawbox.toml" >"$work/clawbox.log" 2>&1 &
  pids+=($!)
  server_pid=$!
  local tool code _
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
}

# body_www: $work/www/body.txt, 1 KiB, the upstream's answer. Only www/ is
# readable by others (nginx workers may run as another user).
body_www() {
  chmod 711 "$work"
  mkdir -m 755 "$work/www"
  head -c 1024 /dev/zero | tr '\0' 'x' > "$work/www/body.txt"
  chmod 644 "$work/www/body.txt"
}

# start_nginx BLOCKS [CONNECTIONS]: nginx in $work/nginx with the settings
# every benchmark shares (no access log, temp files under $work, long
# keep-alive) and BLOCKS (its upstream and server blocks) inside http {}.
start_nginx() {
  mkdir -p "$work/nginx/logs"
  cat > "$work/nginx/nginx.conf" <<NGINX
daemon off;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log;
events { worker_connections ${2:-256}; }
http {
  access_log off;
  client_body_temp_path $work/nginx;
  proxy_temp_path $work/nginx;
  fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx;
  scgi_temp_path $work/nginx;
  keepalive_requests 100000;
$1
}
NGINX
  nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" 2>"$work/nginx/stderr" &
  pids+=($!)
}
