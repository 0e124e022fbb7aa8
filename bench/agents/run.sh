#!/usr/bin/env bash
# Agents against plain containers (see bench.py for what is measured).
# Needs root and a runtime (crun or runc).
#   bench/agents/run.sh [BUILD]     RUNTIME=runc N=50 to change
BENCH=agents
# shellcheck source=../lib_containers.sh
. "$(dirname "$0")/../lib_containers.sh"

server_config
cat >> "$work/clawbox.toml" <<TOML
[containers]
runtime = "$RUNTIME"
max_containers = 16
workspace_root = "$work/ws"
[container_policy]
allowed_policies = ["container"]
[sandbox]
tool_dir = "$work/tools"
TOML
start_container_server
python3 "$ROOT/bench/agents/bench.py" "$port" "$token"
