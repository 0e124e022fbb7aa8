"""Agent benchmark driver (bench/agents/run.sh starts the server). Prints,
in one run, the medians of N interleaved rounds of:

  - POST /agents/{id}/start to its answer (the agent running, its
    workspace bound), against POST /containers/spawn to its 201 of the same
    image and command (`sleep 600`);
  - POST /agents/{id}/stop to its answer (the container killed and
    removed, the agent idle), against DELETE /containers/{id} of the
    running container;
  - the same start for an agent without a command (the idle init).
Target: an agent's start <= 1.1x a container spawn."""

import http.client
import json
import os
import statistics
import sys
import time

PORT, TOKEN = sys.argv[1:3]
N = int(os.environ.get("N", "30"))
IMAGE = "clawbox/test-busybox:latest"
COMMAND = ["/bin/sleep", "600"]


def api(conn, method, path, body=None):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    if body is not None:
        body = json.dumps(body)
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    data = r.read()
    return r.status, (json.loads(data) if data[:1] in (b"{", b"[") else data)


def timed(conn, method, path, body=None, want=200):
    t0 = time.perf_counter()
    status, doc = api(conn, method, path, body)
    ms = (time.perf_counter() - t0) * 1000
    if status != want:
        sys.exit(f"agents: {method} {path}: {status} {doc}")
    return ms, doc


def main():
    conn = http.client.HTTPConnection("127.0.0.1", int(PORT), timeout=60)
    for agent_id, extra in (("bench-cmd", {"command": COMMAND}), ("bench-idle", {})):
        body = {"agent_id": agent_id, "name": agent_id, "image": IMAGE}
        body.update(extra)
        status, doc = api(conn, "POST", "/agents", body)
        if status != 201:
            sys.exit(f"agents: registering {agent_id}: {status} {doc}")
    spawn_ms, kill_ms, start_ms, stop_ms, idle_ms = [], [], [], [], []
    for _ in range(N):
        ms, info = timed(conn, "POST", "/containers/spawn", {
            "task": "bench", "image": IMAGE, "policy": "container", "command": COMMAND}, 201)
        spawn_ms.append(ms)
        kill_ms.append(timed(conn, "DELETE", f"/containers/{info['container_id']}")[0])
        start_ms.append(timed(conn, "POST", "/agents/bench-cmd/start")[0])
        stop_ms.append(timed(conn, "POST", "/agents/bench-cmd/stop")[0])
        idle_ms.append(timed(conn, "POST", "/agents/bench-idle/start")[0])
        timed(conn, "POST", "/agents/bench-idle/stop")
    med = statistics.median
    print(f"container spawn -> 201         median {med(spawn_ms):7.1f} ms  (N={N})")
    print(f"agent start -> running         median {med(start_ms):7.1f} ms")
    print(f"agent start, idle init         median {med(idle_ms):7.1f} ms")
    print(f"container DELETE (running)     median {med(kill_ms):7.1f} ms")
    print(f"agent stop -> idle             median {med(stop_ms):7.1f} ms")
    ratio = med(start_ms) / med(spawn_ms)
    print(f"agents: start/spawn = {ratio:.2f}x (target <= 1.1x); "
          f"stop/delete = {med(stop_ms) / med(kill_ms):.2f}x")


main()
