#!/usr/bin/env bash
# Agents against plain containers (see bench.py for what is measured).
# Needs root and a runtime (crun or runc).
#   bench/agents/run.sh [BUILD]     RUNTIME=runc N=50 to change
set -euo pipefail
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN="$ROOT/$BUILD/src/cli/clawbox"
RUNTIME=${RUNTIME:-$(command -v crun >/dev/null && echo crun || echo runc)}
[ "$(id -u)" = 0 ] || { echo "agents: needs root" >&2; exit 1; }
ninja -C "$ROOT/$BUILD" src/cli/clawbox tests/fixtures/ctprobe >/dev/null
BENCH=agents
# shellcheck source=../lib.sh
. "$ROOT/bench/lib.sh"

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
[logging]
audit_dir = "$work/audit"
TOML
CLAWBOX_E2E_CTPROBE="$ROOT/$BUILD/tests/fixtures/ctprobe" CLAWBOX_E2E_IMAGES="$ROOT/$BUILD/e2e-images" \
  python3 -c "import sys; sys.path.insert(0, '$ROOT/tests/e2e'); import ctimage; \
ctimage.import_busybox('$work/clawbox.toml', binary='$BIN', env=dict(__import__('os').environ, HOME='$work'))"
start_server
chmod 711 "$work/data"
python3 "$ROOT/bench/agents/bench.py" "$port" "$token"
