"""Transparent egress benchmark driver (bench/egress/run.sh starts the
server, the upstreams and nginx, and passes their addresses). Prints, in
one run:

  a. a keep-alive GET of 1 KiB from inside a container, by plain HTTP
     through clawbox's transparent path (the DNS stub's address, the
     original destination, the proxy pipeline, the audit), against the same
     GET through nginx as a plain reverse proxy to the same upstream;
  b. the same over HTTPS: intercepted by clawbox (TLS terminated with the
     container's CA, upstream TLS verified), against nginx terminating TLS
     in front of the same TLS upstream;
  c. requests per second with 16 keep-alive connections from one container
     (plain HTTP), against the same 16 through nginx.
Medians of N (default 300) on each side, in interleaved blocks of 50. One
process measures both sides: it opens its nginx connections in the host's
network namespace, then enters the container's (setns) for clawbox's, so
the client's cost is the same on both. Targets: a. <= 1.5x, b. <= 2x
nginx."""

import ctypes
import http.client
import json
import os
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from cpu import CpuMeter, nginx_worker  # noqa: E402

(PORT, TOKEN, DATA, RUNTIME, NAME, UP_PORT, UP_TLS_PORT, NG_PORT, NG_TLS_PORT,
 CERT) = sys.argv[1:11]
N = int(os.environ.get("N", "300"))
IMAGE = "clawbox/test-busybox:latest"
POOL_ADDR = "198.18.0.1"  # the stub's first answer in a new container
CLONE_NEWNET = 0x40000000


def api(method, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", int(PORT), timeout=60)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=json.dumps(body) if body is not None else None,
                 headers=headers)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    if "json" in (r.getheader("Content-Type") or ""):
        return r.status, json.loads(data)
    return r.status, data.decode(errors="replace")


def container():
    """A running container that asked the stub for NAME: (id, its init's pid)."""
    status, info = api("POST", "/containers/spawn", {
        "task": "bench", "image": IMAGE, "policy": "container",
        "command": ["/bin/sh", "-c", f"nslookup {NAME} >/dev/null; echo ready; sleep 600"]})
    if status != 201:
        sys.exit(f"egress: spawn answered {status}: {info}")
    cid = info["container_id"]
    root = os.path.join(DATA, "oci")
    deadline = time.time() + 20
    while time.time() < deadline:
        st = subprocess.run([RUNTIME, "--root", root, "state", cid], capture_output=True,
                            text=True)
        pid = json.loads(st.stdout).get("pid", 0) if st.returncode == 0 else 0
        _, logs = api("GET", f"/containers/{cid}/logs")
        if pid and "ready" in logs:
            return cid, pid
        time.sleep(0.1)
    sys.exit(f"egress: container {cid} never became ready")


def enter_netns(path):
    """Moves this thread (and the threads it starts) into the network
    namespace at path; sockets made before stay where they were made."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        sys.exit(f"egress: setns: {os.strerror(ctypes.get_errno())}")
    os.close(fd)


class TlsConn(http.client.HTTPSConnection):
    """HTTPS to addr:port with SNI and certificate checks for NAME."""

    def __init__(self, addr, port, cafile):
        ctx = ssl.create_default_context(cafile=cafile)
        super().__init__(NAME, int(port), timeout=30, context=ctx)
        self.addr = addr

    def connect(self):
        raw = socket.create_connection((self.addr, self.port), timeout=30)
        self.sock = self._context.wrap_socket(raw, server_hostname=NAME)


def plain(addr, port):
    return http.client.HTTPConnection(addr, int(port), timeout=30)


def timed_gets(conn, host, n):
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        conn.request("GET", "/body.txt", headers={"Host": host})
        r = conn.getresponse()
        body = r.read()
        if r.status != 200 or len(body) != 1024:
            sys.exit(f"egress: GET answered {r.status} ({len(body)} bytes): {body[:300]!r}")
        out.append((time.perf_counter() - t0) * 1e6)
    return out


def compare(label, ours, ours_host, theirs, theirs_host, target):
    timed_gets(ours, ours_host, 20)  # warm both
    timed_gets(theirs, theirs_host, 20)
    a, b = [], []
    cpu_a = CpuMeter(int(os.environ["CLAWBOX_PID"]))
    cpu_b = CpuMeter(nginx_worker(int(os.environ["NGINX_PID"])))
    for _ in range(max(1, N // 50)):
        with cpu_a:
            a += timed_gets(ours, ours_host, 50)
        with cpu_b:
            b += timed_gets(theirs, theirs_host, 50)
    ma, mb = statistics.median(a), statistics.median(b)
    ca, cb = cpu_a.per_request_us(len(a)), cpu_b.per_request_us(len(b))
    print(f"{label} clawbox {ma:.0f} us, nginx {mb:.0f} us, median of {len(a)}: "
          f"ratio {ma / mb:.2f}x (target <= {target}x)")
    print(f"   CPU per request: clawbox {ca:.0f} us (its every thread), nginx {cb:.0f} us "
          f"(its worker): ratio {ca / cb:.2f}x (see bench/cpu.py)")


def throughput(make, host, seconds=5, conns=16):
    count = [0] * conns
    stop = time.monotonic() + seconds

    def client(i):
        c = make()
        while time.monotonic() < stop:
            timed_gets(c, host, 1)
            count[i] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(count) / seconds


if __name__ == "__main__":
    host_ns = f"/proc/self/task/{threading.get_native_id()}/ns/net"
    host_ns_fd = os.open(host_ns, os.O_RDONLY)
    host_ns = f"/proc/self/fd/{host_ns_fd}"
    cid, pid = container()
    ca = os.path.join(DATA, "containers", cid, "proxy", "ca.pem")
    # nginx's side, made in the host's network namespace.
    ng = plain("127.0.0.1", NG_PORT)
    ng_tls = TlsConn("127.0.0.1", NG_TLS_PORT, CERT)
    ng_tls.connect()
    ng.connect()
    ng_rps = throughput(lambda: plain("127.0.0.1", NG_PORT), f"127.0.0.1:{NG_PORT}")
    enter_netns(f"/proc/{pid}/ns/net")
    ours = plain(POOL_ADDR, UP_PORT)
    ours_tls = TlsConn(POOL_ADDR, UP_TLS_PORT, ca)
    compare("a. plain HTTP GET of 1 KiB:", ours, f"{NAME}:{UP_PORT}", ng,
            f"127.0.0.1:{NG_PORT}", 1.5)
    compare("b. HTTPS GET of 1 KiB (intercepted / nginx TLS front):", ours_tls,
            f"{NAME}:{UP_TLS_PORT}", ng_tls, f"{NAME}:{NG_TLS_PORT}", 2)
    our_rps = throughput(lambda: plain(POOL_ADDR, UP_PORT), f"{NAME}:{UP_PORT}")
    print(f"c. 16 keep-alive connections from one container, plain HTTP: clawbox "
          f"{our_rps:.0f} requests/s, nginx {ng_rps:.0f} requests/s (one Python client "
          f"process: a floor, not the servers' ceiling); ratio {ng_rps / our_rps:.2f}x")
    enter_netns(host_ns)
    api("DELETE", f"/containers/{cid}")
