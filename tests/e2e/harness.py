"""Starts the real clawbox binary on a free loopback port with a temporary
config, and talks to it over real sockets. Used by every e2e test."""

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

# The test binary: the shipped CLI plus the test-only routes.
BIN = os.environ.get("CLAWBOX_BIN", "build/src/cli/clawbox-test")
# The binary that ships, for the tests that it has no test-only route.
SHIPPED_BIN = os.environ.get("CLAWBOX_SHIPPED_BIN", "build/src/cli/clawbox")
# Compiled tools shared by the tests' servers, so each compiles once.
CACHE_DIR = os.environ.get("CLAWBOX_E2E_CACHE", "/tmp/clawbox-e2e-cache")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_audit(audit_dir):
    """Every line of the audit log in audit_dir, parsed, oldest first (the
    rotated files by number, then audit.jsonl), and the raw bytes of every
    file in the directory (to search for what must never be there)."""
    names = sorted(n for n in os.listdir(audit_dir) if n.endswith(".jsonl"))
    names.sort(key=lambda n: n == "audit.jsonl")
    lines, blob = [], b""
    for n in os.listdir(audit_dir):
        with open(os.path.join(audit_dir, n), "rb") as f:
            blob += f.read()
    for n in names:
        with open(os.path.join(audit_dir, n)) as f:
            lines += [json.loads(line) for line in f if line.strip()]
    return lines, blob


def peak_rss(pid):
    """The peak resident set of a process, in bytes (VmHWM)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def sanitized(binary):
    """Whether the binary runs under AddressSanitizer, whose quarantine
    keeps freed memory resident (so peak memory says nothing there)."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    return "libasan" in out


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


class Response:
    def __init__(self, resp):
        self.status = resp.status
        self.headers = resp.headers
        self.body = resp.read()

    def json(self):
        return json.loads(self.body)


class Server:
    """One clawbox serve process with its own directory and config."""

    def __init__(self, extra_config="", env=None, unix_socket=False, cache_dir=None,
                 sandbox_extra="", binary=None):
        """extra_config is TOML before the [sandbox] table; sandbox_extra
        goes into it, after tool_dir (<dir>/tools) and cache_dir. binary
        defaults to BIN."""
        self.binary = binary or BIN
        self.dir = tempfile.mkdtemp(prefix="clawbox-e2e-")
        self.port = free_port()
        self.token = os.urandom(32).hex()
        self.socket_path = os.path.join(self.dir, "api.sock") if unix_socket else None
        self.config_path = os.path.join(self.dir, "clawbox.toml")
        self.log_path = os.path.join(self.dir, "server.log")
        sock_line = f'unix_socket = "{self.socket_path}"\n' if unix_socket else ""
        with open(self.config_path, "w") as f:
            f.write(
                f'[server]\nhost = "127.0.0.1"\nport = {self.port}\n'
                f'auth_token = "{self.token}"\ndata_dir = "{self.dir}/data"\n{sock_line}'
                f'{extra_config}\n[sandbox]\ntool_dir = "{self.dir}/tools"\n'
                + (f'cache_dir = "{cache_dir}"\n' if cache_dir else "") + sandbox_extra +
                f'[logging]\naudit_dir = "{self.dir}/audit"\n'
            )
        os.chmod(self.config_path, 0o600)  # it holds the token
        self.env = dict(os.environ, HOME=self.dir)
        for k in ("CLAWBOX_AUTH_TOKEN", "CLAWBOX_PORT", "CLAWBOX_HOST", "CLAWBOX_TOOL_DIR"):
            self.env.pop(k, None)
        self.env.update(env or {})
        self.proc = None

    def add_sandbox(self, lines):
        """Adds lines to the config's [sandbox] table (before start)."""
        with open(self.config_path) as f:
            text = f.read().replace("[sandbox]\n", "[sandbox]\n" + lines, 1)
        with open(self.config_path, "w") as f:
            f.write(text)

    def start(self, wait=True, args=()):
        """args: more `clawbox serve` flags."""
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--config", self.config_path, *args],
            env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        if wait:
            try:
                self.wait_ready()
            except Exception:
                self.cleanup()
                raise
        return self

    # Generous: the first start compiles every tool (about a second each).
    def wait_ready(self, timeout=300):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.read_log()}")
            try:
                r = self.request("GET", "/health", auth=False)
                # Healthy once every tool found at start is compiled.
                if r.status == 200 and r.json()["status"] == "healthy":
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not become ready:\n{self.read_log()}")

    def read_log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def connection(self, timeout=30):
        if self.socket_path and getattr(self, "use_unix", False):
            return UnixHTTPConnection(self.socket_path, timeout=timeout)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, auth=True, conn=None,
                timeout=30):
        own = conn is None
        conn = conn or self.connection(timeout)
        h = dict(headers or {})
        if auth and "Authorization" not in h:
            h["Authorization"] = f"Bearer {self.token}"
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        try:
            conn.request(method, path, body=body, headers=h)
            return Response(conn.getresponse())
        finally:
            if own:
                conn.close()

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()
        return self.proc.returncode if self.proc else None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class ServerTestCase(unittest.TestCase):
    """A test class sharing one server across its tests."""

    extra_config = ""
    unix_socket = False

    @classmethod
    def setUpClass(cls):
        cls.server = Server(cls.extra_config, unix_socket=cls.unix_socket).start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.server.stop()
        log = cls.server.read_log()
        cls.server.cleanup()
        if rc != 0:
            raise AssertionError(f"server exited with {rc}:\n{log}")

    def assert_error(self, resp, status, code):
        self.assertEqual(resp.status, status, resp.body)
        body = resp.json()
        self.assertEqual(body["code"], code, body)
        self.assertIsInstance(body["error"], str)
        self.assertIn("details", body)
        self.assertTrue(resp.headers.get("X-Request-Id"))

    def assert_healthy(self):
        resp = self.server.request("GET", "/health", auth=False)
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.json()["status"], "healthy")


class McpStdio:
    """`clawbox mcp` against a server, driven over its stdio (JSON-RPC
    lines), initialized; call() answers (is_error, the texts joined)."""

    def __init__(self, server):
        self.proc = subprocess.Popen(
            [server.binary, "mcp", "--port", str(server.port), "--token", server.token],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=server.env)
        self.next_id = 1
        self.send({"jsonrpc": "2.0", "id": 0, "method": "initialize",
                   "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                              "clientInfo": {"name": "e2e", "version": "1"}}})
        json.loads(self.proc.stdout.readline())
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def send(self, msg):
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()

    def call(self, name, args):
        rid = self.next_id
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": rid, "method": "tools/call",
                   "params": {"name": name, "arguments": args}})
        while True:
            reply = json.loads(self.proc.stdout.readline())
            if reply.get("id") == rid:
                result = reply["result"]
                return result.get("isError", False), "\n".join(
                    c["text"] for c in result["content"] if c["type"] == "text")

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.proc.stdout.close()


def main():
    unittest.main(verbosity=2)
