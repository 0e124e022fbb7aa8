"""The clawbox CLI: init, serve --check-config, health, status, help."""

import json
import os
import re
import resource
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import unittest

from harness import BIN, Server, free_port, main, read_audit

VERBS = ["init", "serve", "health", "status", "config-reference", "run", "tools", "creds", "image",
         "agents", "exec", "cp",
         "audit", "logs", "mcp", "new-tool", "build", "doctor"]


def run(*args, env=None, input=None, preexec_fn=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([BIN, *args], capture_output=True, text=True, env=e, input=input,
                          timeout=60, preexec_fn=preexec_fn)


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
        key = os.path.join(self.base, "master.key")
        with open(key) as f:
            first_key = f.read()
        run("init", "--dir", self.base, "--force")
        self.assertNotEqual(self.token(), first)
        with open(key) as f:
            self.assertEqual(f.read(), first_key, "--force must never replace the master key")

    def test_init_writes_a_master_key_the_config_names(self):
        p = run("init", "--dir", self.base)
        key = os.path.join(self.base, "master.key")
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)
        with open(key) as f:
            self.assertRegex(f.read(), r"^[0-9a-f]{64}\n$")
        with open(os.path.join(self.base, "config", "clawbox.toml")) as f:
            self.assertIn(f'key_file = "{key}"', f.read())
        self.assertIn(f"master key: {key}", p.stderr)

    def test_clawbox_home_points_every_verb_at_an_init_dir(self):
        p = run("init", "--dir", self.base)
        self.assertIn(f"export CLAWBOX_HOME={self.base}", p.stderr)
        cfg = os.path.join(self.base, "config", "clawbox.toml")
        port = free_port()
        with open(cfg) as f:
            text = re.sub(r"port = \d+", f"port = {port}", f.read())
        with open(cfg, "w") as f:
            f.write(text)
        env = {"CLAWBOX_HOME": self.base, "HOME": self.dir, "CLAWBOX_AUTH_TOKEN": ""}
        server_env = {k: v for k, v in os.environ.items() if k != "CLAWBOX_AUTH_TOKEN"}
        server_env.update(CLAWBOX_HOME=self.base, HOME=self.dir)
        server = subprocess.Popen([BIN, "serve"], env=server_env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            for _ in range(200):
                p = run("list", "tools", "--port", str(port), "--json", env=env)
                if p.returncode == 0:
                    break
                time.sleep(0.05)
            if p.returncode != 0:
                server.terminate()
                self.fail(p.stderr + server.communicate(timeout=20)[1])
            self.assertEqual(json.loads(p.stdout), [])
        finally:
            server.terminate()
            self.assertIn(f"Using config: {cfg}", server.communicate(timeout=20)[1])

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


class ListenFlagTests(unittest.TestCase):
    def test_port_flag_wins_over_file_and_environment(self):
        s = Server()
        s.port, configured = free_port(), s.port
        s.env["CLAWBOX_PORT"] = str(configured)
        try:
            s.start(args=("--port", str(s.port), "--host", "127.0.0.1"))
            self.assertEqual(s.request("GET", "/health", auth=False).status, 200)
            self.assertIn(f"127.0.0.1:{s.port}", s.read_log())
        finally:
            s.cleanup()

    def test_bad_port_flag(self):
        for bad in ("0", "65536", "80x", ""):
            p = run("serve", "--port", bad, "--check-config")
            self.assertEqual(p.returncode, 2, bad)
            self.assertIn("--port must be a number from 1 to 65535", p.stderr)

    def test_taken_port_gets_a_hint(self):
        first = Server().start()
        second = Server()
        try:
            p = run("serve", "--config", second.config_path, "--port", str(first.port),
                    env={"HOME": second.dir})
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn(f"cannot listen on 127.0.0.1:{first.port}", p.stderr)
            self.assertIn("choose another port with serve --port N", p.stderr)
            self.assertEqual(first.request("GET", "/health", auth=False).status, 200)
        finally:
            first.cleanup()
            second.cleanup()


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
        p = run("status", "--port", str(self.server.port), "--json")
        self.assertEqual(json.loads(p.stdout)["status"], "healthy")

    def test_list_tools_json(self):
        env = {"CLAWBOX_AUTH_TOKEN": self.server.token}
        for args in (("list", "tools"), ("tools", "list")):
            p = run(*args, "--port", str(self.server.port), "--json", env=env)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIsInstance(json.loads(p.stdout), list)
            p = run(*args, "--port", str(self.server.port), env=env)
            self.assertTrue(p.stdout.startswith("NAME"), p.stdout)

    def test_unreachable_server_hints_at_serve(self):
        p = run("health", "--port", str(free_port()))
        self.assertEqual(p.returncode, 1)
        self.assertIn("clawbox serve", p.stderr)
        self.assertEqual(len([l for l in p.stderr.splitlines() if l.strip()]), 2)


class CredsTests(unittest.TestCase):
    KEY = "ab" * 32

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="clawbox-creds-")
        self.store = os.path.join(self.dir, "creds.enc")
        self.audit = os.path.join(self.dir, "audit")
        self.cfg = os.path.join(self.dir, "c.toml")
        self.write_config(self.audit)

    def write_config(self, audit_dir):
        with open(self.cfg, "w") as f:
            f.write(f'[server]\ndata_dir = "{self.dir}/data"\n'
                    f'[credentials]\nstore_path = "{self.store}"\n'
                    f'[logging]\naudit_dir = "{audit_dir}"\n')

    def tearDown(self):
        shutil.rmtree(self.dir)

    def creds(self, *args, key=KEY, input=None):
        env = {"CLAWBOX_MASTER_KEY": key} if key else {"CLAWBOX_MASTER_KEY": ""}
        return run("creds", "--config", self.cfg, *args, env=env, input=input)

    def test_add_list_remove_without_revealing_values(self):
        secret = "ghp_" + "x" * 36
        p = self.creds("add", "--name", "github", "--domain", "api.github.com",
                       input=secret + "\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(stat.S_IMODE(os.stat(self.store).st_mode), 0o600)
        with open(self.store, "rb") as f:
            self.assertNotIn(secret.encode(), f.read())
        p = self.creds("list")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("github", p.stdout)
        self.assertIn("api.github.com", p.stdout)
        self.assertIn("Authorization", p.stdout)
        self.assertNotIn(secret, p.stdout + p.stderr)
        p = self.creds("list", "--json")
        self.assertEqual(json.loads(p.stdout), [{
            "name": "github", "domain": "api.github.com", "header": "Authorization",
            "prefix": "Bearer ", "allow_http": False, "port": 0, "matches": True}])
        self.assertNotIn(secret, p.stdout + p.stderr)
        self.assertEqual(self.creds("remove", "--name", "github").returncode, 0)
        self.assertIn("No credentials stored.", self.creds("list").stdout)

    def test_empty_value_wrong_key_and_missing_key(self):
        p = self.creds("add", "--name", "a", "--domain", "x.com", input="\n")
        self.assertEqual(p.returncode, 1)
        self.assertIn("cannot be empty", p.stderr)
        self.creds("add", "--name", "a", "--domain", "x.com", input="value-123456\n")
        p = self.creds("list", key="cd" * 32)
        self.assertEqual(p.returncode, 1)
        self.assertIn("key", p.stderr)
        p = self.creds("list", key=None)
        self.assertEqual(p.returncode, 1)
        self.assertIn("openssl rand -hex 32", p.stderr)

    def test_changes_are_audited_by_name_only(self):
        first, second = "first-Secret-value-0123456789", "second-Secret-value-9876543210"
        for args, value in ((("--domain", "api.github.com"), first),
                            (("--domain", "*.example.com", "--header", "X-Api-Key",
                              "--prefix", "Key "), second)):
            p = self.creds("add", "--name", "github", *args, input=value + "\n")
            self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.creds("list").returncode, 0)
        p = self.creds("remove", "--name", "github")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.creds("remove", "--name", "github").returncode, 1)
        lines, blob = read_audit(self.audit)
        self.assertEqual([(l["kind"], l["method"], l["decision"], l["domain"], l["added"],
                           l["removed"], l["changed"]) for l in lines],
                         [("credential", "CREDENTIAL", "add", "api.github.com", ["github"], [],
                           []),
                          ("credential", "CREDENTIAL", "replace", "*.example.com", [],
                           [], ["github"]),
                          ("credential", "CREDENTIAL", "remove", "*.example.com", [],
                           ["github"], [])])
        self.assertIn("'github'", lines[0]["reason"])
        for secret in (first, second):
            for form in (secret, secret.lower(), secret.encode().hex()):
                self.assertNotIn(form.encode(), blob)
        self.assertNotIn(b"Key ", blob)
        p = run("audit", "verify", "--config", self.cfg)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("3 lines", p.stdout)
        p = run("logs", "--config", self.cfg, "--tail", "1")
        self.assertIn("CREDENTIAL clawbox creds: remove credential 'github'", p.stdout)

    def test_unusable_audit_log_leaves_the_store_alone(self):
        blocker = os.path.join(self.dir, "not-a-dir")
        with open(blocker, "w") as f:
            f.write("x")
        self.write_config(os.path.join(blocker, "audit"))
        p = self.creds("add", "--name", "a", "--domain", "x.com", input="value-123456\n")
        self.assertEqual(p.returncode, 1)
        self.assertIn("not-a-dir", p.stderr)
        self.assertIn("the credential store was not changed", p.stderr)
        self.assertIn("No credentials stored.", self.creds("list").stdout)

    def test_failed_audit_write_is_reported(self):
        for i in range(3):
            p = self.creds("add", "--name", f"n{i}", "--domain", "x.com",
                           input=f"value-{i}-123456\n")
            self.assertEqual(p.returncode, 0, p.stderr)
        audit_file = os.path.join(self.audit, "audit.jsonl")
        size = os.path.getsize(audit_file)
        self.assertGreater(size, 1200)

        def small_files():
            # The store (well under 1000 bytes) can still be written; the
            # audit file is already past the limit, so its append fails.
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))

        p = run("creds", "--config", self.cfg, "remove", "--name", "n0",
                env={"CLAWBOX_MASTER_KEY": self.KEY}, preexec_fn=small_files)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("the credential store WAS changed (remove 'n0')", p.stderr)
        self.assertIn("audit line could not be written", p.stderr)
        self.assertNotIn("n0", self.creds("list").stdout)
        self.assertEqual(os.path.getsize(audit_file), size)
        self.assertEqual(run("audit", "verify", "--config", self.cfg).returncode, 0)


class AuditCliTests(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="clawbox-audit-")

    def tearDown(self):
        shutil.rmtree(self.dir)

    def write_chain(self, n):
        import hashlib
        prev = "0" * 64
        lines = []
        for i in range(n):
            entry = {"timestamp": f"2026-01-01T00:00:0{i}.000+00:00",
                     "method": "GET", "url": f"https://example.com/{i}",
                     "status": 200, "duration_ms": i, "prev": prev}
            if i >= 3:
                entry.update(tool="web_fetch" if i % 2 else "echo",
                             decision="denied" if i == 4 else "allowed",
                             reason="host example.com is not in the allowlist" if i == 4 else "")
            line = json.dumps(entry, separators=(",", ":"))
            prev = hashlib.sha256(line.encode()).hexdigest()
            lines.append(line)
        path = os.path.join(self.dir, "audit.jsonl")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def test_verify_and_logs(self):
        path = self.write_chain(3)
        p = run("audit", "verify", "--dir", self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("3 lines", p.stdout)
        p = run("logs", "--dir", self.dir, "--tail", "2")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.splitlines(),
                         ["[2026-01-01T00:00:01.000+00:00] GET https://example.com/1 -> 200 (1ms)",
                          "[2026-01-01T00:00:02.000+00:00] GET https://example.com/2 -> 200 (2ms)"])
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text.replace("example.com/0", "evil.com/0", 1))
        p = run("audit", "verify", "--dir", self.dir)
        self.assertEqual(p.returncode, 1)
        self.assertIn("line 2", p.stderr)

    def test_logs_filters_decision_and_json(self):
        self.write_chain(6)
        p = run("logs", "--dir", self.dir, "--decision", "denied")
        self.assertEqual(p.stdout.splitlines(),
                         ["[2026-01-01T00:00:04.000+00:00] GET https://example.com/4 -> 200 (4ms) "
                          "denied: host example.com is not in the allowlist"])
        p = run("logs", "--dir", self.dir, "--tool", "web_fetch", "--tail", "1")
        self.assertEqual(p.stdout.splitlines(),
                         ["[2026-01-01T00:00:05.000+00:00] GET https://example.com/5 -> 200 (5ms) "
                          "allowed"])
        p = run("logs", "--dir", self.dir, "--since", "2026-01-01T00:00:03", "--json")
        lines = [json.loads(l) for l in p.stdout.splitlines()]
        self.assertEqual([l["duration_ms"] for l in lines], [3, 4, 5])
        self.assertEqual(run("logs", "--dir", self.dir, "--since", "1h").stdout, "")
        p = run("logs", "--dir", self.dir, "--since", "yesterday")
        self.assertEqual(p.returncode, 1)
        self.assertIn("--since must be an ISO 8601 UTC time", p.stderr)


class DoctorTests(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="clawbox-doctor-")
        self.base = os.path.join(self.dir, ".clawbox")
        self.assertEqual(run("init", "--dir", self.base).returncode, 0)
        self.cfg = os.path.join(self.base, "config", "clawbox.toml")
        self.port = free_port()
        with open(self.cfg) as f:
            text = re.sub(r"port = \d+", f"port = {self.port}", f.read())
        with open(self.cfg, "w") as f:
            f.write(text)

    def tearDown(self):
        shutil.rmtree(self.dir)

    def doctor(self):
        p = run("doctor", "--config", self.cfg, "--json",
                env={"HOME": self.dir})
        return p.returncode, {(f["check"], f["level"]): f for f in json.loads(p.stdout)}

    def test_fresh_init_needs_nothing(self):
        p = run("doctor", "--config", self.cfg, env={"HOME": self.dir})
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertIn("ok    compiler: wasm2c, cc and the wasm2c runtime are present", p.stdout)
        self.assertIn(f"ok    port: 127.0.0.1:{self.port} is free", p.stdout)
        self.assertIn("Nothing to fix.", p.stdout)

    def test_readable_config_is_a_failure_with_its_fix(self):
        os.chmod(self.cfg, 0o644)
        rc, f = self.doctor()
        self.assertEqual(rc, 1)
        self.assertEqual(f[("permissions", "fail")]["fix"], f"chmod 600 {self.cfg}")

    def test_store_without_key(self):
        os.unlink(os.path.join(self.base, "master.key"))  # as an older init left it
        with open(os.path.join(self.base, "credentials.enc"), "w") as fh:
            fh.write("x")
        rc, f = self.doctor()
        self.assertEqual(rc, 1)
        self.assertIn("no master key but a credential store exists",
                      f[("master key", "fail")]["message"])
        self.assertIn("openssl rand -hex 32", f[("master key", "fail")]["fix"])

    def test_port_taken_by_another_program_or_by_clawbox(self):
        import socket
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(1)
        rc, f = self.doctor()
        s.close()
        self.assertEqual(rc, 1)
        self.assertIn("Address already in use", f[("port", "fail")]["message"])
        server = Server().start()
        try:
            with open(self.cfg) as fh:
                text = re.sub(r"port = \d+", f"port = {server.port}", fh.read())
            with open(self.cfg, "w") as fh:
                fh.write(text)
            rc, f = self.doctor()
            self.assertIn("a clawbox server is running", f[("port", "ok")]["message"])
        finally:
            server.cleanup()


class InstallTests(unittest.TestCase):
    """meson install (what `make install` runs) into a scratch DESTDIR."""

    def setUp(self):
        self.dest = tempfile.mkdtemp(prefix="clawbox-install-")
        build = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(BIN))))
        p = subprocess.run(["meson", "install", "-C", build, "--no-rebuild", "--quiet",
                            "--destdir", self.dest], capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        bins = [os.path.join(r, f) for r, _, fs in os.walk(self.dest) for f in fs
                if f == "clawbox" and r.endswith("/bin")]
        self.assertEqual(len(bins), 1, bins)
        self.prefix = os.path.dirname(os.path.dirname(bins[0]))

    def tearDown(self):
        shutil.rmtree(self.dest)

    def test_binary_man_pages_and_completion(self):
        p = subprocess.run([os.path.join(self.prefix, "bin", "clawbox"), "--version"],
                           capture_output=True, text=True)
        self.assertEqual(p.stdout.strip(), "clawbox 0.1.0")
        man = os.path.join(self.prefix, "share", "man", "man1")
        for verb in VERBS:
            with open(os.path.join(man, f"clawbox-{verb}.1")) as f:
                text = f.read()
            self.assertTrue(text.startswith(f".TH CLAWBOX-{verb.upper()} 1"), verb)
            usage = run(verb, "--help").stdout.splitlines()[0].replace("Usage: ", "")
            self.assertIn(usage.replace("-", "\\-"), text, verb)
        comp = os.path.join(self.prefix, "share", "bash-completion", "completions", "clawbox")
        script = (f'source {comp}; COMP_WORDS=({BIN} se); COMP_CWORD=1; _clawbox; '
                  f'echo "${{COMPREPLY[@]}}"; COMP_WORDS=({BIN} serve --p); COMP_CWORD=2; '
                  f'_clawbox; echo "${{COMPREPLY[@]}}"')
        out = subprocess.run(["bash", "-c", script], capture_output=True, text=True).stdout
        self.assertEqual(out.splitlines(), ["serve", "--port"])


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
            h = run("help", verb)
            self.assertEqual((h.returncode, h.stdout), (0, p.stdout), verb)

    def test_verbs_listed_are_the_verbs_known(self):
        listed = re.findall(r"^  (\S+)  ", run("--help").stdout, re.M)
        self.assertEqual(sorted(listed), sorted(VERBS + ["list", "add", "remove", "spawn", "kill"]))

    def test_unknown_verb_and_flag(self):
        p = run("frobnicate")
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown command", p.stderr)
        p = run("help", "frobnicate")
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown command 'frobnicate'", p.stderr)
        p = run("serve", "--bogus")
        self.assertEqual(p.returncode, 2)


if __name__ == "__main__":
    main()
