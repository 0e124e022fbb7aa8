"""Containers through the real server and a real OCI runtime: spawn, the
lifecycle states, DELETE, policy and capacity, bad input, the hardening
seen from inside (ctprobe), the OOM kill and the pids limit, and the
per-container proxy socket in both request forms. Every test class runs
once with crun and once with runc."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import ctimage
import harness

IMAGE = ctimage.TEST_IMAGE
PROBE = "/usr/bin/ctprobe"
RUNTIMES = [r for r in ("crun", "runc") if shutil.which(r)]


def skip_reason():
    if os.geteuid() != 0:
        return "containers need root"
    if not RUNTIMES:
        return "no OCI runtime installed"
    return None


class Upstream(BaseHTTPRequestHandler):
    """A loopback upstream that echoes what it got, and keeps it in seen."""

    seen = []

    def _answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode() if n else ""
        doc = {"method": self.command, "path": self.path, "body": body,
               "authorization": self.headers.get("Authorization"),
               "proxy_authorization": self.headers.get("Proxy-Authorization"),
               "x_api_key": self.headers.get("X-Api-Key"),
               "x_repeat": self.headers.get("X-Repeat")}
        Upstream.seen.append(doc)
        out = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args):
        pass


def start_upstream():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


class ContainerCase(harness.ServerTestCase):
    runtime = None  # set by the subclasses below
    max_containers = 3
    templates = ""
    extra = ""  # more config
    containers_extra = ""  # more [containers] keys
    env = {}  # the server's environment

    @classmethod
    def prepare(cls):
        """Runs before the server starts."""

    @classmethod
    def setUpClass(cls):
        why = skip_reason()
        if why:
            raise unittest.SkipTest(why)
        cls.upstream = start_upstream()
        cls.up = f"http://127.0.0.1:{cls.upstream.server_address[1]}"
        cls.server = harness.Server(
            f'[containers]\nruntime = "{cls.runtime}"\nmax_containers = {cls.max_containers}\n'
            'default_timeout_ms = 60000\nmax_output_bytes = 65536\nmax_pids = 64\n'
            + cls.containers_extra +
            '[container_policy]\nallowed_policies = ["wasm_only", "container"]\n'
            'allowed_images = ["clawbox/", "alpine:"]\nnetwork_allowlist = ["127.0.0.1"]\n'
            '[proxy]\nallow_private_cidrs = ["127.0.0.0/8"]\n' + cls.templates + cls.extra,
            env=cls.env)
        ctimage.import_test_image(cls.server)
        cls.prepare()
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        if hasattr(cls, "server"):
            super().tearDownClass()
        if hasattr(cls, "upstream"):
            cls.upstream.shutdown()
            cls.upstream.server_close()

    def spawn(self, command, **extra):
        body = {"task": "test", "image": IMAGE, "policy": "container", "command": command}
        body.update(extra)
        return self.server.request("POST", "/containers/spawn", body)

    def spawned(self, command, **extra):
        r = self.spawn(command, **extra)
        self.assertEqual(r.status, 201, r.body)
        info = r.json()
        self.assertEqual(info["status"], "running")
        self.assertTrue(info["container_id"].startswith("clawbox-"))
        return info["container_id"]

    def wait_end(self, cid, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            info = self.server.request("GET", f"/containers/{cid}").json()
            if info["status"] not in ("creating", "running"):
                return info
            time.sleep(0.05)
        self.fail(f"{cid} still running after {timeout} s")

    def delete(self, cid):
        r = self.server.request("DELETE", f"/containers/{cid}")
        self.assertEqual(r.status, 200, r.body)
        out = r.json()
        self.assertEqual(out["status"], "killed")
        return out

    def run_to_end(self, command, **extra):
        cid = self.spawned(command, **extra)
        info = self.wait_end(cid)
        out = self.delete(cid)
        return info, out["output"] or ""


class Lifecycle:
    def test_echo_completes_with_its_output(self):
        info, out = self.run_to_end(["/bin/sh", "-c", "echo hello; echo oops >&2"])
        self.assertEqual(info["status"], "completed", info)
        self.assertEqual(info["exit_code"], 0)
        self.assertIn("hello", out)
        self.assertIn("oops", out)
        self.assertIsNotNone(info["finished_at"])

    def test_nonzero_exit_is_failed(self):
        info, _ = self.run_to_end(["/bin/sh", "-c", "exit 3"])
        self.assertEqual(info["status"], "failed")
        self.assertEqual(info["exit_code"], 3)
        self.assertIn("status 3", info["error"])

    def test_timeout_is_timed_out(self):
        cid = self.spawned(["/bin/sleep", "30"],
                           capabilities={"resources": {"timeout_ms": 300}})
        t0 = time.time()
        info = self.wait_end(cid, timeout=10)
        self.assertEqual(info["status"], "timed_out", info)
        self.assertLess(time.time() - t0, 5)
        self.delete(cid)

    def test_delete_of_a_running_container(self):
        cid = self.spawned(["/bin/sh", "-c", "echo started; sleep 30"])
        time.sleep(0.3)
        t0 = time.time()
        out = self.delete(cid)
        self.assertLess(time.time() - t0, 5)
        self.assertIn("started", out["output"])
        self.assert_error(self.server.request("GET", f"/containers/{cid}"), 404, "not_found")
        self.assert_error(self.server.request("DELETE", f"/containers/{cid}"), 404, "not_found")

    def test_logs_and_list(self):
        cid = self.spawned(["/bin/sh", "-c", "for i in 1 2 3 4; do echo line$i; done"])
        self.wait_end(cid)
        r = self.server.request("GET", f"/containers/{cid}/logs?tail=2")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body.decode(), "line3\nline4\n")
        ids = [c["container_id"] for c in self.server.request("GET", "/containers").json()]
        self.assertIn(cid, ids)
        self.delete(cid)

    def test_output_beyond_the_cap_is_dropped_and_counted(self):
        info, out = self.run_to_end([PROBE, "print", "200000"])
        self.assertEqual(info["status"], "completed", info)
        self.assertEqual(len(out), 65536)
        self.assertEqual(info["output_dropped_bytes"], 200000 - 65536)

    def test_output_is_redacted(self):
        leaked = "ghp_" + "a" * 36
        _, out = self.run_to_end(["/bin/echo", f"token={leaked}"])
        self.assertNotIn(leaked, out)
        self.assertIn("[REDACTED]", out)

    def test_health_names_the_runtime(self):
        h = self.server.request("GET", "/health", auth=False).json()
        self.assertTrue(h["docker_available"])
        self.assertEqual(h["components"]["docker"]["status"], "healthy")
        self.assertTrue(h["components"]["docker"]["detail"]["runtime"].startswith(self.runtime))


class Refusals:
    def test_policy_not_allowed(self):
        r = self.spawn(["/bin/true"], policy="container_direct")
        self.assert_error(r, 403, "policy_denied")
        self.assertIn("container_direct", r.json()["error"])

    def test_image_not_allowed(self):
        r = self.spawn(["/bin/true"], image="docker.io/library/busybox:latest")
        self.assert_error(r, 403, "policy_denied")
        self.assertIn("image not allowed", r.json()["error"])

    def test_image_not_in_the_store(self):
        r = self.spawn(["/bin/true"], image="clawbox/missing:1")
        self.assert_error(r, 400, "invalid_request")
        self.assertIn("clawbox/missing:1", r.json()["error"])

    def test_bad_input_on_every_field(self):
        cases = [
            ({}, 422, "task"),
            ({"task": 1}, 422, "task"),
            ({"task": "", "image": ""}, 400, "image"),
            ({"task": "", "policy": "root"}, 422, "policy"),
            ({"task": "", "command": []}, 400, "command"),
            ({"task": "", "command": "sh"}, 422, "command"),
            ({"task": "", "command": ["sh", 1]}, 422, "command[1]"),
            ({"task": "", "env": {"LD_PRELOAD": "/x.so"}}, 400, "LD_PRELOAD"),
            ({"task": "", "env": {"LD_PRELOAD=/x.so": "1"}}, 400, "LD_PRELOAD=/x.so"),
            ({"task": "", "env": {"HTTPS_PROXY": "http://evil"}}, 400, "HTTPS_PROXY"),
            ({"task": "", "env": {"A": 1}}, 422, "env.A"),
            ({"task": "", "capabilities": {"resources": {"timeout_ms": 0}}}, 400, "timeout_ms"),
            ({"task": "", "capabilities": {"resources": {"memory_mb": -1}}}, 422, "memory_mb"),
            ({"task": "", "capabilities": {"credentials": "x"}}, 422, "credentials"),
        ]
        for body, status, names in cases:
            body.setdefault("image", IMAGE)
            body.setdefault("policy", "container")
            r = self.server.request("POST", "/containers/spawn", body)
            self.assert_error(r, status, "invalid_request")
            self.assertIn(names, r.json()["error"], body)
        self.assert_error(self.server.request("POST", "/containers/spawn", "{", headers={
            "Content-Type": "application/json"}), 400, "invalid_request")
        self.assert_error(self.server.request("GET", "/containers/nope"), 404, "not_found")
        # A value too long to read is refused, never taken for an absent one.
        for q in ("tail=zz", "tail=" + "9" * 40, "tail=%00"):
            self.assert_error(self.server.request("GET", f"/containers/x/logs?{q}"), 400,
                              "invalid_request")
        self.assertEqual(self.server.request("GET", "/containers", auth=False).status, 401)
        self.assert_healthy()

    def test_capacity_under_concurrent_spawns(self):
        def one(_):
            return self.spawn(["/bin/sleep", "30"])

        with ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(one, range(20)))
        made = [a.json()["container_id"] for a in answers if a.status == 201]
        refused = [a for a in answers if a.status != 201]
        self.assertEqual(len(made), self.max_containers)
        for a in refused:
            self.assert_error(a, 429, "resource_exhausted")
        for cid in made:
            self.delete(cid)
        # Finished containers do not count.
        info, _ = self.run_to_end(["/bin/true"])
        self.assertEqual(info["status"], "completed")


class Hardening:
    def probe(self):
        """name -> [values] of ctprobe's lines, and the whole output."""
        info, out = self.run_to_end([PROBE])
        self.assertEqual(info["status"], "completed", (info, out))
        lines = {}
        for line in out.splitlines():
            if line.startswith("mount "):
                lines.setdefault("mounts", []).append(line[6:])
                continue
            k, _, v = line.partition("=")
            lines.setdefault(k, []).append(v)
        return lines, out

    def test_from_inside(self):
        p, out = self.probe()
        self.assertEqual(p["uid"], ["1000"], out)
        self.assertEqual(p["gid"], ["1000"], out)
        for caps in ("CapInh", "CapEff", "CapPrm", "CapBnd", "CapAmb"):
            self.assertEqual(int(p[caps][0], 16), 0, out)
        self.assertEqual(p["NoNewPrivs"], ["1"], out)
        self.assertEqual(p["Seccomp"], ["2"], out)
        self.assertEqual(p["interfaces"], ["lo,"], out)

        def options(dest):
            found = [m.split()[1] for m in p["mounts"] if m.split()[0] == dest]
            self.assertTrue(found, f"nothing mounted at {dest}:\n{out}")
            return found[-1].split(",")

        self.assertIn("ro", options("/"), out)
        self.assertTrue({"noexec", "nosuid", "nodev"} <= set(options("/tmp")), out)
        self.assertIn("ro", options("/run/clawbox"), out)
        self.assertFalse([m for m in p["mounts"] if m.startswith("/sys")], out)
        want = {"write_root": "EROFS", "write_tmp": "ok", "exec_tmp": "EACCES",
                "write_proxy_dir": "EROFS", "mount": "EPERM", "umount": "EPERM",
                "chroot": "EPERM", "unshare_user": "EPERM", "unshare_mount": "EPERM",
                "clone_newuser": "EPERM", "clone_newnet": "EPERM", "clone3": "ENOSYS",
                "setns": "EPERM", "setuid0": "EPERM", "mknod": "EPERM", "keyctl": "EPERM",
                "io_uring": "EPERM", "vsock": "EPERM", "clone_plain": "ok"}
        for name, result in want.items():
            self.assertEqual(p.get(name), [result], (name, out))
        # SIGSYS from the x86_64-only filter; SIGSEGV where the kernel has no
        # i386 emulation at all (as on these machines).
        self.assertIn(p["int80"], [["signal 31"], ["signal 11"]], out)

    def test_host_sees_it_under_an_unowned_id(self):
        cid = self.spawned(["/bin/sleep", "30"])
        time.sleep(0.3)
        owners = set()
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if f.read() != b"/bin/sleep\x0030\x00":
                        continue
                owners.add(os.stat(f"/proc/{pid}").st_uid)
            except OSError:
                continue
        self.delete(cid)
        self.assertTrue(owners, "the container's process was not found")
        for uid in owners:
            self.assertGreaterEqual(uid, 1000000000)

    def test_oom_kill(self):
        info, out = self.run_to_end([PROBE, "alloc", "512"],
                                    capabilities={"resources": {"memory_mb": 32}})
        self.assertEqual(info["status"], "failed", (info, out))
        self.assertTrue(info["oom_killed"], info)
        self.assertIn("out of memory", info["error"])

    def test_pids_limit(self):
        info, out = self.run_to_end([PROBE, "fork", "500"])
        forked = int([l for l in out.splitlines() if l.startswith("forked")][0].split()[1])
        self.assertLess(forked, 64, out)
        self.assertIn("Resource temporarily unavailable", out)


class ProxySocket:
    def http(self, raw, extra_env=None):
        """Sends raw (with $TOKEN replaced by the container's token) through
        the socket from inside a container; returns (status, body)."""
        script = ('printf "%s" "$REQ" | sed "s/TOKENHERE/$CLAWBOX_PROXY_TOKEN/" | '
                  f'{PROBE} http /run/clawbox/proxy.sock')
        env = {"REQ": raw}
        env.update(extra_env or {})
        _, out = self.run_to_end(["/bin/sh", "-c", script], env=env)
        head, _, body = out.partition("\r\n\r\n")
        status = int(head.split(" ")[1]) if head.startswith("HTTP/") else 0
        return status, body, out

    def test_envelope_allowed(self):
        body = json.dumps({"url": f"{self.up}/hi", "method": "GET"})
        status, resp, out = self.http(
            "POST /proxy HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer TOKENHERE\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n{body}")
        self.assertEqual(status, 200, out)
        doc = json.loads(resp)
        self.assertEqual(doc["status"], 200)
        self.assertEqual(json.loads(doc["body"])["path"], "/hi")

    def test_envelope_denied_host(self):
        body = json.dumps({"url": "http://example.com/", "method": "GET"})
        status, resp, out = self.http(
            "POST /proxy HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer TOKENHERE\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n{body}")
        self.assertEqual(status, 403, out)
        self.assertIn("example.com", json.loads(resp)["error"])

    def test_wrong_token(self):
        body = json.dumps({"url": f"{self.up}/", "method": "GET"})
        status, _, out = self.http(
            "POST /proxy HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer " + "0" * 64 +
            f"\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n{body}")
        self.assertEqual(status, 401, out)

    def test_forward_form_keeps_the_programs_authorization(self):
        status, resp, out = self.http(
            f"POST /{self.up}/fw HTTP/1.1\r\nHost: localhost\r\n"
            "Proxy-Authorization: Bearer TOKENHERE\r\nAuthorization: Bearer mine\r\n"
            "Content-Length: 5\r\nConnection: close\r\n\r\nhello")
        self.assertEqual(status, 200, out)
        doc = json.loads(resp)
        self.assertEqual(doc["method"], "POST")
        self.assertEqual(doc["body"], "hello")
        self.assertEqual(doc["authorization"], "Bearer mine")
        self.assertIsNone(doc["proxy_authorization"])

    def test_repeated_headers_are_joined(self):
        # A header sent many times is joined into one value: the join once
        # wrote past a buffer that could not grow.
        parts = [f"{i:03d}" + "r" * 97 for i in range(40)]
        repeats = "".join(f"X-Repeat: {p}\r\n" for p in parts)
        status, resp, out = self.http(
            f"GET /{self.up}/rep HTTP/1.1\r\nHost: localhost\r\n"
            f"Proxy-Authorization: Bearer TOKENHERE\r\n{repeats}Connection: close\r\n\r\n")
        self.assertEqual(status, 200, out)
        self.assertEqual(json.loads(resp)["x_repeat"], ", ".join(parts))
        self.assert_healthy()

    def test_socket_is_gone_after_delete(self):
        cid = self.spawned(["/bin/sleep", "30"])
        sock = os.path.join(self.server.dir, "data", "containers", cid, "proxy", "proxy.sock")
        self.assertTrue(os.path.exists(sock))
        st = os.stat(os.path.dirname(sock))
        self.assertEqual(st.st_mode & 0o777, 0o710)
        self.assertEqual(os.stat(sock).st_mode & 0o777, 0o660)
        self.delete(cid)
        self.assertFalse(os.path.exists(os.path.dirname(sock)))


SECRET = "cb-secret-3f9d1a7c5e2b8046"
MASTER_KEY = "22" * 32


class Credentials(ContainerCase):
    """A credential injected at the boundary: the upstream gets it, the
    container never sees it; the token is refused once the container ended."""

    runtime = RUNTIMES[0] if RUNTIMES else "crun"
    env = {"CLAWBOX_MASTER_KEY": MASTER_KEY}

    @classmethod
    def prepare(cls):
        with open(cls.server.config_path) as f:
            text = f.read()
        text = text.replace('network_allowlist = ["127.0.0.1"]\n',
                            'network_allowlist = ["127.0.0.1"]\nallowed_credentials = ["up"]\n')
        with open(cls.server.config_path, "w") as f:
            f.write(text)
        port = str(cls.upstream.server_address[1])
        p = subprocess.run([cls.server.binary, "creds", "--config", cls.server.config_path, "add",
                            "--name", "up", "--domain", "127.0.0.1", "--header", "X-Api-Key",
                            "--prefix", "", "--allow-http", "--port", port],
                           input=SECRET + "\n", capture_output=True, text=True,
                           env=cls.server.env, timeout=60)
        if p.returncode != 0:
            raise RuntimeError(p.stderr)

    def test_secret_injected_and_never_inside(self):
        Upstream.seen.clear()
        req = (f"GET /{self.up}/cred HTTP/1.1\\r\\nHost: l\\r\\n"
               "Proxy-Authorization: Bearer $CLAWBOX_PROXY_TOKEN\\r\\nConnection: close"
               "\\r\\n\\r\\n")
        script = f'env; printf "{req}" | {PROBE} http /run/clawbox/proxy.sock'
        info, out = self.run_to_end(["/bin/sh", "-c", script],
                                    capabilities={"credentials": ["up", "other"]})
        self.assertEqual(info["status"], "completed", (info, out))
        self.assertIn("HTTP/1.1 200", out)
        self.assertEqual([d["x_api_key"] for d in Upstream.seen if d["path"] == "/cred"],
                         [SECRET])
        self.assertNotIn(SECRET, out)
        self.assertIn("[REDACTED]", out)  # the upstream echoed it back

    def test_token_refused_after_the_end(self):
        cid = self.spawned(["/bin/sleep", "1"])
        bundle = os.path.join(self.server.dir, "data", "containers", cid, "bundle")
        with open(os.path.join(bundle, "config.json")) as f:
            env = json.load(f)["process"]["env"]
        token = [e.split("=", 1)[1] for e in env if e.startswith("CLAWBOX_PROXY_TOKEN=")][0]
        sock = os.path.join(self.server.dir, "data", "containers", cid, "proxy", "proxy.sock")
        body = json.dumps({"url": f"{self.up}/late", "method": "GET"})

        def ask():
            c = harness.UnixHTTPConnection(sock)
            c.request("POST", "/proxy", body=body, headers={
                "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
            status = c.getresponse().status
            c.close()
            return status

        self.assertEqual(ask(), 200)  # root may connect; the token works while it runs
        self.assertEqual(self.wait_end(cid)["status"], "completed")
        self.assertEqual(ask(), 401)
        self.delete(cid)


class CliVerbs(ContainerCase):
    """spawn, list containers, logs --container and kill, from a template."""

    runtime = RUNTIMES[0] if RUNTIMES else "crun"
    containers_extra = "max_file_bytes = 33554432\n"
    templates = (f'[images.templates.hello]\nimage = "{IMAGE}"\n'
                 'command = ["/bin/sh", "-c", "echo hello from the template; sleep 30"]\n')

    def cli(self, *args):
        conn = ["--port", str(self.server.port), "--token", self.server.token]
        return subprocess.run([self.server.binary, *args, *conn], capture_output=True,
                              text=True, env=self.server.env, timeout=60)

    def test_spawn_list_logs_kill(self):
        p = self.cli("spawn", "hello", "--task", "say hello", "--config", self.server.config_path)
        self.assertEqual(p.returncode, 0, p.stderr)
        info = json.loads(p.stdout)
        cid = info["container_id"]
        self.assertEqual(info["task_summary"], "say hello")
        p = self.cli("list", "containers")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(cid, p.stdout)
        self.assertIn("running", p.stdout)
        p = self.cli("list", "containers", "--json")
        self.assertIn(cid, [c["container_id"] for c in json.loads(p.stdout)])
        deadline = time.time() + 10
        while time.time() < deadline:
            p = self.cli("logs", "--container", cid)
            if "hello from the template" in p.stdout:
                break
            time.sleep(0.1)
        self.assertEqual(p.stdout, "hello from the template\n", p.stderr)
        p = self.cli("kill", cid)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["status"], "killed")
        p = self.cli("kill", cid)
        self.assertEqual(p.returncode, 1)
        self.assertIn("not found", p.stderr)

    def test_cp_both_ways(self):
        cid = self.spawned(["/bin/sleep", "60"])
        self.addCleanup(self.server.request, "DELETE", f"/containers/{cid}")
        work = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, work)
        big = os.path.join(work, "big.bin")
        data = os.urandom(20 << 20)
        with open(big, "wb") as f:
            f.write(data)
        peak = harness.peak_rss(self.server.proc.pid)
        p = self.cli("cp", big, f"{cid}:/tmp/")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(f"copied {len(data)} bytes to {cid}:/tmp/big.bin", p.stderr)
        os.mkdir(os.path.join(work, "back"))
        p = self.cli("cp", f"{cid}:/tmp/big.bin", os.path.join(work, "back"))
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(os.path.join(work, "back", "big.bin"), "rb") as f:
            self.assertTrue(f.read() == data)
        # Both ways streamed: neither the upload nor the file sent back is
        # ever held whole in the server's memory.
        if not harness.sanitized(self.server.binary):
            grown = harness.peak_rss(self.server.proc.pid) - peak
            self.assertLess(grown, 8 << 20, f"the server's peak memory grew {grown} bytes")
        # stdin and stdout, a name that needs escaping, redaction on the way out.
        leaked = "ghp_" + "d" * 36
        conn = ["--port", str(self.server.port), "--token", self.server.token]
        p = subprocess.run([self.server.binary, "cp", *conn, "-", f"{cid}:/tmp/a b&c#.txt"],
                           input=f"k={leaked}\n", capture_output=True, text=True,
                           env=self.server.env, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.cli("cp", f"{cid}:/tmp/a b&c#.txt", "-")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn(leaked, p.stdout)
        self.assertIn("[REDACTED]", p.stdout)
        # Refusals leave nothing behind.
        out = os.path.join(work, "none.txt")
        p = self.cli("cp", f"{cid}:/tmp/missing", out)
        self.assertEqual(p.returncode, 1)
        self.assertIn("No such file", p.stderr)
        self.assertFalse([n for n in os.listdir(work) if "clawbox-cp" in n or n == "none.txt"])
        p = self.cli("cp", big, f"{cid}:/etc/x")
        self.assertEqual(p.returncode, 1)
        self.assertIn("writable", p.stderr)
        p = self.cli("cp", big, os.path.join(work, "x"))
        self.assertEqual(p.returncode, 1)
        self.assertIn("exactly one of SRC and DST", p.stderr)
        p = self.cli("cp", "../x:/tmp/a", os.path.join(work, "x"))
        self.assertEqual(p.returncode, 1)
        # The upload route's body limit is max_file_bytes; every other
        # route keeps [server] max_body_bytes.
        r = self.server.request("PUT", f"/containers/{cid}/files?path=/tmp/huge",
                                b"x" * (32 << 20 | 1))
        self.assert_error(r, 413, "payload_too_large")
        self.assertIn("33554432", r.json()["error"])
        # The same from a pipe (chunked, no length to refuse up front):
        # refused as it passes the limit, and nothing is written.
        p = subprocess.run(f"head -c {32 << 20 | 1} /dev/zero | {self.server.binary} cp "
                           f"--port {self.server.port} --token {self.server.token} "
                           f"- {cid}:/tmp/huge", shell=True, capture_output=True, text=True,
                           env=self.server.env, timeout=60)
        self.assertEqual(p.returncode, 1)
        self.assertIn("33554432", p.stderr)
        self.assert_error(self.server.request("GET", f"/containers/{cid}/files?path=/tmp/huge"),
                          404, "not_found")
        r = self.server.request("POST", f"/containers/{cid}/exec",
                                b'{"command": ["/bin/true"], "x": "' + b"y" * (10 << 20) + b'"}',
                                headers={"Content-Type": "application/json"})
        self.assert_error(r, 413, "payload_too_large")
        self.assertIn("10485760", r.json()["error"])

    def test_bad_arguments(self):
        p = self.cli("spawn", "nope", "--config", self.server.config_path)
        self.assertEqual(p.returncode, 1)
        self.assertIn("template nope not found", p.stderr)
        p = self.cli("kill", "../../etc")
        self.assertEqual(p.returncode, 1)
        self.assertIn("not a container id", p.stderr)
        p = self.cli("logs", "--container", "x", "--tail", "many")
        self.assertEqual(p.returncode, 1)
        self.assertIn("--tail", p.stderr)


def gauge(server, name):
    """The value of an unlabelled metric."""
    text = server.request("GET", "/metrics", auth=False).body.decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def open_follow(server, cid, query="follow=1", timeout=30):
    """A GET /containers/{cid}/logs?<query> whose answer is left unread."""
    conn = server.connection(timeout)
    conn.request("GET", f"/containers/{cid}/logs?{query}",
                 headers={"Authorization": f"Bearer {server.token}"})
    return conn, conn.getresponse()


class Follow(ContainerCase):
    """GET /containers/{id}/logs?follow=1 and logs --follow: the log streamed
    as it grows, redacted by lines, on the I/O threads (two execution slots
    here, and more followers than that)."""

    runtime = RUNTIMES[0] if RUNTIMES else "crun"

    @classmethod
    def prepare(cls):
        with open(cls.server.config_path) as f:
            text = f.read()
        text = text.replace("[server]\n", "[server]\nmax_concurrent_executions = 2\n", 1)
        with open(cls.server.config_path, "w") as f:
            f.write(text)

    def test_follow_streams_lines_as_they_come_and_ends_with_the_container(self):
        cid = self.spawned(["/bin/sh", "-c",
                            "for i in 1 2 3 4 5; do echo line$i; sleep 0.25; done"])
        conn, resp = open_follow(self.server, cid)
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.getheader("Transfer-Encoding"), "chunked")
        self.assertIsNone(resp.getheader("Content-Length"))
        self.assertTrue(resp.getheader("Content-Type").startswith("text/plain"))
        lines, times = [], []
        while True:
            line = resp.readline()
            if not line:
                break
            lines.append(line.decode())
            times.append(time.monotonic())
        ended = time.monotonic()
        conn.close()
        self.assertEqual(lines, [f"line{i}\n" for i in range(1, 6)])
        # They came as they were written, not all at the end.
        self.assertGreater(times[-1] - times[0], 0.6, times)
        info = self.server.request("GET", f"/containers/{cid}").json()
        self.assertEqual(info["status"], "completed", info)
        self.assertLess(ended - times[-1], 3)
        self.delete(cid)

    def test_follow_of_an_ended_container_gives_its_tail_and_ends(self):
        cid = self.spawned(["/bin/sh", "-c", "for i in 1 2 3 4; do echo line$i; done"])
        self.wait_end(cid)
        conn, resp = open_follow(self.server, cid, "tail=2&follow=true")
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.read(), b"line3\nline4\n")
        conn.close()
        self.delete(cid)

    def test_a_secret_split_across_writes_is_redacted(self):
        half = "a" * 18
        leaked = "ghp_" + half + half
        script = (f'printf "token=ghp_{half}"; sleep 0.6; printf "{half} tail\\n"; sleep 0.3; '
                  f'printf "x=ghp_{half}{half}"')
        cid = self.spawned(["/bin/sh", "-c", script])
        conn, resp = open_follow(self.server, cid)
        self.assertEqual(resp.status, 200)
        body = resp.read().decode()
        conn.close()
        self.assertNotIn(leaked, body)
        self.assertNotIn("ghp_" + half, body)
        self.assertIn("[REDACTED] tail\n", body)
        # The unfinished last line goes, redacted, when the container ends.
        self.assertTrue(body.endswith("x=[REDACTED]"), body)
        self.delete(cid)

    def test_bad_follow_value_and_unknown_id(self):
        cid = self.spawned(["/bin/true"])
        for bad in ("2", "yes", "", "1x", "TRUE", "true" * 10):
            r = self.server.request("GET", f"/containers/{cid}/logs?follow={bad}")
            self.assert_error(r, 400, "invalid_request")
            self.assertIn("follow", r.json()["error"])
        r = self.server.request("GET", f"/containers/{cid}/logs?follow")
        self.assert_error(r, 400, "invalid_request")
        r = self.server.request("GET", "/containers/clawbox-nope/logs?follow=1")
        self.assert_error(r, 404, "not_found")
        r = self.server.request("GET", f"/containers/{cid}/logs?follow=0")
        self.assertEqual(r.status, 200)
        self.wait_end(cid)
        self.delete(cid)

    def test_followers_hold_no_worker_and_disconnects_leak_nothing(self):
        cid = self.spawned(["/bin/sh", "-c", "while true; do echo tick; sleep 0.1; done"])
        # Each sample is a connection of its own, and the one before may not
        # be reaped yet: the open connections are the lowest sample.
        base = min(gauge(self.server, "clawbox_http_connections") for _ in range(5))
        followers = [open_follow(self.server, cid) for _ in range(5)]  # > 2 execution slots
        for _, resp in followers:
            self.assertEqual(resp.status, 200)
            self.assertEqual(resp.readline(), b"tick\n")
        # Protected routes still get a worker while five followers stream.
        t0 = time.monotonic()
        r = self.server.request("GET", f"/containers/{cid}", timeout=5)
        self.assertEqual(r.status, 200)
        self.assertLess(time.monotonic() - t0, 2)
        for conn, resp in followers:  # the clients go away mid-stream
            resp.close()
            conn.close()
        deadline = time.monotonic() + 5
        now = gauge(self.server, "clawbox_http_connections")
        while time.monotonic() < deadline and now > base:
            time.sleep(0.05)
            now = gauge(self.server, "clawbox_http_connections")
        self.assertLessEqual(now, base)
        # A client that stops reading is not waited for either.
        conn, resp = open_follow(self.server, cid)
        self.assertEqual(resp.status, 200)
        r = self.server.request("GET", "/containers", timeout=5)
        self.assertEqual(r.status, 200)
        conn.close()
        self.assert_healthy()
        self.delete(cid)

    def test_follow_ends_when_the_container_is_deleted(self):
        cid = self.spawned(["/bin/sh", "-c", "echo started; sleep 30"])
        conn, resp = open_follow(self.server, cid)
        self.assertEqual(resp.readline(), b"started\n")
        self.delete(cid)
        t0 = time.monotonic()
        self.assertEqual(resp.read(), b"")
        self.assertLess(time.monotonic() - t0, 3)
        conn.close()

    def test_cli_logs_follow(self):
        cid = self.spawned(["/bin/sh", "-c",
                            "for i in 1 2 3; do echo step$i; sleep 0.3; done"])
        conn = ["--port", str(self.server.port), "--token", self.server.token]
        p = subprocess.Popen([self.server.binary, "logs", "--container", cid, "--follow", *conn],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.server.env)
        first = p.stdout.readline()
        t_first = time.monotonic()
        rest = p.stdout.read()
        t_end = time.monotonic()
        rc = p.wait(10)
        err = p.stderr.read().decode()
        p.stdout.close()
        p.stderr.close()
        self.assertEqual(rc, 0, err)
        self.assertEqual(first, b"step1\n")
        self.assertEqual(rest, b"step2\nstep3\n")
        self.assertGreater(t_end - t_first, 0.3)  # step1 came before the end
        p = subprocess.run([self.server.binary, "logs", "--container", cid, "--follow",
                            "--tail", "1", *conn], capture_output=True, text=True,
                           env=self.server.env, timeout=30)
        self.assertEqual((p.returncode, p.stdout), (0, "step3\n"), p.stderr)
        p = subprocess.run([self.server.binary, "spawn", "x", "--follow", *conn],
                           capture_output=True, text=True, env=self.server.env, timeout=30)
        self.assertEqual(p.returncode, 2)
        self.delete(cid)


def monitors(server_pid):
    """The pids of the server's per-container monitors: `clawbox
    __container-monitor` processes forked by its monitor zygote (a child of
    the server, with the same name). Other servers' are left alone."""
    named = {}
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            continue
        if argv[1:2] == [b"__container-monitor"]:
            named[int(pid)] = ppid
    zygotes = [pid for pid, ppid in named.items() if ppid == server_pid]
    return [pid for pid, ppid in named.items() if ppid in zygotes]


class StuckMonitor(ContainerCase):
    """A DELETE whose container's monitor does not end within its wait
    (10 s) is answered, and the container is out of sight; its slot and
    files go when the monitor ends, not before (the slot was lost for good,
    and the container freed under the watcher, before)."""

    runtime = RUNTIMES[0] if RUNTIMES else "crun"
    max_containers = 1

    def test_delete_answered_and_slot_freed_when_the_monitor_ends(self):
        cid = self.spawned(["/bin/sleep", "60"])
        stopped = monitors(self.server.proc.pid)
        self.assertEqual(len(stopped), 1, stopped)
        for pid in stopped:
            os.kill(pid, signal.SIGSTOP)
        try:
            t0 = time.time()
            self.delete(cid)
            self.assertGreater(time.time() - t0, 9)
            self.assert_error(self.server.request("GET", f"/containers/{cid}"), 404, "not_found")
            ids = [c["container_id"] for c in self.server.request("GET", "/containers").json()]
            self.assertNotIn(cid, ids)
            self.assertEqual(self.spawn(["/bin/true"]).status, 429)  # its slot is still held
        finally:
            for pid in stopped:
                os.kill(pid, signal.SIGCONT)
        deadline = time.time() + 20
        while True:
            r = self.spawn(["/bin/true"])
            if r.status == 201 or time.time() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(r.status, 201, r.body)
        self.assertFalse(os.path.exists(os.path.join(self.server.dir, "data", "containers", cid)))
        self.wait_end(r.json()["container_id"])
        self.delete(r.json()["container_id"])
        self.assert_healthy()


class Restart(unittest.TestCase):
    """The end of a server (kill -9, SIGTERM), then a restart: nothing is
    left behind."""

    def setUp(self):
        why = skip_reason()
        if why:
            self.skipTest(why)
        self.rt = RUNTIMES[0]
        self.server = harness.Server(f'[containers]\nruntime = "{self.rt}"\n'
                                     '[container_policy]\nallowed_policies = ["container"]\n')
        self.addCleanup(self.server.cleanup)
        ctimage.import_test_image(self.server)
        self.server.start()

    def sleeper(self):
        return self.server.request("POST", "/containers/spawn", {
            "task": "t", "image": IMAGE, "policy": "container",
            "command": ["/bin/sleep", "60"]}).json()["container_id"]

    def runtime_ids(self):
        root = os.path.join(self.server.dir, "data", "oci")
        return subprocess.run([self.rt, "--root", root, "list", "-q"], capture_output=True,
                              text=True).stdout.split()

    def socket_dir(self, cid):
        return os.path.join(self.server.dir, "data", "containers", cid, "proxy")

    def test_kill_9_and_restart(self):
        cid = self.sleeper()
        self.assertIn(cid, self.runtime_ids())
        self.server.stop(sig=9)
        self.server.start()
        self.assertEqual(self.runtime_ids(), [])
        info = self.server.request("GET", f"/containers/{cid}").json()
        self.assertEqual(info["status"], "killed")
        self.assertFalse(os.path.exists(self.socket_dir(cid)))
        for line in open("/proc/self/mountinfo"):
            self.assertNotIn(cid, line)
        self.assertFalse(os.path.exists(f"/sys/fs/cgroup/memory/clawbox/{cid}"))

    def test_sigterm_kills_and_removes_running_containers(self):
        ids = [self.sleeper() for _ in range(2)]
        t0 = time.time()
        self.assertEqual(self.server.stop(), 0, self.server.read_log())
        self.assertLess(time.time() - t0, 10)
        self.assertEqual(self.runtime_ids(), [])
        for cid in ids:
            self.assertFalse(os.path.exists(self.socket_dir(cid)))
        self.server.start()
        for cid in ids:
            self.assertEqual(
                self.server.request("GET", f"/containers/{cid}").json()["status"], "killed")


    def test_sigterm_with_a_follower_connected(self):
        cid = self.server.request("POST", "/containers/spawn", {
            "task": "t", "image": IMAGE, "policy": "container",
            "command": ["/bin/sh", "-c", "while true; do echo tick; sleep 0.1; done"]}
        ).json()["container_id"]
        conn, resp = open_follow(self.server, cid)
        self.assertEqual(resp.readline(), b"tick\n")
        stalled, stalled_resp = open_follow(self.server, cid)  # never read again
        self.assertEqual(stalled_resp.status, 200)
        t0 = time.time()
        self.assertEqual(self.server.stop(), 0, self.server.read_log())
        self.assertLess(time.time() - t0, 8)  # within the grace period (10 s)
        rest = resp.read()  # the stream ended, with its last chunk
        self.assertTrue(rest == b"" or rest.endswith(b"tick\n"), rest)
        conn.close()
        stalled.close()


# Each group of tests runs against a server of its own, once per runtime.
for _rt in RUNTIMES or ["crun"]:
    for _tests in (Lifecycle, Refusals, Hardening, ProxySocket):
        _name = f"{_tests.__name__}_{_rt}"
        globals()[_name] = type(_name, (_tests, ContainerCase), {"runtime": _rt})

if __name__ == "__main__":
    harness.main()
