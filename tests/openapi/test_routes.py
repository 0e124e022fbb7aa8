"""docs/openapi.yaml against the code: the routes the source registers
(every cb_router_add call under src/), their flags, the error codes the
server emits, and a running server's router and answers (status, content
type, headers and body checked against the documented responses).

Fails when a route is added, removed or changed without the same change to
docs/openapi.yaml, and the other way round. Routes under /__test/ are
test-only (CLAWBOX_TEST_ROUTES) and stay out of the document."""

import json
import os
import re
import shutil
import sys
import unittest

import yaml

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SPEC = os.path.join(ROOT, "docs", "openapi.yaml")
SRC = os.path.join(ROOT, "src")
TEST_ONLY_PREFIX = "/__test/"
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")

sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

# cb_router_add(router, "METHOD", "/pattern", handler, flags)
ADD_CALL = re.compile(r"\bcb_router_add\s*\(")
ADD_ARGS = re.compile(
    r'\bcb_router_add\s*\(\s*\w+\s*,\s*"([A-Z]+)"\s*,\s*"(/[^"]*)"\s*,\s*\w+\s*,\s*([\w\s|]+?)\s*\)\s*;')
# The functions that answer with an ApiError; the code is the third argument.
ERROR_CALL = re.compile(
    r"\b(?:cb_http_respond_error_details|cb_http_respond_error|cb__req_fail|cb__req_refused|"
    r"refuse_head)\s*\(")
STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')


def c_sources():
    for dirpath, _, names in os.walk(SRC):
        for n in sorted(names):
            if n.endswith(".c"):
                path = os.path.join(dirpath, n)
                with open(path, encoding="utf-8") as f:
                    yield os.path.relpath(path, ROOT), f.read()


def strip_comments(text):
    return re.sub(r"/\*.*?\*/|//[^\n]*", lambda m: " " * len(m.group(0)), text, flags=re.S)


def call_args(text, start):
    """The top-level arguments of the call whose '(' ends at start, as text."""
    depth, args, cur, i = 1, [], [], start
    while i < len(text) and depth > 0:
        c = text[i]
        if c == '"':
            m = STRING.match(text, i)
            cur.append(m.group(0))
            i = m.end()
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if depth == 1 and c == ",":
            args.append("".join(cur).strip())
            cur = []
        elif depth > 0:
            cur.append(c)
        i += 1
    args.append("".join(cur).strip())
    return args


def source_routes():
    """{(method, pattern): set of flag names} of every cb_router_add call."""
    routes = {}
    for path, text in c_sources():
        text = strip_comments(text)
        for m in ADD_CALL.finditer(text):
            if re.search(r"\bvoid\s+$", text[max(0, m.start() - 40):m.start()]):
                continue  # the definition in src/lib/http/router.c
            a = ADD_ARGS.match(text, m.start())
            if a is None:
                line = text.count("\n", 0, m.start()) + 1
                raise AssertionError(
                    f"{path}:{line}: cannot read this route registration; give cb_router_add a "
                    "literal method and pattern (or teach tests/openapi/test_routes.py the new form)")
            method, pattern, flags = a.groups()
            if pattern.startswith(TEST_ONLY_PREFIX):
                continue
            key = (method, pattern)
            if key in routes:
                raise AssertionError(f"{path}: route {method} {pattern} is registered twice")
            routes[key] = {f.strip() for f in flags.split("|")} - {"0"}
    return routes


def source_error_codes():
    """The literal ApiError codes the server's C code answers with."""
    codes = set()
    for _, text in c_sources():
        text = strip_comments(text)
        for m in ERROR_CALL.finditer(text):
            args = call_args(text, m.end())
            if len(args) >= 3:
                codes.update(STRING.findall(args[2]))
    return codes


def load_spec():
    with open(SPEC, encoding="utf-8") as f:
        return yaml.safe_load(f)


def spec_operations(spec):
    """{(method, path): operation} of every operation in `paths`."""
    ops = {}
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method.upper() in METHODS + ("HEAD", "OPTIONS", "TRACE"):
                ops[(method.upper(), path)] = op
    return ops


def is_public(spec, op):
    return op.get("security", spec.get("security")) == []


def takes_json(op):
    return "application/json" in op.get("requestBody", {}).get("content", {})


def resolve(spec, node):
    """node with its local $ref followed."""
    while isinstance(node, dict) and "$ref" in node:
        target = spec
        for part in node["$ref"].split("/")[1:]:
            target = target[part]
        node = target
    return node


JSON_TYPES = {"null": type(None), "boolean": bool, "object": dict, "array": list,
              "string": str, "number": (int, float)}


def has_type(value, name):
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number" and isinstance(value, bool):
        return False
    return isinstance(value, JSON_TYPES[name])


def schema_errors(spec, schema, value, where="body"):
    """The ways value breaks schema, for the JSON Schema keywords
    docs/openapi.yaml uses (a lint rule would be no stronger: Redocly does
    not see the server's answers)."""
    schema = resolve(spec, schema)
    errors = []
    types = schema.get("type")
    if types is not None:
        types = types if isinstance(types, list) else [types]
        if not any(has_type(value, t) for t in types):
            return [f"{where}: {value!r} is not of type {types}"]
    if "const" in schema and value != schema["const"]:
        errors.append(f"{where}: {value!r} is not {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, (int, float)) and "minimum" in schema and value < schema["minimum"]:
        errors.append(f"{where}: {value!r} is below {schema['minimum']}")
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
        errors.append(f"{where}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{where}: missing {key!r}")
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                errors += schema_errors(spec, sub, value[key], f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errors += schema_errors(spec, schema["items"], item, f"{where}[{i}]")
    for sub in schema.get("allOf", []):
        errors += schema_errors(spec, sub, value, where)
    if "oneOf" in schema:
        matches = [sub for sub in schema["oneOf"] if not schema_errors(spec, sub, value, where)]
        if len(matches) != 1:
            errors.append(f"{where}: {value!r} matches {len(matches)} of oneOf")
    return errors


class SourceAgreesWithSpec(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.spec = load_spec()
        cls.ops = spec_operations(cls.spec)
        cls.routes = source_routes()

    def test_found_the_routes(self):
        self.assertIn(("GET", "/health"), self.routes, "the route parser found nothing")

    def test_every_route_is_documented(self):
        missing = sorted(set(self.routes) - set(self.ops))
        self.assertEqual(missing, [], "routes the server registers but docs/openapi.yaml lacks")

    def test_every_documented_route_exists(self):
        extra = sorted(set(self.ops) - set(self.routes))
        self.assertEqual(extra, [], "operations in docs/openapi.yaml that no route serves")

    def test_public_routes_need_no_auth(self):
        for key, flags in sorted(self.routes.items()):
            if key in self.ops:
                self.assertEqual(is_public(self.spec, self.ops[key]), "CB_ROUTE_PUBLIC" in flags,
                                 f"{key}: CB_ROUTE_PUBLIC and `security: []` must agree")

    def test_json_routes_take_json(self):
        for key, flags in sorted(self.routes.items()):
            if key in self.ops:
                self.assertEqual(takes_json(self.ops[key]), "CB_ROUTE_JSON" in flags,
                                 f"{key}: CB_ROUTE_JSON and an application/json requestBody "
                                 "must agree")

    def test_error_codes_are_the_emitted_ones(self):
        documented = set(
            self.spec["components"]["schemas"]["ApiError"]["properties"]["code"]["enum"])
        self.assertEqual(documented, source_error_codes(),
                         "ApiError.code in docs/openapi.yaml and the codes in src/ differ")

    def test_path_parameters_are_declared(self):
        for (method, path), op in self.ops.items():
            names = set(re.findall(r"\{(\w+)\}", path))
            declared = {p["name"] for p in op.get("parameters", []) if p.get("in") == "path"}
            self.assertEqual(names, declared, f"{method} {path}")


class RunningServerAgreesWithSpec(unittest.TestCase):
    """Asks a real server's router: every documented operation is routed, and
    every other method on a documented path is 405 with the documented ones
    in Allow."""

    @classmethod
    def setUpClass(cls):
        bin_path = os.environ.get("CLAWBOX_BIN")
        if not bin_path or not os.access(bin_path, os.X_OK):
            raise unittest.SkipTest("CLAWBOX_BIN is not set to a built clawbox")
        import harness

        cls.spec = load_spec()
        cls.ops = spec_operations(cls.spec)
        cls.server = harness.Server(env={"CLAWBOX_TEST_ROUTES": "0"})
        tools = os.environ.get("CLAWBOX_E2E_TOOLS", os.path.join(ROOT, "build", "tools", "wasm"))
        tool_dir = os.path.join(cls.server.dir, "tools")
        os.makedirs(tool_dir)
        for name in ("echo.wasm", "echo.json"):
            shutil.copy(os.path.join(tools, name), tool_dir)
        cls.server.add_sandbox(f'cache_dir = "{harness.CACHE_DIR}"\n')
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    @staticmethod
    def concrete(path):
        return re.sub(r"\{\w+\}", "x", path)

    def test_documented_operations_are_routed(self):
        for (method, path), op in sorted(self.ops.items()):
            r = self.server.request(method, self.concrete(path), auth=False)
            expected = 200 if is_public(self.spec, op) else 401
            self.assertEqual(r.status, expected, f"{method} {path}: {r.body!r}")

    def test_other_methods_are_not_allowed(self):
        paths = {}
        for method, path in self.ops:
            paths.setdefault(path, set()).add(method)
        for path, methods in sorted(paths.items()):
            for method in METHODS:
                if method in methods:
                    continue
                r = self.server.request(method, self.concrete(path), auth=False)
                self.assertEqual(r.status, 405, f"{method} {path}: {r.body!r}")
                allow = {m.strip() for m in r.headers.get("Allow", "").split(",")}
                self.assertEqual(allow, methods, f"Allow of {path}")

    def check(self, method, path, body=None, headers=None, auth=True):
        """Sends a request and checks the answer against the operation's
        documented responses; returns the answer."""
        r = self.server.request(method, path, body=body, headers=headers, auth=auth)
        key = next(k for k in self.ops
                   if k[0] == method and re.fullmatch(re.sub(r"\{\w+\}", "[^/]+", k[1]), path))
        what = f"{method} {path} answered {r.status} {r.body[:300]!r}"
        responses = self.ops[key]["responses"]
        self.assertIn(str(r.status), list(responses), f"{what}: status not documented")
        documented = resolve(self.spec, responses[str(r.status)])
        for name in documented.get("headers", {}):
            self.assertIn(name, r.headers, f"{what}: header {name} missing")
        ctype = r.headers.get("Content-Type")
        self.assertIn(ctype, documented.get("content", {}), f"{what}: content type")
        if ctype == "application/json":
            schema = documented["content"][ctype]["schema"]
            self.assertEqual(schema_errors(self.spec, schema, json.loads(r.body)), [], what)
        return r

    def test_answers_are_documented(self):
        json_ct = {"Content-Type": "application/json"}
        self.check("GET", "/health", auth=False)
        self.check("GET", "/metrics", auth=False)
        self.check("GET", "/tools")
        self.check("GET", "/tools", auth=False)
        self.check("GET", "/tools/echo")
        self.check("GET", "/tools/nope")
        manifest = {"tool": {"name": "echo", "description": "echoes"},
                    "network": {"allowlist": ["example.com"]}, "input_schema": {"type": "object"}}
        self.assertEqual(self.check("POST", "/tools/register", manifest).status, 200)
        self.check("GET", "/tools/echo")
        self.check("POST", "/tools/register", {"tool": {"name": "a b"}})
        self.check("POST", "/tools/register", {"tool": {"name": 5}})
        self.check("POST", "/tools/register", {"tool": {"name": "nope"}})
        self.check("POST", "/tools/register", "{", headers=json_ct)
        self.check("POST", "/tools/register", "{}")
        self.check("POST", "/tools/reload")
        self.assertEqual(self.check("POST", "/execute", {"tool": "echo", "params": [1]}).status,
                         200)
        self.check("POST", "/execute", {"tool": "nope"})
        self.check("POST", "/execute", [])
        self.check("POST", "/execute", {"tool": "echo", "capabilities": 1})
        self.check("POST", "/execute", {"tool": "echo"}, auth=False)
        self.check("POST", "/execute", "x" * 64, headers=json_ct)
        self.check("POST", "/execute", "{}", headers={"Content-Type": "text/plain"})


if __name__ == "__main__":
    unittest.main(verbosity=2)
