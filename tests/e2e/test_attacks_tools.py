"""Attacks through the tool registry, the compiler and the tool shim, end to
end against the real server: each asserts the exact refusal and that the
server stays healthy afterwards."""

import http.server
import os
import re
import shutil
import threading
import time
import unittest
import uuid

from harness import CACHE_DIR, Server, main

TOOLS_DIR = os.environ.get("CLAWBOX_E2E_TOOLS", "build/tools/wasm")
HOSTILE_DIR = os.environ.get("CLAWBOX_E2E_HOSTILE", "build/tests/fixtures")
ECHO = ("echo", os.path.join(TOOLS_DIR, "echo.wasm"))


def tool_server(tools=(), extra="", sandbox_extra="", env=None, start=True):
    """A server whose tool_dir holds `tools`: (name, source path) pairs."""
    s = Server(extra_config=extra, env=env)
    tool_dir = os.path.join(s.dir, "tools")
    os.makedirs(tool_dir)
    for name, path in tools:
        shutil.copy(path, os.path.join(tool_dir, name + ".wasm"))
    s.add_sandbox(f'cache_dir = "{CACHE_DIR}"\n' + sandbox_extra)
    s.tool_dir = tool_dir
    if start:
        s.start()
    return s


def hostile(name):
    return os.path.join(HOSTILE_DIR, name + ".wasm")


class ToolAttackCase(unittest.TestCase):
    def execute(self, server, tool, params=None, timeout=60):
        body = {"tool": tool}
        if params is not None:
            body["params"] = params
        return server.request("POST", "/execute", body, timeout=timeout)

    def assert_error(self, resp, status, code, message=None):
        self.assertEqual(resp.status, status, resp.body)
        body = resp.json()
        self.assertEqual(body["code"], code, body)
        if message is not None:
            self.assertIn(message, body["error"])

    def assert_healthy(self, server):
        r = server.request("GET", "/health", auth=False)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json()["status"], "healthy", r.body)
        r = self.execute(server, "echo", {"still": "alive"})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json()["output"]["echo"], {"still": "alive"})


class CountingUpstream(http.server.BaseHTTPRequestHandler):
    """Counts the requests it receives, by path."""

    seen = {}
    lock = threading.Lock()

    def log_message(self, *args):
        pass

    def do_GET(self):
        with CountingUpstream.lock:
            CountingUpstream.seen[self.path] = CountingUpstream.seen.get(self.path, 0) + 1
        body = b"counted"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


WAT_ECHO = ("wat_echo", os.path.join(TOOLS_DIR, "wat_echo.wasm"))
BUDGET_RE = r"compiling used its whole CPU budget of (\d+) ms \(it grows with the module's size"
OUTPUT_RE = r"the compiler's output reached its limit of \d+ bytes for a module of this size"


def budget_ms(path):
    """The CPU budget clawbox gives a module: 5 s + 100 ms per KiB."""
    return 5000 + 100 * os.path.getsize(path) // 1024


class CompileDosTests(ToolAttackCase):
    """A module that is slow to compile (24 KB of nested loops took the whole
    120 s compile timeout) no longer holds up the other tools: modules
    compile in parallel, each within a CPU budget that grows with its size,
    and a module that ran out of it is remembered by content, so a restart
    does not compile it again."""

    def server_with(self, tools):
        # A fresh cache: the good tools really compile beside the slow one,
        # and no failure is remembered from an earlier run.
        s = tool_server(tools, start=False)
        with open(s.config_path) as f:
            text = f.read().replace(f'cache_dir = "{CACHE_DIR}"',
                                    f'cache_dir = "{s.dir}/cache"', 1)
        with open(s.config_path, "w") as f:
            f.write(text)
        self.addCleanup(s.cleanup)
        return s

    def wait_executable(self, server, tools, timeout):
        deadline = time.monotonic() + timeout
        pending = set(tools)
        while pending and time.monotonic() < deadline:
            for tool in list(pending):
                try:
                    if self.execute(server, tool, {}).status == 200:
                        pending.discard(tool)
                except OSError:
                    pass
            time.sleep(0.1)
        return pending

    def failures(self, server):
        r = server.request("POST", "/tools/reload")
        self.assertEqual(r.status, 200, r.body)
        return {f["tool"]: f["error"] for f in r.json()["failed"]}

    def compile_children(self, server):
        """The server's children that are copies of it (forked without
        exec): the compile children."""
        pids = []
        own = open(f"/proc/{server.proc.pid}/cmdline", "rb").read()
        for d in os.listdir("/proc"):
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                if ppid == server.proc.pid and open(f"/proc/{d}/cmdline", "rb").read() == own:
                    pids.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
        return pids

    def sockets_held(self, pid):
        held = []
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                    held.append(fd)
        except OSError:
            pass
        return held

    def assert_compile_children_hold_no_sockets(self, server, timeout):
        """A compile child lives for seconds without exec: it must not keep
        the server's listeners and connections open (a closed connection
        would stay up). Sampled twice, 200 ms apart, to pass over the
        moment between fork and the close."""
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline and seen < 3:
            for pid in self.compile_children(server):
                if self.sockets_held(pid):
                    time.sleep(0.2)
                    self.assertEqual(self.sockets_held(pid), [], f"compile child {pid}")
                seen += 1
            time.sleep(0.05)
        self.assertGreater(seen, 0, "no compile child seen")

    def test_good_tools_are_ready_beside_a_slow_module(self):
        slow = hostile("slowloops")
        s = self.server_with([("aaa_slow", slow), ECHO, WAT_ECHO])
        start = time.monotonic()
        s.start(wait=False)
        self.assert_compile_children_hold_no_sockets(s, 30)
        # First in name order, yet the others load beside it, before it fails
        # (it held them all up for the whole 120 s compile timeout).
        self.assertEqual(self.wait_executable(s, ["echo", "wat_echo"], 90), set(),
                         s.read_log())
        ready = time.monotonic() - start
        s.wait_ready(timeout=120)
        log = s.read_log()
        slow_failed = log.index("tool aaa_slow: loading")
        # With two CPUs the first good tool compiles beside the slow one and
        # is ready before the slow one ran out of its budget. (wat_echo
        # waits for echo's slot, so under load it may finish after.)
        if len(os.sched_getaffinity(0)) >= 2:  # one CPU: one job, in name order
            self.assertLess(log.index("tool echo ready"), slow_failed, log)
        error = self.failures(s)["aaa_slow"]
        self.assertRegex(error, f"^({BUDGET_RE}|{OUTPUT_RE})")
        m = re.match(BUDGET_RE, error)
        if m:
            self.assertEqual(int(m.group(1)), budget_ms(slow))
        self.assertRegex(log, r"tool echo ready \(module sha256 [0-9a-f]{12}, loaded in \d+ ms\)")
        self.assert_healthy(s)
        print(f"\n  good tools executable {ready:.1f} s after start", flush=True)
        # Restarted: the failure is remembered by content, not recompiled.
        self.assertEqual(s.stop(), 0)
        start = time.monotonic()
        s.start()
        self.assertLess(time.monotonic() - start, 15)
        self.assertIn("(cached: this module failed so before", self.failures(s)["aaa_slow"])
        self.assert_healthy(s)

    def test_cpu_budget_scales_with_size_and_is_remembered(self):
        slow = hostile("slowblocks")
        s = self.server_with([("blocks", slow), ECHO])
        s.start(wait=False)
        s.wait_ready(timeout=180)
        # Its quick (-O0) build is within the budget; the -O2 build that
        # follows in the background runs out of it, and then it is refused.
        deadline = time.monotonic() + 180
        while "blocks" not in self.failures(s) and time.monotonic() < deadline:
            time.sleep(0.5)
        want = f"compiling used its whole CPU budget of {budget_ms(slow)} ms"
        self.assertTrue(self.failures(s)["blocks"].startswith(want), s.read_log())
        self.assert_error(self.execute(s, "blocks"), 404, "tool_not_found")
        # Touched (the watcher and reload would see a new file): the content
        # is the same, so the failure comes from the cache at once.
        os.utime(os.path.join(s.tool_dir, "blocks.wasm"))
        start = time.monotonic()
        error = self.failures(s)["blocks"]
        self.assertLess(time.monotonic() - start, 5)
        self.assertTrue(error.startswith(want), error)
        self.assertIn("(cached:", error)
        self.assert_healthy(s)


def start_counting_upstream():
    """A CountingUpstream on a loopback port: (server, base URL)."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CountingUpstream)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}"


class HostCallBufferTests(ToolAttackCase):
    """A host call whose response buffer the tool could never read is
    refused before it is dispatched: the upstream never sees it."""

    @classmethod
    def setUpClass(cls):
        cls.upstream, cls.base = start_counting_upstream()
        cls.server = tool_server(
            [("badresp", hostile("badresp")), ECHO],
            extra='[proxy]\nallow_private_cidrs = ["127.0.0.0/8"]\n')
        r = cls.server.request("POST", "/tools/register", {
            "tool": {"name": "badresp"}, "network": {"allowlist": ["127.0.0.1"]}})
        assert r.status in (200, 201), r.body

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()
        cls.upstream.shutdown()

    def test_bad_response_buffer_is_never_sent_upstream(self):
        path = f"/hc-{uuid.uuid4().hex}"
        r = self.execute(self.server, "badresp", {"url": self.base + path})
        self.assertEqual(r.status, 200, r.body)
        # Past the end, negative capacity, a length running past the end,
        # a negative pointer, a pointer past the end with capacity 0: -1;
        # the good buffer gets the response.
        self.assertEqual(r.json()["output"], ["N", "N", "N", "N", "N", "Y"])
        self.assertEqual(CountingUpstream.seen.get(path), 1, CountingUpstream.seen)
        self.assert_healthy(self.server)


class RegisteredManifestBindingTests(ToolAttackCase):
    """A manifest registered through the API belongs to the module it was
    registered for: other code installed later under the same name does not
    inherit its allowlist (before, it did, and reached the upstream)."""

    @classmethod
    def setUpClass(cls):
        cls.upstream, cls.base = start_counting_upstream()
        cls.server = tool_server(
            [ECHO, ("web", os.path.join(TOOLS_DIR, "http_request.wasm"))],
            extra='[proxy]\nallow_private_cidrs = ["127.0.0.0/8"]\n',
            sandbox_extra="watch_tools = true\n")

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()
        cls.upstream.shutdown()

    def install(self, source):
        tmp = os.path.join(self.server.tool_dir, ".web.tmp")
        shutil.copy(source, tmp)
        os.rename(tmp, os.path.join(self.server.tool_dir, "web.wasm"))

    def wait_for(self, check, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.2)
        self.fail("the watcher did not reload the module")

    def output_is_list(self):
        r = self.execute(self.server, "web", {"url": self.base + "/probe"})
        return r.status == 200 and isinstance(r.json()["output"], list)

    def test_other_code_does_not_inherit_the_registration(self):
        r = self.server.request("POST", "/tools/register", {
            "tool": {"name": "web", "description": "granted"},
            "network": {"allowlist": ["127.0.0.1"]}})
        self.assertIn(r.status, (200, 201), r.body)
        path = f"/granted-{uuid.uuid4().hex}"
        r = self.execute(self.server, "web", {"url": self.base + path})
        self.assertEqual(r.json()["output"]["status"], 200, r.body)
        self.assertEqual(CountingUpstream.seen.get(path), 1)
        # Other code under the same name: no allowlist, no request.
        self.install(hostile("badresp"))
        self.wait_for(self.output_is_list)
        path = f"/inherited-{uuid.uuid4().hex}"
        r = self.execute(self.server, "web", {"url": self.base + path})
        self.assertEqual(r.status, 200, r.body)
        self.assertIsNone(CountingUpstream.seen.get(path), CountingUpstream.seen)
        got = self.server.request("GET", "/tools/web").json()
        self.assertEqual(got["tool"]["description"], "Auto-loaded WASM tool")
        self.assertIsNone(got["network"])
        self.assertIn("its registered manifest was for module sha256", self.server.read_log())
        # Nor after a restart.
        self.assertEqual(self.server.stop(), 0)
        self.server.start()
        self.execute(self.server, "web", {"url": self.base + path})
        self.assertIsNone(CountingUpstream.seen.get(path), CountingUpstream.seen)
        # The module it was registered for, back: the registration applies.
        self.install(os.path.join(TOOLS_DIR, "http_request.wasm"))
        self.wait_for(lambda: not self.output_is_list())
        self.assertEqual(
            self.server.request("GET", "/tools/web").json()["tool"]["description"], "granted")
        self.assert_healthy(self.server)


class StartFunctionTests(ToolAttackCase):
    """A module's start function runs under the execution's budget: fuel
    that runs out there is 408 fuel_exhausted (it was a 500 "unreachable"
    trap or an unmetered run to the deadline), and traps there or in the
    data and element initialisers are 500 execution_error naming where."""

    @classmethod
    def setUpClass(cls):
        cls.server = tool_server(
            [ECHO] + [(n, hostile(n)) for n in ("startspin", "starttrap", "dataoob", "elemoob")],
            sandbox_extra="default_fuel = 10000000\n")

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def test_fuel_runs_out_in_the_start_function(self):
        r = self.execute(self.server, "startspin")
        self.assert_error(r, 408, "fuel_exhausted", "fuel exhausted (budget 10000000)")
        self.assert_healthy(self.server)

    def test_trap_in_the_start_function(self):
        r = self.execute(self.server, "starttrap")
        self.assert_error(r, 500, "execution_error",
                          "start function trapped: unreachable instruction executed")
        self.assert_healthy(self.server)

    def test_traps_in_data_and_element_initialisers(self):
        for tool in ("dataoob", "elemoob"):
            with self.subTest(tool=tool):
                r = self.execute(self.server, tool)
                self.assert_error(r, 500, "execution_error",
                                  "instantiation trapped: out of bounds memory or table access")
        self.assert_healthy(self.server)


class StartFunctionTimeoutTests(ToolAttackCase):
    """With fuel to spare, a start function that never returns is stopped at
    the deadline: 408 timeout, on time."""

    @classmethod
    def setUpClass(cls):
        cls.server = tool_server(
            [ECHO, ("startspin", hostile("startspin"))],
            sandbox_extra="default_fuel = 1000000000000000\ndefault_timeout_ms = 500\n")

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def test_start_function_hits_the_deadline(self):
        start = time.monotonic()
        r = self.execute(self.server, "startspin")
        self.assert_error(r, 408, "timeout", "execution timed out after 500 ms")
        self.assertLess(time.monotonic() - start, 2.0)
        self.assert_healthy(self.server)


class ToolDirLinkTests(ToolAttackCase):
    """Links in tool_dir are not followed, and no error or log line quotes
    what a module or manifest file holds (a manifest parse error used to
    log the first bytes of the file: digits of the master key)."""

    @classmethod
    def setUpClass(cls):
        # Digits, then a space: jansson's own error text would quote them
        # ("'[' or '{' expected near '31323334'"), as it did a master key.
        cls.secret = "31323334 " + os.urandom(16).hex()
        cls.server = tool_server([ECHO, ("leak", os.path.join(TOOLS_DIR, "echo.wasm")),
                                  ("digits", os.path.join(TOOLS_DIR, "echo.wasm"))], start=False)
        d = cls.server.tool_dir
        secret_file = os.path.join(cls.server.dir, "master.key")
        with open(secret_file, "w") as f:
            f.write(f'{{"tool": {{"name": "leak", "description": "{cls.secret}"}}}}')
        os.symlink("/etc/shadow", os.path.join(d, "shadow.wasm"))
        os.symlink(secret_file, os.path.join(d, "key.wasm"))
        os.symlink(secret_file, os.path.join(d, "leak.json"))
        with open(os.path.join(d, "digits.json"), "w") as f:
            f.write(cls.secret + "\n")
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def test_module_links_are_refused_and_reported(self):
        r = self.server.request("POST", "/tools/reload")
        self.assertEqual(r.status, 200, r.body)
        failed = {f["tool"]: f["error"] for f in r.json()["failed"]}
        for name in ("shadow", "key"):
            self.assertIn(name, failed)
            self.assertTrue(failed[name].endswith(
                f"{name}.wasm is a symbolic link; links in the tool directory are not followed"),
                failed[name])
            self.assert_error(self.execute(self.server, name), 404, "tool_not_found")
        self.assertNotIn(self.secret, r.body.decode())
        self.assert_healthy(self.server)

    def test_manifest_link_is_not_read(self):
        r = self.server.request("GET", "/tools/leak")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json()["tool"]["description"], "Auto-loaded WASM tool")
        self.assert_healthy(self.server)

    def test_no_file_content_in_the_log(self):
        self.server.request("POST", "/tools/reload")
        log = self.server.read_log()
        for part in self.secret.split():
            self.assertNotIn(part, log)
        self.assertIn("digits.json: invalid JSON syntax at line 1, column", log)
        self.assertIn("leak.json is a symbolic link", log)
        self.assert_healthy(self.server)


if __name__ == "__main__":
    main()
