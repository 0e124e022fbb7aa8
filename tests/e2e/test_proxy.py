"""The egress proxy behind the http_request host call, end to end: the
http_request example tool calls a loopback upstream started here, through
a real server whose address policy exempts 127.0.0.0/8 (a second server
without the exemption checks that loopback is blocked by default)."""

import base64
import hashlib
import http.server
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse

from harness import BIN, CACHE_DIR, Server, main, read_audit

TOOLS_DIR = os.environ.get("CLAWBOX_E2E_TOOLS", "build/tools/wasm")
REFSTORE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "unit", "secrets",
                        "refstore.js")
SECRET = "s3cr3t-upstream-token-9f8e7d6c5b4a"
SECOND = "s3cond-added-later-0a1b2c3d4e5f"
# Chosen so that its base64 holds '+' and '/' (URL-safe: '-' and '_') at
# every alignment, and its hex has letters.
ENCODED = "enc>>?~~?>-tok3n-~~~???>>>-7f3a"
# Bytes the upstream puts before the secret before encoding it, so that it
# sits at each of the three base64 alignments.
ENC_PREFIX = b"ab"
ENCODINGS = [("plain", 0), ("url", 0), ("url_lower", 0), ("url2", 0), ("b64", 0), ("b64", 1),
             ("b64", 2), ("b64url", 0), ("b64url", 1), ("b64url", 2), ("b64_in_url", 1),
             ("hex", 0), ("HEX", 0)]
MASTER_KEY = "11" * 32
MAX_RESPONSE = 16384
LARGE_RESPONSE = 300 * 1024  # more than the SDK's first host-call buffer


def encode_form(form, data):
    if form == "url":  # every byte escaped
        return "".join("%%%02X" % b for b in data)
    if form == "url_lower":
        return "".join("%%%02x" % b for b in data)
    if form == "b64_in_url":  # base64 whose '+', '/' and '=' are escaped
        return urllib.parse.quote(base64.b64encode(data).decode(), safe="")
    if form == "url2":  # and then the escapes escaped again: %2565...
        return urllib.parse.quote(encode_form("url", data), safe="")
    if form == "b64":
        return base64.b64encode(data).decode()
    if form == "b64url":
        return base64.urlsafe_b64encode(data).decode()
    if form == "hex":
        return data.hex()
    if form == "HEX":
        return data.hex().upper()
    return data.decode()


class Upstream(http.server.BaseHTTPRequestHandler):
    large_requests = 0  # requests to /large, to show none is repeated

    def log_message(self, *args):
        pass

    def reply(self, status, body, headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode("utf-8", "replace") if n else ""
        if self.path.startswith("/redirect"):
            self.reply(302, b"", [("Location", "http://127.0.0.1:1/elsewhere")])
        elif self.path.startswith("/big"):
            self.reply(200, b"x" * (MAX_RESPONSE * 4))
        elif self.path.startswith("/large"):
            Upstream.large_requests += 1
            self.reply(200, b"L" * LARGE_RESPONSE)
        elif self.path.startswith("/slow"):
            time.sleep(3)
            self.reply(200, b"late")
        elif self.path.startswith("/echo-encoded"):
            # Echoes the injected X-Enc credential in the requested form,
            # after `offset` bytes of ENC_PREFIX, in the body and a header.
            q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            value = (self.headers.get("X-Enc") or "").encode()
            if not value:
                self.reply(400, b"no X-Enc credential was injected")
                return
            data = ENC_PREFIX[:int(q["offset"][0])] + value
            enc = encode_form(q["form"][0], data)
            self.reply(200, f"echo:{enc}:end".encode(), [("X-Echo", enc)])
        else:
            key = self.headers.get("X-Api-Key") or ""
            second = self.headers.get("X-Second") or ""
            out = {"method": self.command, "path": self.path, "body": body,
                   "headers": {k.lower(): v for k, v in self.headers.items()},
                   "api_key_sha256": hashlib.sha256(key.encode()).hexdigest(),
                   "second_sha256": hashlib.sha256(second.encode()).hexdigest()}
            self.reply(200, json.dumps(out).encode(), [("Content-Type", "application/json")])

    do_GET = do_POST = do_PUT = handle_any


def start_upstream():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def start_https_upstream(cert, key, handler=Upstream):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def make_ca_and_cert(d):
    """A throwaway CA and a server certificate it signs for 127.0.0.1 and
    localhost, made with the openssl CLI. Returns (ca, cert, key) paths."""
    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, timeout=60, cwd=d,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=clawbox e2e CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl("req", *ec, "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=127.0.0.1")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "srv.pem", "-days", "2", "-extfile", "ext.cnf")
    return tuple(os.path.join(d, n) for n in ("ca.pem", "srv.pem", "srv.key"))


def make_server(extra, env=None):
    s = Server(extra_config=extra, env=env)
    tool_dir = os.path.join(s.dir, "tools")
    os.makedirs(tool_dir)
    for ext in ("wasm", "json"):
        shutil.copy(os.path.join(TOOLS_DIR, "http_request." + ext), tool_dir)
    s.add_sandbox(f'cache_dir = "{CACHE_DIR}"\n')
    s.start()
    register(s)
    return s


def register(server, extra_credentials=()):
    """Registers http_request's manifest for the proxy tests."""
    manifest = {"tool": {"name": "http_request", "description": "proxy test",
                         "version": "0.1.0"},
                "network": {"allowlist": ["127.0.0.1", "localhost", "169.254.169.254"]},
                "credentials": {"available": ["upstream", "second", "encoded",
                                              *extra_credentials]}}
    r = server.request("POST", "/tools/register", manifest)
    assert r.status in (200, 201), r.body


def write_store(path, extra=(), key=MASTER_KEY, allow_http=True):
    """A store with the upstream and encoded credentials for 127.0.0.1.
    The plain-http upstream needs allow_http (credentials go over https
    only without it); the https tests leave it out."""
    flags = {"allow_http": True} if allow_http else {}
    entries = [{"name": "upstream", "value": SECRET, "domain": "127.0.0.1",
                "header_name": "X-Api-Key", "header_prefix": "", **flags},
               {"name": "encoded", "value": ENCODED, "domain": "127.0.0.1",
                "header_name": "X-Enc", "header_prefix": "", **flags}] + list(extra)
    try:
        subprocess.run(["node", REFSTORE, "write", path, key, json.dumps(entries)],
                       check=True, timeout=60)
        return True
    except (OSError, subprocess.CalledProcessError):
        return False


def audit_lines(server):
    return read_audit(os.path.join(server.dir, "audit"))


def check_echoed_encodings(tc, call, base):
    """The upstream echoes an injected secret in each encoding (body and a
    response header): the tool gets [REDACTED] and no form of the secret,
    not even a 12-character piece of the encoded text."""
    for form, offset in ENCODINGS:
        with tc.subTest(form=form, offset=offset):
            out, raw = call({"url": f"{base}/echo-encoded?form={form}&offset={offset}"},
                            capabilities={"credentials": ["encoded"]})
            tc.assertEqual(out.get("status"), 200, raw)
            encoded = encode_form(form, ENC_PREFIX[:offset] + ENCODED.encode())
            for text in (out["body"], out["headers"].get("x-echo", "")):
                tc.assertIn("[REDACTED]", text, raw)
                for i in range(len(encoded) - 11):
                    tc.assertNotIn(encoded[i:i + 12], text, raw)
            tc.assertTrue(out["body"].startswith("echo:"), raw)
            tc.assertTrue(out["body"].endswith(":end"), raw)
            for s in (ENCODED, encoded, SECRET):
                tc.assertNotIn(s, raw)


class ProxyTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.upstream = start_upstream()
        cls.base = f"http://127.0.0.1:{cls.upstream.server_address[1]}"
        cls.tmp = tempfile.mkdtemp(prefix="clawbox-proxy-")
        store = os.path.join(cls.tmp, "credentials.enc")
        cls.have_store = write_store(store)
        extra = ('[proxy]\nallow_private_cidrs = ["127.0.0.0/8"]\n'
                 f'max_response_bytes = {MAX_RESPONSE}\ndefault_timeout_ms = 1000\n'
                 f'[credentials]\nstore_path = "{store}"\n')
        cls.server = make_server(extra, {"CLAWBOX_MASTER_KEY": MASTER_KEY})

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()
        cls.upstream.shutdown()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def call(self, params, **kw):
        body = {"tool": "http_request", "params": params}
        body.update(kw)
        r = self.server.request("POST", "/execute", body, timeout=60)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json()["status"], "ok", r.body)
        return r.json()["output"], r.body.decode("utf-8", "replace")

    def error_of(self, params, **kw):
        out, raw = self.call(params, **kw)
        self.assertIn("error", out, raw)
        return out["error"]

    def test_refusals_are_reported_in_metadata(self):
        """A refused request is the tool's error (metadata.tool_error), and a
        credential that cannot be used is named with the reason."""
        r = self.server.request("POST", "/execute", {
            "tool": "http_request", "params": {"url": "http://example.invalid/"},
            "capabilities": {"credentials": ["upstream", "nope", "not_listed"]}}, timeout=60)
        body = r.json()
        self.assertEqual((r.status, body["status"]), (200, "ok"), r.body)
        self.assertIn("not in the allowlist", body["metadata"]["tool_error"])
        self.assertEqual(body["metadata"]["tool_error"], body["output"]["error"])
        refused = {c["name"]: c["reason"] for c in body["metadata"]["credentials_refused"]}
        self.assertEqual(set(refused), {"nope", "not_listed"})
        self.assertIn("does not list it in credentials.available", refused["not_listed"])
        self.assertIn("manifest", refused["not_listed"])
        register(self.server, ["nope"])
        try:
            r = self.server.request("POST", "/execute", {
                "tool": "http_request", "params": {"url": self.base + "/echo"},
                "capabilities": {"credentials": ["nope", "upstream"]}}, timeout=60)
            meta = r.json()["metadata"]
            self.assertNotIn("tool_error", meta)
            self.assertEqual(meta["credentials_refused"],
                             [{"name": "nope", "reason": "the credential store holds no "
                               "credential of that name (add it with clawbox creds add)"}])
        finally:
            register(self.server)
        health = self.server.request("GET", "/health", auth=False).json()
        self.assertEqual(health["components"]["credentials"]["status"], "healthy")

    def test_allowed_get_reaches_upstream(self):
        out, raw = self.call({"url": self.base + "/echo?x=1"})
        self.assertEqual(out["status"], 200, raw)
        echoed = json.loads(out["body"])
        self.assertEqual(echoed["method"], "GET")
        self.assertEqual(echoed["path"], "/echo?x=1")
        self.assertEqual(out["headers"]["content-type"], "application/json")

    def test_resolved_name_is_checked_and_pinned(self):
        port = self.upstream.server_address[1]
        out, raw = self.call({"url": f"http://localhost:{port}/echo"})
        self.assertEqual(out.get("status"), 200, raw)
        self.assertEqual(json.loads(out["body"])["headers"]["host"], f"localhost:{port}")

    def test_post_with_body_and_filtered_headers(self):
        out, raw = self.call({"url": self.base + "/echo", "method": "POST", "body": "hello",
                              "headers": {"X-Custom": "yes", "Connection": "close",
                                          "Proxy-Authorization": "x", "Upgrade": "h2c"}})
        echoed = json.loads(out["body"])
        self.assertEqual(echoed["body"], "hello")
        self.assertEqual(echoed["headers"]["x-custom"], "yes")
        self.assertNotIn("proxy-authorization", echoed["headers"])
        self.assertNotIn("upgrade", echoed["headers"])

    def test_host_not_in_allowlist_is_denied(self):
        msg = self.error_of({"url": "http://example.com/"})
        self.assertIn("not in the allowlist", msg)
        self.assertIn("example.com", msg)

    def test_missing_url(self):
        out, raw = self.call({"method": "GET"})
        self.assertIn("error", out, raw)

    def test_bad_method_and_header_refused(self):
        msg = self.error_of({"url": self.base + "/echo", "method": "GET /x HTTP/1.1\r\nX: y"})
        self.assertIn("invalid 'method'", msg)
        msg = self.error_of({"url": self.base + "/echo", "headers": {"Bad Name": "v"}})
        self.assertIn("not a valid name", msg)

    def test_metadata_address_blocked(self):
        msg = self.error_of({"url": "http://169.254.169.254/latest/meta-data/"})
        self.assertIn("blocked", msg)
        self.assertIn("169.254.169.254", msg)

    def test_redirect_not_followed(self):
        out, raw = self.call({"url": self.base + "/redirect"})
        self.assertEqual(out["status"], 302, raw)
        self.assertEqual(out["headers"]["location"], "http://127.0.0.1:1/elsewhere")

    def test_big_body_names_limit(self):
        msg = self.error_of({"url": self.base + "/big"})
        self.assertIn(str(MAX_RESPONSE), msg)

    def test_slow_upstream_times_out(self):
        start = time.time()
        msg = self.error_of({"url": self.base + "/slow"})
        self.assertIn("time", msg.lower())
        self.assertLess(time.time() - start, 2.9)

    def test_credential_injected_and_redacted(self):
        if not self.have_store:
            self.skipTest("node is needed to write the credential store")
        out, raw = self.call({"url": self.base + "/echo",
                              "headers": {"x-api-key": "tool-own-value"}},
                             capabilities={"credentials": ["upstream"]})
        self.assertEqual(out["status"], 200, raw)
        echoed = json.loads(out["body"])
        self.assertEqual(echoed["api_key_sha256"], hashlib.sha256(SECRET.encode()).hexdigest())
        self.assertEqual(echoed["headers"]["x-api-key"], "[REDACTED]")
        self.assertNotIn("tool-own-value", raw)
        self.assertNotIn(SECRET, raw)

    def test_echoed_secret_redacted_in_every_encoding(self):
        if not self.have_store:
            self.skipTest("node is needed to write the credential store")
        check_echoed_encodings(self, self.call, self.base)

    def test_no_injection_without_capability(self):
        out, raw = self.call({"url": self.base + "/echo"})
        echoed = json.loads(out["body"])
        self.assertNotIn("x-api-key", echoed["headers"])

    def test_secret_in_request_is_blocked(self):
        if not self.have_store:
            self.skipTest("node is needed to write the credential store")
        msg = self.error_of({"url": self.base + "/echo?k=" + SECRET})
        self.assertIn("contains a credential (upstream)", msg)
        self.assertNotIn(SECRET, msg)
        msg = self.error_of({"url": self.base + "/echo", "method": "POST",
                             "body": "token=" + SECRET})
        self.assertIn("contains a credential", msg)

    def test_wrong_master_key_stops_startup(self):
        if not self.have_store:
            self.skipTest("node is needed to write the credential store")
        store = os.path.join(self.tmp, "credentials.enc")
        s = Server(extra_config=f'[credentials]\nstore_path = "{store}"\n',
                   env={"CLAWBOX_MASTER_KEY": "22" * 32})
        try:
            with self.assertRaises(RuntimeError) as cm:
                s.start()
            self.assertIn("credential store", str(cm.exception))
        finally:
            s.cleanup()

    def test_zy_store_reloaded_without_restart(self):
        if not self.have_store:
            self.skipTest("node is needed to write the credential store")
        store = os.path.join(self.tmp, "credentials.enc")
        sha = lambda v: hashlib.sha256(v.encode()).hexdigest()  # noqa: E731
        second = [{"name": "second", "value": SECOND, "domain": "127.0.0.1",
                   "header_name": "X-Second", "header_prefix": "Token ", "allow_http": True}]
        caps = {"credentials": ["upstream", "second"]}
        reloads = lambda: [l for l in audit_lines(self.server)[0]  # noqa: E731
                           if l["kind"] == "credential"]
        before = reloads()
        # A store under another key is refused: the loaded credentials stay.
        self.assertTrue(write_store(store, second, key="33" * 32))
        time.sleep(1.2)
        out, raw = self.call({"url": self.base + "/echo"}, capabilities=caps)
        echoed = json.loads(out["body"])
        self.assertEqual(echoed["api_key_sha256"], sha(SECRET), raw)
        self.assertEqual(echoed["second_sha256"], sha(""), raw)
        self.assertIn("reloading credential store", self.server.read_log())
        self.assertEqual(reloads(), before)
        # The same store under the right key is picked up by the next call.
        self.assertTrue(write_store(store, second))
        time.sleep(1.2)
        out, raw = self.call({"url": self.base + "/echo"}, capabilities=caps)
        echoed = json.loads(out["body"])
        self.assertEqual(echoed["api_key_sha256"], sha(SECRET), raw)
        self.assertEqual(echoed["second_sha256"], sha("Token " + SECOND), raw)
        self.assertEqual(echoed["headers"]["x-second"], "Token [REDACTED]", raw)
        self.assertNotIn(SECOND, raw)
        msg = self.error_of({"url": self.base + "/echo?k=" + SECOND})
        self.assertIn("contains a credential (second)", msg)
        # The reload is audited: names only, one line.
        new = reloads()[len(before):]
        self.assertEqual(len(new), 1, new)
        self.assertEqual((new[0]["method"], new[0]["decision"], new[0]["added"],
                          new[0]["removed"], new[0]["changed"]),
                         ("CREDENTIAL", "reload", ["second"], [], []))
        self.assertIn("1 added, 0 removed, 0 changed", new[0]["reason"])
        # Rewriting the same credentials (a new file, new nonce) reloads
        # but changes nothing, so it writes no line.
        self.assertTrue(write_store(store, second))
        time.sleep(1.2)
        self.call({"url": self.base + "/echo"}, capabilities=caps)
        self.assertEqual(len(reloads()), len(before) + 1)
        _, blob = audit_lines(self.server)
        for s in (SECRET, SECOND, ENCODED):
            self.assertNotIn(s.encode(), blob)

    def test_zz_cli_change_audited_while_serving(self):
        """`clawbox creds` appends to the audit log the server holds open;
        the server's reload line follows on the same chain."""
        if not self.have_store:
            self.skipTest("node is needed to write the credential store")
        env = dict(os.environ, CLAWBOX_MASTER_KEY=MASTER_KEY)
        creds = lambda *a, **kw: subprocess.run(  # noqa: E731
            [BIN, "creds", "--config", self.server.config_path, *a], env=env, text=True,
            capture_output=True, timeout=60, **kw)
        before = len(audit_lines(self.server)[0])
        p = creds("add", "--name", "cli-added", "--domain", "127.0.0.1", "--header", "X-Cli",
                  input="cli-secret-value-5a6b7c8d\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        p = creds("remove", "--name", "upstream")
        self.assertEqual(p.returncode, 0, p.stderr)
        time.sleep(1.2)
        out, raw = self.call({"url": self.base + "/echo"},
                             capabilities={"credentials": ["upstream"]})
        self.assertNotIn("x-api-key", json.loads(out["body"])["headers"], raw)
        lines, blob = audit_lines(self.server)
        cred = [(l["decision"], l["added"], l["removed"], l["changed"], l["domain"])
                for l in lines[before:] if l["kind"] == "credential"]
        self.assertEqual(cred, [("add", ["cli-added"], [], [], "127.0.0.1"),
                                ("remove", [], ["upstream"], [], "127.0.0.1"),
                                ("reload", ["cli-added"], ["upstream"], [], None)])
        for s in (SECRET, SECOND, ENCODED, "cli-secret-value-5a6b7c8d"):
            self.assertNotIn(s.encode(), blob)
        p = subprocess.run([BIN, "audit", "verify", "--config", self.server.config_path],
                           text=True, capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_zz_audit_lines(self):
        self.call({"url": self.base + "/echo"})
        self.error_of({"url": "http://example.com/"})
        path = os.path.join(self.server.dir, "audit", "audit.jsonl")
        with open(path) as f:
            lines = [json.loads(line) for line in f if line.strip()]
        proxy = [line for line in lines if line["kind"] == "proxy"]
        decisions = {line["decision"] for line in proxy}
        self.assertIn("allowed", decisions)
        self.assertIn("blocked", decisions)
        allowed = [line for line in proxy if line["decision"] == "allowed"][-1]
        self.assertEqual(allowed["tool"], "http_request")
        self.assertEqual(allowed["status"], 200)
        with open(path) as f:
            self.assertNotIn(SECRET, f.read())


class HttpsTests(unittest.TestCase):
    """A loopback HTTPS upstream whose certificate is signed by a CA made
    here: trusted through proxy.ca_bundle, refused without it."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="clawbox-proxy-tls-")
        ca, cert, key = make_ca_and_cert(cls.tmp)
        cls.upstream = start_https_upstream(cert, key)
        cls.base = f"https://127.0.0.1:{cls.upstream.server_address[1]}"
        store = os.path.join(cls.tmp, "credentials.enc")
        cls.have_store = write_store(store, allow_http=False)
        common = ('allow_private_cidrs = ["127.0.0.0/8"]\ndefault_timeout_ms = 5000\n'
                  f'[credentials]\nstore_path = "{store}"\n')
        env = {"CLAWBOX_MASTER_KEY": MASTER_KEY}
        cls.server = make_server(f'[proxy]\nca_bundle = "{ca}"\n' + common, env)
        cls.untrusting = make_server("[proxy]\n" + common, env)

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()
        cls.untrusting.cleanup()
        cls.upstream.shutdown()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def call(self, server, params, **kw):
        body = {"tool": "http_request", "params": params}
        body.update(kw)
        r = server.request("POST", "/execute", body, timeout=60)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json()["status"], "ok", r.body)
        return r.json()["output"], r.body.decode("utf-8", "replace")

    def test_large_response_sends_the_request_once(self):
        # The response does not fit the tool's first buffer; its retry is
        # answered from the response clawbox held, not by a second POST.
        before = Upstream.large_requests
        out, raw = self.call(self.server, {"url": self.base + "/large", "method": "POST",
                                           "body": "charge the card"})
        self.assertEqual(out.get("status"), 200, raw[:300])
        self.assertEqual(out["body"], "L" * LARGE_RESPONSE)
        self.assertEqual(Upstream.large_requests - before, 1)

    def test_get_over_https(self):
        out, raw = self.call(self.server, {"url": self.base + "/echo?tls=1"})
        self.assertEqual(out.get("status"), 200, raw)
        self.assertEqual(json.loads(out["body"])["path"], "/echo?tls=1")
        port = self.upstream.server_address[1]
        out, raw = self.call(self.server, {"url": f"https://localhost:{port}/echo"})
        self.assertEqual(out.get("status"), 200, raw)

    def test_credential_injected_over_https(self):
        if not self.have_store:
            self.skipTest("node is needed to write the credential store")
        out, raw = self.call(self.server, {"url": self.base + "/echo"},
                             capabilities={"credentials": ["upstream"]})
        self.assertEqual(out.get("status"), 200, raw)
        echoed = json.loads(out["body"])
        self.assertEqual(echoed["api_key_sha256"], hashlib.sha256(SECRET.encode()).hexdigest())
        self.assertEqual(echoed["headers"]["x-api-key"], "[REDACTED]")
        self.assertNotIn(SECRET, raw)

    def test_echoed_secret_redacted_in_every_encoding_over_https(self):
        if not self.have_store:
            self.skipTest("node is needed to write the credential store")
        check_echoed_encodings(self, lambda p, **kw: self.call(self.server, p, **kw), self.base)

    def test_unknown_ca_is_refused(self):
        out, raw = self.call(self.untrusting, {"url": self.base + "/echo"},
                             capabilities={"credentials": ["upstream"]})
        self.assertIn("error", out, raw)
        msg = out["error"]
        self.assertIn("request to 127.0.0.1 failed", msg)
        self.assertIn("certificate", msg.lower())
        self.assertNotIn(SECRET, raw)


class DefaultPolicyTests(unittest.TestCase):
    """No private-address exemption, and a tight rate limit."""

    @classmethod
    def setUpClass(cls):
        cls.server = make_server("[proxy]\nrate_limit = 1\nrate_limit_burst = 2\n")

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def test_loopback_blocked_then_rate_limited(self):
        msgs = []
        for _ in range(5):
            r = self.server.request("POST", "/execute", {
                "tool": "http_request", "params": {"url": "http://127.0.0.1:9/"}}, timeout=60)
            self.assertEqual(r.status, 200, r.body)
            msgs.append(r.json()["output"]["error"])
        self.assertIn("blocked", msgs[0])
        self.assertIn("loopback", msgs[0])
        self.assertTrue(any("rate limited" in m for m in msgs[2:]), msgs)

    def test_no_master_key_is_said(self):
        r = self.server.request("POST", "/execute", {
            "tool": "http_request", "params": {"url": "http://127.0.0.1:9/"},
            "capabilities": {"credentials": ["upstream"]}}, timeout=60)
        meta = r.json()["metadata"]
        self.assertIn("no master key is set", meta["credentials_refused"][0]["reason"])
        health = self.server.request("GET", "/health", auth=False).json()
        self.assertEqual(health["status"], "healthy")
        self.assertEqual(health["components"]["credentials"]["status"], "disabled")


class StoreWithoutKeyTests(unittest.TestCase):
    def test_store_without_key_is_logged_and_in_health(self):
        tmp = tempfile.mkdtemp(prefix="clawbox-nokey-")
        store = os.path.join(tmp, "credentials.enc")
        if not write_store(store):
            self.skipTest("node is needed to write a store")
        s = make_server(f'[credentials]\nstore_path = "{store}"\n')
        try:
            health = s.request("GET", "/health", auth=False).json()
            cred = health["components"]["credentials"]
            self.assertEqual(cred["status"], "no_key")
            self.assertIn("no master key is set", cred["detail"]["hint"])
            self.assertIn(f"credential store {store} exists but no master key is set",
                          s.read_log())
        finally:
            s.cleanup()
            shutil.rmtree(tmp, ignore_errors=True)


class HoldingUpstream(http.server.BaseHTTPRequestHandler):
    """/hold answers once the test sets `release`; /n counts requests."""
    arrived = threading.Event()
    release = threading.Event()
    plain = 0

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path.startswith("/hold"):
            HoldingUpstream.arrived.set()
            HoldingUpstream.release.wait(30)
        else:
            HoldingUpstream.plain += 1
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


class MaxConcurrentTests(unittest.TestCase):
    """network.max_concurrent caps the tool's proxied requests in flight,
    across its executions; past it a request is refused at once."""

    @classmethod
    def setUpClass(cls):
        cls.upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HoldingUpstream)
        cls.upstream.daemon_threads = True
        threading.Thread(target=cls.upstream.serve_forever, daemon=True).start()
        cls.base = f"http://127.0.0.1:{cls.upstream.server_address[1]}"
        cls.server = make_server('[proxy]\nallow_private_cidrs = ["127.0.0.0/8"]\n'
                                 'default_timeout_ms = 30000\n')

    @classmethod
    def tearDownClass(cls):
        HoldingUpstream.release.set()
        cls.server.cleanup()
        cls.upstream.shutdown()

    def register(self, network):
        return self.server.request("POST", "/tools/register", {
            "tool": {"name": "http_request"}, "network": network})

    def execute(self, path):
        r = self.server.request("POST", "/execute", {
            "tool": "http_request", "params": {"url": self.base + path}}, timeout=60)
        self.assertEqual(r.status, 200, r.body)
        return r.json()["output"]

    def test_second_request_in_flight_is_refused(self):
        r = self.register({"allowlist": ["127.0.0.1"], "max_concurrent": 1})
        self.assertEqual(r.status, 200, r.body)
        held = {}
        t = threading.Thread(target=lambda: held.update(out=self.execute("/hold")))
        t.start()
        try:
            self.assertTrue(HoldingUpstream.arrived.wait(30), "the first request never arrived")
            out = self.execute("/n")
            self.assertEqual(out.get("error"),
                             "blocked: tool http_request has 1 requests in flight through the "
                             "proxy, its limit (network.max_concurrent = 1); retry when one has "
                             "finished", out)
            self.assertEqual(HoldingUpstream.plain, 0)
        finally:
            HoldingUpstream.release.set()
            t.join(60)
        self.assertEqual(held["out"].get("status"), 200, held)
        self.assertEqual(self.execute("/n").get("status"), 200)
        self.assertEqual(HoldingUpstream.plain, 1)
        lines = [l for l in audit_lines(self.server)[0] if l["kind"] == "proxy"]
        self.assertTrue(any(l["decision"] == "blocked" and
                            "(network.max_concurrent = 1)" in (l["reason"] or "")
                            for l in lines), lines)

    def test_bad_manifest_fields_are_named(self):
        r = self.register({"allowlist": ["127.0.0.1", "http://x.com"]})
        self.assertEqual(r.status, 400, r.body)
        self.assertIn("network.allowlist[1]", r.json()["error"])
        r = self.register({"allowlist": [], "max_concurrent": "2"})
        self.assertEqual(r.status, 422, r.body)
        self.assertIn("network.max_concurrent", r.json()["error"])


if __name__ == "__main__":
    main()
