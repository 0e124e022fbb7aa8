"""Attacks on a tool's own credential through a reflecting upstream.

An HTTPS upstream on the credential's domain (a debug endpoint, an error
page, a "whoami") sends the injected header back reversed, base32, rot13,
spaced out, as UTF-16, \\u-escaped, split over several responses or
compressed. A hostile tool compiled to wasm (tests/fixtures/hostile/
reflect.c) undoes the transform and prints it, logs it, or sends it out
again in another form. The secret must never come back from /execute, in
its output or metadata.logs, in any form, nor leave in a request; the
server stays healthy throughout."""

import base64
import codecs
import gzip
import http.server
import os
import re
import shutil
import subprocess
import tempfile
import unittest
import urllib.parse
import zlib

from harness import BIN, CACHE_DIR, Server, main, read_audit
from test_proxy import make_ca_and_cert, start_https_upstream

HOSTILE_DIR = os.environ.get("CLAWBOX_E2E_HOSTILE", "build/tests/fixtures")
MASTER_KEY = "5a" * 32
SECRET = "s3cr3t-reflected-token-9f8e7d6c5b4a"
MAX_RESPONSE = 65536
LEAK_BLOCKED = ("blocked: request to 127.0.0.1 contains a credential (reflected); secrets "
                "must not appear in tool requests")


def transform(how, v):
    """The secret as the upstream sends it back (bytes)."""
    if how == "reversed":
        return v[::-1].encode()
    if how == "base32":
        return base64.b32encode(v.encode())
    if how == "base32lower":
        return base64.b32encode(v.encode()).lower()
    if how == "rot13":
        return codecs.encode(v, "rot13").encode()
    if how == "spaced":
        return " ".join(v).encode()
    if how == "utf16":
        return v.encode("utf-16-le")
    if how == "uescape":
        return "".join("\\u%04x" % ord(c) for c in v).encode()
    if how == "html":  # an error page's numeric references
        return "".join("&#%d;" % ord(c) for c in v).encode()
    if how == "upper":
        return v.upper().encode()
    if how == "xor":  # a transform no scanner knows
        return bytes(b ^ 0x5A for b in v.encode()).hex().encode()
    return v.encode()


def piece(data, part, of):
    size = -(-len(data) // of)
    return data[part * size:(part + 1) * size]


class Reflector(http.server.BaseHTTPRequestHandler):
    """GET /reflect?t=<transform>[&part=i&of=n][&ce=<coding>][&te=<coding>]
    sends back the injected X-Api-Key in that transform (piece i of n), in
    the body and, when it can be one, in an X-Reflect header.
    Anything else is recorded in `sink` (what a tool sent out)."""
    protocol_version = "HTTP/1.1"
    sink = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        if url.path != "/reflect":
            n = int(self.headers.get("Content-Length") or 0)
            Reflector.sink.append((self.path, dict(self.headers), self.rfile.read(n)))
            return self.send(b"ok")
        value = self.headers.get("X-Api-Key") or ""
        if not value:
            return self.send(b"no credential was injected", status=400)
        data = transform(q.get("t", "plain"), value)
        if "of" in q:
            data = piece(data, int(q["part"]), int(q["of"]))
        # In a header too, when it can be one, and as a header's name.
        self.extra = []
        if data.isascii() and b"\0" not in data:
            self.extra.append(("X-Reflect", data.decode()))
        if re.fullmatch(rb"[A-Za-z0-9_.-]+", data):
            self.extra.append(("X-" + data.decode(), "named"))
        self.encoded(data, q.get("ce"), q.get("te"))

    do_POST = do_GET

    def encoded(self, data, ce, te):
        if ce == "gzip":
            return self.send(gzip.compress(data), [("Content-Encoding", "gzip")])
        if ce == "deflate":
            return self.send(zlib.compress(data), [("Content-Encoding", "deflate")])
        if ce == "gzip-gzip":
            return self.send(gzip.compress(gzip.compress(data)),
                             [("Content-Encoding", "gzip, gzip")])
        if ce == "br":  # not brotli: the proxy must refuse by the name alone
            return self.send(data, [("Content-Encoding", "br")])
        if ce == "self":  # the credential as the name of a coding
            return self.send(data, [("Content-Encoding", self.headers.get("X-Api-Key"))])
        if ce == "bomb":
            z = zlib.compressobj(9, zlib.DEFLATED, 31)
            body = b"".join(z.compress(b"\0" * 65536) for _ in range(1024)) + z.flush()
            return self.send(body, [("Content-Encoding", "gzip")])
        if ce == "cut":
            return self.send(gzip.compress(data)[:-6], [("Content-Encoding", "gzip")])
        if te == "gzip":
            return self.chunked(gzip.compress(data), "gzip, chunked")
        if te == "br":
            return self.chunked(data, "br, chunked")
        return self.send(data)

    def send(self, body, headers=(), status=200):
        self.send_response(status)
        for k, v in list(headers) + getattr(self, "extra", []):
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def chunked(self, body, te):
        self.send_response(200)
        self.send_header("Transfer-Encoding", te)
        self.end_headers()
        self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))


def b32(s):
    return base64.b32encode(s.encode()).decode()


def leaked_forms(secret):
    """Every form of the secret a reader could undo without knowing a key,
    lower-cased, and every 12-character piece of it and of its reversal."""
    forms = {secret, secret[::-1], codecs.encode(secret, "rot13"), b32(secret),
             base64.b64encode(secret.encode()).decode(), secret.encode().hex(),
             base64.urlsafe_b64encode(secret.encode()).decode()}
    for s in (secret, secret[::-1]):
        forms |= {s[i:i + 12] for i in range(len(s) - 11)}
    return {f.lower() for f in forms}


def skeleton(s):
    return re.sub(r"[^0-9a-z]", "", s.lower())


def strings_in(v):
    if isinstance(v, str):
        yield v
    elif isinstance(v, dict):
        for k, x in v.items():
            yield k
            yield from strings_in(x)
    elif isinstance(v, list):
        for x in v:
            yield from strings_in(x)


class SecretAttacks(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="clawbox-attacks-secrets-")
        ca, cert, key = make_ca_and_cert(cls.tmp)
        cls.upstream = start_https_upstream(cert, key, Reflector)
        cls.base = f"https://127.0.0.1:{cls.upstream.server_address[1]}"
        store = os.path.join(cls.tmp, "credentials.enc")
        env = {"CLAWBOX_MASTER_KEY": MASTER_KEY}
        s = Server(f'[proxy]\nca_bundle = "{ca}"\nallow_private_cidrs = ["127.0.0.0/8"]\n'
                   f'max_response_bytes = {MAX_RESPONSE}\ndefault_timeout_ms = 5000\n'
                   'rate_limit = 100000\nrate_limit_burst = 100000\n'
                   f'[credentials]\nstore_path = "{store}"\n', env=env)
        cls.server = s
        try:
            cls.setup_server(s)
        except Exception:
            s.cleanup()
            raise

    @classmethod
    def setup_server(cls, s):
        s.add_sandbox(f'cache_dir = "{CACHE_DIR}"\n')
        p = subprocess.run([BIN, "creds", "--config", s.config_path, "add", "--name",
                            "reflected", "--domain", "127.0.0.1", "--header", "X-Api-Key",
                            "--prefix", ""], input=SECRET + "\n", text=True,
                           capture_output=True, timeout=60, env=dict(s.env))
        assert p.returncode == 0, p.stderr
        tool_dir = os.path.join(s.dir, "tools")
        os.makedirs(tool_dir)
        shutil.copy(os.path.join(HOSTILE_DIR, "reflect.wasm"), tool_dir)
        s.start()
        manifest = {"tool": {"name": "reflect", "description": "takes its own credential",
                             "version": "0.1.0"},
                    "network": {"allowlist": ["127.0.0.1"]},
                    "credentials": {"available": ["reflected"]}}
        r = s.request("POST", "/tools/register", manifest)
        assert r.status in (200, 201), r.body

    @classmethod
    def tearDownClass(cls):
        rc = cls.server.stop()
        log = cls.server.read_log()
        cls.server.cleanup()
        cls.upstream.shutdown()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if rc != 0:
            raise AssertionError(f"server exited with {rc}:\n{log}")

    def tearDown(self):
        r = self.server.request("GET", "/health", auth=False)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["status"], "healthy")

    def url(self, how, **q):
        return f"{self.base}/reflect?" + urllib.parse.urlencode(dict(t=how, **q))

    def run_tool(self, params):
        r = self.server.request("POST", "/execute",
                                {"tool": "reflect", "params": params,
                                 "capabilities": {"credentials": ["reflected"]}}, timeout=60)
        self.assertEqual(r.status, 200, r.body)
        body = r.json()
        self.assertEqual(body["status"], "ok", r.body)
        self.assert_no_leak(r.body, body)
        return body

    def assert_no_leak(self, raw, body):
        """Neither the bytes of the answer nor its decoded strings hold the
        secret in any form, in any letter case, nor 12 characters of it,
        nor 12 of its letters and digits with anything between them."""
        texts = [raw.decode("utf-8", "replace")] + list(strings_in(body))
        texts.append("".join(strings_in(body)))
        forms = leaked_forms(SECRET)
        sk = skeleton(SECRET)
        sk_windows = {sk[i:i + 12] for i in range(len(sk) - 11)}
        for t in texts:
            low = t.lower()
            for f in forms:
                self.assertNotIn(f, low, f"{f!r} came back:\n{raw[:2000]!r}")
            t_sk = skeleton(t)
            for w in sk_windows:
                self.assertNotIn(w, t_sk, f"{w!r} came back spaced out:\n{raw[:2000]!r}")
        self.assertNotIn(SECRET.encode("utf-16-le")[:24], raw)

    def seen(self, body):
        """What the tool got from the upstream: bodies or error texts."""
        return body["output"]["seen"] if isinstance(body["output"], dict) else None

    def test_reflected_in_each_transform_is_redacted_before_the_tool(self):
        for how in ("plain", "reversed", "base32", "base32lower", "rot13", "spaced", "utf16",
                    "uescape", "html", "upper"):
            undo = {"base32lower": "base32", "upper": "none", "plain": "none"}.get(how, how)
            for emit in ("print", "log"):
                with self.subTest(how=how, emit=emit):
                    body = self.run_tool({"urls": [self.url(how)], "undo": undo,
                                          "emit": emit})
                    seen = self.seen(body)
                    self.assertEqual(seen[0]["status"], 200, seen)
                    self.assertIn("[REDACTED]", seen[0]["body"])
                    if how != "utf16":
                        self.assertIn("[REDACTED]", seen[0]["headers"]["x-reflect"])
                    if how in ("plain", "reversed", "base32", "rot13", "upper"):
                        self.assertEqual(seen[0]["headers"].get("x-[REDACTED]"), "named", seen)

    def test_split_over_two_responses(self):
        """Halves of 17 and 18 characters: each is redacted on its way."""
        urls = [self.url("plain", part=i, of=2) for i in range(2)]
        body = self.run_tool({"urls": urls, "emit": "both"})
        self.assertEqual([s["body"] for s in self.seen(body)], ["[REDACTED]", "[REDACTED]"])

    def test_pieces_too_short_to_redact_are_caught_on_the_way_out(self):
        """Four pieces of 9 characters pass the proxy (nothing shorter than
        12 is redacted); joined, the tool has the secret, and /execute
        must not give it back, printed or logged."""
        urls = [self.url("plain", part=i, of=4) for i in range(4)]
        for emit in ("print", "log"):
            with self.subTest(emit=emit):
                body = self.run_tool({"urls": urls, "emit": emit})
                self.assertEqual([len(s["body"]) for s in self.seen(body)], [9, 9, 9, 8])
                report = body["metadata"]["sanitization"]
                self.assertIn("known_credential_detected", report["actions_taken"], body)

    def test_transform_no_scanner_knows_is_caught_on_the_way_out(self):
        """The upstream XORs the secret with a key: the proxy cannot see it,
        the tool undoes it and hands the secret out in every form the
        scanner knows, printed, logged, or as raw bytes."""
        for as_ in ("plain", "reversed", "upper", "spaced", "base32", "rot13", "uescape",
                    "halves", "chars", "utf16"):
            for emit in ("print", "log", "raw"):
                if emit == "raw" and as_ in ("halves", "chars"):
                    continue
                with self.subTest(as_=as_, emit=emit):
                    body = self.run_tool({"urls": [self.url("xor")], "undo": "xor",
                                          "as": as_, "emit": emit})
                    report = body["metadata"]["sanitization"]
                    if emit == "log" and as_ == "utf16":
                        # A log message ends at its first NUL: nothing
                        # of the secret but its first character is kept.
                        continue
                    self.assertIn("known_credential_detected", report["actions_taken"], body)

    def test_logs_are_sanitized(self):
        body = self.run_tool({"urls": [self.url("xor")], "undo": "xor", "as": "reversed",
                              "emit": "log"})
        logs = body["metadata"]["logs"]
        self.assertEqual(len(logs), 1, logs)
        self.assertEqual(logs[0]["message"], "[REDACTED]")

    def test_compressed_bodies_are_decoded_then_redacted(self):
        for ce in ("gzip", "deflate", "gzip-gzip"):
            for how in ("plain", "base32"):
                with self.subTest(ce=ce, how=how):
                    body = self.run_tool({"urls": [self.url(how, ce=ce)],
                                          "undo": "base32" if how == "base32" else "none"})
                    seen = self.seen(body)[0]
                    self.assertEqual(seen["body"], "[REDACTED]")
                    self.assertNotIn("content-encoding", seen["headers"])
                    # The decoded length (before redaction).
                    self.assertEqual(seen["headers"]["content-length"],
                                     str(len(transform(how, SECRET))))

    def test_transfer_codings(self):
        """libcurl undoes a gzip transfer coding itself (the cap still
        applies as the body streams) and refuses one it does not know."""
        body = self.run_tool({"urls": [self.url("plain", te="gzip"), self.url("plain", te="br")]})
        seen = self.seen(body)
        self.assertEqual(seen[0]["body"], "[REDACTED]")
        self.assertTrue(seen[1].startswith(
            "blocked: the response from 127.0.0.1 is in a content or transfer coding the proxy "
            "cannot decode"), seen)

    def test_undecodable_bodies_are_refused(self):
        cases = {
            "br": "response from 127.0.0.1: the response is encoded as 'br', which the proxy "
                  "cannot decode to scan it for credentials; ask for gzip, deflate or identity "
                  "(Accept-Encoding)",
            "bomb": f"response from 127.0.0.1: the response exceeds the limit of {MAX_RESPONSE} "
                    "bytes once decoded (gzip)",
            "cut": "response from 127.0.0.1: the response's gzip body cannot be decoded: the "
                   "compressed data is cut short",
            # Not echoed: the refusal is not redacted like a response.
            "self": "response from 127.0.0.1: the response is encoded as an unknown coding, "
                    "which the proxy cannot decode to scan it for credentials; ask for gzip, "
                    "deflate or identity (Accept-Encoding)",
        }
        for ce, want in cases.items():
            with self.subTest(ce=ce):
                body = self.run_tool({"urls": [self.url("plain", ce=ce)]})
                self.assertEqual(self.seen(body), [want])
        lines, _ = read_audit(os.path.join(self.server.dir, "audit"))
        refused = [l for l in lines if l.get("kind") == "proxy" and l["decision"] == "blocked"
                   and "encoded as 'br'" in (l.get("reason") or "")]
        self.assertTrue(refused)
        self.assertEqual(refused[-1]["credential_injected"], "reflected")

    def test_secret_sent_out_in_a_new_form_is_blocked(self):
        """The tool has the secret (through the XOR the proxy cannot see) and
        sends it out reversed, base32, case-changed, spaced or in part: the
        request is refused before it leaves, and the upstream sees none of
        it."""
        before = len(Reflector.sink)
        for as_ in ("reversed", "base32", "upper", "spaced", "rot13", "uescape"):
            for where in ("query", "header", "body"):
                with self.subTest(as_=as_, where=where):
                    body = self.run_tool({"urls": [self.url("xor")], "undo": "xor", "as": as_,
                                          "emit": "log",
                                          "send": {"url": self.base + "/sink", "where": where}})
                    self.assertEqual(body["output"].get("send_error"), LEAK_BLOCKED, body)
        self.assertEqual(len(Reflector.sink), before)

    def test_zz_audit_log_holds_no_form_of_the_secret(self):
        _, blob = read_audit(os.path.join(self.server.dir, "audit"))
        low = blob.decode("utf-8", "replace").lower()
        for f in leaked_forms(SECRET):
            self.assertFalse(f in low, f"{f!r} is in the audit log")


if __name__ == "__main__":
    main()
