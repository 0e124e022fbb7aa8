"""Exec benchmark driver (bench/exec/run.sh starts the server). Prints, in
one run, the medians of N interleaved rounds, in one running container, of:

  - POST /containers/{id}/exec of /bin/true to its answer, against the
    runtime's own `exec --process P.json` of the same container (the
    container's process spec with /bin/true), run to its exit;
  - the first stdout byte of `/bin/echo hi`: the first stdout event of a
    streamed exec (Accept: application/x-ndjson) against the first byte
    on the bare exec's stdout.
Target: the API exec <= 1.2x the runtime's exec at the median.

runc's exec runs in the container's rootfs path as the server's mount
namespace shows it, so the bare runc exec is started in that namespace
(setns in the forked child: a fork, where crun's runs are spawned)."""

import ctypes
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

PORT, TOKEN, RUNTIME, DATA, SERVER_PID = sys.argv[1:6]
CLONE_NEWNS = 0x00020000
LIBC = ctypes.CDLL(None, use_errno=True)
MNTNS = os.open(f"/proc/{SERVER_PID}/ns/mnt", os.O_RDONLY) if "runc" in RUNTIME else None


def enter_server_mounts():
    if LIBC.setns(MNTNS, CLONE_NEWNS) != 0:
        os._exit(127)


SPAWN = {"preexec_fn": enter_server_mounts, "pass_fds": (MNTNS,)} if MNTNS is not None else {}
N = int(os.environ.get("N", "50"))
IMAGE = "clawbox/test-busybox:latest"


def api(conn, method, path, body=None, headers=None):
    h = {"Authorization": f"Bearer {TOKEN}"}
    if body is not None:
        body = json.dumps(body)
        h["Content-Type"] = "application/json"
    h.update(headers or {})
    conn.request(method, path, body=body, headers=h)
    return conn.getresponse()


def spawn(conn):
    r = api(conn, "POST", "/containers/spawn", {
        "task": "bench", "image": IMAGE, "policy": "container", "command": ["/bin/sleep", "600"]})
    doc = json.loads(r.read())
    if r.status != 201:
        sys.exit(f"exec: spawn: {r.status} {doc}")
    return doc["container_id"]


def process_file(cid, args):
    """The container's process spec with args, as the runtime's exec takes it."""
    with open(os.path.join(DATA, "containers", cid, "bundle", "config.json")) as f:
        proc = json.load(f)["process"]
    proc["args"] = args
    proc.pop("terminal", None)
    fd, path = tempfile.mkstemp(suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(proc, f)
    return path


def bare(cid, spec):
    return [RUNTIME, "--root", os.path.join(DATA, "oci"), "exec", "--process", spec, cid]


def timed_bare(cid, spec):
    t0 = time.perf_counter()
    p = subprocess.run(bare(cid, spec), capture_output=True, **SPAWN)
    ms = (time.perf_counter() - t0) * 1000
    if p.returncode != 0:
        sys.exit(f"exec: {RUNTIME} exec failed: {p.stderr.decode()}")
    return ms


def timed_api(conn, cid):
    t0 = time.perf_counter()
    r = api(conn, "POST", f"/containers/{cid}/exec", {"command": ["/bin/true"]})
    doc = json.loads(r.read())
    ms = (time.perf_counter() - t0) * 1000
    if r.status != 200 or doc["exit_code"] != 0:
        sys.exit(f"exec: API exec: {r.status} {doc}")
    rounds["api_inner"].append(doc["duration_ms"])
    return ms


def first_byte_bare(cid, spec):
    t0 = time.perf_counter()
    p = subprocess.Popen(bare(cid, spec), stdout=subprocess.PIPE, **SPAWN)
    first = p.stdout.read(1)
    ms = (time.perf_counter() - t0) * 1000
    p.stdout.read()
    p.wait()
    if first != b"h":
        sys.exit("exec: the bare exec printed nothing")
    return ms


def first_byte_api(conn, cid):
    t0 = time.perf_counter()
    r = api(conn, "POST", f"/containers/{cid}/exec", {"command": ["/bin/echo", "hi"]},
            {"Accept": "application/x-ndjson"})
    ms = None
    while True:
        line = r.readline()
        if not line:
            break
        event = json.loads(line)
        if event["type"] == "stdout" and ms is None:
            ms = (time.perf_counter() - t0) * 1000
    if ms is None:
        sys.exit("exec: the streamed exec sent no stdout event")
    return ms


rounds = {"bare": [], "api": [], "api_inner": [], "bare_first": [], "api_first": []}


def main():
    conn = http.client.HTTPConnection("127.0.0.1", int(PORT), timeout=60)
    cid = spawn(conn)
    true_spec = process_file(cid, ["/bin/true"])
    echo_spec = process_file(cid, ["/bin/echo", "hi"])
    timed_api(conn, cid)  # warm both paths
    timed_bare(cid, true_spec)
    for _ in range(N):
        rounds["bare"].append(timed_bare(cid, true_spec))
        rounds["api"].append(timed_api(conn, cid))
        rounds["bare_first"].append(first_byte_bare(cid, echo_spec))
        rounds["api_first"].append(first_byte_api(conn, cid))
    os.unlink(true_spec)
    os.unlink(echo_spec)
    api(conn, "DELETE", f"/containers/{cid}").read()
    med = {k: statistics.median(v) for k, v in rounds.items()}
    print(f"{os.path.basename(RUNTIME)} exec /bin/true (bare)     median {med['bare']:7.1f} ms  (N={N})")
    print(f"POST /containers/{{id}}/exec       median {med['api']:7.1f} ms "
          f"(its duration_ms {med['api_inner']:.0f} ms)")
    print(f"first byte of echo, bare exec     median {med['bare_first']:7.1f} ms")
    print(f"first stdout event, NDJSON exec   median {med['api_first']:7.1f} ms")
    print(f"exec: api/bare = {med['api'] / med['bare']:.2f}x (target <= 1.2x); "
          f"first byte api/bare = {med['api_first'] / med['bare_first']:.2f}x")


main()
