"""Attacks on how clawbox is operated, against the real server and CLI:
credentials sent where they should not go (plain http, another port),
credential domains that can never match, two servers on one data
directory, a config file that cannot be read, a readable token, and audit
lines cut from the end of the log. Each test asserts the exact refusal and
that the server is still healthy afterwards."""

import http.server
import json
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

from harness import BIN, Server, main, read_audit
from test_proxy import make_ca_and_cert, make_server

MASTER_KEY = "5a" * 32
SECRETS = {
    "tls_only": "tls-only-secret-value-0f1e2d3c4b5a",
    "plain_ok": "plain-ok-secret-value-a1b2c3d4e5f6",
    "port_bound": "port-bound-secret-value-99887766",
    "other_port": "other-port-secret-value-55443322",
}
HEADERS = {name: "X-" + name.replace("_", "-") for name in SECRETS}


def run(*args, env=None, input=None, timeout=60):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([BIN, *args], capture_output=True, text=True, env=e, input=input,
                          timeout=timeout)


class Echo(http.server.BaseHTTPRequestHandler):
    """Answers every request with the headers it received, as JSON."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def start_upstream(tls=None):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    srv.daemon_threads = True
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*tls)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def server_with_http_tool(extra, env):
    """A server with the http_request example tool (test_proxy's), allowed
    127.0.0.1 and localhost and every credential in SECRETS."""
    s = make_server(extra, env)
    manifest = {"tool": {"name": "http_request", "description": "ops attacks",
                         "version": "0.1.0"},
                "network": {"allowlist": ["127.0.0.1", "localhost"]},
                "credentials": {"available": list(SECRETS)}}
    r = s.request("POST", "/tools/register", manifest)
    assert r.status in (200, 201), r.body
    return s


class CredentialTransportTests(unittest.TestCase):
    """A credential goes over https only unless added with --allow-http,
    and only to its port when bound with --port. Credentials are added
    with the real `clawbox creds add`."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="clawbox-ops-creds-")
        ca, cert, key = make_ca_and_cert(cls.tmp)
        cls.plain = start_upstream()
        cls.tls = start_upstream((cert, key))
        cls.plain_port = cls.plain.server_address[1]
        cls.tls_port = cls.tls.server_address[1]
        cls.store = os.path.join(cls.tmp, "credentials.enc")
        extra = ('[proxy]\nallow_private_cidrs = ["127.0.0.0/8"]\ndefault_timeout_ms = 5000\n'
                 f'ca_bundle = "{ca}"\n[credentials]\nstore_path = "{cls.store}"\n')
        cls.server = server_with_http_tool(extra, {"CLAWBOX_MASTER_KEY": MASTER_KEY})
        flags = {"tls_only": [], "plain_ok": ["--allow-http"],
                 "port_bound": ["--allow-http", "--port", str(cls.plain_port)],
                 "other_port": ["--allow-http", "--port", str(cls.tls_port)]}
        for name, extra_args in flags.items():
            p = cls.creds("add", "--name", name, "--domain", "127.0.0.1", "--header",
                          HEADERS[name], "--prefix", "", *extra_args, input=SECRETS[name] + "\n")
            assert p.returncode == 0, p.stderr
        time.sleep(1.2)  # the server looks at the store at most once a second

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()
        cls.plain.shutdown()
        cls.tls.shutdown()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def creds(cls, *args, input=None):
        return run("creds", "--config", cls.server.config_path, *args,
                   env={"CLAWBOX_MASTER_KEY": MASTER_KEY}, input=input)

    def fetch(self, url, names):
        """Runs http_request for url with the credentials `names`; returns
        the headers the upstream received and the raw response."""
        body = {"tool": "http_request", "params": {"url": url},
                "capabilities": {"credentials": names}}
        r = self.server.request("POST", "/execute", body, timeout=60)
        self.assertEqual(r.status, 200, r.body)
        raw = r.body.decode("utf-8", "replace")
        out = r.json()["output"]
        self.assertEqual(out.get("status"), 200, raw)
        for secret in SECRETS.values():
            self.assertNotIn(secret, raw)
        return json.loads(out["body"]), raw

    def assert_sent(self, seen, name):
        # The echo of the value comes back redacted; its presence shows it
        # was injected, and the upstream saw it (or the tool would not see
        # the header at all).
        self.assertEqual(seen.get(HEADERS[name].lower()), "[REDACTED]", seen)

    def assert_not_sent(self, seen, name):
        self.assertNotIn(HEADERS[name].lower(), seen)

    def last_proxy_line(self):
        lines, _ = read_audit(os.path.join(self.server.dir, "audit"))
        return [line for line in lines if line["kind"] == "proxy"][-1]

    def assert_healthy(self):
        r = self.server.request("GET", "/health", auth=False)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["status"], "healthy")

    def test_https_only_credential_is_not_sent_over_http(self):
        for host in ("127.0.0.1", "localhost"):
            with self.subTest(host=host):
                seen, raw = self.fetch(f"http://{host}:{self.plain_port}/", ["tls_only"])
                self.assert_not_sent(seen, "tls_only")
                self.assertIsNone(self.last_proxy_line()["credential_injected"])
        log = self.server.read_log()
        self.assertIn("credential 'tls_only' not injected into http://127.0.0.1:"
                      f"{self.plain_port} for tool http_request: it is sent over https only",
                      log)
        self.assertNotIn(SECRETS["tls_only"], log)
        self.assert_healthy()

    def test_https_only_credential_is_sent_over_https(self):
        seen, _ = self.fetch(f"https://127.0.0.1:{self.tls_port}/", ["tls_only"])
        self.assert_sent(seen, "tls_only")
        self.assertEqual(self.last_proxy_line()["credential_injected"], "tls_only")

    def test_allow_http_credential_is_sent_over_http(self):
        seen, _ = self.fetch(f"http://127.0.0.1:{self.plain_port}/",
                             ["plain_ok", "tls_only"])
        self.assert_sent(seen, "plain_ok")
        self.assert_not_sent(seen, "tls_only")
        self.assertEqual(self.last_proxy_line()["credential_injected"], "plain_ok")

    def test_port_bound_credential_only_reaches_its_port(self):
        seen, _ = self.fetch(f"http://127.0.0.1:{self.plain_port}/",
                             ["port_bound", "other_port"])
        self.assert_sent(seen, "port_bound")
        self.assert_not_sent(seen, "other_port")
        seen, _ = self.fetch(f"https://127.0.0.1:{self.tls_port}/",
                             ["port_bound", "other_port"])
        self.assert_sent(seen, "other_port")
        self.assert_not_sent(seen, "port_bound")
        self.assertIn("credential 'port_bound' not injected into https://127.0.0.1:"
                      f"{self.tls_port} for tool http_request: it is bound to another port",
                      self.server.read_log())
        self.assert_healthy()

    def test_creds_list_shows_transport(self):
        p = self.creds("list")
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = {line.split()[0]: line for line in p.stdout.splitlines()}
        self.assertNotIn("allow-http", rows["tls_only"])
        self.assertIn("allow-http", rows["plain_ok"])
        self.assertIn(f"port={self.plain_port}", rows["port_bound"])

    def test_creds_add_refuses_domains_that_never_match(self):
        cases = [("*", "would send the credential to every host"),
                 ("api.example.com.", "ends with a dot"),
                 ("api.example.com:443", "includes a port"),
                 ("[::1]:443", "includes a port"),
                 ("api%2eexample.com", "contains '%'"),
                 ("fe80::1%eth0", "contains '%'"),
                 ("a..example.com", 'is not valid: the host "a..example.com" has an empty '
                                    'label'),
                 (".example.com", 'is not valid: the host ".example.com" has an empty label'),
                 ("api example.com", "contains a space"),
                 ("https://api.example.com", "is not a host: give the host name alone"),
                 ("api.*.example.com", "has a '*' that is not a whole first label"),
                 ("*.com", "covers a whole public suffix or top-level domain"),
                 ("*.co.uk", "covers a whole public suffix or top-level domain"),
                 ("*.github.io", "covers a whole public suffix or top-level domain"),
                 ("*.127.0.0.1", "puts '*.' before an IP address"),
                 ("", "must not be empty")]
        before = self.creds("list").stdout
        audit_before = len(read_audit(os.path.join(self.server.dir, "audit"))[0])
        for domain, why in cases:
            with self.subTest(domain=domain):
                p = self.creds("add", "--name", "bad", "--domain", domain,
                               input="bad-secret-value-123456\n")
                self.assertEqual(p.returncode, 1, p.stdout)
                self.assertIn(f"clawbox: credential domain '{domain}' {why}"
                              if domain else "credential domain must not be empty", p.stderr)
                self.assertNotIn("bad-secret-value-123456", p.stderr)
        self.assertEqual(self.creds("list").stdout, before)
        self.assertEqual(len(read_audit(os.path.join(self.server.dir, "audit"))[0]),
                         audit_before)
        self.assert_healthy()

    def test_creds_add_normalises_case_and_spelling(self):
        for name, domain, stored in (("upper", "API.Example.COM", "api.example.com"),
                                     ("v6", "[::1]", "::1"),
                                     ("hexip", "0x7f.1", "127.0.0.1")):
            with self.subTest(domain=domain):
                p = self.creds("add", "--name", name, "--domain", domain,
                               input=f"{name}-secret-value-1234567\n")
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertIn(f"Credential '{name}' stored for domain '{stored}' (https only)",
                              p.stderr)
                row = [line for line in self.creds("list").stdout.splitlines()
                       if line.split()[0] == name][0]
                self.assertEqual(row.split()[1], stored)
                self.assertEqual(self.creds("remove", "--name", name).returncode, 0)

    def test_store_entries_that_never_match_are_kept_but_flagged(self):
        """A store written by another program may hold such domains: they
        are listed (and can be removed), flagged, and never injected."""
        refstore = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "unit",
                                "secrets", "refstore.js")
        d = tempfile.mkdtemp(prefix="clawbox-ops-foreign-")
        try:
            store, cfg = os.path.join(d, "c.enc"), os.path.join(d, "c.toml")
            entries = [{"name": n, "value": f"{n}-value-1234567890", "domain": dom,
                        "header_name": "X-K", "header_prefix": ""}
                       for n, dom in (("star", "*"), ("dot", "127.0.0.1."),
                                      ("port", f"127.0.0.1:{self.plain_port}"),
                                      ("upper", "LOCALHOST"))]
            try:
                subprocess.run(["node", refstore, "write", store, MASTER_KEY,
                                json.dumps(entries)], check=True, timeout=60)
            except (OSError, subprocess.CalledProcessError):
                self.skipTest("node is needed to write a foreign store")
            with open(cfg, "w") as f:
                f.write(f'[server]\ndata_dir = "{d}/data"\n[credentials]\nstore_path = "{store}"'
                        f'\n[logging]\naudit_dir = "{d}/audit"\n')
            p = run("creds", "--config", cfg, "list", env={"CLAWBOX_MASTER_KEY": MASTER_KEY})
            self.assertEqual(p.returncode, 0, p.stderr)
            rows = {line.split()[0]: line for line in p.stdout.splitlines()}
            for name in ("star", "dot", "port"):
                self.assertIn("[domain can never match: not injected]", rows[name])
                self.assertIn(f"credential '{name}' is never injected", p.stderr)
            self.assertNotIn("never match", rows["upper"])
            p = run("creds", "--config", cfg, "remove", "--name", "port",
                    env={"CLAWBOX_MASTER_KEY": MASTER_KEY})
            self.assertEqual(p.returncode, 0, p.stderr)
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_creds_port_must_be_a_port(self):
        for bad in ("0", "65536", "-1", "443x", ""):
            with self.subTest(port=bad):
                p = self.creds("add", "--name", "p", "--domain", "127.0.0.1", "--port", bad,
                               input="port-secret-value-12345\n")
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn(f"--port must be a number from 1 to 65535, got '{bad}'", p.stderr)
        self.assertNotIn("\n  p ", self.creds("list").stdout)


class DataDirLockTests(unittest.TestCase):
    """One server per data directory."""

    def setUp(self):
        self.first = Server().start()
        self.second = Server()
        with open(self.second.config_path) as f:
            text = f.read()
        text = text.replace(f'data_dir = "{self.second.dir}/data"',
                            f'data_dir = "{self.first.dir}/data"')
        with open(self.second.config_path, "w") as f:
            f.write(text)

    def tearDown(self):
        self.second.cleanup()
        self.first.cleanup()

    def wait_exit(self, server, timeout=30):
        server.proc.wait(timeout)
        server.log.close()
        return server.proc.returncode, server.read_log()

    def test_second_server_on_one_data_dir_is_refused(self):
        self.second.start(wait=False)
        rc, log = self.wait_exit(self.second)
        self.assertEqual(rc, 1, log)
        self.assertIn(f"clawbox: another clawbox server (pid {self.first.proc.pid}) is running "
                      f"on data directory {self.first.dir}/data", log)
        # Refused before it touched anything: no listener, no audit log.
        self.assertFalse(os.path.exists(os.path.join(self.second.dir, "audit")))
        r = self.first.request("GET", "/health", auth=False)
        self.assertEqual(r.json()["status"], "healthy")
        # Checking a config takes no lock.
        p = run("serve", "--config", self.second.config_path, "--check-config")
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_lock_goes_with_the_server(self):
        """After kill -9 of the first server (its workers may still be
        winding down) the second starts at once."""
        self.first.stop(signal.SIGKILL)
        self.second.start()
        r = self.second.request("GET", "/health", auth=False)
        self.assertEqual(r.json()["status"], "healthy")
        with open(os.path.join(self.first.dir, "data", "server.lock")) as f:
            self.assertEqual(f.read().strip(), str(self.second.proc.pid))


def eio_file():
    """A regular file whose read fails with EIO (a sysfs attribute)."""
    for p in ("/sys/devices/software/power/autosuspend_delay_ms",
              "/sys/devices/platform/power/autosuspend_delay_ms"):
        try:
            with open(p, "rb") as f:
                f.read(1)
        except OSError as e:
            if e.errno == 5:
                return p
    return None


class ConfigFileTests(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="clawbox-ops-config-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_unreadable_config_is_an_error_not_defaults(self):
        path = eio_file()
        if path is None:
            self.skipTest("no sysfs file that fails with EIO here")
        p = run("serve", "--config", path, "--check-config")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(f"failed to read config from {path}: Input/output error", p.stderr)
        self.assertNotIn("configuration OK", p.stderr)

    def test_directory_as_config_is_an_error(self):
        p = run("serve", "--config", self.dir, "--check-config")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(f"failed to read config from {self.dir}: not a regular file", p.stderr)

    def test_readable_token_warns_naming_file_and_mode(self):
        path = os.path.join(self.dir, "c.toml")
        with open(path, "w") as f:
            f.write('[server]\nauth_token = "a-token-of-some-length-0123456789"\n')
        for mode, warned in ((0o644, True), (0o640, True), (0o600, False)):
            with self.subTest(mode=oct(mode)):
                os.chmod(path, mode)
                p = run("serve", "--config", path, "--check-config")
                self.assertEqual(p.returncode, 0, p.stderr)
                want = (f"warning: {path}: the file holds [server] auth_token and its mode is "
                        f"{mode:04o}, so other users can read the token")
                if warned:
                    self.assertIn(want, p.stderr)
                else:
                    self.assertNotIn("auth_token", p.stderr)
                self.assertNotIn("a-token-of-some-length", p.stderr)

    def test_server_with_readable_token_starts_and_says_so(self):
        s = Server()
        try:
            os.chmod(s.config_path, 0o644)
            s.start()
            self.assertIn(f"warning: {s.config_path}: the file holds [server] auth_token and "
                          "its mode is 0644", s.read_log())
            r = s.request("GET", "/health", auth=False)
            self.assertEqual(r.json()["status"], "healthy")
        finally:
            s.cleanup()


class AuditTruncationTests(unittest.TestCase):
    """Lines cut from the end of the audit log: the chain alone cannot show
    it, the anchor in the state database does, naming how many."""

    def setUp(self):
        self.server = Server().start()
        self.audit = os.path.join(self.server.dir, "audit", "audit.jsonl")
        self.db = os.path.join(self.server.dir, "data", "state.db")

    def tearDown(self):
        self.server.cleanup()

    def audited_calls(self, n):
        # An execution of an unknown tool is refused, and audited.
        for _ in range(n):
            r = self.server.request("POST", "/execute", {"tool": "no-such-tool", "params": {}})
            self.assertEqual(r.status, 404, r.body)

    def lines(self):
        with open(self.audit) as f:
            return [json.loads(line) for line in f if line.strip()]

    def cut(self, n):
        with open(self.audit, "rb") as f:
            kept = f.read().splitlines(keepends=True)[:-n]
        with open(self.audit, "wb") as f:
            f.write(b"".join(kept))

    def verify(self):
        return run("audit", "verify", "--config", self.server.config_path)

    def assert_healthy(self):
        r = self.server.request("GET", "/health", auth=False)
        self.assertEqual(r.json()["status"], "healthy")

    def test_lines_cut_while_stopped_are_reported_and_recorded(self):
        self.audited_calls(6)
        self.assertEqual(self.server.stop(), 0)
        total = len(self.lines())
        self.assertEqual([line["seq"] for line in self.lines()], list(range(1, total + 1)))
        p = self.verify()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(f"anchor in {self.db}: line {total}, reached", p.stdout)
        self.cut(3)
        p = self.verify()
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn(f"the log ends at line {total - 3} of the chain, but the anchor in "
                      f"{self.db} records {total} lines", p.stderr)
        self.assertIn("3 lines are missing from the end of the log", p.stderr)
        # The next writer records the cut in the chain, so the evidence
        # stays once the log grows past the old anchor.
        self.server.start()
        self.assertIn(f"the log ended at line {total - 3}, but it had reached line {total}",
                      self.server.read_log())
        self.assert_healthy()
        self.audited_calls(5)
        record = self.lines()[total - 3]
        self.assertEqual((record["kind"], record["method"], record["decision"],
                          record["missing"], record["seq"]),
                         ("audit", "AUDIT", "truncated", 3, total - 2))
        p = self.verify()
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn(f"audit.jsonl line {total - 2}: a writer found the log cut and recorded "
                      "it here", p.stderr)
        self.assertIn("3 lines are missing from the end of the log", p.stderr)
        self.assert_healthy()

    def test_lines_cut_under_a_running_server_are_recorded(self):
        self.audited_calls(5)
        total = len(self.lines())
        self.cut(2)
        self.audited_calls(1)
        self.assertIn(f"the log ended at line {total - 2}, but it had reached line {total}",
                      self.server.read_log())
        lines = self.lines()
        self.assertEqual((lines[total - 2]["decision"], lines[total - 2]["missing"]),
                         ("truncated", 2))
        self.assertEqual(lines[-1]["seq"], total)
        p = self.verify()
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("2 lines are missing from the end of the log", p.stderr)
        self.assert_healthy()

    def test_lines_cut_after_kill9_are_reported(self):
        self.audited_calls(4)
        time.sleep(0.3)  # the anchor is stored at most every 50 ms
        self.server.stop(signal.SIGKILL)
        total = len(self.lines())
        self.cut(1)
        p = self.verify()
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn(f"records {total} lines", p.stderr)
        self.assertIn("1 line is missing from the end of the log", p.stderr)

    def test_cli_and_server_share_one_anchored_chain(self):
        self.audited_calls(2)
        env = {"CLAWBOX_MASTER_KEY": MASTER_KEY}
        store = os.path.join(self.server.dir, "creds.enc")
        with open(self.server.config_path, "a") as f:
            f.write(f'[credentials]\nstore_path = "{store}"\n')
        p = run("creds", "--config", self.server.config_path, "add", "--name", "k",
                "--domain", "api.example.com", env=env, input="cli-secret-value-123456\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.audited_calls(2)
        self.assertEqual(self.server.stop(), 0)
        total = len(self.lines())
        self.assertEqual([line["seq"] for line in self.lines()], list(range(1, total + 1)))
        p = self.verify()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(f"line {total}, reached", p.stdout)


if __name__ == "__main__":
    main()
