"""Unix socket listener, graceful shutdown and start-up failures."""

import os
import signal
import socket
import stat
import subprocess
import threading
import time
import unittest

from harness import BIN, Server, main

SLEEP = "/__test/sleep"


class UnixSocketTests(unittest.TestCase):
    def setUp(self):
        self.server = Server(unix_socket=True)

    def tearDown(self):
        self.server.cleanup()

    def test_socket_mode_auth_and_removal(self):
        self.server.start()
        st = os.lstat(self.server.socket_path)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.server.use_unix = True
        r = self.server.request("POST", SLEEP, {"ms": 0}, auth=False)
        self.assertEqual(r.status, 401)
        r = self.server.request("POST", SLEEP, {"ms": 0})
        self.assertEqual(r.status, 200)
        self.assertEqual(self.server.request("GET", "/health", auth=False).status, 200)
        self.assertEqual(self.server.stop(), 0)
        self.assertFalse(os.path.exists(self.server.socket_path))

    def test_refuses_to_delete_a_regular_file(self):
        with open(self.server.socket_path, "w") as f:
            f.write("precious")
        self.server.start(wait=False)
        self.assertEqual(self.server.proc.wait(10), 1)
        self.assertIn("not a socket", self.server.read_log())
        with open(self.server.socket_path) as f:
            self.assertEqual(f.read(), "precious")

    def test_replaces_a_stale_socket(self):
        s = socket.socket(socket.AF_UNIX)
        s.bind(self.server.socket_path)
        s.close()
        self.server.start()
        self.assertEqual(stat.S_IMODE(os.lstat(self.server.socket_path).st_mode), 0o600)

    def test_refuses_a_live_socket(self):
        s = socket.socket(socket.AF_UNIX)
        s.bind(self.server.socket_path)
        s.listen(1)
        try:
            self.server.start(wait=False)
            self.assertEqual(self.server.proc.wait(10), 1)
            self.assertIn("in use", self.server.read_log())
            self.assertTrue(os.path.exists(self.server.socket_path))
        finally:
            s.close()


class ShutdownTests(unittest.TestCase):
    def tearDown(self):
        self.server.cleanup()

    def test_sigterm_lets_in_flight_requests_finish(self):
        self.server = Server().start()
        result = {}

        def slow():
            result["resp"] = self.server.request("POST", SLEEP, {"ms": 1500})

        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.3)
        self.server.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", self.server.port), timeout=2).close()
        t.join()
        self.assertEqual(result["resp"].status, 200)
        self.assertEqual(self.server.proc.wait(10), 0)
        log = self.server.read_log()
        self.assertIn("SIGTERM", log)
        self.assertIn("shutdown complete", log)

    def test_sigint_exits_zero(self):
        self.server = Server().start()
        self.assertEqual(self.server.stop(signal.SIGINT), 0)

    def test_grace_period_bounds_shutdown(self):
        self.server = Server("shutdown_grace_ms = 300\n").start()
        t = threading.Thread(target=lambda: self.server.request("POST", SLEEP, {"ms": 4000}))
        t.start()
        time.sleep(0.3)
        start = time.monotonic()
        self.server.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.server.proc.wait(10), 0)
        self.assertLess(time.monotonic() - start, 2.5)
        self.assertIn("still running", self.server.read_log())
        t.join()


class StartupFailureTests(unittest.TestCase):
    def tearDown(self):
        self.server.cleanup()

    def test_corrupt_state_database(self):
        self.server = Server()
        os.makedirs(os.path.join(self.server.dir, "data"))
        with open(os.path.join(self.server.dir, "data", "state.db"), "wb") as f:
            f.write(os.urandom(8192))
        self.server.start(wait=False)
        self.assertEqual(self.server.proc.wait(15), 1)
        self.assertIn("corrupt", self.server.read_log())

    def test_port_in_use(self):
        self.server = Server()
        with socket.socket() as s:
            s.bind(("127.0.0.1", self.server.port))
            s.listen(1)
            self.server.start(wait=False)
            self.assertEqual(self.server.proc.wait(10), 1)
        self.assertIn("cannot listen", self.server.read_log())

    def test_credential_key_file(self):
        self.server = Server()
        key = os.path.join(self.server.dir, "master.key")
        with open(key, "w") as f:
            f.write("ab" * 32 + "\n")
        os.chmod(key, 0o644)
        with open(self.server.config_path, "a") as f:
            f.write(f'[credentials]\nkey_file = "{key}"\n'
                    f'store_path = "{self.server.dir}/creds.enc"\n')
        self.server.start(wait=False)
        self.assertEqual(self.server.proc.wait(15), 1)
        self.assertIn(key, self.server.read_log())
        os.chmod(key, 0o600)
        self.server.start()
        self.assertEqual(self.server.stop(), 0)

    def test_changeme_token_refused(self):
        self.server = Server()
        self.server.env["CLAWBOX_AUTH_TOKEN"] = "changeme"
        self.server.start(wait=False)
        self.assertEqual(self.server.proc.wait(10), 1)
        self.assertIn("changeme", self.server.read_log())


if __name__ == "__main__":
    main()
