"""The tool-authoring verbs against the real binary: new-tool, build, and
add tool / remove tool into the tool directory of a running server, whose
watcher loads and unloads the tool."""

import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import BIN, CACHE_DIR, Server, free_port, main

SDK = os.path.join(os.path.dirname(__file__), "..", "..", "sdk", "clawbox_tool.h")


class Tmp:
    """A temporary directory that also serves as $HOME for the CLI, so the
    developer's own ~/.clawbox is never read or written."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="clawbox-tooling-")

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def run(self, *args, env=None, cwd=None):
        e = dict(os.environ, HOME=self.dir)
        e.pop("CLAWBOX_TOOL_DIR", None)
        e.update(env or {})
        return subprocess.run([BIN, *args], capture_output=True, text=True, env=e,
                              cwd=cwd or self.dir, timeout=300)

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class ScaffoldAndBuildTests(unittest.TestCase):
    def setUp(self):
        self.t = Tmp()

    def tearDown(self):
        self.t.cleanup()

    def test_new_tool_writes_a_project_that_make_builds(self):
        p = self.t.run("new-tool", "hello_1")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("✓ Scaffolded c tool 'hello_1' at ./hello_1", p.stderr)
        proj = self.t.path("hello_1")
        self.assertEqual(sorted(os.listdir(proj)),
                         ["Makefile", "clawbox_tool.h", "main.c", "manifest.json"])
        with open(os.path.join(proj, "clawbox_tool.h"), "rb") as a, open(SDK, "rb") as b:
            self.assertEqual(a.read(), b.read())
        with open(os.path.join(proj, "manifest.json")) as f:
            m = json.load(f)
        self.assertEqual(m["tool"], {"name": "hello_1", "description": "A clawbox WASM tool",
                                     "version": "0.1.0"})
        self.assertEqual(m["input_schema"]["type"], "object")
        if shutil.which("make"):
            mk = subprocess.run(["make", "-C", proj], capture_output=True, text=True)
            self.assertEqual(mk.returncode, 0, mk.stdout + mk.stderr)
            with open(os.path.join(proj, "hello_1.wasm"), "rb") as f:
                self.assertEqual(f.read(4), b"\0asm")
            with open(os.path.join(proj, "hello_1.json")) as f:
                self.assertEqual(json.load(f), m)
            # The make output installs with its manifest.
            p = self.t.run("add", "tool", "hello_1", "hello_1/hello_1.wasm", "--tool-dir", "td")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertTrue(os.path.exists(self.t.path("td", "hello_1.json")))

    def test_new_tool_errors(self):
        self.assertEqual(self.t.run("new-tool", "x", "--dir", "sub").returncode, 0)
        p = self.t.run("new-tool", "x", "--dir", "sub")
        self.assertEqual(p.returncode, 1)
        self.assertIn("Directory already exists: sub/x", p.stderr)
        p = self.t.run("new-tool", "y", "--lang", "rust")
        self.assertEqual(p.returncode, 1)
        self.assertIn("Unsupported language: rust. Use c.", p.stderr)
        self.assertIn("toolchains that clawbox does not ship", p.stderr)
        self.assertFalse(os.path.exists(self.t.path("y")))
        p = self.t.run("new-tool", "../evil")
        self.assertEqual(p.returncode, 1)
        self.assertIn("Invalid tool name", p.stderr)
        self.assertEqual(self.t.run("new-tool").returncode, 2)

    def test_new_tool_language_default_comes_from_the_home_config(self):
        os.makedirs(self.t.path(".clawbox", "config"))
        with open(self.t.path(".clawbox", "config", "clawbox.toml"), "w") as f:
            f.write('[tools]\ndefault_language = "ts"\n')
        p = self.t.run("new-tool", "z")
        self.assertEqual(p.returncode, 1)
        self.assertIn("Unsupported language: ts. Use c.", p.stderr)
        self.assertEqual(self.t.run("new-tool", "z", "--lang", "c").returncode, 0)

    def test_build_reports_each_tool_and_fails_on_errors(self):
        self.t.run("new-tool", "good", "--dir", "src")
        os.makedirs(self.t.path("src", "bad"))
        with open(self.t.path("src", "bad", "main.c"), "w") as f:
            f.write("int main(void) { return undeclared; }\n")
        with open(self.t.path("src", "bad", "manifest.json"), "w") as f:
            f.write('{"tool": {"name": "bad"}}')
        p = self.t.run("build", "--source", "src", "--output", "out")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("✓ good → out/good.wasm", p.stderr)
        self.assertIn("✗ bad: clang exited with status 1", p.stderr)
        self.assertIn("undeclared", p.stderr)
        self.assertIn("Build complete: 1 succeeded, 1 failed", p.stderr)
        self.assertEqual(sorted(os.listdir(self.t.path("out"))), ["good.json", "good.wasm"])

        p = self.t.run("build", "good", "--source", "src", "--output", "out2")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("Build complete: 1 succeeded, 0 failed", p.stderr)

        p = self.t.run("build", "nope", "--source", "src")
        self.assertEqual(p.returncode, 1)
        self.assertIn("Tool 'nope' not found in src", p.stderr)
        p = self.t.run("build", "--source", "missing")
        self.assertEqual(p.returncode, 1)
        self.assertIn("Source directory not found: missing", p.stderr)

    def test_build_defaults_to_tools_and_build_wasm(self):
        self.t.run("new-tool", "deflt", "--dir", "tools")
        p = self.t.run("build")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertTrue(os.path.exists(self.t.path("build", "wasm", "deflt.wasm")))
        self.assertTrue(os.path.exists(self.t.path("build", "wasm", "deflt.json")))

    def test_add_rejects_non_wasm_and_remove_rejects_traversal(self):
        with open(self.t.path("fake.wasm"), "w") as f:
            f.write("not wasm")
        p = self.t.run("add", "tool", "fake", "fake.wasm", "--tool-dir", "td")
        self.assertEqual(p.returncode, 1)
        self.assertIn("is not a WebAssembly module", p.stderr)
        self.assertFalse(os.path.exists(self.t.path("td", "fake.wasm")))
        for name in ("../x", "a/b", "a\\b", ".."):
            p = self.t.run("remove", "tool", name, "--tool-dir", "td")
            self.assertEqual(p.returncode, 1, name)
            self.assertIn("Invalid tool name", p.stderr)
        p = self.t.run("remove", "tool", "absent", "--tool-dir", "td")
        self.assertEqual(p.returncode, 1)
        self.assertIn("Tool 'absent' not found in td", p.stderr)
        p = self.t.run("add", "image", "x")  # no --image
        self.assertEqual(p.returncode, 2)
        self.assertIn("Usage: clawbox add image NAME --image IMAGE", p.stderr)
        p = self.t.run("add", "widget", "x")
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown kind 'widget'", p.stderr)

    def test_every_verb_has_help(self):
        for verb, usage in (("new-tool", "new-tool NAME"), ("build", "build [TOOL]"),
                            ("add", "add tool NAME FILE.wasm"), ("remove", "remove tool NAME")):
            p = self.t.run(verb, "--help")
            self.assertEqual(p.returncode, 0, verb)
            self.assertIn("Usage: clawbox " + usage, p.stdout)
        p = self.t.run("add", "tool", "--help")
        self.assertIn("Usage: clawbox add tool", p.stdout)


class LiveServerTests(unittest.TestCase):
    """new-tool -> build -> add tool into a running server -> /tools and
    /execute -> remove tool."""

    @classmethod
    def setUpClass(cls):
        cls.t = Tmp()
        cls.server = Server()
        cls.tool_dir = os.path.join(cls.server.dir, "tools")
        os.makedirs(cls.tool_dir)
        cls.server.add_sandbox(f'cache_dir = "{CACHE_DIR}"\n')
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.server.stop()
        log = cls.server.read_log()
        cls.server.cleanup()
        cls.t.cleanup()
        if rc != 0:
            raise AssertionError(f"server exited with {rc}:\n{log}")

    def tool_names(self):
        r = self.server.request("GET", "/tools")
        self.assertEqual(r.status, 200, r.body)
        return {m["tool"]["name"]: m for m in r.json() if m["state"] == "ready"}

    def wait_for(self, name, present, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if (name in self.tool_names()) == present:
                return
            time.sleep(0.1)
        self.fail(f"tool {name} {'never appeared' if present else 'never went away'}:\n"
                  f"{self.server.read_log()}")

    def test_scaffold_build_install_execute_remove(self):
        name = "scaffolded_e2e"
        t = self.t
        p = t.run("new-tool", name, "--dir", "src")
        self.assertEqual(p.returncode, 0, p.stderr)
        p = t.run("build", name, "--source", "src", "--output", "out")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn(f"✓ {name} → out/{name}.wasm", p.stderr)
        self.assertNotIn(name, self.tool_names())

        p = t.run("add", "tool", name, f"out/{name}.wasm", "--tool-dir", self.tool_dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(f"✓ Tool '{name}' installed at {self.tool_dir}/{name}.wasm", p.stderr)
        self.assertIn(f"manifest: {self.tool_dir}/{name}.json", p.stderr)
        self.wait_for(name, True)
        self.assertEqual(self.tool_names()[name]["tool"]["description"], "A clawbox WASM tool")

        r = self.server.request("POST", "/execute",
                                {"tool": name, "params": {"x": 1, "s": "hé"}}, timeout=60)
        self.assertEqual(r.status, 200, r.body)
        b = r.json()
        self.assertEqual(b["status"], "ok", b)
        self.assertEqual(b["output"], {"tool": name, "result": {"x": 1, "s": "hé"}})

        # remove resolves the tool directory from the home config this time.
        os.makedirs(t.path(".clawbox", "config"), exist_ok=True)
        with open(t.path(".clawbox", "config", "clawbox.toml"), "w") as f:
            f.write(f'[sandbox]\ntool_dir = "{self.tool_dir}"\n')
        p = t.run("remove", "tool", name)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(f"✓ Tool '{name}' removed from {self.tool_dir}", p.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.tool_dir, name + ".wasm")))
        self.assertFalse(os.path.exists(os.path.join(self.tool_dir, name + ".json")))
        self.wait_for(name, False)
        r = self.server.request("POST", "/execute", {"tool": name, "params": {}})
        self.assertEqual(r.status, 404, r.body)

    def test_add_reports_the_servers_verdict(self):
        t = self.t
        conn = ["--tool-dir", self.tool_dir, "--port", str(self.server.port)]
        env = {"CLAWBOX_AUTH_TOKEN": self.server.token}
        with open(t.path("junk.wasm"), "wb") as f:
            f.write(b"\0asm\x01\0\0\0\x05")
        p = t.run("add", "tool", "junk", "junk.wasm", *conn, env=env)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("clawbox: the server refused tool 'junk': ", p.stderr)
        p = t.run("add", "tool", "junk2", "junk.wasm", "--no-wait", *conn, env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("the server refused", p.stderr)
        t.run("new-tool", "verdict", "--dir", "src3")
        self.assertEqual(t.run("build", "--source", "src3", "--output", "out3").returncode, 0)
        p = t.run("add", "tool", "verdict", "out3/verdict.wasm", *conn, env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("✓ The server loaded tool 'verdict'", p.stderr)
        self.assertIn("verdict", self.tool_names())
        p = t.run("add", "tool", "verdict", "out3/verdict.wasm", "--tool-dir", self.tool_dir,
                  "--port", str(free_port()), env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("no server answered", p.stderr)
        for name in ("junk", "junk2", "verdict"):
            t.run("remove", "tool", name, "--tool-dir", self.tool_dir)

    def test_add_under_another_name_rewrites_the_manifest_name(self):
        t = self.t
        t.run("new-tool", "orig", "--dir", "src2")
        p = t.run("build", "--source", "src2", "--output", "out2")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        p = t.run("add", "tool", "renamed", "out2/orig.wasm", "--tool-dir", self.tool_dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.wait_for("renamed", True)
        # The module still says "orig" in its output; the server serves it as "renamed".
        r = self.server.request("POST", "/execute", {"tool": "renamed", "params": [1]},
                                timeout=60)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json()["output"], {"tool": "orig", "result": [1]})
        self.assertEqual(t.run("remove", "tool", "renamed", "--tool-dir",
                               self.tool_dir).returncode, 0)
        self.wait_for("renamed", False)


if __name__ == "__main__":
    main()
