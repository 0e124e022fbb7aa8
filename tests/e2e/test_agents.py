"""Agent registration end to end: POST/GET/DELETE /agents against a real
server and its state database, across a restart and a kill -9, with
hostile ids and workspace paths."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import unittest

from harness import BIN, Server, ServerTestCase, main


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


if __name__ == "__main__":
    main()
