"""The clawbox CLI: init, serve --check-config, health, status, help."""

import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
import unittest

from harness import BIN, Server, free_port, main

VERBS = ["init", "serve", "health", "status", "config-reference"]


def run(*args, env=None, input=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([BIN, *args], capture_output=True, text=True, env=e, input=input,
                          timeout=60)


class InitTests(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="clawbox-init-")
        self.base = os.path.join(self.dir, "home", ".clawbox")

    def tearDown(self):
        shutil.rmtree(self.dir)

    def token(self):
        with open(os.path.join(self.base, "token")) as f:
            return f.read().strip()

    def test_init_creates_private_config_and_token(self):
        p = run("init", "--dir", self.base)
        self.assertEqual(p.returncode, 0, p.stderr)
        cfg = os.path.join(self.base, "config", "clawbox.toml")
        for path in (cfg, os.path.join(self.base, "token")):
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        for d in ("tools", "audit", "data"):
            self.assertTrue(os.path.isdir(os.path.join(self.base, d)))
        token = self.token()
        self.assertRegex(token, r"^[0-9a-f]{64}$")
        with open(cfg) as f:
            self.assertIn(f'auth_token = "{token}"', f.read())
        self.assertIn("export CLAWBOX_AUTH_TOKEN", p.stderr)
        self.assertNotIn(token, p.stderr + p.stdout)
        check = run("serve", "--config", cfg, "--check-config")
        self.assertEqual(check.returncode, 0, check.stderr)

    def test_init_never_overwrites_without_force(self):
        run("init", "--dir", self.base)
        first = self.token()
        p = run("init", "--dir", self.base)
        self.assertEqual(p.returncode, 0)
        self.assertIn("already exists", p.stderr)
        self.assertEqual(self.token(), first)
        run("init", "--dir", self.base, "--force")
        self.assertNotEqual(self.token(), first)

    def test_init_escapes_odd_paths(self):
        base = os.path.join(self.dir, 'we"ird\\dir')
        self.assertEqual(run("init", "--dir", base).returncode, 0)
        check = run("serve", "--config", os.path.join(base, "config", "clawbox.toml"),
                    "--check-config")
        self.assertEqual(check.returncode, 0, check.stderr)


class CheckConfigTests(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="clawbox-cfg-")

    def tearDown(self):
        shutil.rmtree(self.dir)

    def check(self, text, env=None):
        path = os.path.join(self.dir, "c.toml")
        with open(path, "w") as f:
            f.write(text)
        return run("serve", "--config", path, "--check-config", env=env)

    def test_good_config(self):
        p = self.check('[server]\nport = 9900\nauth_token = "abc"\n[logging]\nformat = "text"\n')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("configuration OK", p.stderr)

    def test_unknown_key_is_a_warning_with_line(self):
        p = self.check('[server]\nauth_token = "abc"\nprot = 1\n[sandboxx]\n')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stderr, r"warning: .*c\.toml:3: unknown key 'prot' in \[server\]")
        self.assertIn("unknown section 'sandboxx'", p.stderr)

    def test_every_error_is_listed(self):
        p = self.check('[server]\nauth_token = "abc"\nport = 70000\nmax_concurrent_executions = "x"\n'
                       '[sandbox]\nwatch_tools = 1\ndefault_fuel = 0\n'
                       '[logging]\nlevel = "loud"\n')
        self.assertEqual(p.returncode, 1)
        errors = [l for l in p.stderr.splitlines() if l.startswith("error:")]
        self.assertEqual(len(errors), 5, p.stderr)
        self.assertRegex(p.stderr, r"c\.toml:3: \[server\] port = 70000 is out of range "
                                   r"\(allowed 1\.\.65535\)")
        self.assertRegex(p.stderr, r"c\.toml:4: \[server\] max_concurrent_executions must be "
                                   r"an integer, got string")
        self.assertRegex(p.stderr, r"c\.toml:6: \[sandbox\] watch_tools must be a boolean")
        self.assertRegex(p.stderr, r"c\.toml:7: \[sandbox\] default_fuel = 0 is out of range")
        self.assertRegex(p.stderr, r"c\.toml:9: \[logging\] level = 'loud' is not one of")

    def test_toml_syntax_error_names_the_line(self):
        p = self.check('[server]\nauth_token = "abc"\nport = = 1\n')
        self.assertEqual(p.returncode, 1)
        self.assertIn("line 3", p.stderr)

    def test_env_override_is_validated(self):
        p = self.check('[server]\nauth_token = "abc"\n', env={"CLAWBOX_PORT": "99999"})
        self.assertEqual(p.returncode, 1)
        self.assertIn("CLAWBOX_PORT", p.stderr)

    def test_missing_file(self):
        p = run("serve", "--config", os.path.join(self.dir, "nope.toml"), "--check-config")
        self.assertEqual(p.returncode, 1)
        self.assertIn("nope.toml", p.stderr)

    def test_docs_match_the_option_table(self):
        p = run("config-reference")
        self.assertEqual(p.returncode, 0)
        doc = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "configuration.md")
        with open(doc) as f:
            self.assertEqual(f.read(), p.stdout,
                             "docs/configuration.md is stale: regenerate it with "
                             "`clawbox config-reference > docs/configuration.md`")


class ClientVerbTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server().start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def test_health_prints_json(self):
        p = run("health", "--port", str(self.server.port))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["status"], "healthy")

    def test_status_summary(self):
        p = run("status", "--port", str(self.server.port))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("Status:  healthy", p.stdout)
        self.assertIn("state_db", p.stdout)

    def test_unreachable_server_hints_at_serve(self):
        p = run("health", "--port", str(free_port()))
        self.assertEqual(p.returncode, 1)
        self.assertIn("clawbox serve", p.stderr)
        self.assertEqual(len([l for l in p.stderr.splitlines() if l.strip()]), 2)


class HelpTests(unittest.TestCase):
    def test_version(self):
        p = run("--version")
        self.assertEqual(p.returncode, 0)
        self.assertEqual(p.stdout.strip(), "clawbox 0.1.0")

    def test_every_verb_has_help(self):
        for verb in VERBS:
            p = run(verb, "--help")
            self.assertEqual(p.returncode, 0, verb)
            self.assertIn("Usage: clawbox " + verb, p.stdout)

    def test_unknown_verb_and_flag(self):
        p = run("frobnicate")
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown command", p.stderr)
        p = run("serve", "--bogus")
        self.assertEqual(p.returncode, 2)


if __name__ == "__main__":
    main()
