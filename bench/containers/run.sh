#!/usr/bin/env bash
# Containers against the bare OCI runtime and nginx (see bench.py for what
# is measured). Needs root, a runtime (crun or runc) and nginx.
#   bench/containers/run.sh [BUILD]     RUNTIME=runc N=50 to change,
#   PARTS=d to run only part d (see bench.py)
BENCH=containers
NEEDS_NGINX=1
# shellcheck source=../lib_containers.sh
. "$(dirname "$0")/../lib_containers.sh"

# An upstream serving 1 KiB, and nginx as a plain reverse proxy to it. They
# are two nginx processes, so the proxy's hop to the upstream is a hop to
# another process for nginx as it is for clawbox (one nginx worker serving
# both would answer its own upstream without a process switch).
up_port=$(free_port)
ng_port=$(free_port)
body_www # its chmod 711 also lets a container's root pass through to the image store
start_nginx "  server { listen 127.0.0.1:$up_port; location / { root $work/www; } }" 256 upstream
start_nginx "  upstream up { server 127.0.0.1:$up_port; keepalive 8; }
  server {
    listen 127.0.0.1:$ng_port;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection \"\"; }
  }"
ng_pid=${pids[-1]}

server_config
cat >> "$work/clawbox.toml" <<TOML
[containers]
runtime = "$RUNTIME"
max_containers = 16
[container_policy]
allowed_policies = ["container"]
network_allowlist = ["127.0.0.1"]
[proxy]
allow_private_cidrs = ["127.0.0.0/8"]
rate_limit = 100000
rate_limit_burst = 100000
[sandbox]
tool_dir = "$work/tools"
TOML
start_container_server
# The bare runtime runs where crun works on a hybrid cgroup host: a private
# mount namespace without /sys/fs/cgroup/unified, as the server's own.
SERVER_PID=$server_pid NGINX_PID=$ng_pid unshare -m --propagation slave sh -c \
  'umount /sys/fs/cgroup/unified 2>/dev/null; exec python3 "$@"' sh \
  "$ROOT/bench/containers/bench.py" "$port" "$token" "$work/data" "$RUNTIME" "$ng_port" "$up_port"
