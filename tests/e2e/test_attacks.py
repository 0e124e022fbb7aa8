"""Attacks on a running server by hostile tools and hostile parameters:
each asserts the exact refusal and that the server is healthy afterwards.
(Attacks on the HTTP front, secrets, tool loading and operations have
their own test_attacks_*.py files.)"""

import json
import os
import shutil

from harness import Server, ServerTestCase, main

TOOLS_DIR = os.environ.get("CLAWBOX_E2E_TOOLS", "build/tools/wasm")
HOSTILE_DIR = os.environ.get("CLAWBOX_E2E_HOSTILE", "build/tests/fixtures")
CACHE_DIR = os.environ.get("CLAWBOX_E2E_CACHE", "/tmp/clawbox-e2e-cache")


def valid_utf8(b):
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


class HostCallTextTests(ServerTestCase):
    """Host-call envelopes and names whose text, quoted into a message and
    cut to the message buffer, could end inside a UTF-8 sequence: the
    message must stay valid JSON and the server must stay up."""

    @classmethod
    def setUpClass(cls):
        cls.server = Server()
        tool_dir = os.path.join(cls.server.dir, "tools")
        os.makedirs(tool_dir)
        shutil.copy(os.path.join(TOOLS_DIR, "echo.wasm"), tool_dir)
        shutil.copy(os.path.join(HOSTILE_DIR, "rawcall.wasm"), tool_dir)
        with open(cls.server.config_path) as f:
            text = f.read()
        text = text.replace("[sandbox]\n", f'[sandbox]\ncache_dir = "{CACHE_DIR}"\n', 1)
        with open(cls.server.config_path, "w") as f:
            f.write(text)
        cls.server.start()

    def rawcall(self, envelope):
        """Runs the rawcall tool, which sends `envelope` (its params) as one
        host call and prints the answer; returns the answer."""
        r = self.server.request("POST", "/execute", {"tool": "rawcall", "params": envelope},
                                timeout=60)
        self.assertEqual(r.status, 200, r.body)
        self.assertTrue(valid_utf8(r.body), r.body[:200])
        return r.json()["output"]

    def test_long_non_ascii_method_gets_an_error_not_a_crash(self):
        # One run for each width of sequence and each place the cut can
        # fall inside one.
        for ch in ("é", "€", "😀"):
            for pad in range(4):
                with self.subTest(ch=ch, pad=pad):
                    out = self.rawcall({"method": "x" * pad + ch * 600, "params": {}})
                    prefix = "unknown host call method: " + "x" * pad + ch
                    self.assertTrue(out["error"].startswith(prefix), out)
                    self.assert_healthy()

    def test_non_ascii_text_in_other_host_call_messages(self):
        out = self.rawcall({"method": "http_request", "params": {"url": "€" * 3000}})
        self.assertIn("error", out)
        out = self.rawcall({"method": "http_request",
                            "params": {"url": "https://example.com/", "method": "é" * 400}})
        self.assertIn("invalid 'method'", out["error"])
        out = self.rawcall({"method": "http_request",
                            "params": {"url": "https://example.com/",
                                       "headers": {"é" * 5000: "v"}}})
        self.assertIn("error", out)
        out = self.rawcall({"method": "log", "params": {"message": "€" * 20000}})
        self.assertEqual(out, {"ok": None})
        self.assert_healthy()

    def test_log_message_cut_inside_a_sequence_is_kept(self):
        r = self.server.request("POST", "/execute",
                                {"tool": "rawcall",
                                 "params": {"method": "log", "params": {"message": "€" * 9000}}},
                                timeout=60)
        self.assertEqual(r.status, 200, r.body)
        logs = r.json()["metadata"]["logs"]
        self.assertEqual(len(logs), 1, logs)
        msg = logs[0]["message"]
        self.assertTrue(set(msg) == {"€"} and 5000 < len(msg) <= 16384 // 3, len(msg))

    def test_long_non_ascii_tool_name_gets_404_with_its_error(self):
        for ch in ("é", "€", "😀"):
            for pad in range(4):
                with self.subTest(ch=ch, pad=pad):
                    r = self.server.request("POST", "/execute",
                                            {"tool": "x" * pad + ch * 2000, "params": {}})
                    self.assert_error(r, 404, "tool_not_found")
                    self.assertTrue(r.json()["error"].startswith("tool '" + "x" * pad + ch),
                                    r.body[:100])
        self.assert_error(self.server.request("GET", "/tools/" + "%C3%A9" * 2000), 404,
                          "tool_not_found")
        self.assert_healthy()


if __name__ == "__main__":
    main()
