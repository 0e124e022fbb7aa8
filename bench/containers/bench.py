"""Container benchmark driver (bench/containers/run.sh starts the server and
the upstreams and passes their addresses). Prints, in one run:

  a. spawn to 201 and spawn to `completed` of /bin/true through clawbox,
     against the bare runtime's own create/start/wait/delete of the same
     bundle (taken from a clawbox container), median of N each, interleaved;
  b. spawns per second with 8 concurrent clients (spawn, wait, delete);
  c. the server's RSS per running container;
  d. a GET through a container's proxy socket against the same GET through
     nginx as a plain reverse proxy (keep-alive) to the same upstream, and
     an audit line's fdatasync alone on the audit log's file system.
Targets: a. completed <= 1.2x bare; d. <= 1.5x nginx.
PARTS=d (any of the letters abcd) runs only those parts; ND=300 sets the
number of GETs of part d on each side."""

import ctypes
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from cpu import CpuMeter, nginx_worker  # noqa: E402

PORT, TOKEN, DATA, RUNTIME, NGINX_PORT, UP_PORT = sys.argv[1:7]
N = int(os.environ.get("N", "30"))
PARTS = os.environ.get("PARTS", "abcd")
ND = int(os.environ.get("ND", "300"))
IMAGE = "clawbox/test-busybox:latest"


def api(method, path, body=None, conn=None):
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", int(PORT), timeout=60)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    if body is not None:
        body = json.dumps(body)
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    data = r.read()
    if own:
        conn.close()
    return r.status, (json.loads(data) if data[:1] in (b"{", b"[") else data)


def spawn(command, conn=None, timeout_ms=60000):
    return api("POST", "/containers/spawn", {
        "task": "bench", "image": IMAGE, "policy": "container", "command": command,
        "capabilities": {"resources": {"timeout_ms": timeout_ms}}}, conn)


def run_true(conn):
    """(ms to 201, ms to completed) of one /bin/true."""
    t0 = time.perf_counter()
    status, info = spawn(["/bin/true"], conn)
    t201 = time.perf_counter()
    if status != 201:
        sys.exit(f"containers: spawn failed: {status} {info}")
    cid = info["container_id"]
    while True:
        _, info = api("GET", f"/containers/{cid}", conn=conn)
        if info["status"] not in ("creating", "running"):
            break
        time.sleep(0.0005)
    t_end = time.perf_counter()
    api("DELETE", f"/containers/{cid}", conn=conn)
    return (t201 - t0) * 1e3, (t_end - t0) * 1e3


def bare_bundle():
    """A bundle clawbox wrote for /bin/true, copied, with host paths."""
    status, info = spawn(["/bin/sleep", "30"])
    cid = info["container_id"]
    src = os.path.join(DATA, "containers", cid, "bundle")
    dst = os.path.join(os.path.dirname(DATA), "bare-bundle")
    shutil.copytree(src, dst)
    api("DELETE", f"/containers/{cid}")
    with open(os.path.join(dst, "config.json")) as f:
        cfg = json.load(f)
    cfg["process"]["args"] = ["/bin/true"]
    # The server gives the runtime paths bound in its own mount namespace;
    # the same directories at their real places here.
    stage = cfg["root"]["path"].split("/images/")[0]
    cfg["root"]["path"] = cfg["root"]["path"].replace(stage + "/images", os.path.join(DATA, "images"))
    cfg["mounts"] = [m for m in cfg["mounts"] if m["destination"] != "/run/clawbox"]
    # Under transparent egress the bundle names the network namespace
    # clawbox made, gone with its container: the bare runtime makes a new
    # one, as clawbox does for each container.
    for ns in cfg["linux"]["namespaces"]:
        if ns["type"] == "network":
            ns.pop("path", None)
    old = os.path.join(stage, "containers", cid, "bundle")
    for m in cfg["mounts"]:  # resolv.conf and hosts
        if m.get("source", "").startswith(old):
            m["source"] = dst + m["source"][len(old):]
    with open(os.path.join(dst, "config.json"), "w") as f:
        json.dump(cfg, f)
    return dst


def bare_lifecycle(bundle, root, i):
    """ms of create, start, wait for the exit, delete, as Podman drives the
    runtime (pid file, then the exit seen as subreaper)."""
    cid = f"bare-{os.getpid()}-{i}"
    pidfile = os.path.join(os.path.dirname(bundle), f"{cid}.pid")
    null = subprocess.DEVNULL
    t0 = time.perf_counter()
    subprocess.run([RUNTIME, "--root", root, "create", "--bundle", bundle, "--pid-file", pidfile,
                    cid], stdin=null, stdout=null, stderr=null, check=True)
    pid = int(open(pidfile).read())
    subprocess.run([RUNTIME, "--root", root, "start", cid], stdin=null, stdout=null, check=True)
    os.waitpid(pid, 0)
    subprocess.run([RUNTIME, "--root", root, "delete", "--force", cid], stdin=null, stdout=null,
                   check=True)
    return (time.perf_counter() - t0) * 1e3


def part_a():
    bundle = bare_bundle()
    root = os.path.join(os.path.dirname(DATA), "bare-root")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: the bare side's exit status
    conn = http.client.HTTPConnection("127.0.0.1", int(PORT), timeout=60)
    to201, done, bare = [], [], []
    for i in range(N):  # interleaved, so load shifts hit both sides
        a, b = run_true(conn)
        to201.append(a)
        done.append(b)
        bare.append(bare_lifecycle(bundle, root, i))
    m201, mdone, mbare = (statistics.median(x) for x in (to201, done, bare))
    print(f"a. /bin/true with {RUNTIME}, median of {N}: spawn to 201 {m201:.1f} ms, "
          f"spawn to completed {mdone:.1f} ms; bare {RUNTIME} create/start/wait/delete "
          f"{mbare:.1f} ms")
    print(f"   ratio completed/bare: {mdone / mbare:.2f}x (target <= 1.2x)")


def part_b(seconds=10, clients=8):
    count = [0]
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", int(PORT), timeout=60)
        while time.perf_counter() < stop:
            status, info = spawn(["/bin/true"], conn)
            if status != 201:
                time.sleep(0.01)
                continue
            cid = info["container_id"]
            while api("GET", f"/containers/{cid}", conn=conn)[1]["status"] in ("creating",
                                                                               "running"):
                time.sleep(0.001)
            api("DELETE", f"/containers/{cid}", conn=conn)
            with lock:
                count[0] += 1

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rate = count[0] / (time.perf_counter() - t0)
    print(f"b. {clients} concurrent clients: {rate:.1f} containers/s "
          f"(spawn, completed, delete; {count[0]} in {seconds} s)")


def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def part_c(pid, n=10):
    before = rss_kb(pid)
    ids = [spawn(["/bin/sleep", "60"])[1]["container_id"] for _ in range(n)]
    time.sleep(0.5)
    after = rss_kb(pid)
    for cid in ids:
        api("DELETE", f"/containers/{cid}")
    print(f"c. server RSS: {before} kB, with {n} running containers {after} kB: "
          f"{(after - before) / n:.0f} kB per container")


class UnixConn(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=30)
        self.path_ = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path_)


def timed_gets(conn, path, headers, n):
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        r.read()
        if r.status != 200:
            sys.exit(f"containers: GET {path} answered {r.status}")
        out.append((time.perf_counter() - t0) * 1e6)
    return out


def part_d(n=ND):
    status, info = spawn(["/bin/sleep", "120"])
    cid = info["container_id"]
    with open(os.path.join(DATA, "containers", cid, "bundle", "config.json")) as f:
        env = json.load(f)["process"]["env"]
    token = [e.split("=", 1)[1] for e in env if e.startswith("CLAWBOX_PROXY_TOKEN=")][0]
    sock = os.path.join(DATA, "containers", cid, "proxy", "proxy.sock")
    via_socket = UnixConn(sock)
    via_nginx = http.client.HTTPConnection("127.0.0.1", int(NGINX_PORT), timeout=30)
    direct = http.client.HTTPConnection("127.0.0.1", int(UP_PORT), timeout=30)
    target = f"/http://127.0.0.1:{UP_PORT}/body.txt"
    auth = {"Proxy-Authorization": f"Bearer {token}"}
    timed_gets(via_socket, target, auth, 20)  # warm all three
    timed_gets(via_nginx, "/body.txt", {}, 20)
    timed_gets(direct, "/body.txt", {}, 20)
    a, b, c = [], [], []
    cpu_a = CpuMeter(int(os.environ["SERVER_PID"]))
    cpu_b = CpuMeter(nginx_worker(int(os.environ["NGINX_PID"])))
    for _ in range(n // 50):  # interleaved blocks
        with cpu_a:
            a += timed_gets(via_socket, target, auth, 50)
        with cpu_b:
            b += timed_gets(via_nginx, "/body.txt", {}, 50)
        c += timed_gets(direct, "/body.txt", {}, 50)
    api("DELETE", f"/containers/{cid}")
    ma, mb, mc = statistics.median(a), statistics.median(b), statistics.median(c)
    print(f"d. GET of 1 KiB through the container's proxy socket {ma:.0f} us, through nginx "
          f"(proxy_pass, keep-alive) {mb:.0f} us, median of {len(a)}; the upstream "
          f"directly (no proxy, for scale) {mc:.0f} us")
    print(f"   ratio socket/nginx: {ma / mb:.2f}x (target <= 1.5x)")
    ca, cb = cpu_a.per_request_us(len(a)), cpu_b.per_request_us(len(b))
    print(f"   CPU per request: clawbox {ca:.0f} us (its every thread), nginx {cb:.0f} us "
          f"(its worker): ratio {ca / cb:.2f}x (see bench/cpu.py)")
    # With [logging] proxy_audit_sync = "before_response" each answer
    # waits for its audit line's fdatasync: that alone, on the audit log's
    # file system, against the whole headroom the target leaves over nginx.
    ms = fdatasync_us(os.path.dirname(DATA), n)
    print(f"   one audit line's append + fdatasync here alone: {ms:.0f} us median (off the "
          f"answer's path by default); the target leaves {0.5 * mb:.0f} us over nginx")


def fdatasync_us(directory, n):
    path = os.path.join(directory, "fdatasync-probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    out = []
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            os.write(fd, b"x" * 448 + b"\n")
            os.fdatasync(fd)
            out.append((time.perf_counter() - t0) * 1e6)
    finally:
        os.close(fd)
        os.unlink(path)
    return statistics.median(out)


if __name__ == "__main__":
    server_pid = int(os.environ["SERVER_PID"])
    if "a" in PARTS:
        part_a()
    if "b" in PARTS:
        part_b()
    if "c" in PARTS:
        part_c(server_pid)
    if "d" in PARTS:
        part_d()
