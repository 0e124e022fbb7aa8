"""Working inside a running container, through the real server and both
OCI runtimes. POST /containers/{id}/exec: output apart and in order, exit
codes, stdin, env and cwd, the container's user, the output cap,
redaction, the timeout and the end of the command killing what it left
running, the concurrency cap, every bad input, and the audit line; its CLI
and MCP clients. /containers/{id}/files: upload and download byte-exact,
listing, removal, redaction, and every path escape."""

import json
import os
import subprocess
import threading
import time

import harness
from test_agents import AgentContainerCase
from test_containers import RUNTIMES, ContainerCase


def host_processes(marker):
    """Host processes whose command line holds marker."""
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if marker in line]


class Exec:
    max_containers = 2

    @classmethod
    def prepare(cls):
        # The [containers] table is the first one in the config.
        with open(cls.server.config_path) as f:
            text = f.read()
        text = text.replace("[containers]\n", "[containers]\nmax_execs_per_container = 2\n"
                            "max_exec_output_bytes = 4096\n", 1)
        with open(cls.server.config_path, "w") as f:
            f.write(text)

    def setUp(self):
        self.cid = self.spawned(["/bin/sleep", "120"])
        self.addCleanup(self.server.request, "DELETE", f"/containers/{self.cid}")

    def exec(self, command, **extra):
        body = {"command": command}
        body.update(extra)
        return self.server.request("POST", f"/containers/{self.cid}/exec", body)

    def ok(self, command, **extra):
        r = self.exec(command, **extra)
        self.assertEqual(r.status, 200, r.body)
        return r.json()

    def test_output_apart_exit_code_and_user(self):
        out = self.ok(["/bin/sh", "-c", "echo one; echo two >&2; echo three; id -u; exit 3"])
        self.assertEqual(out["stdout"], "one\nthree\n1000\n")
        self.assertEqual(out["stderr"], "two\n")
        self.assertEqual(out["exit_code"], 3)
        self.assertFalse(out["timed_out"])
        self.assertFalse(out["truncated"])
        self.assertGreaterEqual(out["duration_ms"], 0)

    def test_stdin_env_and_cwd(self):
        out = self.ok(["/bin/sh", "-c", "cat; echo; echo $GREETING; pwd"],
                      stdin="from stdin", env={"GREETING": "hello"}, cwd="/tmp")
        self.assertEqual(out["stdout"], "from stdin\nhello\n/tmp\n")
        self.assertEqual(out["exit_code"], 0)

    def test_runs_where_the_container_runs(self):
        # The exec sees the container's own files: what its main process
        # wrote to /tmp, which no other container has.
        self.ok(["/bin/sh", "-c", "echo mark > /tmp/mark"])
        self.assertEqual(self.ok(["/bin/cat", "/tmp/mark"])["stdout"], "mark\n")
        other = self.spawned(["/bin/sleep", "30"])
        self.addCleanup(self.server.request, "DELETE", f"/containers/{other}")
        r = self.server.request("POST", f"/containers/{other}/exec",
                                {"command": ["/bin/cat", "/tmp/mark"]})
        self.assertNotEqual(r.json()["exit_code"], 0)

    def test_in_the_containers_namespaces(self):
        # The exec shares the main process's network namespace (the one
        # transparent egress made, whatever the runtime), not the host's.
        ct = self.spawned(["/bin/sh", "-c", "readlink /proc/self/ns/net > /tmp/ns; exec sleep 30"])
        self.addCleanup(self.server.request, "DELETE", f"/containers/{ct}")
        main = ""
        for _ in range(100):
            r = self.server.request("POST", f"/containers/{ct}/exec",
                                    {"command": ["/bin/cat", "/tmp/ns"]})
            main = r.json()["stdout"]
            if main:
                break
            time.sleep(0.05)
        r = self.server.request("POST", f"/containers/{ct}/exec",
                                {"command": ["/bin/readlink", "/proc/self/ns/net"]})
        self.assertEqual(r.json()["stdout"], main)
        self.assertNotEqual(main.strip(), os.readlink("/proc/self/ns/net"))
        r = self.server.request("POST", f"/containers/{ct}/exec",
                                {"command": ["/bin/cat", "/proc/net/dev"]})
        interfaces = [l.split(":")[0].strip() for l in r.json()["stdout"].splitlines()[2:]]
        self.assertEqual(interfaces, ["lo"])

    def test_output_capped_and_redacted(self):
        out = self.ok(["/bin/sh", "-c", "yes | head -c 100000"])
        self.assertEqual(len(out["stdout"]), 4096)
        self.assertTrue(out["truncated"])
        leaked = "ghp_" + "b" * 36
        out = self.ok(["/bin/echo", f"token={leaked}"])
        self.assertNotIn(leaked, out["stdout"])
        self.assertIn("[REDACTED]", out["stdout"])

    def test_timeout_kills_what_the_command_started(self):
        t0 = time.time()
        out = self.ok(["/bin/sh", "-c", "sleep 4711 & echo started; wait"], timeout_ms=500)
        self.assertLess(time.time() - t0, 5)
        self.assertTrue(out["timed_out"])
        self.assertIsNone(out["exit_code"])
        self.assertEqual(out["stdout"], "started\n")
        self.assertEqual(host_processes("sleep 4711"), [])

    def test_background_processes_die_with_the_command(self):
        t0 = time.time()
        # A timeout under the client's: should the exec hang, the server's
        # answer (timed_out, stderr) says where.
        out = self.ok(["/bin/sh", "-c", "sleep 4712 & echo started"], timeout_ms=15000)
        # Not held up by the sleep, even when the shell ends before the
        # server read its pid file (it looks every millisecond): the
        # sleep is killed then too (runc, its subreaper, would wait for it
        # until the timeout).
        self.assertLess(time.time() - t0, 5, out)
        self.assertEqual(out["exit_code"], 0)
        self.assertEqual(host_processes("sleep 4712"), [])
        # The container's own process is left alone.
        info = self.server.request("GET", f"/containers/{self.cid}").json()
        self.assertEqual(info["status"], "running")

    def test_concurrency_cap(self):
        results = []
        threads = [threading.Thread(target=lambda: results.append(
            self.exec(["/bin/sleep", "2"]).status)) for _ in range(2)]
        for t in threads:
            t.start()
        time.sleep(0.7)
        r = self.exec(["/bin/true"])
        for t in threads:
            t.join()
        self.assert_error(r, 429, "resource_exhausted")
        self.assertEqual(results, [200, 200])
        self.assertEqual(self.ok(["/bin/true"])["exit_code"], 0)

    def stream(self, command, **extra):
        """A streamed exec (Accept: application/x-ndjson): its connection
        and its response, left unread."""
        body = dict(command=command, **extra)
        conn = self.server.connection(60)
        conn.request("POST", f"/containers/{self.cid}/exec", body=json.dumps(body),
                     headers={"Authorization": f"Bearer {self.server.token}",
                              "Content-Type": "application/json",
                              "Accept": "application/x-ndjson"})
        resp = conn.getresponse()
        self.addCleanup(conn.close)
        return conn, resp

    def events(self, command, **extra):
        _, resp = self.stream(command, **extra)
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.getheader("Content-Type"), "application/x-ndjson")
        return [json.loads(line) for line in resp.read().splitlines()]

    def test_stream_in_order_and_exit_last(self):
        ev = self.events(["/bin/sh", "-c", "echo a; sleep 0.2; echo b >&2; sleep 0.2; echo c; "
                          "sleep 0.2; echo d >&2; exit 5"])
        self.assertEqual(ev[0]["type"], "start")
        self.assertEqual([(e["type"], e.get("data")) for e in ev[1:-1]],
                         [("stdout", "a\n"), ("stderr", "b\n"), ("stdout", "c\n"),
                          ("stderr", "d\n")])
        self.assertEqual(ev[-1]["type"], "exit")
        self.assertEqual(ev[-1]["code"], 5)
        self.assertFalse(ev[-1]["timed_out"])
        self.assertFalse(ev[-1]["truncated"])
        self.assertGreaterEqual(ev[-1]["duration_ms"], 600)

    def test_stream_arrives_as_it_runs(self):
        _, resp = self.stream(["/bin/sh", "-c", "echo first; sleep 3; echo second"])
        self.assertEqual(json.loads(resp.readline())["type"], "start")
        t0 = time.monotonic()
        self.assertEqual(json.loads(resp.readline())["data"], "first\n")
        self.assertLess(time.monotonic() - t0, 2)
        rest = [json.loads(line) for line in resp.read().splitlines()]
        self.assertEqual(rest[0]["data"], "second\n")
        self.assertEqual(rest[-1]["code"], 0)

    def test_stream_redacts_a_secret_written_in_two_halves(self):
        half = "b" * 18
        ev = self.events(["/bin/sh", "-c", f"printf 'token=ghp_{half}'; sleep 0.5; "
                          f"printf '{half}\\n'; echo after"])
        out = "".join(e["data"] for e in ev if e["type"] == "stdout")
        self.assertNotIn("ghp_" + half, out)
        self.assertNotIn(half + half, out)
        self.assertIn("[REDACTED]", out)
        self.assertTrue(out.endswith("after\n"), out)

    def test_stream_output_capped(self):
        ev = self.events(["/bin/sh", "-c", "yes | head -c 52428800; echo done >&2"])
        out = "".join(e["data"] for e in ev if e["type"] == "stdout")
        self.assertEqual(len(out), 4096)
        self.assertEqual([e["data"] for e in ev if e["type"] == "stderr"], ["done\n"])
        self.assertTrue(ev[-1]["truncated"])
        self.assertEqual(ev[-1]["code"], 0)

    def test_stream_timeout(self):
        ev = self.events(["/bin/sh", "-c", "sleep 4714 & echo started; wait"], timeout_ms=500)
        self.assertEqual(ev[1], {"type": "stdout", "data": "started\n"})
        self.assertTrue(ev[-1]["timed_out"])
        self.assertIsNone(ev[-1]["code"])
        self.assertEqual(host_processes("sleep 4714"), [])

    def test_stream_disconnect_kills_the_exec(self):
        conn, resp = self.stream(["/bin/sh", "-c", "sleep 4715 & echo started; wait"])
        self.assertEqual(json.loads(resp.readline())["type"], "start")
        self.assertEqual(json.loads(resp.readline())["data"], "started\n")
        self.assertTrue(host_processes("sleep 4715"))
        resp.close()
        conn.close()
        deadline = time.time() + 5
        while host_processes("sleep 4715") and time.time() < deadline:
            time.sleep(0.1)
        self.assertEqual(host_processes("sleep 4715"), [])
        # Its place is free again, and it is audited as cancelled.
        self.assertEqual(self.ok(["/bin/true"])["exit_code"], 0)
        lines, _ = harness.read_audit(os.path.join(self.server.dir, "audit"))
        mine = [l for l in lines if l["tool"] == self.cid and l["method"] == "exec"]
        self.assertIn("cancelled", [l["decision"] for l in mine])
        info = self.exec_info(resp.getheader("X-Clawbox-Exec-Id")).json()
        self.assertEqual((info["state"], info["exit_code"]), ("cancelled", None))

    def exec_info(self, exec_id, cid=None):
        return self.server.request("GET", f"/containers/{cid or self.cid}/execs/{exec_id}")

    def test_exec_ids_and_their_reports(self):
        r = self.exec(["/bin/sh", "-c", "exit 3"])
        exec_id = r.json()["exec_id"]
        self.assertRegex(exec_id, r"^ex_[0-9a-f]{16}$")
        self.assertEqual(r.headers["X-Clawbox-Exec-Id"], exec_id)
        info = self.exec_info(exec_id).json()
        self.assertEqual(info["exec_id"], exec_id)
        self.assertEqual(info["command"], ["/bin/sh", "-c", "exit 3"])
        self.assertEqual((info["state"], info["exit_code"]), ("exited", 3))
        self.assertRegex(info["started_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertGreaterEqual(info["duration_ms"], 0)
        # Streamed: the first event names it, and it is running until its end.
        _, resp = self.stream(["/bin/sh", "-c", "echo go; sleep 1"])
        start = json.loads(resp.readline())
        self.assertEqual(start["type"], "start")
        self.assertEqual(resp.getheader("X-Clawbox-Exec-Id"), start["exec_id"])
        self.assertEqual(json.loads(resp.readline())["data"], "go\n")
        info = self.exec_info(start["exec_id"]).json()
        self.assertEqual((info["state"], info["exit_code"]), ("running", None))
        resp.read()
        info = self.exec_info(start["exec_id"]).json()
        self.assertEqual((info["state"], info["exit_code"]), ("exited", 0))
        self.assertGreaterEqual(info["duration_ms"], 1000)
        ev = self.events(["/bin/sleep", "10"], timeout_ms=300)
        info = self.exec_info(ev[0]["exec_id"]).json()
        self.assertEqual((info["state"], info["exit_code"]), ("timed_out", None))
        # Unknown ones, and all of them once the container is gone.
        self.assert_error(self.exec_info("ex_0000000000000000"), 404, "not_found")
        self.assert_error(self.exec_info(exec_id, "clawbox-nope"), 404, "not_found")
        self.server.request("DELETE", f"/containers/{self.cid}")
        self.assert_error(self.exec_info(exec_id), 404, "not_found")

    def test_finished_execs_kept_are_bounded(self):
        first = self.ok(["/bin/true"])["exec_id"]
        ids = [self.ok(["/bin/true"])["exec_id"] for _ in range(64)]
        self.assert_error(self.exec_info(first), 404, "not_found")
        self.assertEqual(self.exec_info(ids[0]).json()["state"], "exited")

    def test_detached_exec_outlives_its_request(self):
        t0 = time.monotonic()
        r = self.exec(["/bin/sh", "-c", "echo detached-out; sleep 1; echo detached-err >&2; "
                       "exit 4"], detach=True)
        self.assertLess(time.monotonic() - t0, 1)
        self.assertEqual(r.status, 202, r.body)
        exec_id = r.json()["exec_id"]
        self.assertEqual(r.json(), {"exec_id": exec_id, "detached": True})
        self.assertEqual(r.headers["X-Clawbox-Exec-Id"], exec_id)
        self.assertEqual(self.exec_info(exec_id).json()["state"], "running")
        deadline = time.time() + 10
        while self.exec_info(exec_id).json()["state"] == "running" and time.time() < deadline:
            time.sleep(0.1)
        info = self.exec_info(exec_id).json()
        self.assertEqual((info["state"], info["exit_code"]), ("exited", 4))
        self.assertGreaterEqual(info["duration_ms"], 1000)
        # Its output went to the container's log.
        log = self.server.request("GET", f"/containers/{self.cid}/logs").body.decode()
        self.assertIn("detached-out\n", log)
        self.assertIn("detached-err\n", log)
        # Its timeout still ends it, and what it started.
        r = self.exec(["/bin/sh", "-c", "sleep 4717 & wait"], detach=True, timeout_ms=500)
        exec_id = r.json()["exec_id"]
        deadline = time.time() + 10
        while self.exec_info(exec_id).json()["state"] == "running" and time.time() < deadline:
            time.sleep(0.1)
        self.assertEqual(self.exec_info(exec_id).json()["state"], "timed_out")
        self.assertEqual(host_processes("sleep 4717"), [])

    def test_stream_refusals_answer_once(self):
        _, resp = self.stream([])
        self.assertEqual(resp.status, 400)
        conn = self.server.connection()
        self.addCleanup(conn.close)
        conn.request("POST", "/containers/clawbox-nope/exec",
                     body=json.dumps({"command": ["/bin/true"]}),
                     headers={"Authorization": f"Bearer {self.server.token}",
                              "Content-Type": "application/json",
                              "Accept": "application/x-ndjson"})
        self.assertEqual(conn.getresponse().status, 404)

    def test_bad_input(self):
        for body, status in [({}, 422), ({"command": []}, 400), ({"command": "ls"}, 422),
                             ({"command": ["/bin/true", 1]}, 422),
                             ({"command": ["/bin/true"], "cwd": "tmp"}, 400),
                             ({"command": ["/bin/true"], "env": {"LD_PRELOAD": "/x.so"}}, 400),
                             ({"command": ["/bin/true"], "env": {"A": 1}}, 422),
                             ({"command": ["/bin/true"], "stdin": 5}, 422),
                             ({"command": ["/bin/true"], "timeout_ms": 0}, 400),
                             ({"command": ["/bin/true"], "timeout_ms": "x"}, 422),
                             ({"command": ["/bin/true"], "detach": "yes"}, 422),
                             ({"command": [], "detach": True}, 400)]:
            r = self.server.request("POST", f"/containers/{self.cid}/exec", body)
            self.assertEqual(r.status, status, (body, r.body))
            self.assertIn(r.json()["code"], ("invalid_request",))
        self.assert_error(self.server.request("POST", "/containers/clawbox-nope/exec",
                                              {"command": ["/bin/true"]}), 404, "not_found")
        ended = self.spawned(["/bin/true"])
        self.wait_end(ended)
        self.addCleanup(self.server.request, "DELETE", f"/containers/{ended}")
        self.assert_error(self.server.request("POST", f"/containers/{ended}/exec",
                                              {"command": ["/bin/true"]}), 409, "conflict")
        self.assert_healthy()

    def test_audited(self):
        self.ok(["/bin/sh", "-c", "exit 7"])
        lines = [json.loads(line) for line in open(os.path.join(self.server.dir, "audit",
                                                                  "audit.jsonl"))]
        mine = [line for line in lines if line["tool"] == self.cid and line["method"] == "exec"]
        self.assertEqual(mine[-1]["status"], 7)
        self.assertEqual(mine[-1]["url"], "/bin/sh")


class Files:
    max_containers = 2

    def setUp(self):
        # Links the container plants itself, to its root and up and out,
        # a directory, one swapped for a link while it runs, and a file,
        # last: once the file is there, so is the rest.
        self.cid = self.spawned(["/bin/sh", "-c",
                                 "ln -s / /tmp/root; ln -s ../../../../../etc /tmp/up; "
                                 "mkdir /tmp/d; echo mine > /tmp/own.txt; "
                                 "while true; do rm -rf /tmp/flip; mkdir /tmp/flip; "
                                 "rmdir /tmp/flip; ln -s / /tmp/flip; done"])
        self.addCleanup(self.server.request, "DELETE", f"/containers/{self.cid}")
        deadline = time.time() + 10
        while self.get("/tmp/own.txt").status != 200 and time.time() < deadline:
            time.sleep(0.05)

    def url(self, path, extra=""):
        return f"/containers/{self.cid}/files?path={path}{extra}"

    def get(self, path, extra=""):
        return self.server.request("GET", self.url(path, extra))

    def put(self, path, data):
        return self.server.request("PUT", self.url(path), body=data,
                                   headers={"Content-Type": "application/octet-stream"})

    def test_upload_download_list_remove(self):
        data = os.urandom(3 * 1024 * 1024)
        r = self.put("/tmp/d/blob.bin", data)
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(r.json(), {"path": "/tmp/d/blob.bin", "bytes": len(data)})
        r = self.get("/tmp/d/blob.bin")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, data)
        # The container sees it as its own user's.
        out = self.server.request("POST", f"/containers/{self.cid}/exec",
                                  {"command": ["/bin/stat", "-c", "%u %s", "/tmp/d/blob.bin"]})
        self.assertEqual(out.json()["stdout"], f"1000 {len(data)}\n")
        listing = self.get("/tmp/d", "&list=1").json()
        self.assertEqual([(e["name"], e["type"], e["size"]) for e in listing["entries"]],
                         [("blob.bin", "file", len(data))])
        self.assertFalse(listing["truncated"])
        self.assertEqual(self.server.request("DELETE", self.url("/tmp/d/blob.bin")).status, 204)
        self.assert_error(self.get("/tmp/d/blob.bin"), 404, "not_found")
        self.assertEqual(self.get("/tmp/own.txt").body, b"mine\n")

    def test_text_is_redacted_and_binary_secrets_refused(self):
        leaked = "ghp_" + "c" * 36
        self.assertEqual(self.put("/tmp/t.txt", f"key={leaked}\n".encode()).status, 201)
        r = self.get("/tmp/t.txt")
        self.assertNotIn(leaked.encode(), r.body)
        self.assertIn(b"[REDACTED]", r.body)
        self.assertEqual(self.put("/tmp/b.bin", b"\xff\xfe" + leaked.encode()).status, 201)
        self.assert_error(self.get("/tmp/b.bin"), 403, "policy_denied")

    def test_no_path_reaches_the_host(self):
        # Each of these names a host file if resolved on the host; inside
        # the container's root none exists (the busybox image has no
        # /etc/hostname or /etc/os-release).
        self.assertTrue(os.path.exists("/etc/os-release"))
        for path in ["/../../../../etc/os-release", "/tmp/root/etc/os-release",
                     "/tmp/up/os-release", "/tmp/flip/etc/os-release",
                     "/proc/1/root/etc/os-release", "/proc/self/root/etc/os-release"]:
            r = self.get(path)
            self.assertIn(r.status, (400, 404), (path, r.body))
        # Links resolve inside the container: its own file through its root.
        for _ in range(20):
            r = self.get("/tmp/root/tmp/own.txt")
            self.assertEqual(r.body, b"mine\n")
        # Writes: only the container's /tmp, whatever the path or link says.
        for path in ["/etc/x", "/tmp/root/etc/x", "/tmp/up/x", "/tmp/flip/etc/x", "/x",
                     "/proc/self/root/tmp/x", "/dev/shm/x"]:
            r = self.put(path, b"no")
            self.assertIn(r.status, (400, 403, 404), (path, r.body))
        self.assertEqual(self.put("/tmp/root/tmp/through-link.txt", b"ok").status, 201)
        self.assertEqual(self.get("/tmp/through-link.txt").body, b"ok")
        self.assertFalse(os.path.exists("/tmp/through-link.txt"))
        # Devices are never opened (a pty could become the server's
        # controlling terminal; /dev/zero never ends).
        for path in ["/dev/zero", "/dev/pts/ptmx", "/dev/null", "/tmp/root/dev/zero"]:
            self.assert_error(self.get(path), 400, "invalid_request")
        for path in ["/etc/passwd", "/tmp/root/etc/passwd", "/"]:
            r = self.server.request("DELETE", self.url(path))
            self.assertIn(r.status, (400, 403), (path, r.body))
        self.assert_healthy()

    def test_bad_requests(self):
        self.assert_error(self.server.request("GET", f"/containers/{self.cid}/files"), 400,
                          "invalid_request")
        self.assert_error(self.get("tmp/own.txt"), 400, "invalid_request")
        self.assert_error(self.get("/tmp"), 400, "invalid_request")  # a directory, no list=1
        self.assert_error(self.get("/tmp", "&list=maybe"), 400, "invalid_request")
        self.assert_error(self.get("/tmp/" + "a" * 5000), 400, "invalid_request")
        self.assert_error(self.server.request("GET", "/containers/clawbox-gone/files?path=/tmp"),
                          404, "not_found")
        ended = self.spawned(["/bin/true"])
        self.wait_end(ended)
        self.addCleanup(self.server.request, "DELETE", f"/containers/{ended}")
        self.assert_error(self.server.request("GET", f"/containers/{ended}/files?path=/tmp"),
                          409, "conflict")


class ExecReaderGone(ContainerCase):
    """Streamed execs with a large output cap: one whose reader went away
    once the server's queue was full (so nothing drains it any more) still
    ends at once, and a line at a time is not one release (one redaction
    with its context) per line."""

    runtime = RUNTIMES[0] if RUNTIMES else "crun"
    containers_extra = "max_exec_output_bytes = 8388608\n"  # past the 256 KiB queue

    def test_a_reader_that_went_away_with_the_queue_full_ends_the_exec(self):
        cid = self.spawned(["/bin/sleep", "120"])
        self.addCleanup(self.server.request, "DELETE", f"/containers/{cid}")
        conn = self.server.connection(60)
        conn.request("POST", f"/containers/{cid}/exec",
                     body=json.dumps({"command": ["/bin/sh", "-c", "yes; sleep 4716"],
                                      "timeout_ms": 120000}),
                     headers={"Authorization": f"Bearer {self.server.token}",
                              "Content-Type": "application/json",
                              "Accept": "application/x-ndjson"})
        resp = conn.getresponse()
        exec_id = resp.getheader("X-Clawbox-Exec-Id")
        time.sleep(1.5)  # the queue fills: the reader takes nothing
        resp.close()
        conn.close()
        deadline = time.time() + 10
        info = {}
        while time.time() < deadline:
            info = self.server.request("GET", f"/containers/{cid}/execs/{exec_id}").json()
            if info["state"] != "running":
                break
            time.sleep(0.1)
        self.assertEqual(info["state"], "cancelled")
        self.assertEqual(host_processes("sleep 4716"), [])

    def test_lines_written_one_by_one_are_released_together(self):
        cid = self.spawned(["/bin/sleep", "120"])
        self.addCleanup(self.server.request, "DELETE", f"/containers/{cid}")
        conn = self.server.connection(60)
        script = "i=0; while [ $i -lt 20000 ]; do echo $i; i=$((i+1)); done"
        conn.request("POST", f"/containers/{cid}/exec",
                     body=json.dumps({"command": ["/bin/sh", "-c", script]}),
                     headers={"Authorization": f"Bearer {self.server.token}",
                              "Content-Type": "application/json",
                              "Accept": "application/x-ndjson"})
        resp = conn.getresponse()
        events = [json.loads(line) for line in resp.read().splitlines()]
        out = [e["data"] for e in events if e["type"] == "stdout"]
        self.assertEqual("".join(out), "".join(f"{i}\n" for i in range(20000)))
        self.assertEqual(events[-1]["code"], 0)
        # Each line is a write of its own: at most one release per 5 ms
        # went out (and the first, and the last at the end).
        ms = events[-1]["duration_ms"]
        self.assertLessEqual(len(out), ms / 5 * 1.5 + 10, (len(out), ms))


class ExecCli(ContainerCase):
    """clawbox exec: output where it belongs, the command's exit code, 124
    at the timeout, --env, --cwd and --stdin, and usage errors."""

    runtime = RUNTIMES[0] if RUNTIMES else "crun"

    def cli(self, *args, stdin=None):
        conn = ["--port", str(self.server.port), "--token", self.server.token]
        return subprocess.run([self.server.binary, "exec", *conn, *args], capture_output=True,
                              text=True, env=self.server.env, timeout=60, input=stdin)

    def test_exec(self):
        cid = self.spawned(["/bin/sleep", "60"])
        self.addCleanup(self.server.request, "DELETE", f"/containers/{cid}")
        p = self.cli(cid, "--env", "A=b=c", "--cwd", "/tmp", "--",
                     "/bin/sh", "-c", "echo $A; pwd; echo oops >&2; exit 5")
        self.assertEqual((p.returncode, p.stdout, p.stderr), (5, "b=c\n/tmp\n", "oops\n"))
        p = self.cli("--stdin", cid, "--", "/bin/cat", stdin="piped in")
        self.assertEqual((p.returncode, p.stdout), (0, "piped in"))
        p = self.cli("--timeout", "300", cid, "--", "/bin/sleep", "30")
        self.assertEqual(p.returncode, 124, p.stderr)
        self.assertIn("ran out of time", p.stderr)
        p = subprocess.run([self.server.binary, "exec", "--port", str(self.server.port), "--token",
                            self.server.token, "--stdin", cid, "--", "/bin/cat"],
                           input=b"\xff\xfe", capture_output=True, env=self.server.env,
                           timeout=60)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"not text", p.stderr)
        p = self.cli("--json", cid, "--", "/bin/true")
        self.assertEqual(json.loads(p.stdout)["exit_code"], 0)
        # --detach returns at once with the exec id; the command goes on,
        # its output in the container's log.
        t0 = time.monotonic()
        p = self.cli("--detach", cid, "--", "/bin/sh", "-c", "sleep 1; echo detached-out; exit 3")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertLess(time.monotonic() - t0, 1)
        exec_id = p.stdout.strip()
        self.assertRegex(exec_id, r"^ex_[0-9a-f]{16}$")
        deadline = time.time() + 10
        while time.time() < deadline:
            info = self.server.request("GET", f"/containers/{cid}/execs/{exec_id}").json()
            if info["state"] != "running":
                break
            time.sleep(0.1)
        self.assertEqual(info["exit_code"], 3, info)
        logs = self.server.request("GET", f"/containers/{cid}/logs").body
        self.assertIn(b"detached-out", logs)
        self.assertEqual(self.cli(cid).returncode, 2)
        self.assertEqual(self.cli("--env", "novalue", cid, "--", "/bin/true").returncode, 1)
        p = self.cli("../etc", "--", "/bin/true")
        self.assertEqual(p.returncode, 1)
        self.assertIn("not a container id", p.stderr)
        p = self.cli("clawbox-gone", "--", "/bin/true")
        self.assertEqual(p.returncode, 1)
        self.assertIn("not found", p.stderr)

    def test_exec_streams(self):
        cid = self.spawned(["/bin/sleep", "60"])
        self.addCleanup(self.server.request, "DELETE", f"/containers/{cid}")
        conn = ["--port", str(self.server.port), "--token", self.server.token]
        with subprocess.Popen([self.server.binary, "exec", *conn, cid, "--", "/bin/sh", "-c",
                               "echo one; echo err >&2; sleep 3; echo two; exit 7"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=self.server.env) as proc:
            t0 = time.monotonic()
            self.assertEqual(proc.stdout.readline(), "one\n")
            self.assertEqual(proc.stderr.readline(), "err\n")
            self.assertLess(time.monotonic() - t0, 2.5)  # before the command's end
            self.assertEqual(proc.stdout.read(), "two\n")
            self.assertEqual(proc.wait(timeout=30), 7)
        # Interrupting the client ends the command.
        with subprocess.Popen([self.server.binary, "exec", *conn, cid, "--", "/bin/sh", "-c",
                               "sleep 4716 & echo started; wait"],
                              stdout=subprocess.PIPE, text=True, env=self.server.env) as proc:
            self.assertEqual(proc.stdout.readline(), "started\n")
            self.assertTrue(host_processes("sleep 4716"))
            proc.terminate()
            proc.wait()
        deadline = time.time() + 5
        while host_processes("sleep 4716") and time.time() < deadline:
            time.sleep(0.1)
        self.assertEqual(host_processes("sleep 4716"), [])


class ExecMcp(ContainerCase):
    """clawbox_exec through `clawbox mcp` (JSON-RPC lines on stdio): the
    exit code, stdout and stderr in words, the timeout, and refusals."""

    runtime = RUNTIMES[0] if RUNTIMES else "crun"

    def call(self, proc, rid, name, args):
        msg = {"jsonrpc": "2.0", "id": rid, "method": "tools/call",
               "params": {"name": name, "arguments": args}}
        proc.stdin.write(json.dumps(msg) + "\n")
        proc.stdin.flush()
        while True:
            reply = json.loads(proc.stdout.readline())
            if reply.get("id") == rid:
                result = reply["result"]
                return result.get("isError", False), "\n".join(
                    c["text"] for c in result["content"] if c["type"] == "text")

    def test_exec_tool(self):
        cid = self.spawned(["/bin/sleep", "60"])
        self.addCleanup(self.server.request, "DELETE", f"/containers/{cid}")
        proc = subprocess.Popen([self.server.binary, "mcp", "--port", str(self.server.port),
                                 "--token", self.server.token], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, env=self.server.env)
        try:
            init = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
                    "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                               "clientInfo": {"name": "e2e", "version": "1"}}}
            proc.stdin.write(json.dumps(init) + "\n")
            proc.stdin.write('{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
            proc.stdin.flush()
            json.loads(proc.stdout.readline())
            err, text = self.call(proc, 1, "clawbox_exec", {
                "container_id": cid, "command": ["/bin/sh", "-c", "echo hi; echo no >&2; exit 4"]})
            self.assertFalse(err)
            self.assertIn("Exit code 4", text)
            self.assertIn("stdout:\nhi\n", text)
            self.assertIn("stderr:\nno\n", text)
            err, text = self.call(proc, 2, "clawbox_exec", {
                "container_id": cid, "command": ["/bin/sleep", "30"], "timeout_ms": 300})
            self.assertIn("ran out of time", text)
            err, text = self.call(proc, 3, "clawbox_exec", {"container_id": "../x",
                                                           "command": ["/bin/true"]})
            self.assertTrue(err)
            self.assertIn("container_id", text)
            err, text = self.call(proc, 4, "clawbox_exec", {"container_id": cid})
            self.assertTrue(err)
            self.assertIn("command", text)
            err, text = self.call(proc, 5, "clawbox_exec", {"container_id": "clawbox-gone",
                                                           "command": ["/bin/true"]})
            self.assertTrue(err)
            self.assertIn("not found", text)
        finally:
            proc.stdin.close()
            proc.wait(timeout=10)


class AgentExec:
    """POST /agents/{id}/exec: the container exec in the agent's running
    container, answered once or streamed; refused for an agent that is not
    running or unknown."""

    def agent_exec(self, agent_id, body, headers=None):
        return self.server.request("POST", f"/agents/{agent_id}/exec", body, headers=headers)

    def test_exec_in_a_running_agent(self):
        info = self.create("runner")
        r = self.agent_exec("runner", {"command": ["/bin/true"]})
        self.assert_error(r, 409, "invalid_state")
        self.assertIn("idle", r.json()["error"])
        self.assert_error(self.agent_exec("nobody", {"command": ["/bin/true"]}), 404, "not_found")
        cid = self.start("runner")["container_id"]
        r = self.agent_exec("runner", {"command": ["/bin/sh", "-c",
                                                   "echo hi > /workspace/x; cat /workspace/x"]})
        self.assertEqual(r.status, 200, r.body)
        out = r.json()
        self.assertEqual((out["stdout"], out["exit_code"]), ("hi\n", 0))
        with open(os.path.join(info["workspace_path"], "x")) as f:
            self.assertEqual(f.read(), "hi\n")
        done = self.server.request("GET", f"/containers/{cid}/execs/{out['exec_id']}").json()
        self.assertEqual(done["state"], "exited")
        # (The sleep makes the shell flush its stdout before it writes stderr.)
        r = self.agent_exec("runner", {"command": ["/bin/sh", "-c",
                                                   "echo a; sleep 0.1; echo b >&2; exit 2"]},
                            headers={"Accept": "application/x-ndjson"})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.headers["Content-Type"], "application/x-ndjson")
        ev = [json.loads(line) for line in r.body.splitlines()]
        self.assertEqual([e["type"] for e in ev], ["start", "stdout", "stderr", "exit"])
        self.assertEqual(ev[-1]["code"], 2)
        self.assert_error(self.agent_exec("runner", {}), 422, "invalid_request")
        r = self.agent_exec("runner", {"command": ["/bin/sh", "-c", "echo bg > /workspace/bg"],
                                       "detach": True})
        self.assertEqual(r.status, 202, r.body)
        self.wait_file(os.path.join(info["workspace_path"], "bg"))
        self.stop("runner")
        self.assert_error(self.agent_exec("runner", {"command": ["/bin/true"]}), 409,
                          "invalid_state")


for _rt in RUNTIMES or ["crun"]:
    _name = f"AgentExec_{_rt}"
    globals()[_name] = type(_name, (AgentExec, AgentContainerCase), {"runtime": _rt})
    for _tests in (Exec, Files):
        _name = f"{_tests.__name__}_{_rt}"
        globals()[_name] = type(_name, (_tests, ContainerCase), {"runtime": _rt})

if __name__ == "__main__":
    harness.main()
