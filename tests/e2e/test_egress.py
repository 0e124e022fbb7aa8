"""Transparent egress (issue 14) from inside real containers: with
[containers] egress = "transparent", programs that know nothing of a proxy
(busybox wget and nc) reach an allowed loopback upstream by its name; a
name outside the allowlist does not resolve; a literal address outside it
is refused with the readable 403; UDP elsewhere, raw and ICMP sockets
fail; the container cannot change its interfaces or routes; the namespace
file goes with the container. Runs once per OCI runtime."""

import json
import time
import os
import socket
import threading
import unittest
from http.server import ThreadingHTTPServer

import ctimage
import harness
from test_containers import RUNTIMES, Upstream, skip_reason

IMAGE = ctimage.TEST_IMAGE
PROBE = "/usr/bin/ctprobe"


def loopback_name():
    """A name of this host that resolves to 127.0.0.1 here (the container's
    own /etc/hosts does not know it, so only the DNS stub answers it)."""
    for name in (socket.gethostname(), "localhost"):
        try:
            if name != "localhost" and socket.gethostbyname(name) == "127.0.0.1":
                return name
        except OSError:
            pass
    return None


class EgressCase(harness.ServerTestCase):
    runtime = None

    @classmethod
    def setUpClass(cls):
        why = skip_reason()
        if why:
            raise unittest.SkipTest(why)
        cls.name = loopback_name()
        if cls.name is None:
            raise unittest.SkipTest("no host name of this machine resolves to 127.0.0.1")
        cls.upstream = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
        threading.Thread(target=cls.upstream.serve_forever, daemon=True).start()
        cls.port = cls.upstream.server_address[1]
        cls.server = harness.Server(
            f'[containers]\nruntime = "{cls.runtime}"\negress = "transparent"\n'
            'max_containers = 3\ndefault_timeout_ms = 60000\nmax_output_bytes = 65536\n'
            '[container_policy]\nallowed_policies = ["wasm_only", "container"]\n'
            f'allowed_images = ["clawbox/"]\nnetwork_allowlist = ["{cls.name}"]\n'
            '[proxy]\nallow_private_cidrs = ["127.0.0.0/8"]\n')
        ctimage.import_test_image(cls.server)
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        if hasattr(cls, "server"):
            super().tearDownClass()
        if hasattr(cls, "upstream"):
            cls.upstream.shutdown()
            cls.upstream.server_close()

    def run_sh(self, script, timeout=30):
        """Runs script with /bin/sh in a new container to its end; returns
        (info, output)."""
        r = self.server.request("POST", "/containers/spawn", {
            "task": "egress", "image": IMAGE, "policy": "container",
            "command": ["/bin/sh", "-c", script]})
        self.assertEqual(r.status, 201, r.body)
        cid = r.json()["container_id"]
        end = time.time() + timeout
        info = None
        while time.time() < end:
            info = self.server.request("GET", f"/containers/{cid}").json()
            if info["status"] not in ("creating", "running"):
                break
            time.sleep(0.05)
        out = self.server.request("DELETE", f"/containers/{cid}").json()["output"] or ""
        return cid, info, out

    def audit(self):
        return harness.read_audit(os.path.join(self.server.dir, "audit"))[0]

    def test_wget_by_name_without_proxy_settings(self):
        _, info, out = self.run_sh(
            f"wget -q -O - http://{self.name}:{self.port}/plain?x=1")
        self.assertEqual(info["status"], "completed", (info, out))
        doc = json.loads(out.strip().splitlines()[-1])
        self.assertEqual(doc["path"], "/plain?x=1")
        self.assertEqual(doc["method"], "GET")

    def test_post_body_and_keep_alive(self):
        req = (f"POST /a HTTP/1.1\\r\\nHost: {self.name}:{self.port}\\r\\n"
               "Content-Length: 5\\r\\n\\r\\nhello"
               f"GET /b HTTP/1.1\\r\\nHost: {self.name}:{self.port}\\r\\n"
               "Connection: close\\r\\n\\r\\n")
        _, info, out = self.run_sh(
            f"printf '{req}' | nc {self.name} {self.port}")
        self.assertEqual(out.count("HTTP/1.1 200"), 2, out)
        self.assertIn('"body": "hello"', out)
        self.assertIn('"path": "/b"', out)

    def test_disallowed_name_is_nxdomain_and_audited(self):
        _, info, out = self.run_sh(
            "nslookup blocked.example.com; echo rc=$?; wget -q -O - http://blocked.example.com/;"
            " echo wget=$?")
        self.assertIn("NXDOMAIN", out)
        self.assertIn("wget=1", out)
        lines = [l for l in self.audit() if l.get("url") == "dns:blocked.example.com"]
        self.assertTrue(lines, self.audit())
        self.assertEqual(lines[-1]["decision"], "blocked")

    def test_allowed_name_resolves_to_the_pool(self):
        _, _, out = self.run_sh(f"nslookup {self.name}")
        self.assertIn("198.18.", out)

    def test_literal_ip_not_allowed_is_refused(self):
        req = "GET / HTTP/1.1\\r\\nHost: 203.0.113.7\\r\\nConnection: close\\r\\n\\r\\n"
        _, _, out = self.run_sh(f"printf '{req}' | nc 203.0.113.7 80")
        self.assertIn("HTTP/1.1 403", out)
        body = out.partition("\r\n\r\n")[2]
        self.assertIn("203.0.113.7", json.loads(body)["error"])

    def test_host_that_disagrees_with_the_destination_is_refused(self):
        req = f"GET / HTTP/1.1\\r\\nHost: {self.name}\\r\\nConnection: close\\r\\n\\r\\n"
        _, _, out = self.run_sh(f"printf '{req}' | nc 203.0.113.7 80")
        self.assertIn("HTTP/1.1 403", out)
        self.assertIn("does not match", out)

    def test_not_http_nor_tls_is_closed_and_audited(self):
        _, _, out = self.run_sh(
            f"printf 'SSH-2.0-x\\r\\n' | nc {self.name} 22; echo done")
        self.assertIn("done", out)
        self.assertNotIn("HTTP/", out)
        self.assertTrue([l for l in self.audit() if "neither HTTP nor TLS" in (l.get("reason") or "")],
                        self.audit())

    def test_udp_raw_and_icmp_fail(self):
        _, _, out = self.run_sh(f"{PROBE} udp 192.0.2.1 9999; {PROBE} raw")
        self.assertIn("udp=EPERM", out)
        self.assertIn("raw=EPERM", out)
        self.assertRegex(out, r"icmp=E(ACCES|PERM)")

    def test_rules_routes_and_links_cannot_change(self):
        _, _, out = self.run_sh(
            "ip link set lo down; echo link=$?; ip route del default; echo route=$?; "
            "ip link add x type dummy; echo add=$?; ip -o link | wc -l")
        for step in ("link", "route", "add"):
            self.assertRegex(out, step + r"=[1-9]", out)
        self.assertEqual(out.count("Operation not permitted"), 3, out)

    def test_namespace_file_goes_with_the_container(self):
        cid, _, _ = self.run_sh("true")
        self.assertFalse(os.path.exists(
            os.path.join(self.server.dir, "data", "containers", cid, "netns")))


for _rt in RUNTIMES or ["crun"]:
    _name = f"Egress_{_rt}"
    globals()[_name] = type(_name, (EgressCase,), {"runtime": _rt})
del EgressCase

if __name__ == "__main__":
    harness.main()
