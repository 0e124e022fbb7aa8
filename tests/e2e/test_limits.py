"""The global concurrency limit and slow-request independence."""

import threading
import time

from harness import ServerTestCase, main

SLEEP = "/__test/sleep"


def in_background(fn, *args):
    result = {}

    def run():
        try:
            result["value"] = fn(*args)
        except Exception as e:  # surfaced by the test through result
            result["error"] = e

    t = threading.Thread(target=run)
    t.start()
    return t, result


class SlowRequestTests(ServerTestCase):
    extra_config = "max_concurrent_executions = 4\n"

    def test_slow_request_does_not_delay_health(self):
        t, res = in_background(self.server.request, "POST", SLEEP, {"ms": 5000})
        time.sleep(0.3)
        for _ in range(5):
            start = time.monotonic()
            r = self.server.request("GET", "/health", auth=False)
            self.assertEqual(r.status, 200)
            self.assertLess(time.monotonic() - start, 0.5)
        # Another protected request is not held up either.
        start = time.monotonic()
        self.assertEqual(self.server.request("POST", SLEEP, {"ms": 0}).status, 200)
        self.assertLess(time.monotonic() - start, 0.5)
        self.assertTrue(t.is_alive(), "the slow request finished too early")
        t.join()
        self.assertEqual(res["value"].status, 200)
        self.assertEqual(res["value"].json(), {"slept_ms": 5000})


class ConcurrencyLimitTests(ServerTestCase):
    extra_config = ("max_concurrent_executions = 2\nmax_queued_requests = 2\n"
                    "queue_timeout_ms = 1000\n")

    def occupy(self, ms):
        threads = [in_background(self.server.request, "POST", SLEEP, {"ms": ms})
                   for _ in range(2)]
        time.sleep(0.3)
        return threads

    def test_excess_request_waits_then_gets_503(self):
        busy = self.occupy(3000)
        start = time.monotonic()
        r = self.server.request("POST", SLEEP, {"ms": 0})
        waited = time.monotonic() - start
        self.assert_error(r, 503, "resource_exhausted")
        self.assertEqual(r.headers.get("Retry-After"), "1")
        self.assertGreater(waited, 0.8)
        self.assertLess(waited, 2.0)
        for t, res in busy:
            t.join()
            self.assertEqual(res["value"].status, 200)
        self.assert_healthy()

    def test_queued_request_runs_when_a_slot_frees(self):
        busy = self.occupy(500)
        r = self.server.request("POST", SLEEP, {"ms": 0})
        self.assertEqual(r.status, 200, r.body)
        for t, _ in busy:
            t.join()

    def test_full_queue_rejects_at_once(self):
        busy = self.occupy(3000)
        queued = [in_background(self.server.request, "POST", SLEEP, {"ms": 0})
                  for _ in range(2)]
        time.sleep(0.2)
        start = time.monotonic()
        r = self.server.request("POST", SLEEP, {"ms": 0})
        self.assert_error(r, 503, "resource_exhausted")
        self.assertLess(time.monotonic() - start, 0.5)
        for t, res in queued:
            t.join()
            self.assertEqual(res["value"].status, 503)
        for t, _ in busy:
            t.join()
        # Public routes are outside the limit.
        self.assert_healthy()


if __name__ == "__main__":
    main()
