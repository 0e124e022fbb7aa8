# shellcheck shell=bash
# Shared set-up of the benchmarks. Source it after setting BENCH (the name
# used in messages). It provides $work (a temporary directory removed on
# exit), the array pids (processes killed on exit), fail and free_port. A
# script that needs more clean-up defines bench_cleanup_extra.
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
