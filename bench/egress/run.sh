#!/usr/bin/env bash
# Transparent egress against nginx (see bench.py for what is measured).
# Needs root, a runtime (crun or runc), nginx and openssl.
#   bench/egress/run.sh [BUILD]     RUNTIME=runc N=300 to change
BENCH=egress
NEEDS_NGINX=1
# shellcheck source=../lib_containers.sh
. "$(dirname "$0")/../lib_containers.sh"

# The name the container asks for: clawbox resolves it to 127.0.0.1 (it
# is in /etc/hosts), the container gets an address of its pool.
name=$(python3 -c 'import socket; n = socket.gethostname(); print(n if socket.gethostbyname(n) == "127.0.0.1" else "")')
[ -n "$name" ] || { echo "egress: no host name of this machine resolves to 127.0.0.1" >&2; exit 1; }

# One certificate for the name serves the TLS upstream and nginx's TLS
# front; clawbox trusts it as its ca_bundle, the client trusts it for nginx.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=$name" \
  -addext "subjectAltName=DNS:$name" -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
chmod 644 "$work/key.pem"

# Upstreams serving 1 KiB, plain and TLS; nginx as a plain reverse proxy to
# the plain one and as a TLS front to the TLS one (each its own process,
# so each proxy's hop is to another process, as clawbox's is).
up_port=$(free_port)
up_tls_port=$(free_port)
ng_port=$(free_port)
ng_tls_port=$(free_port)
tls="ssl_certificate $work/cert.pem; ssl_certificate_key $work/key.pem;"
body_www
start_nginx "  server { listen 127.0.0.1:$up_port; location / { root $work/www; } }
  server { listen 127.0.0.1:$up_tls_port ssl; $tls location / { root $work/www; } }" 256 upstream
start_nginx "  upstream up { server 127.0.0.1:$up_port; keepalive 16; }
  upstream up_tls { server 127.0.0.1:$up_tls_port; keepalive 16; }
  server {
    listen 127.0.0.1:$ng_port;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection \"\"; }
  }
  server {
    listen 127.0.0.1:$ng_tls_port ssl; $tls
    location / {
      proxy_pass https://up_tls; proxy_http_version 1.1; proxy_set_header Connection \"\";
      proxy_ssl_server_name on; proxy_ssl_name $name; proxy_ssl_session_reuse on;
      proxy_ssl_verify on; proxy_ssl_trusted_certificate $work/cert.pem;
    }
  }"
ng_pid=${pids[-1]}

server_config
cat >> "$work/clawbox.toml" <<TOML
[containers]
runtime = "$RUNTIME"
egress = "transparent"
[container_policy]
allowed_policies = ["container"]
network_allowlist = ["$name"]
tls = "intercept"
[proxy]
allow_private_cidrs = ["127.0.0.0/8"]
ca_bundle = "$work/cert.pem"
rate_limit = 100000
rate_limit_burst = 100000
TOML
start_container_server
CLAWBOX_PID=$server_pid NGINX_PID=$ng_pid python3 "$ROOT/bench/egress/bench.py" "$port" "$token" "$work/data" "$RUNTIME" "$name" \
  "$up_port" "$up_tls_port" "$ng_port" "$ng_tls_port" "$work/cert.pem"
