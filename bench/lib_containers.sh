# shellcheck shell=bash
# The start every container benchmark shares. Set BENCH (its name in
# messages) and, when it compares with nginx, NEEDS_NGINX=1, then source
# this with the script's arguments: it sets BUILD (the first argument,
# default build), ROOT, BIN and RUNTIME (crun where there is one, else
# runc; RUNTIME= overrides), checks for root (and nginx), builds clawbox and
# the container probe, and sources lib.sh.
set -euo pipefail
BUILD=${1:-build}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN="$ROOT/$BUILD/src/cli/clawbox"
RUNTIME=${RUNTIME:-$(command -v crun >/dev/null && echo crun || echo runc)}
[ "$(id -u)" = 0 ] || { echo "$BENCH: needs root" >&2; exit 1; }
if [ "${NEEDS_NGINX:-0}" = 1 ] && ! command -v nginx >/dev/null; then
  echo "$BENCH: needs nginx (scripts/deps.sh bench)" >&2
  exit 1
fi
ninja -C "$ROOT/$BUILD" src/cli/clawbox tests/fixtures/ctprobe >/dev/null
# shellcheck source=lib.sh
. "$ROOT/bench/lib.sh"

# start_container_server: ends $work/clawbox.toml with the audit directory
# ($work/audit), imports the test image, starts the server, and lets a
# container's root pass through $work/data to the image store.
start_container_server() {
  printf '[logging]\naudit_dir = "%s/audit"\n' "$work" >> "$work/clawbox.toml"
  import_test_image
  start_server
  chmod 711 "$work/data"
}
