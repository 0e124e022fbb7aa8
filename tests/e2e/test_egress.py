"""Transparent egress from inside real containers: with
[containers] egress = "transparent", programs that know nothing of a proxy
(busybox wget and nc) reach an allowed loopback upstream by its name; a
name outside the allowlist does not resolve; a literal address outside it
is refused with the readable 403; UDP elsewhere, raw and ICMP sockets
fail; the container cannot change its interfaces or routes; the namespace
file goes with the container; HTTPS is passed through by SNI, or with
[container_policy] tls = "intercept" terminated with the container's CA,
the credential injected and the echo redacted; CONNECT and absolute-URI
requests to the listener; kill -9 of the server cuts everything. The main
class runs once per OCI runtime. Clients that know nothing of clawbox
(Python's urllib and http.client, Node's fetch) from a container's network
namespace; fifty connections from each of five containers; a slow-loris
container, bounded, that blocks no one else."""

import gzip
import hashlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import ctimage
import harness
from test_containers import RUNTIMES, Upstream, skip_reason

IMAGE = ctimage.TEST_IMAGE
PROBE = "/usr/bin/ctprobe"


def loopback_name():
    """A name of this host that resolves to 127.0.0.1 here (the container's
    own /etc/hosts does not know it, so only the DNS stub answers it)."""
    for name in (socket.gethostname(), "localhost"):
        try:
            if name != "localhost" and socket.gethostbyname(name) == "127.0.0.1":
                return name
        except OSError:
            pass
    return None


def tls_upstream(name):
    """A loopback HTTPS upstream (Upstream's echo) with a self-signed
    certificate for name, at srv.cert_path."""
    d = tempfile.mkdtemp(prefix="clawbox-egress-tls-")
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    # busybox's own TLS sends no signature_algorithms, which leaves TLS 1.2
    # at SHA-1 signatures: below OpenSSL 3's default security level.
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    srv.cert_path = cert
    return srv


def container_pid(server, runtime, cid):
    """The host pid of a running container's init, as its runtime has it."""
    root = os.path.join(server.dir, "data", "oci")
    deadline = time.time() + 10
    while time.time() < deadline:
        st = subprocess.run([runtime, "--root", root, "state", cid], capture_output=True,
                            text=True)
        pid = json.loads(st.stdout).get("pid", 0) if st.returncode == 0 else 0
        if pid:
            return pid
        time.sleep(0.05)
    raise AssertionError(f"{cid} has no running init")


def client_hello(name):
    """The bytes of a TLS ClientHello for name, as printf octal escapes."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=name)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    raw = outgoing.read()
    return "".join(f"\\{b:03o}" for b in raw)


class EgressBase(harness.ServerTestCase):
    """A server with transparent egress and a loopback upstream, plain
    and TLS, reached by the name of this host."""

    runtime = None
    max_containers = 3
    proxy_extra = ""  # more [proxy] settings

    @classmethod
    def setUpClass(cls):
        why = skip_reason()
        if why:
            raise unittest.SkipTest(why)
        cls.name = loopback_name()
        if cls.name is None:
            raise unittest.SkipTest("no host name of this machine resolves to 127.0.0.1")
        cls.upstream = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
        threading.Thread(target=cls.upstream.serve_forever, daemon=True).start()
        cls.port = cls.upstream.server_address[1]
        cls.tls = tls_upstream(cls.name)
        cls.tls_port = cls.tls.server_address[1]
        cls.server = harness.Server(
            f'[containers]\nruntime = "{cls.runtime}"\negress = "transparent"\n'
            f'max_containers = {cls.max_containers}\ndefault_timeout_ms = 60000\n'
            'max_output_bytes = 65536\n'
            '[container_policy]\nallowed_policies = ["wasm_only", "container"]\n'
            f'allowed_images = ["clawbox/"]\nnetwork_allowlist = ["{cls.name}"]\n'
            '[proxy]\nallow_private_cidrs = ["127.0.0.0/8"]\n' + cls.proxy_extra)
        ctimage.import_test_image(cls.server)
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        if hasattr(cls, "server"):
            super().tearDownClass()
        for srv in (getattr(cls, "upstream", None), getattr(cls, "tls", None)):
            if srv is not None:
                srv.shutdown()
                srv.server_close()

    def spawn_sh(self, script):
        """Starts script with /bin/sh in a new container; its id."""
        r = self.server.request("POST", "/containers/spawn", {
            "task": "egress", "image": IMAGE, "policy": "container",
            "command": ["/bin/sh", "-c", script]})
        self.assertEqual(r.status, 201, r.body)
        return r.json()["container_id"]

    def run_sh(self, script, timeout=30):
        """Runs script with /bin/sh in a new container to its end; returns
        (id, info, output)."""
        return self.finish(self.spawn_sh(script), timeout)

    def finish(self, cid, timeout=30):
        """Waits for a container's end, then deletes it: (id, info, output)."""
        end = time.time() + timeout
        info = None
        while time.time() < end:
            info = self.server.request("GET", f"/containers/{cid}").json()
            if info["status"] not in ("creating", "running"):
                break
            time.sleep(0.05)
        out = self.server.request("DELETE", f"/containers/{cid}").json()["output"] or ""
        return cid, info, out

    def audit(self):
        return harness.read_audit(os.path.join(self.server.dir, "audit"))[0]


class EgressCase(EgressBase):
    def test_wget_by_name_without_proxy_settings(self):
        _, info, out = self.run_sh(
            f"wget -q -O - http://{self.name}:{self.port}/plain?x=1")
        self.assertEqual(info["status"], "completed", (info, out))
        doc = json.loads(out.strip().splitlines()[-1])
        self.assertEqual(doc["path"], "/plain?x=1")
        self.assertEqual(doc["method"], "GET")

    def test_post_body_and_keep_alive(self):
        req = (f"POST /a HTTP/1.1\\r\\nHost: {self.name}:{self.port}\\r\\n"
               "Content-Length: 5\\r\\n\\r\\nhello"
               f"GET /b HTTP/1.1\\r\\nHost: {self.name}:{self.port}\\r\\n"
               "Connection: close\\r\\n\\r\\n")
        _, info, out = self.run_sh(
            f"printf '{req}' | nc {self.name} {self.port}")
        self.assertEqual(out.count("HTTP/1.1 200"), 2, out)
        self.assertIn('"body": "hello"', out)
        self.assertIn('"path": "/b"', out)

    def test_disallowed_name_is_nxdomain_and_audited(self):
        _, info, out = self.run_sh(
            "nslookup blocked.example.com; echo rc=$?; wget -q -O - http://blocked.example.com/;"
            " echo wget=$?")
        self.assertIn("NXDOMAIN", out)
        self.assertIn("wget=1", out)
        lines = [l for l in self.audit() if l.get("url") == "dns:blocked.example.com"]
        self.assertTrue(lines, self.audit())
        self.assertEqual(lines[-1]["decision"], "blocked")

    def test_dns_denials_audited_at_a_bounded_rate(self):
        cid, _, out = self.run_sh(
            "for i in $(seq 60); do nslookup flood$i.example.com >/dev/null 2>&1; done; "
            "sleep 1.2; nslookup last.example.com >/dev/null 2>&1; echo done")
        self.assertIn("done", out)
        lines = [l for l in self.audit() if l.get("tool") == cid and l.get("method") == "DNS"]
        self.assertLess(len(lines), 100, len(lines))
        last = [l for l in lines if l["url"] == "dns:last.example.com"]
        self.assertTrue(last, lines[-3:])
        self.assertIn("more refused before, not audited", last[0]["reason"])

    def test_allowed_name_resolves_to_the_pool(self):
        _, _, out = self.run_sh(f"nslookup {self.name}")
        self.assertIn("198.18.", out)

    def test_literal_ip_not_allowed_is_refused(self):
        req = "GET / HTTP/1.1\\r\\nHost: 203.0.113.7\\r\\nConnection: close\\r\\n\\r\\n"
        _, _, out = self.run_sh(f"printf '{req}' | nc 203.0.113.7 80")
        self.assertIn("HTTP/1.1 403", out)
        body = out.partition("\r\n\r\n")[2]
        self.assertIn("203.0.113.7", json.loads(body)["error"])

    def test_host_that_disagrees_with_the_destination_is_refused(self):
        req = f"GET / HTTP/1.1\\r\\nHost: {self.name}\\r\\nConnection: close\\r\\n\\r\\n"
        _, _, out = self.run_sh(f"printf '{req}' | nc 203.0.113.7 80")
        self.assertIn("HTTP/1.1 403", out)
        self.assertIn("does not match", out)

    def test_not_http_nor_tls_is_closed_and_audited(self):
        _, _, out = self.run_sh(
            f"printf 'SSH-2.0-x\\r\\n' | nc {self.name} 22; echo done")
        self.assertIn("done", out)
        self.assertNotIn("HTTP/", out)
        self.assertTrue([l for l in self.audit() if "neither HTTP nor TLS" in (l.get("reason") or "")],
                        self.audit())

    def test_udp_raw_and_icmp_fail(self):
        _, _, out = self.run_sh(f"{PROBE} udp 192.0.2.1 9999; {PROBE} raw")
        self.assertIn("udp=EPERM", out)
        self.assertIn("raw=EPERM", out)
        self.assertRegex(out, r"icmp=E(ACCES|PERM)")

    def test_rules_routes_and_links_cannot_change(self):
        _, _, out = self.run_sh(
            "ip link set lo down; echo link=$?; ip route del default; echo route=$?; "
            "ip link add x type dummy; echo add=$?; ip -o link | wc -l")
        for step in ("link", "route", "add"):
            self.assertRegex(out, step + r"=[1-9]", out)
        self.assertEqual(out.count("Operation not permitted"), 3, out)

    def test_https_passed_through_by_name(self):
        _, info, out = self.run_sh(
            f"wget --no-check-certificate -q -O - https://{self.name}:{self.tls_port}/tls")
        self.assertEqual(info["status"], "completed", (info, out))
        self.assertEqual(json.loads(out.strip().splitlines()[-1])["path"], "/tls")
        notes = [l for l in self.audit() if "TLS passthrough" in (l.get("reason") or "")]
        self.assertTrue(notes, self.audit())
        self.assertEqual(notes[-1]["decision"], "allowed")

    def test_https_to_a_literal_address_is_refused(self):
        _, info, out = self.run_sh(
            "wget --no-check-certificate -q -O - https://203.0.113.7/; echo wget=$?")
        self.assertIn("wget=1", out)
        # busybox sends the address as SNI, other clients send none: either
        # way the destination is no name the container's DNS gave.
        self.assertTrue([l for l in self.audit() if l.get("url") == "tcp://[203.0.113.7]:443"
                         and l["decision"] == "blocked"], self.audit())

    def test_explicit_proxy_absolute_form(self):
        _, info, out = self.run_sh(
            f"http_proxy=http://127.0.0.1:3128 wget -q -O - http://{self.name}:{self.port}/abs")
        self.assertEqual(info["status"], "completed", (info, out))
        self.assertEqual(json.loads(out.strip().splitlines()[-1])["path"], "/abs")

    def connect(self, target, sni):
        hello = client_hello(sni)
        return self.run_sh(
            f"(printf 'CONNECT {target} HTTP/1.1\\r\\nHost: {target}\\r\\n\\r\\n'; "
            f"sleep 0.3; printf '{hello}'; sleep 1) | nc 127.0.0.1 3128 | od -An -tx1 | "
            "tr -d '\\n' | head -c 400")[2]

    def test_connect_tunnel_to_an_allowed_name(self):
        out = self.connect(f"{self.name}:{self.tls_port}", self.name)
        # "HTTP/1.1 200", then the upstream's ServerHello: a handshake record.
        self.assertTrue(out.strip().startswith("48 54 54 50 2f 31 2e 31 20 32 30 30"), out)
        self.assertIn("0d 0a 0d 0a 16 03", out)

    def test_connect_refusals(self):
        out = self.connect("blocked.example.com:443", "blocked.example.com")
        self.assertTrue(out.strip().startswith("48 54 54 50 2f 31 2e 31 20 34 30 33"), out)
        out = self.connect(f"{self.name}:{self.tls_port}", "other.example.com")
        self.assertNotIn("16 03", out.partition("0d 0a 0d 0a")[2])
        self.assertTrue([l for l in self.audit()
                         if "does not match the CONNECT target" in (l.get("reason") or "")])

    def test_ipv6_by_name(self):
        req = (f"GET /v6 HTTP/1.1\\r\\nHost: {self.name}:{self.port}\\r\\n"
               "Connection: close\\r\\n\\r\\n")
        _, _, out = self.run_sh(
            f"a=$(nslookup -type=AAAA {self.name} | grep -o 'fd63:[0-9a-f:]*' | tail -1); "
            f"echo addr=$a; printf '{req}' | nc $a {self.port}")
        self.assertIn("addr=fd63:6c61:7762:6f78::", out)
        self.assertIn("HTTP/1.1 200", out)
        self.assertIn('"path": "/v6"', out)

    def test_many_parallel_connections(self):
        n = 50
        _, info, out = self.run_sh(
            f"for i in $(seq {n}); do wget -q -O - http://{self.name}:{self.port}/p$i & done; "
            "wait")
        self.assertEqual(out.count('"method": "GET"'), n, out)

    def test_namespace_file_goes_with_the_container(self):
        cid, _, _ = self.run_sh("true")
        self.assertFalse(os.path.exists(
            os.path.join(self.server.dir, "data", "containers", cid, "netns")))


# Run under nsenter in a container's network namespace, in a mount
# namespace of its own where /etc/hosts does not know the upstream's name
# and /etc/resolv.conf names an address of no server: the name resolves
# only through the container's DNS stub, as it would inside the container.
IN_NETNS = ("mount --bind \"$1\" /etc/hosts && mount --bind \"$2\" /etc/resolv.conf && "
            "shift 2 && exec \"$@\"")

PY_CLIENTS = r"""
import http.client, json, sys, urllib.request
name, port = sys.argv[1], int(sys.argv[2])
with urllib.request.urlopen(f"http://{name}:{port}/urllib", timeout=10) as r:
    print("urllib", r.status, json.loads(r.read())["path"])
c = http.client.HTTPConnection(name, port, timeout=10)
for i in range(3):  # one connection, kept alive
    c.request("POST", f"/http.client/{i}", body=b"b" * 100000)
    r = c.getresponse()
    print("http.client", r.status, len(json.loads(r.read())["body"]))
"""

NODE_CLIENT = r"""
const [name, port] = process.argv.slice(1);
(async () => {
  const r = await fetch(`http://${name}:${port}/fetch`, {method: "POST", body: "n".repeat(5000)});
  const doc = await r.json();
  console.log("fetch", r.status, doc.path, doc.body.length);
})().catch((e) => { console.error(e); process.exit(1); });
"""

# A credential pattern: redacted wherever it is, with no store needed.
TOKEN = b"ghp_Q7w2E9r4T6y1U8i3O5p0A2s4D6f8G1h3J5k7"
BIG_LINE = b"the quick brown fox jumps over the lazy dog %08d\n"
_bodies = {}


def big_body(n, at):
    """n bytes of text lines with TOKEN written at each offset of at."""
    key = (n, at)
    if key not in _bodies:
        lines = n // len(BIG_LINE % 0) + 1
        body = bytearray(b"".join(BIG_LINE % i for i in range(lines))[:n])
        for off in at:
            body[off:off + len(TOKEN)] = TOKEN
        _bodies.clear()
        _bodies[key] = bytes(body)
    return _bodies[key]


class BigUpstream(BaseHTTPRequestHandler):
    """GET /big?n=N&at=O1,O2[&gz=1]: big_body(N, (O1, O2)), gzipped with
    gz; GET /bomb: 80 MiB of zeros gzipped; POST: the body's length and
    digest, and what came of it kept in got (a body cut short too)."""

    protocol_version = "HTTP/1.1"
    bomb = None
    got = []

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = []
        while True:
            size = int(self.rfile.readline().split(b";")[0], 16)
            if size == 0:
                self.rfile.readline()
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    def do_POST(self):
        body = b""
        try:
            body = self.read_body()
        except ValueError:
            pass
        finally:
            BigUpstream.got.append(body)
        out = json.dumps({"len": len(body), "sha256": hashlib.sha256(body).hexdigest(),
                          "te": self.headers.get("Transfer-Encoding")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def handle(self):
        try:
            super().handle()
        except (ConnectionResetError, BrokenPipeError):
            pass  # the proxy cut a transfer short: what the bomb is for

    def do_GET(self):
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        if self.path.startswith("/bomb"):
            if BigUpstream.bomb is None:
                BigUpstream.bomb = gzip.compress(bytes(80 << 20), 1)
            body, gz = BigUpstream.bomb, True
        else:
            at = tuple(int(x) for x in q.get("at", [""])[0].split(",") if x)
            body, gz = big_body(int(q["n"][0]), at), "gz" in q
            if gz:
                body = gzip.compress(body, 1)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        if gz:
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


# Run in a container's network namespace: GET argv[3] from NAME:PORT,
# read as it comes; prints what came (status, length, digest, framing).
PY_STREAM = r"""
import hashlib, http.client, json, sys
name, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
c = http.client.HTTPConnection(name, port, timeout=60)
c.request("GET", path, headers={"Accept-Encoding": "gzip"})
r = c.getresponse()
h, n, err = hashlib.sha256(), 0, None
try:
    while True:
        b = r.read(65536)
        if not b:
            break
        h.update(b)
        n += len(b)
except http.client.IncompleteRead as e:
    n += len(e.partial)
    err = "incomplete"
print(json.dumps({"status": r.status, "len": n, "sha256": h.hexdigest(), "error": err,
                  "te": r.getheader("Transfer-Encoding"), "ce": r.getheader("Content-Encoding"),
                  "cl": r.getheader("Content-Length")}))
"""

# Run in a container's network namespace: POST big_body(N, (AT,)) to
# NAME:PORT, by length or (CHUNKED=1) chunked; prints the status and the
# answer.
PY_UPLOAD = r"""
import http.client, json, sys
name, port, n, at, chunked = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
line = b"the quick brown fox jumps over the lazy dog %08d\n"
body = bytearray(b"".join(line % i for i in range(n // len(line % 0) + 1))[:n])
if at >= 0:
    token = b"ghp_Q7w2E9r4T6y1U8i3O5p0A2s4D6f8G1h3J5k7"
    body[at:at + len(token)] = token
c = http.client.HTTPConnection(name, port, timeout=60)
if chunked:
    pieces = (bytes(body[i:i + 100000]) for i in range(0, len(body), 100000))
    c.request("POST", "/up", body=pieces, encode_chunked=True)
else:
    c.request("POST", "/up", body=bytes(body))
r = c.getresponse()
print(json.dumps({"status": r.status, "body": r.read().decode(errors="replace")}))
"""


class EgressClients(EgressBase):
    """Clients that know nothing of clawbox, from a container's network
    namespace: Python's urllib and http.client, Node's fetch; fifty
    connections from each of five containers at once; a slow-loris
    container that holds every connection it may open, which neither
    blocks another container nor keeps its connections past the head
    timeout."""

    runtime = RUNTIMES[0] if RUNTIMES else "crun"
    max_containers = 6
    proxy_extra = "max_response_bytes = 67108864\n"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.big = ThreadingHTTPServer(("127.0.0.1", 0), BigUpstream)
        threading.Thread(target=cls.big.serve_forever, daemon=True).start()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        if hasattr(cls, "big"):
            cls.big.shutdown()
            cls.big.server_close()

    def stream_get(self, cid, path):
        out = self.in_netns(cid, sys.executable, "-c", PY_STREAM, self.name,
                            str(self.big.server_address[1]), path)
        self.assertEqual(out.returncode, 0, out.stderr)
        return json.loads(out.stdout)

    def server_kib(self, field):
        with open(f"/proc/{self.server.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise AssertionError(field)

    def in_netns(self, cid, *argv):
        """Runs argv in the network namespace of container cid (entered
        through its init: the namespace file is in the server's own mount
        namespace), resolving names through its DNS stub only."""
        work = tempfile.mkdtemp(prefix="clawbox-egress-ns-")
        self.addCleanup(shutil.rmtree, work)
        hosts, resolv = os.path.join(work, "hosts"), os.path.join(work, "resolv.conf")
        with open(hosts, "w") as f:
            f.write("127.0.0.1 localhost\n")
        with open(resolv, "w") as f:
            f.write("nameserver 192.0.2.53\noptions timeout:2 attempts:1\n")
        pid = container_pid(self.server, self.runtime, cid)
        return subprocess.run(["nsenter", "-t", str(pid), "-n", "unshare", "-m", "sh", "-c",
                               IN_NETNS, "-", hosts, resolv, *argv],
                              capture_output=True, text=True, timeout=60)

    def sleeper(self):
        cid = self.spawn_sh("sleep 60")
        self.addCleanup(self.server.request, "DELETE", f"/containers/{cid}")
        return cid

    def test_python_clients(self):
        if not shutil.which("nsenter") or not shutil.which("unshare"):
            self.skipTest("no nsenter or unshare")
        out = self.in_netns(self.sleeper(), sys.executable, "-c", PY_CLIENTS, self.name,
                            str(self.port))
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.splitlines(), ["urllib 200 /urllib"] +
                         ["http.client 200 100000"] * 3)

    def test_node_fetch(self):
        node = shutil.which("node")
        if not node or not shutil.which("nsenter"):
            self.skipTest("no node or nsenter")
        out = self.in_netns(self.sleeper(), node, "-e", NODE_CLIENT, self.name, str(self.port))
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.strip(), "fetch 200 /fetch 5000")

    def test_large_download_streams_redacted_in_bounded_memory(self):
        # 48 MiB through the transparent path: it streams (chunked), a
        # token is redacted wherever it sits (around the first cut of the
        # redaction's 256 KiB hold too), and the server's peak memory
        # grows by far less than the body.
        if not shutil.which("nsenter"):
            self.skipTest("no nsenter")
        cid = self.sleeper()
        n, at = 48 << 20, (256 * 1024 - 32 * 1024 - 20, 5 << 20, (48 << 20) - 100)
        want = big_body(n, at).replace(TOKEN, b"[REDACTED]")
        with open(f"/proc/{self.server.proc.pid}/clear_refs", "w") as f:
            f.write("5")  # resets the peak
        before = self.server_kib("VmRSS")
        got = self.stream_get(cid, f"/big?n={n}&at={','.join(map(str, at))}")
        grew_mib = (self.server_kib("VmHWM") - before) / 1024
        self.assertEqual((got["status"], got["error"], got["te"], got["cl"]),
                         (200, None, "chunked", None), got)
        self.assertEqual(got["len"], len(want))
        self.assertEqual(got["sha256"], hashlib.sha256(want).hexdigest())
        self.assertLess(grew_mib, 16, f"the server's peak grew by {grew_mib:.1f} MiB")
        # A small body still comes whole, with its length.
        small = self.stream_get(cid, "/big?n=1000&at=10")
        self.assertEqual((small["cl"], small["te"], small["len"]),
                         ("970", None, 970), small)

    def test_gzip_is_decoded_redacted_and_bombs_are_capped(self):
        if not shutil.which("nsenter"):
            self.skipTest("no nsenter")
        cid = self.sleeper()
        n, at = 3 << 20, (1000, 2 << 20)
        want = big_body(n, at).replace(TOKEN, b"[REDACTED]")
        got = self.stream_get(cid, f"/big?n={n}&at=1000,{2 << 20}&gz=1")
        self.assertEqual((got["status"], got["error"], got["ce"]), (200, None, None), got)
        self.assertEqual(got["sha256"], hashlib.sha256(want).hexdigest())
        # 80 MiB of zeros in 80 KiB of gzip: cut off at the 64 MiB cap.
        got = self.stream_get(cid, "/bomb")
        self.assertEqual((got["status"], got["error"]), (200, "incomplete"), got)
        self.assertLessEqual(got["len"], 64 << 20)
        lines = [l for l in self.audit() if "/bomb" in (l.get("url") or "")]
        self.assertIn("exceeds the limit of 67108864 bytes", lines[-1]["reason"], lines)

    def upload(self, cid, n, at=-1, chunked=False):
        out = self.in_netns(cid, sys.executable, "-c", PY_UPLOAD, self.name,
                            str(self.big.server_address[1]), str(n), str(at),
                            "1" if chunked else "0")
        self.assertEqual(out.returncode, 0, out.stderr)
        return json.loads(out.stdout)

    def test_large_upload_streams_scanned_in_bounded_memory(self):
        # 8 MiB up, by length and chunked: it reaches the upstream whole
        # (chunked when the client sent it so), and the server's peak
        # memory grows by far less than the body.
        if not shutil.which("nsenter"):
            self.skipTest("no nsenter")
        cid = self.sleeper()
        n = 8 << 20
        want = hashlib.sha256(big_body(n, ())).hexdigest()
        for chunked in (False, True):
            with open(f"/proc/{self.server.proc.pid}/clear_refs", "w") as f:
                f.write("5")
            before = self.server_kib("VmRSS")
            got = self.upload(cid, n, chunked=chunked)
            grew_mib = (self.server_kib("VmHWM") - before) / 1024
            self.assertEqual(got["status"], 200, got)
            doc = json.loads(got["body"])
            self.assertEqual((doc["len"], doc["sha256"]), (n, want))
            self.assertEqual(doc["te"], "chunked" if chunked else None)
            self.assertLess(grew_mib, 4, f"the server's peak grew by {grew_mib:.1f} MiB")

    def test_secret_in_a_streamed_upload_is_blocked_before_it_leaves(self):
        if not shutil.which("nsenter"):
            self.skipTest("no nsenter")
        cid = self.sleeper()
        for at in (5 << 20, 300 << 10, 256 * 1024 - 32 * 1024 - 7):
            BigUpstream.got = []
            got = self.upload(cid, 6 << 20, at=at, chunked=at % 2 == 1)
            self.assertEqual(got["status"], 403, got)
            self.assertIn("contains a credential", json.loads(got["body"])["error"])
            self.assertFalse([b for b in BigUpstream.got if TOKEN[:12] in b], at)
            lines = [l for l in self.audit() if l.get("tool") == cid]
            self.assertEqual(lines[-1]["decision"], "leak_blocked", lines[-1])
        # Past 10 MiB: 413, by length at once, chunked when it gets there.
        for chunked in (False, True):
            got = self.upload(cid, 11 << 20, chunked=chunked)
            self.assertEqual(got["status"], 413, got)

    def test_fifty_connections_from_each_of_five_containers(self):
        n = 50
        cids = [self.spawn_sh(
            f"for i in $(seq {n}); do wget -q -O - http://{self.name}:{self.port}/c{k}-$i & "
            "done; wait") for k in range(5)]
        for k, cid in enumerate(cids):
            _, info, out = self.finish(cid, 60)
            self.assertEqual(info["status"], "completed", (info, out[-300:]))
            self.assertEqual(out.count(f'"path": "/c{k}-'), n, out[-300:])

    def test_slow_loris_is_bounded_and_blocks_no_one_else(self):
        # Sixty connections that send half a request head and wait: each
        # holds a connection of its container until the head timeout
        # (10 s), then is cut. Meanwhile another container is served.
        loris = self.spawn_sh(
            f"a=$(nslookup {self.name} | grep -o '198[.]18[.][0-9.]*' | tail -1); "
            f"{PROBE} loris $a {self.port} 60")
        time.sleep(2)
        t0 = time.monotonic()
        _, info, out = self.run_sh(
            f"for i in 1 2 3 4 5; do wget -q -O - http://{self.name}:{self.port}/other$i; done")
        self.assertEqual(out.count('"method": "GET"'), 5, out)
        self.assertLess(time.monotonic() - t0, 5)
        _, info, out = self.finish(loris, 60)
        self.assertIn("connected=60 cut=60 ", out)
        last_ms = int(out.split("last_ms=")[1].split()[0])
        self.assertTrue(9000 <= last_ms <= 13000, out)
        self.assertNotIn("/slow", json.dumps(Upstream.seen))


SECRET = "cb-egress-secret-5d0c2e9a71f4"
MASTER_KEY = "33" * 32

# Run with nsenter in a container's network namespace: a TLS client with
# the container's CA, to the pool address of NAME (argv), sending a
# request that asks the upstream to echo the secret.
INTERCEPT_CLIENT = r"""
import json, socket, ssl, sys
addr, name, port, cafile = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
host = sys.argv[5] if len(sys.argv) > 5 else f"{name}:{port}"
ctx = ssl.create_default_context(cafile=None if cafile == "-" else cafile)
with socket.create_connection((addr, port), timeout=10) as raw:
    with ctx.wrap_socket(raw, server_hostname=name) as s:
        s.sendall(f"GET /icpt HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                  .encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
print(data.decode(errors="replace"))
"""


class EgressIntercept(unittest.TestCase):
    """tls = "intercept": HTTPS from the container's network namespace is
    terminated with the container's CA, the credential injected upstream,
    the echoed secret redacted. The client is Python under nsenter in the
    container's network namespace (the test image has no TLS client that
    OpenSSL's default security level accepts)."""

    @classmethod
    def setUpClass(cls):
        why = skip_reason() or (None if shutil.which("nsenter") else "no nsenter")
        if why:
            raise unittest.SkipTest(why)
        cls.name = loopback_name()
        if cls.name is None:
            raise unittest.SkipTest("no host name of this machine resolves to 127.0.0.1")
        cls.tls = tls_upstream(cls.name)
        cls.port = cls.tls.server_address[1]
        cls.server = harness.Server(
            f'[containers]\nruntime = "{RUNTIMES[0]}"\n'
            '[container_policy]\nallowed_policies = ["container"]\ntls = "intercept"\n'
            f'network_allowlist = ["{cls.name}"]\nallowed_credentials = ["up"]\n'
            f'[proxy]\nallow_private_cidrs = ["127.0.0.0/8"]\nca_bundle = "{cls.tls.cert_path}"\n',
            env={"CLAWBOX_MASTER_KEY": MASTER_KEY})
        ctimage.import_test_image(cls.server)
        p = subprocess.run([cls.server.binary, "creds", "--config", cls.server.config_path, "add",
                            "--name", "up", "--domain", cls.name, "--header", "X-Api-Key",
                            "--prefix", "", "--port", str(cls.port)],
                           input=SECRET + "\n", capture_output=True, text=True,
                           env=cls.server.env, timeout=60)
        if p.returncode != 0:
            raise RuntimeError(p.stderr)
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        if hasattr(cls, "server"):
            cls.server.cleanup()
        if hasattr(cls, "tls"):
            cls.tls.shutdown()
            cls.tls.server_close()

    def container(self):
        """A container that asked the stub for the upstream's name (so it is
        198.18.0.1) and sleeps: (id, pid, path of its CA on the host)."""
        r = self.server.request("POST", "/containers/spawn", {
            "task": "t", "image": IMAGE, "policy": "container",
            "capabilities": {"credentials": ["up"]},
            "command": ["/bin/sh", "-c",
                        f"nslookup {self.name} >/dev/null; env; cat $SSL_CERT_FILE; "
                        "cat /etc/ssl/certs/ca-certificates.crt; sleep 30"]})
        self.assertEqual(r.status, 201, r.body)
        cid = r.json()["container_id"]
        self.addCleanup(self.server.request, "DELETE", f"/containers/{cid}")
        pid = container_pid(self.server, RUNTIMES[0], cid)
        time.sleep(0.5)  # the container has asked for the name: it is 198.18.0.1
        return cid, pid, os.path.join(self.server.dir, "data", "containers", cid, "proxy",
                                      "ca.pem")

    def client(self, pid, ca, *host):
        return subprocess.run(["nsenter", "-t", str(pid), "-n", sys.executable, "-c",
                               INTERCEPT_CLIENT, "198.18.0.1", self.name, str(self.port), ca,
                               *host], capture_output=True, text=True, timeout=30)

    def test_intercepted_https_injects_and_redacts(self):
        Upstream.seen = []
        cid, pid, ca = self.container()
        out = self.client(pid, ca)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("HTTP/1.1 200", out.stdout)
        self.assertEqual([d["x_api_key"] for d in Upstream.seen if d["path"] == "/icpt"],
                         [SECRET])
        self.assertNotIn(SECRET, out.stdout)
        self.assertIn("[REDACTED]", out.stdout)
        logs = self.server.request("GET", f"/containers/{cid}/logs").body.decode()
        self.assertIn("SSL_CERT_FILE=/run/clawbox/ca.pem", logs)
        # Named by SSL_CERT_FILE, and in place of the image's system store.
        self.assertEqual(logs.count("BEGIN CERTIFICATE"), 2, logs)
        self.assertNotIn("the image's CA bundle", logs)
        lines = [l for l in harness.read_audit(os.path.join(self.server.dir, "audit"))[0]
                 if (l.get("url") or "").startswith(f"https://{self.name}:{self.port}/icpt")]
        self.assertEqual(lines[-1]["decision"], "allowed", lines)
        self.assertEqual(lines[-1]["credential_injected"], "up", lines)

    def test_refusals(self):
        cid, pid, ca = self.container()
        # A client that trusts only the system's CAs: the handshake fails.
        out = self.client(pid, "-")
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("CERTIFICATE_VERIFY_FAILED", out.stderr)
        # A Host that disagrees with the SNI: 403 inside TLS.
        out = self.client(pid, ca, "other.example.com")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("HTTP/1.1 403", out.stdout)
        self.assertIn("does not match", out.stdout)
        reasons = [l.get("reason") or "" for l in
                   harness.read_audit(os.path.join(self.server.dir, "audit"))[0]]
        self.assertTrue([r for r in reasons if r.startswith("TLS interception")], reasons)


class EgressRestart(unittest.TestCase):
    """kill -9 of the server: nothing in the container reaches anything
    any more, and a restart removes the namespace file."""

    def setUp(self):
        why = skip_reason()
        if why:
            self.skipTest(why)
        self.name = loopback_name()
        if self.name is None:
            self.skipTest("no host name of this machine resolves to 127.0.0.1")
        Upstream.seen = []
        self.upstream = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
        threading.Thread(target=self.upstream.serve_forever, daemon=True).start()
        self.addCleanup(self.upstream.server_close)
        self.addCleanup(self.upstream.shutdown)
        self.server = harness.Server(
            f'[containers]\nruntime = "{RUNTIMES[0]}"\n'
            '[container_policy]\nallowed_policies = ["container"]\n'
            f'network_allowlist = ["{self.name}"]\n'
            '[proxy]\nallow_private_cidrs = ["127.0.0.0/8"]\n')
        self.addCleanup(self.server.cleanup)
        ctimage.import_test_image(self.server)
        self.server.start()

    def test_kill_9_cuts_every_connection(self):
        port = self.upstream.server_address[1]
        cid = self.server.request("POST", "/containers/spawn", {
            "task": "t", "image": IMAGE, "policy": "container", "command": [
                "/bin/sh", "-c",
                f"while true; do wget -q -O /dev/null http://{self.name}:{port}/k; "
                "sleep 0.05; done"]}).json()["container_id"]
        netns = os.path.join(self.server.dir, "data", "containers", cid, "netns")
        deadline = time.time() + 10
        while len(Upstream.seen) < 3 and time.time() < deadline:
            time.sleep(0.05)
        self.assertGreaterEqual(len(Upstream.seen), 3)
        self.server.stop(sig=9)
        time.sleep(0.3)
        seen = len(Upstream.seen)
        time.sleep(1)
        self.assertEqual(len(Upstream.seen), seen)
        self.server.start()
        self.assertFalse(os.path.exists(netns))
        info = self.server.request("GET", f"/containers/{cid}").json()
        self.assertEqual(info["status"], "killed")


for _rt in RUNTIMES or ["crun"]:
    _name = f"Egress_{_rt}"
    globals()[_name] = type(_name, (EgressCase,), {"runtime": _rt})
del EgressCase

if __name__ == "__main__":
    harness.main()
