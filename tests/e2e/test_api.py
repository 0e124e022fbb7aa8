"""HTTP API core: auth, routing errors, body errors, health, metrics."""

import http.client
import json
import socket
import subprocess

from harness import SHIPPED_BIN, Server, ServerTestCase, main

SLEEP = "/__test/sleep"


def raw_exchange(port, head):
    """Sends raw request bytes, returns (status, body) of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head.encode())
        resp = http.client.HTTPResponse(s)
        resp.begin()
        return resp.status, resp.read()


class AuthTests(ServerTestCase):
    def test_missing_header(self):
        self.assert_error(self.server.request("POST", SLEEP, {"ms": 0}, auth=False),
                          401, "auth_required")

    def test_wrong_scheme(self):
        r = self.server.request("POST", SLEEP, {"ms": 0},
                                headers={"Authorization": f"Basic {self.server.token}"})
        self.assert_error(r, 401, "auth_required")

    def test_wrong_token(self):
        r = self.server.request("POST", SLEEP, {"ms": 0},
                                headers={"Authorization": "Bearer " + "0" * 64})
        self.assert_error(r, 401, "auth_required")
        self.assertEqual(r.headers.get("WWW-Authenticate"), "Bearer")

    def test_empty_and_prefix_tokens(self):
        for value in ("Bearer ", "Bearer " + self.server.token[:-1],
                      "Bearer " + self.server.token + "x", "bearer " + self.server.token,
                      "Bearer  " + self.server.token):
            r = self.server.request("POST", SLEEP, {"ms": 0}, headers={"Authorization": value})
            self.assert_error(r, 401, "auth_required")

    def test_right_token(self):
        r = self.server.request("POST", SLEEP, {"ms": 1})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json(), {"slept_ms": 1})

    def test_public_routes_need_no_auth(self):
        self.assertEqual(self.server.request("GET", "/health", auth=False).status, 200)
        self.assertEqual(self.server.request("GET", "/metrics", auth=False).status, 200)

    def test_unauthenticated_big_body_is_refused_unread(self):
        # Only the headers are sent: the answer must come without the body.
        status, body = raw_exchange(self.server.port,
                                    "POST /__test/sleep HTTP/1.1\r\nHost: x\r\n"
                                    "Content-Type: application/json\r\n"
                                    "Content-Length: 5000000\r\n\r\n")
        self.assertEqual(status, 401)
        self.assertEqual(json.loads(body)["code"], "auth_required")
        self.assert_healthy()


class RoutingTests(ServerTestCase):
    def test_unknown_path_is_404(self):
        self.assert_error(self.server.request("GET", "/nope"), 404, "not_found")
        self.assert_error(self.server.request("GET", "/health/x"), 404, "not_found")
        self.assert_error(self.server.request("GET", "/../etc/passwd", auth=False), 404,
                          "not_found")

    def test_wrong_method_is_405_with_allow(self):
        r = self.server.request("POST", "/health", auth=False)
        self.assert_error(r, 405, "method_not_allowed")
        self.assertEqual(r.headers.get("Allow"), "GET")
        r = self.server.request("DELETE", SLEEP)
        self.assert_error(r, 405, "method_not_allowed")
        self.assertEqual(r.headers.get("Allow"), "POST")

    def test_every_response_has_a_request_id(self):
        ids = set()
        for method, path in (("GET", "/health"), ("GET", "/metrics"), ("GET", "/nope"),
                             ("POST", SLEEP)):
            r = self.server.request(method, path, {"ms": 0} if method == "POST" else None)
            rid = r.headers.get("X-Request-Id")
            self.assertRegex(rid, r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-"
                                  r"[0-9a-f]{12}$")
            ids.add(rid)
        self.assertEqual(len(ids), 4)

    def test_keep_alive_survives_many_requests(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        for _ in range(20):
            r = self.server.request("GET", "/health", auth=False, conn=conn)
            self.assertEqual(r.status, 200)
        conn.close()


class BodyTests(ServerTestCase):
    def test_declared_body_over_limit_is_413_unread(self):
        status, body = raw_exchange(self.server.port,
                                    "POST /__test/sleep HTTP/1.1\r\nHost: x\r\n"
                                    f"Authorization: Bearer {self.server.token}\r\n"
                                    "Content-Type: application/json\r\n"
                                    f"Content-Length: {10 * 1024 * 1024 + 1}\r\n\r\n")
        self.assertEqual(status, 413)
        self.assertEqual(json.loads(body)["code"], "payload_too_large")
        self.assert_healthy()

    def test_body_at_limit_is_read(self):
        body = b" " * (10 * 1024 * 1024 - 8) + b'{"ms":0}'
        r = self.server.request("POST", SLEEP, body, headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 200, r.body)

    def test_chunked_body_over_limit_is_413(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        chunk = b"x" * 65536

        def gen():
            for _ in range(200):
                yield chunk

        conn.request("POST", SLEEP, body=gen(), encode_chunked=True,
                     headers={"Authorization": f"Bearer {self.server.token}",
                              "Content-Type": "application/json",
                              "Transfer-Encoding": "chunked"})
        r = conn.getresponse()
        self.assertEqual(r.status, 413)
        self.assertEqual(json.loads(r.read())["code"], "payload_too_large")
        conn.close()
        self.assert_healthy()

    def test_non_json_content_type_is_415(self):
        for ct in ("text/plain", "application/jsonx", "application/x-www-form-urlencoded"):
            r = self.server.request("POST", SLEEP, '{"ms":0}', headers={"Content-Type": ct})
            self.assert_error(r, 415, "unsupported_media_type")
        r = self.server.request("POST", SLEEP, '{"ms":0}')
        self.assert_error(r, 415, "unsupported_media_type")

    def test_json_content_type_with_charset_is_accepted(self):
        r = self.server.request("POST", SLEEP, '{"ms":0}',
                                headers={"Content-Type": "Application/JSON; charset=utf-8"})
        self.assertEqual(r.status, 200, r.body)

    def test_malformed_json_is_400_with_position(self):
        r = self.server.request("POST", SLEEP, '{\n  "ms": 1,,\n}',
                                headers={"Content-Type": "application/json"})
        self.assert_error(r, 400, "invalid_request")
        self.assertIn("line 2", r.json()["error"])
        self.assertIn("column", r.json()["error"])
        for bad in ("", "{", "nul", '{"ms": 1} trailing', '{"ms":1,"ms":2}', "\xff"):
            r = self.server.request("POST", SLEEP, bad.encode("latin-1"),
                                    headers={"Content-Type": "application/json"})
            self.assert_error(r, 400, "invalid_request")
        self.assert_healthy()

    def test_wrong_shape_is_422_naming_the_field(self):
        cases = [({}, "ms"), ({"ms": "10"}, "ms"), ({"ms": -1}, "ms"), ({"ms": 1.5}, "ms"),
                 ({"ms": 10 ** 9}, "ms"), ([], ""), ("str", "")]
        for body, field in cases:
            r = self.server.request("POST", SLEEP, json.dumps(body),
                                    headers={"Content-Type": "application/json"})
            self.assert_error(r, 422, "invalid_request")
            self.assertEqual(r.json()["details"], {"field": field})
            if field:
                self.assertIn(f"'{field}'", r.json()["error"])

    def test_unknown_fields_are_ignored(self):
        r = self.server.request("POST", SLEEP, {"ms": 0, "extra": [1, 2]})
        self.assertEqual(r.status, 200)


class HealthAndMetricsTests(ServerTestCase):
    def test_health_shape(self):
        r = self.server.request("GET", "/health", auth=False)
        self.assertEqual(r.status, 200)
        self.assertTrue(r.headers["Content-Type"].startswith("application/json"))
        h = r.json()
        self.assertIn(h["status"], ("healthy", "degraded"))
        self.assertEqual(h["status"], "healthy")
        self.assertEqual(h["version"], "0.1.0")
        self.assertIsInstance(h["uptime_seconds"], int)
        self.assertEqual(h["components"]["state_db"]["status"], "healthy")

    def test_metrics_pass_promtool(self):
        self.server.request("GET", "/nope")
        self.server.request("POST", SLEEP, {"ms": 0})
        r = self.server.request("GET", "/metrics", auth=False)
        self.assertEqual(r.status, 200)
        self.assertTrue(r.headers["Content-Type"].startswith("text/plain"))
        text = r.body.decode()
        self.assertIn('clawbox_http_requests_total{route="/__test/sleep",status="200"}', text)
        self.assertIn('clawbox_http_requests_total{route="unmatched",status="404"}', text)
        self.assertIn("clawbox_http_request_duration_seconds_bucket", text)
        p = subprocess.run(["promtool", "check", "metrics"], input=r.body,
                           capture_output=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual((p.stdout + p.stderr).strip(), b"")

    def test_secrets_never_logged(self):
        self.server.request("POST", SLEEP + "?token=" + self.server.token, {"ms": 0})
        self.server.request("POST", SLEEP, {"ms": 0},
                            headers={"Authorization": "Bearer wrong-token-value"})
        log = self.server.read_log()
        self.assertIn('"msg":"http request"', log)
        self.assertNotIn(self.server.token, log)
        self.assertNotIn("wrong-token-value", log)


class ShippedBinaryTests(ServerTestCase):
    def test_shipped_binary_has_no_test_route(self):
        shipped = Server(binary=SHIPPED_BIN).start()
        try:
            self.assert_error(shipped.request("POST", SLEEP, {"ms": 0}), 404, "not_found")
        finally:
            shipped.cleanup()
        self.assertEqual(self.server.request("POST", SLEEP, {"ms": 0}).status, 200)


if __name__ == "__main__":
    main()
