"""Agents end to end: registration (POST/GET/DELETE /agents) against a
real server and its state database, across a restart and a kill -9, with
hostile ids and workspace paths; and the lifecycle with real containers
(start, stop, the status following the container, the workspace, restarts
after a crash, idle and lifetime reaping, recovery after a kill -9), once
per OCI runtime."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

import ctimage
from harness import BIN, McpStdio, Server, ServerTestCase, main
from test_containers import PROBE, RUNTIMES, skip_reason, start_upstream

IMAGE = ctimage.TEST_IMAGE


class AgentServer(ServerTestCase):
    """A server with its own workspace_root; agents are removed after each
    test."""

    @classmethod
    def setUpClass(cls):
        cls.ws_parent = tempfile.mkdtemp(prefix="clawbox-e2e-ws-")
        cls.root = os.path.join(cls.ws_parent, "ws")
        cls.server = Server(f'[containers]\nworkspace_root = "{cls.root}"\n').start()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.ws_parent, ignore_errors=True)

    def tearDown(self):
        for a in self.server.request("GET", "/agents").json():
            self.server.request("DELETE", f"/agents/{a['agent_id']}?purge=true")


class AgentsTest(AgentServer):

    def create(self, body):
        return self.server.request("POST", "/agents", body)

    def test_register_get_list_delete(self):
        r = self.create({"agent_id": "b-2", "name": "Second"})
        self.assertEqual(r.status, 201, r.body)
        info = r.json()
        self.assertEqual(info["agent_id"], "b-2")
        self.assertEqual(info["name"], "Second")
        self.assertEqual(info["status"], "idle")
        self.assertIsNone(info["container_id"])
        self.assertEqual(info["execution_count"], 0)
        self.assertEqual(info["workspace_path"], os.path.join(os.path.realpath(self.root), "b-2"))
        self.assertTrue(os.path.isdir(info["workspace_path"]))
        self.assertRegex(info["created_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual(self.create({"agent_id": "a-1", "name": "First"}).status, 201)
        self.assertEqual(self.server.request("GET", "/agents/b-2").json(), info)
        ids = [a["agent_id"] for a in self.server.request("GET", "/agents").json()]
        self.assertEqual(ids, ["a-1", "b-2"])
        # Deleting keeps the workspace unless asked.
        with open(os.path.join(info["workspace_path"], "f"), "w") as f:
            f.write("kept")
        self.assertEqual(self.server.request("DELETE", "/agents/b-2").status, 204)
        self.assertTrue(os.path.exists(os.path.join(info["workspace_path"], "f")))
        self.assert_error(self.server.request("GET", "/agents/b-2"), 404, "not_found")
        self.assert_error(self.server.request("DELETE", "/agents/b-2"), 404, "not_found")
        # A new agent of the same id finds its files; purge removes them.
        self.assertEqual(self.create({"agent_id": "b-2", "name": "Again"}).status, 201)
        self.assertTrue(os.path.exists(os.path.join(info["workspace_path"], "f")))
        self.assertEqual(self.server.request("DELETE", "/agents/b-2?purge=true").status, 204)
        self.assertFalse(os.path.exists(info["workspace_path"]))

    def test_duplicate_is_a_conflict(self):
        self.assertEqual(self.create({"agent_id": "dup", "name": "A"}).status, 201)
        r = self.create({"agent_id": "dup", "name": "B"})
        self.assert_error(r, 409, "conflict")
        self.assertIn("dup", r.json()["error"])
        self.assertEqual(self.server.request("GET", "/agents/dup").json()["name"], "A")

    def test_concurrent_registrations_of_one_id(self):
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(
                lambda i: self.create({"agent_id": "race", "name": f"N{i}"}), range(8)))
        self.assertEqual(sorted(a.status for a in answers), [201] + [409] * 7)
        self.assertEqual([a["agent_id"] for a in self.server.request("GET", "/agents").json()],
                         ["race"])

    def test_bad_bodies_name_the_field(self):
        cases = [
            ({"agent_id": "", "name": "A"}, 400, "1-64"),
            ({"agent_id": "x" * 65, "name": "A"}, 400, "1-64"),
            ({"agent_id": "..", "name": "A"}, 400, "path traversal"),
            ({"agent_id": "a/b", "name": "A"}, 400, "path traversal"),
            ({"agent_id": "a_b", "name": "A"}, 400, "hyphens"),
            ({"agent_id": "a"}, 422, "name"),
            ({"agent_id": 1, "name": "A"}, 422, "agent_id"),
            ({"agent_id": "a", "name": "A", "workspace": {"mount_point": "/proc"}}, 400,
             "reserved"),
            ({"agent_id": "a", "name": "A", "lifecycle": {"max_idle_ms": "x"}}, 422,
             "max_idle_ms"),
            ({"agent_id": "a", "name": "A", "env": {"LD_PRELOAD": "x"}}, 400, "LD_PRELOAD"),
            ({"agent_id": "a", "name": "A", "policy": "root"}, 422, "policy"),
        ]
        for body, status, words in cases:
            r = self.create(body)
            self.assert_error(r, status, "invalid_request")
            self.assertIn(words, r.json()["error"], body)
        self.assertEqual(self.server.request("GET", "/agents").json(), [])
        for bad in ("maybe", "true" * 10, "1"):
            r = self.server.request("DELETE", f"/agents/x?purge={bad}")
            self.assert_error(r, 400, "invalid_request")

    def test_workspace_cannot_escape_the_root(self):
        outside = tempfile.mkdtemp(prefix="clawbox-e2e-outside-")
        try:
            os.makedirs(self.root, exist_ok=True)
            link = os.path.join(self.root, "link")
            if not os.path.islink(link):
                os.symlink(outside, link)
            for path in (outside, "link", os.path.join(self.root, "link"), "../", ".",
                         os.path.join(self.root, "x", "..", "..")):
                r = self.create({"agent_id": "w", "name": "W", "workspace": {"host_path": path}})
                self.assert_error(r, 400, "invalid_request")
            r = self.create({"agent_id": "w", "name": "W", "workspace": {"host_path": "nope"}})
            self.assert_error(r, 400, "invalid_request")
            os.makedirs(os.path.join(self.root, "shared"), exist_ok=True)
            r = self.create({"agent_id": "w", "name": "W", "workspace": {"host_path": "shared"}})
            self.assertEqual(r.status, 201, r.body)
            self.assertEqual(r.json()["workspace_path"],
                             os.path.join(os.path.realpath(self.root), "shared"))
            # A shared host_path survives a purge.
            self.assertEqual(self.server.request("DELETE", "/agents/w?purge=true").status, 204)
            self.assertTrue(os.path.isdir(os.path.join(self.root, "shared")))
            self.assertEqual(os.listdir(outside), [])
        finally:
            shutil.rmtree(outside)


class AgentsCliTest(AgentServer):
    """clawbox agents against the same kind of server."""

    def cli(self, *args):
        return subprocess.run([BIN, "agents", "--port", str(self.server.port),
                               "--token", self.server.token, *args],
                              capture_output=True, text=True, env=self.server.env, timeout=60)

    def test_create_list_get_delete(self):
        p = self.cli("create", "c-1", "--name", "Coder", "--env", "A=b=c", "--max-idle-ms", "500",
                     "--restart-on-crash", "--read-only", "--", "sleep", "--infinity")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["agent_id"], "c-1")
        toml = os.path.join(self.ws_parent, "agent.toml")
        with open(toml, "w") as f:
            f.write('agent_id = "t-1"\nname = "From TOML"\n[lifecycle]\nmax_restarts = 5\n')
        p = self.cli("create", "--file", toml, "--image", "clawbox/x:1")
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.cli("list")
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = [line.split()[0] for line in p.stdout.splitlines()[1:]]
        self.assertEqual(rows, ["c-1", "t-1"])
        p = self.cli("list", "--json")
        self.assertEqual([a["name"] for a in json.loads(p.stdout)], ["Coder", "From TOML"])
        p = self.cli("get", "t-1")
        self.assertEqual(json.loads(p.stdout)["name"], "From TOML")
        self.assertEqual(self.cli("delete", "c-1", "--purge").returncode, 0)
        p = self.cli("get", "c-1")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("agent not found: c-1", p.stderr)

    def test_bad_input_is_refused_before_and_by_the_server(self):
        for args, words in ((("get", "../x"), "path traversal"),
                            (("create", "a", "--name", "A", "--max-idle-ms", "soon"),
                             "not a number"),
                            (("create", "a", "--name", "A", "--env", "NOEQUALS"), "KEY=VALUE"),
                            (("create", "--name", "A"), "agent's id"),
                            (("create", "a", "--name", "A", "--file", "/nonexistent.toml"),
                             "nonexistent"),
                            (("create", "a", "--mount-point", "/proc", "--name", "A"),
                             "reserved")):
            p = self.cli(*args)
            self.assertNotEqual(p.returncode, 0, args)
            self.assertIn(words, p.stderr, args)
        self.assertEqual(self.cli("list", "extra").returncode, 2)
        self.assertEqual(self.cli("frobnicate").returncode, 2)


class AgentsRestartTest(unittest.TestCase):

    def test_agents_survive_restart_and_kill_9(self):
        server = Server()
        try:
            server.start()
            r = server.request("POST", "/agents", {
                "agent_id": "keep", "name": "Kept", "image": "clawbox/agent-base:latest",
                "env": {"K": "v"}, "lifecycle": {"max_idle_ms": 1000}})
            self.assertEqual(r.status, 201, r.body)
            before = r.json()
            server.stop(signal.SIGKILL)
            server.start()
            self.assertEqual(server.request("GET", "/agents/keep").json(), before)
            server.stop()
            server.start()
            self.assertEqual(server.request("GET", "/agents").json(), [before])
        finally:
            server.cleanup()


class AgentContainerCase(unittest.TestCase):
    """A server with containers, its own workspace_root and a loopback
    upstream its containers may reach; agents are removed after each
    test."""

    runtime = None
    max_containers = 3

    @classmethod
    def setUpClass(cls):
        why = skip_reason()
        if why:
            raise unittest.SkipTest(why)
        cls.upstream = start_upstream()
        cls.up = f"http://127.0.0.1:{cls.upstream.server_address[1]}"
        cls.ws_parent = tempfile.mkdtemp(prefix="clawbox-e2e-ws-")
        cls.root = os.path.join(cls.ws_parent, "ws")
        cls.server = Server(
            f'[containers]\nruntime = "{cls.runtime}"\nmax_containers = {cls.max_containers}\n'
            f'workspace_root = "{cls.root}"\nmax_pids = 64\n'
            '[container_policy]\nallowed_policies = ["wasm_only", "container"]\n'
            'allowed_images = ["clawbox/"]\nnetwork_allowlist = ["127.0.0.1"]\n'
            '[proxy]\nallow_private_cidrs = ["127.0.0.0/8"]\n')
        ctimage.import_test_image(cls.server)
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        if hasattr(cls, "server"):
            rc = cls.server.stop()
            log = cls.server.read_log()
            cls.server.cleanup()
            if rc != 0:
                raise AssertionError(f"server exited with {rc}:\n{log}")
        if hasattr(cls, "upstream"):
            cls.upstream.shutdown()
            cls.upstream.server_close()
        if hasattr(cls, "ws_parent"):
            shutil.rmtree(cls.ws_parent, ignore_errors=True)

    def tearDown(self):
        for a in self.server.request("GET", "/agents").json():
            self.server.request("DELETE", f"/agents/{a['agent_id']}?purge=true")

    def assert_error(self, resp, status, code):
        self.assertEqual(resp.status, status, resp.body)
        self.assertEqual(resp.json()["code"], code, resp.body)

    def create(self, agent_id, **extra):
        body = {"agent_id": agent_id, "name": agent_id, "image": IMAGE}
        body.update(extra)
        r = self.server.request("POST", "/agents", body)
        self.assertEqual(r.status, 201, r.body)
        return r.json()

    def start(self, agent_id):
        r = self.server.request("POST", f"/agents/{agent_id}/start")
        self.assertEqual(r.status, 200, r.body)
        info = r.json()
        self.assertEqual(info["status"], "running", info)
        self.assertTrue(info["container_id"].startswith("clawbox-"), info)
        return info

    def stop(self, agent_id):
        r = self.server.request("POST", f"/agents/{agent_id}/stop")
        self.assertEqual(r.status, 200, r.body)
        info = r.json()
        self.assertEqual(info["status"], "idle", info)
        self.assertIsNone(info["container_id"])
        return info

    def get(self, agent_id):
        return self.server.request("GET", f"/agents/{agent_id}").json()

    def wait_status(self, agent_id, want, timeout=20):
        deadline = time.time() + timeout
        info = None
        while time.time() < deadline:
            info = self.get(agent_id)
            if info["status"] in want:
                return info
            time.sleep(0.05)
        self.fail(f"agent {agent_id} is {info and info['status']}, not {want}")

    def container(self, cid):
        return self.server.request("GET", f"/containers/{cid}").json()

    def wait_file(self, path, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if os.path.exists(path) and os.path.getsize(path) > 0:
                return
            time.sleep(0.05)
        self.fail(f"{path} never appeared")


class AgentLifecycle:
    def test_idle_agent_starts_stops_and_starts_again(self):
        info = self.create("idler")
        started = self.start("idler")
        cid = started["container_id"]
        self.assertEqual(started["execution_count"], 1)
        ct = self.container(cid)
        self.assertEqual(ct["owner"], "agent:idler")
        self.assertEqual(ct["task_summary"], "agent:idler")
        time.sleep(0.5)  # the idle init stays up
        self.assertEqual(self.get("idler")["status"], "running")
        self.assertEqual(self.container(cid)["status"], "running")
        self.assert_error(self.server.request("POST", "/agents/idler/start"), 409,
                          "invalid_state")
        self.stop("idler")
        self.assert_error(self.server.request("GET", f"/containers/{cid}"), 404, "not_found")
        self.assert_error(self.server.request("POST", "/agents/idler/stop"), 409, "invalid_state")
        again = self.start("idler")
        self.assertNotEqual(again["container_id"], cid)
        self.assertEqual(again["workspace_path"], info["workspace_path"])
        self.stop("idler")

    def test_cli_start_and_stop(self):
        def cli(*args):
            return subprocess.run([BIN, "agents", "--port", str(self.server.port),
                                   "--token", self.server.token, *args],
                                  capture_output=True, text=True, env=self.server.env,
                                  timeout=60)
        self.create("clier")
        p = cli("start", "clier")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"^agent clier: running, container clawbox-")
        p = cli("start", "clier")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("invalid state", p.stderr)
        p = cli("stop", "clier", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["status"], "idle")
        p = cli("stop", "../x")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("path traversal", p.stderr)

    def test_unknown_ids_are_404(self):
        for verb in ("start", "stop"):
            self.assert_error(self.server.request("POST", f"/agents/nope/{verb}"), 404,
                              "not_found")

    def test_workspace_survives_stop_and_start_with_its_owner(self):
        script = ("echo run >> /workspace/runs; id -u > /workspace/uid; "
                  "touch /workspace/mine-$$; sleep 60")
        info = self.create("writer", command=["/bin/sh", "-c", script])
        ws = info["workspace_path"]
        self.start("writer")
        self.wait_file(os.path.join(ws, "uid"))
        st1 = os.stat(os.path.join(ws, "runs"))
        with open(os.path.join(ws, "uid")) as f:
            self.assertEqual(f.read().strip(), "1000")
        self.assertGreater(st1.st_uid, 100000)  # a host uid of its own range
        self.stop("writer")
        self.start("writer")
        deadline = time.time() + 10
        while time.time() < deadline and open(os.path.join(ws, "runs")).read().count("run") < 2:
            time.sleep(0.05)
        with open(os.path.join(ws, "runs")) as f:
            self.assertEqual(f.read(), "run\nrun\n")
        st2 = os.stat(os.path.join(ws, "runs"))
        self.assertEqual((st2.st_uid, st2.st_gid), (st1.st_uid, st1.st_gid))
        self.assertEqual(os.stat(ws).st_uid, st1.st_uid)
        self.stop("writer")

    def test_read_only_workspace_at_another_mount_point(self):
        # The image has no /data: the mount point is made in its rootfs.
        info = self.create("reader", command=[
            "/bin/sh", "-c", "cat /data/in/seed; touch /data/in/x || echo refused; sleep 60"],
            workspace={"mount_point": "/data/in", "read_only": True})
        with open(os.path.join(info["workspace_path"], "seed"), "w") as f:
            f.write("seeded\n")
        cid = self.start("reader")["container_id"]
        deadline = time.time() + 10
        out = ""
        while time.time() < deadline and "refused" not in out:
            out = self.server.request("GET", f"/containers/{cid}/logs").body.decode()
            time.sleep(0.05)
        self.assertIn("seeded", out)
        self.assertIn("refused", out)
        self.assertFalse(os.path.exists(os.path.join(info["workspace_path"], "x")))
        self.stop("reader")

    def test_files_write_the_workspace_and_not_a_read_only_one(self):
        info = self.create("filer")
        cid = self.start("filer")["container_id"]
        files = f"/containers/{cid}/files?path="
        r = self.server.request("PUT", files + "/workspace/sub.txt", b"from the api\n")
        self.assertEqual(r.status, 201, r.body)
        path = os.path.join(info["workspace_path"], "sub.txt")
        with open(path) as f:
            self.assertEqual(f.read(), "from the api\n")
        self.assertEqual(os.stat(path).st_uid, os.stat(info["workspace_path"]).st_uid)
        r = self.server.request("GET", files + "/workspace/sub.txt")
        self.assertEqual(r.body, b"from the api\n")
        self.assertEqual(self.server.request("DELETE", files + "/workspace/sub.txt").status, 204)
        self.assertFalse(os.path.exists(path))
        # The image stays read-only beside it.
        self.assert_error(self.server.request("PUT", files + "/etc/x", b"x"), 403,
                          "policy_denied")
        self.stop("filer")
        self.create("rofiler", workspace={"mount_point": "/data", "read_only": True})
        cid = self.start("rofiler")["container_id"]
        r = self.server.request("PUT", f"/containers/{cid}/files?path=/data/x", b"x")
        self.assert_error(r, 403, "policy_denied")
        self.stop("rofiler")

    def test_mcp_exec_and_files_by_agent(self):
        info = self.create("mcper")
        mcp = McpStdio(self.server)
        self.addCleanup(mcp.close)
        err, text = mcp.call("clawbox_exec", {"agent_id": "mcper", "command": ["/bin/true"]})
        self.assertTrue(err)
        self.assertIn("agent mcper is idle, with no container", text)
        self.start("mcper")
        err, text = mcp.call("clawbox_write_file", {
            "agent_id": "mcper", "path": "/workspace/odd name&x=1#.txt", "content": "line\n"})
        self.assertFalse(err, text)
        self.assertIn("Wrote 5 bytes to /workspace/odd name&x=1#.txt", text)
        with open(os.path.join(info["workspace_path"], "odd name&x=1#.txt")) as f:
            self.assertEqual(f.read(), "line\n")
        err, text = mcp.call("clawbox_exec", {
            "agent_id": "mcper", "command": ["/bin/sh", "-c", "cat '/workspace/odd name&x=1#.txt'"]})
        self.assertFalse(err, text)
        self.assertIn("stdout:\nline\n", text)
        err, text = mcp.call("clawbox_read_file", {
            "agent_id": "mcper", "path": "/workspace/odd name&x=1#.txt"})
        self.assertFalse(err, text)
        self.assertIn("(5 bytes):\nline\n", text)
        err, text = mcp.call("clawbox_read_file", {"agent_id": "mcper", "path": "/workspace",
                                                   "list": True})
        self.assertFalse(err, text)
        self.assertIn("odd name&x=1#.txt  file  5 bytes", text)
        leaked = "ghp_" + "c" * 36
        err, text = mcp.call("clawbox_write_file", {
            "agent_id": "mcper", "path": "/tmp/k", "content": f"token={leaked}\n"})
        err, text = mcp.call("clawbox_read_file", {"agent_id": "mcper", "path": "/tmp/k"})
        self.assertNotIn(leaked, text)
        self.assertIn("[REDACTED]", text)
        # The server's refusals, in words.
        err, text = mcp.call("clawbox_write_file", {"agent_id": "mcper", "path": "/etc/x",
                                                    "content": "x"})
        self.assertTrue(err)
        self.assertIn("only the container's /tmp and its writable workspace", text)
        err, text = mcp.call("clawbox_read_file", {"agent_id": "mcper", "path": "tmp/k"})
        self.assertTrue(err)
        self.assertIn("absolute path", text)
        err, text = mcp.call("clawbox_read_file", {"agent_id": "../x", "path": "/tmp/k"})
        self.assertTrue(err)
        err, text = mcp.call("clawbox_read_file", {"path": "/tmp/k"})
        self.assertTrue(err)
        self.assertIn("either container_id or agent_id", text)
        self.stop("mcper")

    def test_status_follows_the_container(self):
        self.create("ok", command=["/bin/sh", "-c", "sleep 1; exit 0"])
        self.create("bad", command=["/bin/sh", "-c", "sleep 1; exit 3"])
        self.start("ok")
        self.start("bad")
        ok = self.wait_status("ok", ("idle", "failed"))
        self.assertEqual(ok["status"], "idle", ok)
        self.assertIsNone(ok["container_id"])
        bad = self.wait_status("bad", ("idle", "failed"))
        self.assertEqual(bad["status"], "failed", bad)
        self.assertIn("status 3", bad["error"])
        self.assertIsNone(bad["container_id"])
        # A failed agent may be started again.
        self.start("bad")
        self.wait_status("bad", ("failed",))

    def test_container_deleted_under_the_agent(self):
        self.create("victim", lifecycle={"restart_on_crash": True})
        cid = self.start("victim")["container_id"]
        self.assertEqual(self.server.request("DELETE", f"/containers/{cid}").status, 200)
        g = self.wait_status("victim", ("failed", "idle"))
        self.assertEqual(g["status"], "failed", g)
        self.assertIn("DELETE /containers", g["error"])
        time.sleep(1)  # no restart: it did not crash
        self.assertEqual(self.get("victim")["status"], "failed")
        self.start("victim")
        self.stop("victim")

    def test_restart_on_crash_with_backoff_then_failed(self):
        info = self.create("crash", command=["/bin/sh", "-c", "echo x >> /workspace/runs; exit 1"],
                           lifecycle={"restart_on_crash": True, "max_restarts": 2})
        # It may have crashed already when the start answers.
        r = self.server.request("POST", "/agents/crash/start")
        self.assertEqual(r.status, 200, r.body)
        self.assertIn(r.json()["status"], ("running", "failed"))
        deadline = time.time() + 30
        while time.time() < deadline:
            g = self.get("crash")
            if g["status"] == "failed" and g["restarts"] == 2:
                break
            time.sleep(0.1)
        time.sleep(1.5)  # no third restart
        g = self.get("crash")
        self.assertEqual((g["status"], g["restarts"]), ("failed", 2), g)
        with open(os.path.join(info["workspace_path"], "runs")) as f:
            self.assertEqual(f.read(), "x\nx\nx\n")

    def test_idle_reaping(self):
        self.create("sleepy", lifecycle={"max_idle_ms": 700})
        self.start("sleepy")
        t0 = time.time()
        g = self.wait_status("sleepy", ("idle",), timeout=15)
        self.assertGreaterEqual(time.time() - t0, 0.5)
        self.assertIn("max_idle_ms", g["error"])
        self.assertIsNone(g["container_id"])

    def test_a_long_exec_keeps_an_agent_from_the_idle_reaper(self):
        self.create("worker2", lifecycle={"max_idle_ms": 700})
        cid = self.start("worker2")["container_id"]
        t0 = time.time()
        r = self.server.request("POST", f"/containers/{cid}/exec",
                                {"command": ["/bin/sh", "-c", "sleep 2; echo finished"]})
        self.assertEqual(r.status, 200, r.body)
        self.assertGreaterEqual(time.time() - t0, 2)
        self.assertEqual((r.json()["stdout"], r.json()["exit_code"]), ("finished\n", 0))
        # Idle once the exec is over.
        g = self.wait_status("worker2", ("idle",), timeout=15)
        self.assertIn("max_idle_ms", g["error"])

    def test_lifetime_terminates(self):
        self.create("mortal", lifecycle={"max_lifetime_ms": 1000})
        self.start("mortal")
        g = self.wait_status("mortal", ("terminated", "idle", "failed"), timeout=15)
        self.assertEqual(g["status"], "terminated", g)
        self.assertIn("lifetime", g["error"])
        self.start("mortal")  # a terminated agent may start again
        self.stop("mortal")

    def test_proxy_requests_count_as_activity(self):
        body = json.dumps({"url": f"{self.up}/hi", "method": "GET"})
        req = ("POST /proxy HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer TOKENHERE\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
               f"Connection: close\r\n\r\n{body}")
        script = ('printf "%s" "$REQ" | sed "s/TOKENHERE/$CLAWBOX_PROXY_TOKEN/" | '
                  f'{PROBE} http /run/clawbox/proxy.sock > /workspace/answer; sleep 60')
        info = self.create("talker", command=["/bin/sh", "-c", script], env={"REQ": req})
        self.start("talker")
        path = os.path.join(info["workspace_path"], "answer")
        self.wait_file(path)
        time.sleep(0.2)
        with open(path) as f:
            answer = f.read()
        self.assertIn("200 OK", answer)
        self.assertIn("/hi", answer)
        g = self.get("talker")
        self.assertEqual(g["execution_count"], 2)  # the start and the request
        self.stop("talker")

    def test_exec_in_an_idle_agent_is_activity(self):
        info = self.create("worker")
        cid = self.start("worker")["container_id"]
        r = self.server.request("POST", f"/containers/{cid}/exec", {
            "command": ["/bin/sh", "-c", "echo done > /workspace/e; cat /workspace/e; id -u"]})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json()["stdout"], "done\n1000\n")
        with open(os.path.join(info["workspace_path"], "e")) as f:
            self.assertEqual(f.read(), "done\n")
        g = self.get("worker")
        self.assertEqual(g["execution_count"], 2)  # the start and the exec
        self.assertGreaterEqual(g["last_activity"], info["last_activity"])
        self.stop("worker")

    def test_symlink_swapped_in_for_the_workspace_is_refused(self):
        info = self.create("swap")
        ws = info["workspace_path"]
        outside = tempfile.mkdtemp(prefix="clawbox-e2e-outside-")
        try:
            os.rmdir(ws)
            os.symlink(outside, ws)
            r = self.server.request("POST", "/agents/swap/start")
            self.assert_error(r, 403, "policy_denied")
            self.assertIn("symbolic link", r.json()["error"])
            self.assertEqual(self.get("swap")["status"], "idle")
            self.assertEqual(os.listdir(outside), [])
            self.assertEqual(os.stat(outside).st_uid, 0)
        finally:
            if os.path.islink(ws):
                os.unlink(ws)
            shutil.rmtree(outside)

    def test_removed_host_path_is_a_400(self):
        shared = os.path.join(self.root, "gone")
        os.makedirs(shared)
        self.create("orphan", workspace={"host_path": "gone"})
        os.rmdir(shared)
        r = self.server.request("POST", "/agents/orphan/start")
        self.assert_error(r, 400, "invalid_request")
        self.assertEqual(self.get("orphan")["status"], "idle")

    def test_host_path_inside_another_agents_workspace_is_refused(self):
        self.create("owner1")
        r = self.server.request("POST", "/agents", {
            "agent_id": "intruder", "name": "x", "image": IMAGE,
            "workspace": {"host_path": "owner1"}})
        self.assert_error(r, 400, "invalid_request")
        self.assertIn("owner1", r.json()["error"])

    def test_policy_and_image_refusals_on_start(self):
        self.create("direct", policy="container_direct")
        self.assert_error(self.server.request("POST", "/agents/direct/start"), 403,
                          "policy_denied")
        self.assertEqual(self.get("direct")["status"], "idle")
        self.create("missing", image="clawbox/missing:1")
        self.assert_error(self.server.request("POST", "/agents/missing/start"), 400,
                          "invalid_request")

    def test_capacity_and_concurrent_starts(self):
        for i in range(self.max_containers + 1):
            self.create(f"cap-{i}")
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(
                lambda _: self.server.request("POST", "/agents/cap-0/start"), range(4)))
        self.assertEqual(sorted(a.status for a in answers), [200, 409, 409, 409])
        for i in range(1, self.max_containers):
            self.start(f"cap-{i}")
        r = self.server.request("POST", f"/agents/cap-{self.max_containers}/start")
        self.assert_error(r, 429, "resource_exhausted")

    def test_delete_of_a_running_agent_stops_it(self):
        info = self.create("doomed")
        cid = self.start("doomed")["container_id"]
        self.assertEqual(self.server.request("DELETE", "/agents/doomed").status, 204)
        self.assert_error(self.server.request("GET", f"/containers/{cid}"), 404, "not_found")
        self.assertTrue(os.path.isdir(info["workspace_path"]))


class AgentsRecoveryTest(unittest.TestCase):

    def test_running_agents_start_again_after_kill_9(self):
        why = skip_reason()
        if why:
            self.skipTest(why)
        parent = tempfile.mkdtemp(prefix="clawbox-e2e-ws-")
        self.addCleanup(shutil.rmtree, parent, True)
        server = Server(f'[containers]\nruntime = "{RUNTIMES[0]}"\n'
                        f'workspace_root = "{parent}/ws"\n'
                        '[container_policy]\nallowed_images = ["clawbox/"]\n')
        self.addCleanup(server.cleanup)
        ctimage.import_test_image(server)
        server.start()
        ids = {}
        for name in ("r-1", "r-2"):
            r = server.request("POST", "/agents", {
                "agent_id": name, "name": name, "image": IMAGE,
                "command": ["/bin/sh", "-c", "echo up >> /workspace/log; sleep 600"]})
            self.assertEqual(r.status, 201, r.body)
            r = server.request("POST", f"/agents/{name}/start")
            self.assertEqual(r.status, 200, r.body)
            ids[name] = r.json()["container_id"]
        server.request("POST", "/agents", {"agent_id": "r-3", "name": "idle one",
                                           "image": IMAGE})
        server.stop(signal.SIGKILL)
        server.start()
        for name in ("r-1", "r-2"):
            deadline = time.time() + 20
            while time.time() < deadline:
                g = server.request("GET", f"/agents/{name}").json()
                if g["status"] == "running":
                    break
                time.sleep(0.1)
            self.assertEqual(g["status"], "running", g)
            self.assertNotEqual(g["container_id"], ids[name])
            old = server.request("GET", f"/containers/{ids[name]}").json()
            self.assertEqual(old["status"], "killed")
            log = os.path.join(g["workspace_path"], "log")
            deadline = time.time() + 10
            while time.time() < deadline and open(log).read() != "up\nup\n":
                time.sleep(0.05)
            self.assertEqual(open(log).read(), "up\nup\n")
        self.assertEqual(server.request("GET", "/agents/r-3").json()["status"], "idle")
        # A clean stop kills the containers but leaves the agents to start again.
        before = server.request("GET", "/agents/r-1").json()["container_id"]
        self.assertEqual(server.stop(), 0, server.read_log())
        server.start()
        deadline = time.time() + 20
        while time.time() < deadline:
            g = server.request("GET", "/agents/r-1").json()
            if g["status"] == "running":
                break
            time.sleep(0.1)
        self.assertEqual(g["status"], "running", g)
        self.assertNotEqual(g["container_id"], before)
        self.assertEqual(server.stop(), 0, server.read_log())


for _rt in RUNTIMES or ["crun"]:
    _name = f"AgentLifecycle_{_rt}"
    globals()[_name] = type(_name, (AgentLifecycle, AgentContainerCase), {"runtime": _rt})

if __name__ == "__main__":
    main()
