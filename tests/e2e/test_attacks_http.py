"""Attacks on the HTTP front end, each through the real server over raw
sockets: holding every connection slot with trickled bytes, and request
heads and bodies that parsers disagree about. Each asserts the exact
refusal (status, code, a message naming what was wrong, one response, a
closed connection) and that the server is healthy afterwards."""

import glob
import json
import os
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from harness import BIN, CACHE_DIR, Server, ServerTestCase, main

TOOLS_DIR = os.environ.get("CLAWBOX_E2E_TOOLS", "build/tools/wasm")
ECHO = b'{"tool":"echo","params":{"hello":"world"}}'


def install_echo(server):
    """Puts the echo tool in the server's tool_dir and the shared compile
    cache in its config, before it starts."""
    tool_dir = os.path.join(server.dir, "tools")
    os.makedirs(tool_dir, exist_ok=True)
    for path in glob.glob(os.path.join(TOOLS_DIR, "echo.*")):
        shutil.copy(path, tool_dir)
    server.add_sandbox(f'cache_dir = "{CACHE_DIR}"\n')


def connect(server, unix=False, source=None, timeout=10):
    if unix:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(server.socket_path)
        return s
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if source:
        s.bind((source, 0))
    s.connect(("127.0.0.1", server.port))
    return s


def read_until_closed(s, timeout=10):
    """Everything the server sends until it closes; raises if it does not
    close within the timeout or resets the connection."""
    s.settimeout(timeout)
    out = b""
    while True:
        b = s.recv(65536)
        if not b:
            return out
        out += b


def split_responses(data):
    """Splits a byte stream into (status, headers, body) responses, framed
    by Content-Length. Leftover bytes raise."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            raise AssertionError(f"incomplete response: {data[:200]!r}")
        lines = head.split(b"\r\n")
        m = re.match(rb"HTTP/1\.1 (\d{3}) ", lines[0])
        if not m:
            raise AssertionError(f"not a status line: {lines[0]!r}")
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            headers[k.decode().lower()] = v.strip().decode()
        n = int(headers.get("content-length", "0"))
        out.append((int(m.group(1)), headers, rest[:n]))
        data = rest[n:]
    return out


def exchange(server, data, unix=False):
    """Sends raw bytes and returns the responses until the server closes."""
    with connect(server, unix) as s:
        s.sendall(data)
        return split_responses(read_until_closed(s))


def post(path, extra, body=ECHO, token="", version=b"HTTP/1.1"):
    head = b"POST " + path + b" " + version + b"\r\nHost: x\r\n"
    if token:
        head += b"Authorization: Bearer " + token.encode() + b"\r\n"
    return head + b"Content-Type: application/json\r\n" + extra + b"\r\n" + body


def chunked(body, ext=b""):
    return b"%x" % len(body) + ext + b"\r\n" + body + b"\r\n0\r\n\r\n"


def metric(server, name, labels):
    text = server.request("GET", "/metrics", auth=False).body.decode()
    total = 0.0
    for line in text.splitlines():
        if not (line.startswith(name + "{") or line.startswith(name + " ")):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


class Attacks(ServerTestCase):
    """A server with the echo tool and a TCP and a Unix listener."""

    unix_socket = True
    extra_config = ""

    @classmethod
    def setUpClass(cls):
        cls.server = Server(cls.extra_config, unix_socket=True)
        install_echo(cls.server)
        cls.server.start()

    def executions(self):
        return metric(self.server, "clawbox_wasm_executions_total", {"tool": "echo"})

    def assert_refused(self, data, status, code, message, unix=False):
        """The exact refusal: one response, the status, the ApiError shape
        naming the problem, Connection: close, and a closed connection."""
        responses = exchange(self.server, data, unix)
        self.assertEqual(len(responses), 1, responses)
        got, headers, body = responses[0]
        self.assertEqual(got, status, body)
        err = json.loads(body)
        self.assertEqual(set(err), {"error", "code", "details"}, err)
        self.assertEqual(err["code"], code, err)
        self.assertIn(message, err["error"])
        self.assertEqual(headers.get("connection"), "close")
        self.assertTrue(headers.get("x-request-id"))
        self.assert_healthy()


class ParsingAttacks(Attacks):
    def tok(self):
        return self.server.token

    def test_echo_works_raw(self):
        responses = exchange(self.server, post(b"/execute", b"Content-Length: %d\r\n"
                                               b"Connection: close\r\n" % len(ECHO),
                                               token=self.tok()))
        self.assertEqual([r[0] for r in responses], [200])
        self.assertEqual(json.loads(responses[0][2])["output"]["echo"], {"hello": "world"})

    def test_content_length_and_transfer_encoding(self):
        before = self.executions()
        self.assert_refused(post(b"/execute", b"Content-Length: %d\r\nTransfer-Encoding: chunked"
                                 b"\r\n" % len(ECHO), chunked(ECHO), self.tok()),
                            400, "invalid_request", "both Content-Length and Transfer-Encoding")
        self.assertEqual(self.executions(), before)

    def test_duplicate_content_lengths(self):
        for a, b in ((len(ECHO), len(ECHO) + 5), (len(ECHO), len(ECHO))):
            self.assert_refused(post(b"/execute", b"Content-Length: %d\r\nContent-Length: %d\r\n"
                                     % (a, b), token=self.tok()),
                                400, "invalid_request", "Content-Length given more than once")
        self.assert_refused(post(b"/execute", b"Content-Length: %d, %d\r\n" % (len(ECHO),
                                 len(ECHO)), token=self.tok()),
                            400, "invalid_request", "Content-Length is not a decimal number")

    def test_bad_content_length(self):
        for value in (b"abc", b"-1", b"+5", b"0x10", b"1 2"):
            self.assert_refused(post(b"/execute", b"Content-Length: " + value + b"\r\n",
                                     token=self.tok()),
                                400, "invalid_request", "Content-Length is not a decimal number")
        self.assert_refused(post(b"/execute", b"Content-Length: 99999999999999999999999\r\n",
                                 token=self.tok()),
                            413, "payload_too_large", "Content-Length is out of range")

    def test_unknown_transfer_encoding(self):
        for te in (b"gzip", b"gzip, chunked", b"chunked, gzip", b"identity", b"chunked;q=1"):
            self.assert_refused(post(b"/execute", b"Transfer-Encoding: " + te + b"\r\n",
                                     chunked(ECHO), self.tok()),
                                400, "invalid_request", "only chunked is accepted")
        self.assert_refused(post(b"/execute", b"Transfer-Encoding: chunked\r\n"
                                 b"Transfer-Encoding: chunked\r\n", chunked(ECHO), self.tok()),
                            400, "invalid_request", 'must be exactly "chunked"')
        self.assert_refused(post(b"/execute", b"Transfer-Encoding: chunked\r\n", chunked(ECHO),
                                 self.tok(), version=b"HTTP/1.0"),
                            400, "invalid_request", "Transfer-Encoding in an HTTP/1.0 request")

    def test_bare_cr_and_nul_in_headers(self):
        cl = b"Content-Length: %d\r\n" % len(ECHO)
        cases = [
            (cl + b"X-A: a\rb\r\n", "bare CR"),
            (cl + b"X\rA: b\r\n", "bare CR"),
            (cl + b"X-A: a\x00b\r\n", "header X-A contains a NUL byte"),
            (cl + b"X\x00A: b\r\n", "a header name contains a NUL byte"),
            (cl + b"X-A: a\x01b\r\n", "header X-A contains control character 0x01"),
            (cl + b"X-A: a\x7fb\r\n", "header X-A contains control character 0x7f"),
            (b"Content-Length: %d\x00\r\n" % len(ECHO), "header Content-Length contains a NUL"),
        ]
        before = self.executions()
        for extra, message in cases:
            with self.subTest(extra=extra):
                self.assert_refused(post(b"/execute", extra, token=self.tok()), 400,
                                    "invalid_request", message)
        self.assertEqual(self.executions(), before)

    def test_control_characters_in_the_path(self):
        cl = b"Content-Length: %d\r\n" % len(ECHO)
        cases = [
            (b"/execute%00zzz", "the path contains an encoded control character (%00)"),
            (b"/execute%00", "the path contains an encoded control character (%00)"),
            (b"/execute%0a", "(%0A)"),
            (b"/execute%0D%0A", "(%0D)"),
            (b"/execute%1b", "(%1B)"),
            (b"/execute%7f", "(%7F)"),
            (b"/execute?x=%00", "the query contains an encoded control character (%00)"),
            (b"/execute\x00zzz", "the request target contains a NUL byte"),
            (b"/execute\x01", "the request target contains control character 0x01"),
            (b"/execute\tx", "the request target contains control character 0x09"),
            (b"/execute\x7f", "control character 0x7f"),
            (b"/execute\xc3\xa9", "byte 0xc3; percent-encode it"),
            (b"/execute%zz", "bad percent-escape in the path"),
            (b"/execute%", "bad percent-escape in the path"),
            (b"/execute%C3%28", "not valid UTF-8"),
        ]
        before = self.executions()
        for path, message in cases:
            with self.subTest(path=path):
                self.assert_refused(post(path, cl, token=self.tok()), 400, "invalid_request",
                                    message)
        self.assertEqual(self.executions(), before)

    def test_malformed_request_lines(self):
        cases = [
            (b"GET /health HTTP/2.0\r\nHost: x\r\n\r\n", 505, "HTTP/2.0 is not supported"),
            (b"GET /health HTTP/1.1\x00\r\nHost: x\r\n\r\n", 400, "malformed HTTP version"),
            (b"GET /health\r\n\r\n", 400, "malformed request line"),
            (b"GET /he alth HTTP/1.1\r\nHost: x\r\n\r\n", 400, "more than two spaces"),
            (b"G\x01T /health HTTP/1.1\r\nHost: x\r\n\r\n", 400, "method contains control "
                                                              "character 0x01"),
            (b"GET health HTTP/1.1\r\nHost: x\r\n\r\n", 400, "must be a path starting with '/'"),
            (b"GET /health#x HTTP/1.1\r\nHost: x\r\n\r\n", 400, "'#'"),
        ]
        for data, status, message in cases:
            with self.subTest(data=data):
                self.assert_refused(data, status, "invalid_request", message)

    def test_header_neighbours(self):
        cases = [
            (b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400,
             "obsolete line folding"),
            (b"GET /health HTTP/1.1\r\nHost: x\r\nX-A : b\r\n\r\n", 400,
             "whitespace between a header name and its colon"),
            (b"GET /health HTTP/1.1\r\nHost: x\r\nX-A\r\n\r\n", 400, "without a colon"),
            (b"GET /health HTTP/1.1\r\n\r\n", 400, "missing Host header"),
            (b"GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400,
             "Host given more than once"),
            (b"GET /health HTTP/1.1\r\nHost: a\r\nExpect: fancy\r\n\r\n", 417,
             'unsupported expectation "fancy"'),
        ]
        for data, status, message in cases:
            with self.subTest(data=data):
                self.assert_refused(data, status, "invalid_request", message)
        auth = f"Authorization: Bearer {self.tok()}\r\n".encode()
        self.assert_refused(post(b"/execute", b"Content-Length: %d\r\n" % len(ECHO) + auth,
                                 token=self.tok()),
                            400, "invalid_request", "Authorization given more than once")

    def test_oversized_heads(self):
        many = b"".join(b"X-%d: v\r\n" % i for i in range(101))
        self.assert_refused(b"GET /health HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n", 431,
                            "invalid_request", "more than 100 header fields")
        self.assert_refused(b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: " + b"v" * 20000 +
                            b"\r\n\r\n", 431, "invalid_request",
                            "request head longer than 16384 bytes")
        self.assert_refused(b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414,
                            "invalid_request", "request line longer than 16384 bytes")
        self.assert_refused(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414,
                            "invalid_request", "request target longer than 8192 bytes")

    def test_chunked_body_attacks(self):
        auth = self.tok()
        te = b"Transfer-Encoding: chunked\r\n"
        self.assert_refused(post(b"/execute", te, chunked(ECHO, b";" + b"a" * 70000), auth), 400,
                            "invalid_request", "longer than 4096 bytes")
        self.assert_refused(post(b"/execute", te, b"zz\r\n" + ECHO + b"\r\n0\r\n\r\n", auth),
                            400, "invalid_request", "chunk size is not a hexadecimal number")
        self.assert_refused(post(b"/execute", te, b"5\r\n" + ECHO + b"\r\n0\r\n\r\n", auth), 400,
                            "invalid_request", "chunk data longer than its declared size")
        self.assert_refused(post(b"/execute", te, chunked(ECHO, b";a\x00b"), auth), 400,
                            "invalid_request", "control character in a chunk extension")
        self.assert_refused(post(b"/execute", te, chunked(ECHO)[:-2] + b"X-T: a\x00\r\n\r\n",
                                 auth),
                            400, "invalid_request", "control character in a trailer field")
        self.assert_refused(post(b"/execute", te, b"1" * 17 + b"\r\n", auth), 400,
                            "invalid_request", "more than 16 hex digits")

    def test_valid_neighbours_are_served(self):
        """What the parser must keep accepting."""
        auth = self.tok()
        cases = [
            post(b"/execute", b"Transfer-Encoding: Chunked\r\n",
                 chunked(ECHO, b'; name="v"')[:-2] + b"X-T: 1\r\n\r\n", auth),
            post(b"http://localhost/execute", b"Content-Length: %d\r\n" % len(ECHO), token=auth),
            post(b"/execute", b"Content-Length: %d\r\nX-Obs: caf\xc3\xa9\r\n" % len(ECHO),
                 token=auth),
            post(b"/execute", b"Content-Length: %d\n" % len(ECHO), token=auth).replace(b"\r\n",
                                                                                       b"\n"),
            b"\r\n" + post(b"/execute", b"Content-Length: %d\r\n" % len(ECHO), token=auth),
        ]
        for data in cases:
            with self.subTest(data=data[:60]):
                with connect(self.server) as s:
                    s.sendall(data)
                    s.shutdown(socket.SHUT_WR)
                    responses = split_responses(read_until_closed(s))
                self.assertEqual([r[0] for r in responses], [200], responses)
                self.assertEqual(json.loads(responses[0][2])["output"]["echo"],
                                 {"hello": "world"})
        # HTTP/1.0 without Host is fine, and closes unless asked to stay.
        responses = exchange(self.server, b"GET /health HTTP/1.0\r\n\r\n")
        self.assertEqual([r[0] for r in responses], [200])
        self.assertEqual(responses[0][1].get("connection"), "close")

    def test_expect_100_continue(self):
        with connect(self.server) as s:
            s.sendall(post(b"/execute", b"Content-Length: %d\r\nExpect: 100-continue\r\n"
                           % len(ECHO), b"", self.tok()))
            self.assertEqual(s.recv(100), b"HTTP/1.1 100 Continue\r\n\r\n")
            s.sendall(ECHO)
            s.shutdown(socket.SHUT_WR)
            responses = split_responses(read_until_closed(s))
        self.assertEqual([r[0] for r in responses], [200])
        # Refused on its head: the final answer comes at once, no 100.
        self.assert_refused(post(b"/execute", b"Content-Length: 5\r\nExpect: 100-continue\r\n",
                                 b""), 401, "auth_required", "unauthorized")

    def test_pipelined_requests_after_a_refused_one_are_dropped(self):
        before = self.executions()
        good = post(b"/execute", b"Content-Length: %d\r\n" % len(ECHO), token=self.tok())
        data = post(b"/execute", b"Content-Length: abc\r\n", token=self.tok()) + good + good
        responses = exchange(self.server, data)
        self.assertEqual([r[0] for r in responses], [400])
        self.assertEqual(self.executions(), before)
        # Well-formed pipelined requests are answered in order.
        with connect(self.server) as s:
            s.sendall(good + b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" + good)
            s.shutdown(socket.SHUT_WR)
            responses = split_responses(read_until_closed(s))
        self.assertEqual([r[0] for r in responses], [200, 200, 200])
        self.assertIn(b"healthy", responses[1][2])
        self.assertEqual(self.executions(), before + 2)

    def test_chunk_lines_end_with_crlf(self):
        """A bare LF in the chunked framing is refused: a front proxy that
        reads it as part of an extension or as data would frame the body
        differently (RFC 9112 section 7.1 has CRLF only)."""
        auth = self.tok()
        te = b"Transfer-Encoding: chunked\r\n"
        size = b"%x" % len(ECHO)
        cases = [
            (size + b"\n" + ECHO + b"\r\n0\r\n\r\n", "bare LF in a chunk size line"),
            (size + b";a=b\n" + ECHO + b"\r\n0\r\n\r\n", "bare LF in a chunk size line"),
            (size + b"\r\n" + ECHO + b"\n0\r\n\r\n", "bare LF after chunk data"),
            (chunked(ECHO)[:-4] + b"\n\r\n", "bare LF in a chunk size line"),
            (chunked(ECHO)[:-2] + b"\n", "bare LF in the trailer section"),
            (chunked(ECHO)[:-2] + b"X-T: 1\n\r\n", "bare LF in the trailer section"),
        ]
        before = self.executions()
        for body, message in cases:
            with self.subTest(body=body):
                self.assert_refused(post(b"/execute", te, body, auth), 400, "invalid_request",
                                    "chunked body: " + message)
        self.assertEqual(self.executions(), before)

    def test_unix_socket_listener_refuses_the_same(self):
        auth = self.tok()
        self.assert_refused(post(b"/execute%00zzz", b"Content-Length: %d\r\n" % len(ECHO),
                                 token=auth), 400, "invalid_request", "(%00)", unix=True)
        self.assert_refused(post(b"/execute", b"Content-Length: %d\r\nTransfer-Encoding: "
                                 b"chunked\r\n" % len(ECHO), chunked(ECHO), auth),
                            400, "invalid_request", "both Content-Length and Transfer-Encoding",
                            unix=True)
        self.assert_refused(post(b"/execute", b"Content-Length: x\r\n", token=auth), 400,
                            "invalid_request", "Content-Length is not a decimal number",
                            unix=True)
        self.assert_refused(b"GET /health HTTP/1.1\r\nHost: x\r\nX: \x00\r\n\r\n", 400,
                            "invalid_request", "NUL", unix=True)


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


class BodyAttacks(Attacks):
    """Request bodies: what the server keeps of them, and how long it reads
    one it has already refused."""

    LIMIT = 10485760  # server.max_body_bytes, the default

    def test_bodies_on_public_routes_are_not_kept(self):
        """Anyone may send a body to /health; none of it may stay in memory,
        or a few hundred connections hold gigabytes."""
        head = b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % self.LIMIT
        rss = rss_mib(self.server.proc.pid)
        socks = [connect(self.server) for _ in range(6)]
        try:
            for s in socks:
                s.sendall(head)
            chunk = b"x" * (1 << 20)
            for _ in range(9):
                for s in socks:
                    s.sendall(chunk)
            time.sleep(0.5)  # the server reads what is in flight
            grown = rss_mib(self.server.proc.pid) - rss
            self.assertLess(grown, 16, f"RSS grew by {grown:.0f} MiB for 54 MiB of bodies")
            s = socks[0]
            s.sendall(b"x" * (self.LIMIT - 9 * len(chunk)))
            s.shutdown(socket.SHUT_WR)
            responses = split_responses(read_until_closed(s))
            self.assertEqual([r[0] for r in responses], [200])
            self.assertEqual(json.loads(responses[0][2])["status"], "healthy")
        finally:
            for s in socks:
                s.close()
        # Past the limit a body to a public route is refused like any other.
        with connect(self.server) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            self.assert_refused_while_sending(s)
        self.assert_healthy()

    def assert_refused_while_sending(self, s, chunk=b"100000\r\n" + b"x" * 0x100000 + b"\r\n"):
        """Sends `chunk` (1 MiB of data) until the server answers: it must
        answer 413 as soon as the body passes the limit, and close the
        connection."""
        sent = 0
        while not select.select([s], [], [], 0)[0]:
            self.assertLess(sent, 3 * self.LIMIT, "no answer to a body over the limit")
            try:
                s.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += 0x100000
        self.assertLess(sent, 2 * self.LIMIT)
        try:
            responses = split_responses(read_until_closed(s))
        except ConnectionResetError:
            self.fail("the connection was reset before the answer was read")
        self.assertEqual([r[0] for r in responses], [413])
        err = json.loads(responses[0][2])
        self.assertEqual(err["code"], "payload_too_large")
        self.assertIn(f"request body exceeds the limit of {self.LIMIT} bytes", err["error"])
        self.assertEqual(responses[0][1].get("connection"), "close")

    def test_chunked_body_over_the_limit_is_refused_at_once(self):
        before = self.executions()
        with connect(self.server) as s:
            s.sendall(post(b"/execute", b"Transfer-Encoding: chunked\r\n", b"", self.tok()))
            t0 = time.time()
            self.assert_refused_while_sending(s)
            self.assertLess(time.time() - t0, 10)
        with connect(self.server, unix=True) as s:
            s.sendall(post(b"/execute", b"Transfer-Encoding: chunked\r\n", b"", self.tok()))
            self.assert_refused_while_sending(s)
        # The largest chunk size there is, then its data.
        with connect(self.server) as s:
            s.sendall(post(b"/execute", b"Transfer-Encoding: chunked\r\n",
                           b"f" * 16 + b"\r\n", self.tok()))
            self.assert_refused_while_sending(s, b"x" * 0x100000)
        self.assertEqual(self.executions(), before)
        self.assert_healthy()

    def tok(self):
        return self.server.token


def raise_fd_limit(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Trickler:
    """Opens connections from one source address and sends a byte of a
    request head on each, then another every `period` seconds."""

    def __init__(self, server, source, count):
        self.server, self.source, self.count = server, source, count
        self.socks, self.refused_on_connect = [], 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.trickle, daemon=True)

    def open(self):
        for _ in range(self.count):
            try:
                s = connect(self.server, source=self.source, timeout=5)
                s.sendall(b"G")
                self.socks.append(s)
            except OSError:
                self.refused_on_connect += 1
        self.live = list(self.socks)
        self.thread.start()

    def trickle(self):
        i = 0
        while not self.stop.is_set():
            for s in self.live:
                try:
                    s.send(b"ET /health HTTP/1.1\r\n"[i % 21:i % 21 + 1])
                except OSError:
                    self.live.remove(s)
            i += 1
            self.stop.wait(0.2)

    def answers(self, timeout):
        """What each connection received until it was closed, or None for
        connections still open after `timeout` seconds."""
        self.stop.set()
        self.thread.join()
        deadline = time.time() + timeout
        out = []
        for s in self.socks:
            data = b""
            try:
                while True:
                    s.settimeout(max(0.05, deadline - time.time()))
                    b = s.recv(65536)
                    if not b:
                        break
                    data += b
                out.append(data)
            except socket.timeout:
                out.append(None)
            except ConnectionResetError:
                out.append(data)
            s.close()
        return out


class ConnectionExhaustion(Attacks):
    """One client address holding thousands of connections that trickle a
    byte each: the per-address cap refuses most of them at once, the head
    deadline closes the rest, and everyone else is served throughout."""

    extra_config = "request_head_timeout_ms = 2000\nrequest_body_timeout_ms = 2000\n"

    @classmethod
    def setUpClass(cls):
        raise_fd_limit(16384)
        super().setUpClass()

    def test_trickling_flood_from_one_address(self):
        self.assertGreaterEqual(raise_fd_limit(16384), 8192)
        attack = Trickler(self.server, "127.0.0.2", 4100)
        started = time.time()
        attack.open()
        # Everyone else is served while the attack runs: /health within a
        # bound and an authenticated execution.
        worst = 0.0
        for _ in range(10):
            t0 = time.time()
            self.assertEqual(self.server.request("GET", "/health", auth=False, timeout=5).status,
                             200)
            worst = max(worst, time.time() - t0)
            time.sleep(0.05)
        self.assertLess(worst, 2.0)
        r = self.server.request("POST", "/execute", {"tool": "echo", "params": {"a": 1}},
                                timeout=10)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json()["output"]["echo"], {"a": 1})
        answers = attack.answers(timeout=6)
        # Nothing is left open: refused at once over the cap, or closed by
        # the head deadline (2 s) with a 408.
        self.assertNotIn(None, answers)
        refused = [a for a in answers if b" 503 " in a[:20]]
        timed_out = [a for a in answers if b" 408 " in a[:20]]
        self.assertLessEqual(len(timed_out), 256)
        self.assertGreaterEqual(len(refused) + attack.refused_on_connect, 4100 - 256)
        self.assertEqual(len(refused) + len(timed_out) + attack.refused_on_connect +
                         answers.count(b""), 4100)
        body = json.loads(split_responses(refused[0])[0][2])
        self.assertEqual(body["code"], "resource_exhausted")
        self.assertIn("too many connections from this address (limit 256)", body["error"])
        body = json.loads(split_responses(timed_out[0])[0][2])
        self.assertEqual(body["code"], "timeout")
        self.assertIn("request head not complete within 2000 ms", body["error"])
        self.assertLess(time.time() - started, 30)
        self.assertGreaterEqual(metric(self.server, "clawbox_http_connections_refused_total",
                                       {"reason": "per_address"}), len(refused))
        self.assertGreaterEqual(metric(self.server, "clawbox_http_timeouts_total",
                                       {"phase": "head"}), len(timed_out))
        self.assert_healthy()

    def test_idle_connections_close_at_the_head_deadline(self):
        with connect(self.server, source="127.0.0.3") as s:
            t0 = time.time()
            self.assertEqual(read_until_closed(s, timeout=10), b"")
            self.assertTrue(1.5 < time.time() - t0 < 5, time.time() - t0)
        # After a response, the next head has the same deadline.
        with connect(self.server, source="127.0.0.3") as s:
            for _ in range(3):
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                time.sleep(1.2)  # each request in time keeps the connection
            t0 = time.time()
            responses = split_responses(read_until_closed(s, timeout=10))
            self.assertEqual([r[0] for r in responses], [200, 200, 200])
            self.assertLess(time.time() - t0, 3)
        self.assert_healthy()

    def test_trickled_body_gets_408(self):
        with connect(self.server) as s:
            s.sendall(post(b"/execute", b"Content-Length: 100\r\n", b"", self.server.token))
            t0 = time.time()
            for _ in range(30):
                s.send(b" ")
                if select.select([s], [], [], 0.2)[0]:
                    break
            responses = split_responses(read_until_closed(s))
            self.assertLess(time.time() - t0, 4)
        self.assertEqual([r[0] for r in responses], [408])
        err = json.loads(responses[0][2])
        self.assertEqual(err["code"], "timeout")
        self.assertIn("request body not complete within 2000 ms", err["error"])
        self.assert_healthy()


class ConnectionLimit(Attacks):
    """The total cap, from many addresses: the connection over it is
    answered 503 at once, and slots come back at the head deadline."""

    extra_config = ("max_connections = 40\nmax_connections_per_address = 0\n"
                    "request_head_timeout_ms = 1500\n")

    def hold(self, n):
        """n connections the server took and holds. One the harness has
        just closed may still count for a moment: a connection refused
        meanwhile (answered at once) is replaced."""
        socks = []
        deadline = time.time() + 5
        while len(socks) < n:
            self.assertLess(time.time(), deadline, "the server does not take 40 connections")
            socks += [connect(self.server, source=f"127.0.1.{i % 200 + 1}")
                      for i in range(len(socks), n)]
            for s in select.select(socks, [], [], 0.2)[0]:
                socks.remove(s)
                s.close()
        return socks

    def test_total_cap(self):
        socks = self.hold(40)
        try:
            responses = exchange(self.server, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual([r[0] for r in responses], [503])
            err = json.loads(responses[0][2])
            self.assertEqual(err["code"], "resource_exhausted")
            self.assertIn("at its limit of 40 connections", err["error"])
            self.assertEqual(responses[0][1].get("retry-after"), "1")
            # TCP clients cannot crowd out the Unix socket.
            for _ in range(3):
                responses = exchange(self.server, b"GET /health HTTP/1.1\r\nHost: x\r\n"
                                     b"Connection: close\r\n\r\n", unix=True)
                self.assertEqual([r[0] for r in responses], [200])
            for s in socks:
                self.assertEqual(read_until_closed(s, timeout=5), b"")
        finally:
            for s in socks:
                s.close()
        self.assert_healthy()


class DualStack(Attacks):
    """Listening on "::": an IPv4 client counts as one address whether it
    comes as IPv4 or as IPv4-mapped IPv6."""

    extra_config = "max_connections_per_address = 3\n"

    @classmethod
    def setUpClass(cls):
        cls.server = Server(cls.extra_config, unix_socket=True)
        with open(cls.server.config_path) as f:
            text = f.read()
        with open(cls.server.config_path, "w") as f:
            f.write(text.replace('host = "127.0.0.1"', 'host = "::"', 1))
        cls.server.start()

    def connect_as(self, family, source):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(5)
        s.bind((source, 0))
        s.connect(("::ffff:127.0.0.1" if family == socket.AF_INET6 else "127.0.0.1",
                   self.server.port))
        return s

    def counted_as(self, family, source):
        """A connection the server has surely accepted and counted: the TCP
        handshake completes in the kernel before the server's accept, so
        only an answer proves it."""
        s = self.connect_as(family, source)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            self.assertTrue(chunk, "closed before answering")
            data += chunk
        self.assertTrue(data.startswith(b"HTTP/1.1 200 "), data[:100])
        return s

    def test_ipv4_mapped_clients_share_the_cap(self):
        v4, v6 = socket.AF_INET, socket.AF_INET6
        socks = [self.counted_as(v4, "127.0.0.9"), self.counted_as(v6, "::ffff:127.0.0.9"),
                 self.counted_as(v4, "127.0.0.9")]
        try:
            for family, source in ((v6, "::ffff:127.0.0.9"), (v4, "127.0.0.9")):
                with self.connect_as(family, source) as s:
                    responses = split_responses(read_until_closed(s))
                self.assertEqual([r[0] for r in responses], [503])
                self.assertIn("too many connections from this address (limit 3)",
                              json.loads(responses[0][2])["error"])
            # Another address, and the Unix socket, are served meanwhile.
            with self.connect_as(v6, "::ffff:127.0.0.10") as s:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                self.assertEqual([r[0] for r in split_responses(read_until_closed(s))], [200])
            for _ in range(4):
                responses = exchange(self.server, b"GET /health HTTP/1.1\r\nHost: x\r\n"
                                     b"Connection: close\r\n\r\n", unix=True)
                self.assertEqual([r[0] for r in responses], [200])
        finally:
            for s in socks:
                s.close()
        self.assert_healthy()


class ShutdownInEveryState(unittest.TestCase):
    """SIGTERM with connections in every state: idle, a partial head, a
    partial body (length and chunked), a refused request's body being
    dropped, handlers running and queued, a client that does not read its
    answers, a closing connection still draining, a refused connection.
    The server exits 0 within the grace period and a second, and ASan
    (where it runs) finds nothing."""

    def test_shutdown_in_every_state(self):
        server = Server("shutdown_grace_ms = 300\nmax_concurrent_executions = 2\n"
                        "max_queued_requests = 1\nqueue_timeout_ms = 5000\n"
                        "max_connections_per_address = 12\n", unix_socket=True).start()
        auth = b"Authorization: Bearer " + server.token.encode() + b"\r\n"
        sleep = b'{"ms":800}'
        sends = [
            b"",
            b"GET /hea",
            post(b"/execute", b"Content-Length: 100\r\n" + auth, b"{"),
            post(b"/execute", b"Transfer-Encoding: chunked\r\n" + auth, b"5\r\n{\"a\""),
            post(b"/execute", b"Content-Length: 100\r\n", b"xx"),
            b"GET /x%00 HTTP/1.1\r\nHost: x\r\n\r\n" + b"y" * 1000,
        ] + [post(b"/__test/sleep", b"Content-Length: %d\r\n" % len(sleep) + auth, sleep)] * 4
        socks = []
        try:
            for data in sends:
                s = connect(server)
                s.sendall(data)
                socks.append(s)
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", server.port))
            s.setblocking(False)
            try:
                s.send(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 2000)
            except BlockingIOError:
                pass
            socks.append(s)
            socks.append(connect(server, unix=True))
            socks[-1].sendall(b"GET /health HTTP/1.1\r\n")
            socks += [connect(server) for _ in range(4)]  # over the per-address cap
            time.sleep(0.5)
            t0 = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            self.assertEqual(server.proc.wait(10), 0, server.read_log()[-3000:])
            self.assertLess(time.monotonic() - t0, 3)
            log = server.read_log()
            self.assertIn("shutdown complete", log)
            self.assertNotIn("Sanitizer", log)
            self.assertNotIn("runtime error", log)
        finally:
            for s in socks:
                s.close()
            server.cleanup()


def unique_module(src, dst):
    """Copies a module with a custom section of random bytes appended, so
    its hash (the compile cache key) is new."""
    payload = b"\x04salt" + os.urandom(16)
    with open(src, "rb") as f:
        data = f.read()
    with open(dst, "wb") as f:
        f.write(data + b"\x00" + bytes([len(payload)]) + payload)


def forks_of(pid):
    """Children of pid that are copies of it (forked, not exec'd)."""
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        cmdline = f.read()
    out = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids = f.read().split()
        except OSError:
            continue
        for kid in kids:
            try:
                with open(f"/proc/{kid}/cmdline", "rb") as f:
                    if f.read() == cmdline:
                        out.add(int(kid))
            except OSError:
                pass
    return out


class ForkedChildren(unittest.TestCase):
    """A tool compiles in a forked copy of the server, which holds every
    descriptor the server had at the fork. A connection the server ends
    must end all the same: the client sees the end at once, and no epoll
    event arrives for it afterwards."""

    def test_connections_end_while_a_forked_child_holds_them(self):
        server = Server("request_head_timeout_ms = 120000\n")
        cache = tempfile.mkdtemp(prefix="clawbox-e2e-cache-")
        tool_dir = os.path.join(server.dir, "tools")
        os.makedirs(tool_dir)
        for i in range(4):
            unique_module(os.path.join(TOOLS_DIR, "cpp_wordcount.wasm"),
                          os.path.join(tool_dir, f"wc{i}.wasm"))
        server.add_sandbox(f'cache_dir = "{cache}"\n')
        server.start(wait=False)
        socks = []
        try:
            deadline = time.time() + 60
            while not socks and time.time() < deadline:
                try:
                    socks = [connect(server) for _ in range(10)]
                except ConnectionRefusedError:
                    time.sleep(0.05)
            # Wait for a compile child forked after the connections opened.
            before = forks_of(server.proc.pid)
            while not forks_of(server.proc.pid) - before and time.time() < deadline:
                time.sleep(0.01)
            self.assertTrue(forks_of(server.proc.pid) - before, "no compile started")
            took = []
            for s in socks:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                t0 = time.time()
                self.assertIn(b" 200 ", read_until_closed(s, timeout=30)[:20])
                took.append(time.time() - t0)
            self.assertLess(max(took), 1.0, took)
            self.assertTrue(forks_of(server.proc.pid), "the compile child is gone: no proof")
        finally:
            for s in socks:
                s.close()
            server.cleanup()
            shutil.rmtree(cache, ignore_errors=True)


class HandlersPastTheGrace(unittest.TestCase):
    """SIGTERM while handlers run past shutdown_grace_ms and the second the
    server then waits for them: the server exits 0 at once, and nothing a
    late handler still uses (the router, the metrics, the app) is freed
    under it. The handlers end at staggered times so that some end while
    the process is on its way out."""

    def test_handlers_that_outlive_the_grace_period(self):
        server = Server("shutdown_grace_ms = 100\nmax_concurrent_executions = 64\n").start()
        try:
            def sleep(ms):
                try:
                    server.request("POST", "/__test/sleep", {"ms": ms}, timeout=10)
                except OSError:
                    pass

            threads = [threading.Thread(target=sleep, args=(1300 + 5 * i,)) for i in range(60)]
            for t in threads:
                t.start()
            time.sleep(0.3)
            t0 = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            self.assertEqual(server.proc.wait(10), 0, server.read_log()[-3000:])
            self.assertLess(time.monotonic() - t0, 3)
            for t in threads:
                t.join()
            log = server.read_log()
            self.assertIn("still running", log)
            self.assertNotIn("Sanitizer", log)
            self.assertNotIn("runtime error", log)
        finally:
            server.cleanup()


class FileLimit(unittest.TestCase):
    """The server raises its soft open-file limit to fit max_connections,
    and says when the hard limit does not allow them."""

    def start_with_limit(self, soft, hard):
        """Starts a server whose open-file limit is set in the child only."""
        server = Server()
        server.log = open(server.log_path, "wb")
        server.proc = subprocess.Popen(
            [BIN, "serve", "--config", server.config_path], env=server.env,
            stdout=server.log, stderr=subprocess.STDOUT,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard)))
        try:
            server.wait_ready()
        except Exception:
            server.cleanup()
            raise
        return server

    def soft_limit(self, pid):
        with open(f"/proc/{pid}/limits") as f:
            for line in f:
                if line.startswith("Max open files"):
                    return int(line.split()[3])
        raise AssertionError("no open-file limit")

    def test_raises_the_soft_limit(self):
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        if hard < 5120:
            self.skipTest(f"hard open-file limit {hard} < 5120")
        server = self.start_with_limit(1024, hard)
        try:
            self.assertEqual(self.soft_limit(server.proc.pid), 5120)
            self.assertIn("raised the open-file limit from 1024 to 5120", server.read_log())
        finally:
            server.cleanup()

    def test_warns_when_the_hard_limit_is_too_low(self):
        server = self.start_with_limit(1200, 1200)
        try:
            self.assertIn("allows 600 API connections, not server.max_connections = 4096",
                          server.read_log())
            self.assertEqual(server.request("GET", "/health", auth=False).status, 200)
        finally:
            server.cleanup()


if __name__ == "__main__":
    main()
