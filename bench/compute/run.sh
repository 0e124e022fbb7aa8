#!/usr/bin/env bash
# A compute-heavy C program (compute.c: SHA-256, n-body, sieve) run three
# ways in the same run, interleaved, ROUNDS times each, best time kept:
#   native   compiled with clang -O2 (NATIVE_CC to override; clang by default
#            because the .wasm is built by clang too, so the ratio measures
#            the sandbox rather than gcc against clang);
#   clawbox  the .wasm through the real pipeline: POST /execute on a running
#            `clawbox serve` (fuel pass, wasm2c, worker process);
#   node     the same .wasm under Node's WASI (V8).
# The three must print the same results. Times are the program's own kernel
# times (CLOCK_MONOTONIC inside the program, startup excluded); the
# end-to-end times (process wall, metadata.execution_time_ms, node total)
# are printed beside them.
# Targets: clawbox >= 0.6x native speed, clawbox >= 1.0x node.
set -euo pipefail
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE="$ROOT/bench/compute"
BIN="$ROOT/$BUILD/src/cli/clawbox"
ROUNDS=${ROUNDS:-5}
NATIVE_CC=${NATIVE_CC:-clang}
[ -x "$BIN" ] || { echo "compute: missing $BIN (run ninja -C $BUILD)" >&2; exit 1; }
command -v node >/dev/null || { echo "compute: node not found" >&2; exit 1; }

BENCH=compute
# shellcheck source=../lib.sh
. "$ROOT/bench/lib.sh"

now_ms() { echo "$(date +%s%N) / 1000000" | bc -l; }

# Build both.
mkdir -p "$work/tools"
"$NATIVE_CC" -O2 -o "$work/compute-native" "$HERE/compute.c" -lm || fail "native build"
clang --target=wasm32-wasi --sysroot=/usr -O2 -Wl,--strip-debug -o "$work/tools/compute.wasm" \
  "$HERE/compute.c" || fail "wasm build"
cat > "$work/tools/compute.json" <<'JSON'
{
  "tool": {"name": "compute", "description": "bench/compute: SHA-256, n-body, sieve.", "version": "0.1.0"},
  "network": null,
  "credentials": null,
  "resources": null,
  "input_schema": {"type": "object"},
  "output_schema": {"type": "object"}
}
JSON

server_config
cat >> "$work/clawbox.toml" <<TOML
[sandbox]
tool_dir = "$work/tools"
cache_dir = "$work/cache"
default_fuel = 1000000000000000
default_timeout_ms = 120000
max_timeout_ms = 120000
max_memory_mb = 256
[logging]
level = "error"
audit_dir = "$work/audit"
TOML
t0=$(now_ms)
start_server compute
echo "compute: tool loaded (wasm2c + cc) in $(echo "($(now_ms) - $t0) / 1000" | bc -l | xargs printf '%.1f') s"

for r in $(seq "$ROUNDS"); do
  a=$(now_ms)
  "$work/compute-native" > "$work/native.$r.out" || fail "native run exited $?"
  echo "$(now_ms) - $a" | bc -l > "$work/native.$r.wall"

  code=$(curl -s -o "$work/clawbox.$r.out" -w '%{http_code}' --max-time 150 \
    -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d '{"tool":"compute","params":{}}' "$base/execute" || true)
  [ "$code" = 200 ] || fail "POST /execute returned ${code:-nothing}: $(head -c 600 "$work/clawbox.$r.out" 2>/dev/null)"

  node --no-warnings "$HERE/wasi-run.mjs" "$work/tools/compute.wasm" \
    > "$work/node.$r.out" 2> "$work/node.$r.err" || fail "node run: $(cat "$work/node.$r.err")"
done

python3 - "$work" "$ROUNDS" "$NATIVE_CC" <<'PY'
import json, re, sys
work, rounds, cc = sys.argv[1], int(sys.argv[2]), sys.argv[3]

def fail(msg):
    print(f"compute: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)

runs = {"native": [], "clawbox": [], "node": []}
for r in range(1, rounds + 1):
    out = json.loads(open(f"{work}/native.{r}.out").read())
    runs["native"].append((out, float(open(f"{work}/native.{r}.wall").read())))
    resp = json.load(open(f"{work}/clawbox.{r}.out"))
    if resp.get("status") != "ok" or not isinstance(resp.get("output"), dict):
        fail(f"clawbox answer: {json.dumps(resp)[:600]}")
    meta = resp["metadata"]
    runs["clawbox"].append((resp["output"], float(meta["execution_time_ms"])))
    fuel = meta["fuel_consumed"]
    out = json.loads(open(f"{work}/node.{r}.out").read())
    m = re.search(r"total ([0-9.]+) ms", open(f"{work}/node.{r}.err").read())
    runs["node"].append((out, float(m.group(1))))

def result(o):
    return {k: v for k, v in o.items() if k != "ms"}

ref = result(runs["native"][0][0])
for name, rs in runs.items():
    for out, _ in rs:
        if result(out) != ref:
            fail(f"{name} printed {json.dumps(result(out))}, native {json.dumps(ref)}")

kernels = ["sha256", "nbody", "sieve", "total"]
best = {n: {k: min(o["ms"][k] for o, _ in rs) for k in kernels} for n, rs in runs.items()}
e2e = {n: min(w for _, w in rs) for n, rs in runs.items()}
print(f"compute: results match ({ref['sha256'][:16]}..., primes {ref['primes']}); "
      f"best of {rounds}; clawbox fuel_consumed {fuel:.3g}")
print(f"  {'ms':14} {'sha256':>8} {'nbody':>8} {'sieve':>8} {'total':>8} {'end-to-end':>11}")
labels = {"native": f"native({cc})", "clawbox": "clawbox", "node": "node"}
for n in runs:
    print(f"  {labels[n]:14} " + " ".join(f"{best[n][k]:8.1f}" for k in kernels) + f" {e2e[n]:11.1f}")

def speed(a, b):  # speed of a relative to b = time(b) / time(a)
    return best[b]["total"] / best[a]["total"]

def per_kernel(a, b):
    return ", ".join(f"{k} {best[b][k] / best[a][k]:.2f}x" for k in kernels[:3])

v_native, v_node = speed("clawbox", "native"), speed("clawbox", "node")
ok = lambda c: "ok" if c else "MISSED"
print(f"compute: clawbox/native speed = {v_native:.2f}x (target >= 0.60x: {ok(v_native >= 0.6)}; "
      f"{per_kernel('clawbox', 'native')}; end-to-end {e2e['native'] / e2e['clawbox']:.2f}x)")
print(f"compute: clawbox/node speed = {v_node:.2f}x (target >= 1.00x: {ok(v_node >= 1.0)}; "
      f"{per_kernel('clawbox', 'node')}; end-to-end {e2e['node'] / e2e['clawbox']:.2f}x)")
PY
