#!/usr/bin/env bash
# Exec into a running container through the API against the runtime's own
# exec of the same container (see bench.py for what is measured).
# Needs root and a runtime (crun or runc).
#   bench/exec/run.sh [BUILD]     RUNTIME=runc N=100 to change
# Under runc the containers use egress = "socket-only": runc's own exec
# cannot join the transparent-egress namespace (docs/security.md), so the
# bare baseline could not run there.
BENCH=exec
# shellcheck source=../lib_containers.sh
. "$(dirname "$0")/../lib_containers.sh"
EGRESS=${EGRESS:-$([ "$RUNTIME" = runc ] && echo socket-only || echo transparent)}

server_config
cat >> "$work/clawbox.toml" <<TOML
[containers]
runtime = "$RUNTIME"
egress = "$EGRESS"
[container_policy]
allowed_policies = ["container"]
[sandbox]
tool_dir = "$work/tools"
TOML
start_container_server
python3 "$ROOT/bench/exec/bench.py" "$port" "$token" "$(command -v "$RUNTIME")" "$work/data" \
  "$server_pid"
