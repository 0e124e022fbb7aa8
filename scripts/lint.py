"""The project's own checksrc (run through scripts/lint.sh): the rules of
docs/development.md "Lint" that the compiler and clang-format cannot see.

Each finding is printed as `file:line: rule: text`. Findings listed in
scripts/lint-allow.txt are tolerated (each entry says why and until when).
Exit status: 0 clean, 1 findings, 2 usage or allowlist errors."""

import os
import re
import subprocess
import sys

# Rule: banned-call. Conventions point 6, plus the parsers and shells that
# trust NUL termination or run a shell.
BANNED_WHY = {
    "sprintf": "unbounded; use snprintf or cb_buf_printf",
    "vsprintf": "unbounded; use vsnprintf",
    "strcpy": "unbounded; use a length and memcpy, or cb_xstrdup",
    "strcat": "unbounded; use a struct cb_buf",
    "strtok": "hidden state, writes into its input; split by pointer and length",
    "atoi": "no error detection; use a bounded parser",
    "strtol": "needs NUL termination and errno care; use a bounded parser",
    "sscanf": "needs NUL termination, overflow is undefined; use a bounded parser",
    "system": "runs a shell; exec the program with an argument vector",
    "popen": "runs a shell; exec the program with an argument vector",
}
BANNED = tuple(BANNED_WHY)
# Rule: getenv. The environment is read only by the configuration, the
# master-key and the home modules, so that every variable clawbox obeys is
# in one place ($HOME is core/home's).
GETENV_OWNERS = ("src/lib/config/", "src/lib/secrets/key.c", "src/lib/core/home.c")
# Rule: home-path. The one module that knows where the clawbox home is.
HOME_OWNERS = ("src/lib/core/home.c", "src/lib/core/home.h")
# Rule: prefix. The tool shim is compiled into tools, not into libclawbox:
# its non-static names are fixed by wasm2c's import ABI.
PREFIX_EXEMPT = ("src/lib/sandbox/native/tool_shim.c",)
# Rules: unity-define, unity-static. The build is a unity build (Meson
# concatenates up to unity_size .c files of a target into one translation
# unit), so the .c files of one target share one file scope and one macro
# namespace. The compiler refuses most clashes (two static functions, two
# struct tags of one name), but not these: two `static int n;` merge into
# one variable (tentative definitions), an identical #define twice is
# silent, and a .c file's macro rewrites the same word in the files after
# it. The trees whose files may share a translation unit (libclawbox; the
# CLI, with clawbox-test's extra file); the tool shim is not in the library.
UNITY_TREES = {
    "src/lib/": ("src/lib/",),
    "src/cli/": ("src/cli/", "src/lib/api/test_routes.c"),
}
UNITY_EXEMPT = PREFIX_EXEMPT

BANNED_RE = re.compile(r"\b(" + "|".join(BANNED) + r")\s*\(")
GETENV_RE = re.compile(r"\bgetenv\s*\(")
BUF_INIT_RE = re.compile(r"\bcb_buf_init\s*\(")
HOME_RE = re.compile(r"(^|[/~])\.clawbox\b")
NUMBER_RE = re.compile(r"\b\d[\w.]*")
IDENT_BEFORE_PAREN_RE = re.compile(r"([A-Za-z_]\w*)\s*$")


def blank(text):
    """Same length and line breaks, every other character a space."""
    return re.sub(r"[^\n]", " ", text)


TOKEN_RE = re.compile(r"""
    ^[ \t]*\#(?:[^\n]*\\\n)*[^\n]*     # a preprocessor line, continuations included
  | //[^\n]*                              # a line comment
  | /\*.*?(?:\*/|\Z)                      # a block comment
  | "(?:[^"\\\n]|\\.)*"?                  # a string literal
  | '(?:[^'\\\n]|\\.)*'?                  # a character literal
""", re.S | re.M | re.X)
STRING_RE = re.compile(r'"((?:[^"\\\n]|\\.)*)"')


def strip(src):
    """Returns (code, strings): the source with comments, string and
    character literals and preprocessor lines blanked (line numbers kept),
    and the string literals, those of #define bodies included, as
    (offset, text)."""
    strings = []

    def repl(m):
        tok = m.group(0)
        if tok.lstrip(" \t").startswith("#"):
            strings.extend((m.start() + s.start(), s.group(1)) for s in STRING_RE.finditer(tok))
            return blank(tok)
        if tok.startswith('"'):
            strings.append((m.start(), tok[1:-1] if tok.endswith('"') and len(tok) > 1 else tok[1:]))
        if tok[0] in "\"'":
            return tok[0] + blank(tok[1:-1]) + tok[-1] if len(tok) > 1 else tok
        return blank(tok)

    return TOKEN_RE.sub(repl, src), strings


def line_of(src, offset):
    return src.count("\n", 0, offset) + 1


def call_args(code, open_paren):
    """The top-level arguments of the call whose '(' is at open_paren."""
    depth, args, start = 0, [], open_paren + 1
    for k in range(open_paren, len(code)):
        ch = code[k]
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0:
                args.append(code[start:k])
                return args
        elif ch == "," and depth == 1:
            args.append(code[start:k])
            start = k + 1
    return args


def drop_attributes(head):
    """head without __attribute__((...)) groups."""
    while True:
        m = re.search(r"__attribute__\s*\(", head)
        if not m:
            return head
        depth, k = 0, m.end() - 1
        for k in range(m.end() - 1, len(head)):
            depth += {"(": 1, ")": -1}.get(head[k], 0)
            if depth == 0:
                break
        head = head[:m.start()] + blank(head[m.start():k + 1]) + head[k + 1:]


def function_definitions(code):
    """(offset of the name, name, is_static) for each function defined at
    file scope."""
    found, depth, head_start = [], 0, 0
    for k, ch in enumerate(code):
        if ch == "{":
            if depth == 0:
                head = drop_attributes(code[head_start:k])
                paren = head.find("(")
                if (paren > 0 and head.rstrip().endswith(")") and "=" not in head
                        and not re.match(r"\s*(struct|union|enum|typedef)\b", head)):
                    m = IDENT_BEFORE_PAREN_RE.search(head[:paren])
                    if m:
                        found.append((head_start + m.start(1), m.group(1),
                                      re.search(r"\bstatic\b", head) is not None))
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                head_start = k + 1
        elif ch == ";" and depth == 0:
            head_start = k + 1
    return found


def check_file(path, findings, src=None):
    if src is None:
        with open(path, encoding="utf-8", errors="replace") as f:
            src = f.read()
    code, strings = strip(src)

    def add(offset, rule, text):
        findings.append((path, line_of(src, offset), rule, text))

    for m in BANNED_RE.finditer(code):
        add(m.start(1), "banned-call", f"{m.group(1)}() is banned (conventions.md point 6): "
            + BANNED_WHY[m.group(1)])
    if not path.startswith(GETENV_OWNERS):
        for m in GETENV_RE.finditer(code):
            add(m.start(), "getenv", "getenv() outside the config, key and home modules; "
                "read the setting through the configuration")
    for m in BUF_INIT_RE.finditer(code):
        args = call_args(code, m.end() - 1)
        if len(args) == 2:
            rest = NUMBER_RE.sub("", args[1]).strip()
            literal = not re.search(r"[A-Za-z_]", rest) and args[1].strip() != "0"
            if literal:
                add(m.start(), "buf-max", f"cb_buf_init with a literal maximum "
                    f"({' '.join(args[1].split())}); name the limit")
    if not path.startswith(HOME_OWNERS):
        for off, text in strings:
            # Paths, not prose: help and error texts may name ~/.clawbox.
            if HOME_RE.search(text) and not re.search(r"\s", text):
                add(off, "home-path", f'"{text}": the clawbox home is core/home\'s to name')
    if path.startswith("src/lib/") and path.endswith(".c") and path not in PREFIX_EXEMPT:
        for off, name, is_static in function_definitions(code):
            if not is_static and not name.startswith("cb_"):
                add(off, "prefix", f"{name}() is not static and not cb_/cb__-prefixed")


MACRO_RE = re.compile(r"^[ \t]*#[ \t]*(define|undef)[ \t]+([A-Za-z_]\w*)", re.M)
IDENT_RE = re.compile(r"\b[A-Za-z_]\w*\b")
COMMENT_OR_LITERAL_RE = re.compile(
    r"""//[^\n]*|/\*.*?(?:\*/|\Z)|"(?:[^"\\\n]|\\.)*"?|'(?:[^'\\\n]|\\.)*'?""", re.S)


def file_scope_statics(code):
    """(offset, name, initialised) for each variable declared `static` at
    file scope (code as strip() returns it)."""
    found, depth, start, func_body = [], 0, 0, False
    for k, ch in enumerate(code):
        if ch == "{":
            if depth == 0:
                head = drop_attributes(code[start:k]).rstrip()
                func_body = head.endswith(")") and "=" not in head
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0 and func_body:
                start, func_body = k + 1, False
        elif ch == ";" and depth == 0:
            stmt = drop_attributes(code[start:k])
            if re.match(r"\s*static\b", stmt):
                init = "=" in stmt
                # struct bodies, initialisers and array bounds, innermost first
                while True:
                    inner = re.sub(r"\{[^{}]*\}|\[[^\[\]]*\]", lambda m: blank(m.group(0)), stmt)
                    if inner == stmt:
                        break
                    stmt = inner
                if "(" in stmt.split("=")[0]:  # a prototype (or a function pointer)
                    start = k + 1
                    continue
                for part in re.finditer(r"[^,]+", stmt):
                    names = list(IDENT_RE.finditer(part.group(0).split("=")[0]))
                    if names:
                        found.append((start + part.start() + names[-1].start(),
                                      names[-1].group(0), init))
            start = k + 1
    return found


def check_unity(sources, findings):
    """The unity-define and unity-static rules over {path: text}, each
    tree of UNITY_TREES on its own."""
    info = {}
    for path, src in sources.items():
        macros = {}
        for m in MACRO_RE.finditer(src):
            macros.setdefault(m.group(2), []).append((m.group(1), m.start(2)))
        # The words the file uses: comments and literals aside, preprocessor
        # lines included, the name a #define or #undef line is about aside.
        text = MACRO_RE.sub(" ", COMMENT_OR_LITERAL_RE.sub(" ", src))
        info[path] = (src, macros, set(IDENT_RE.findall(text)), file_scope_statics(strip(src)[0]))

    def add(path, offset, rule, text):
        findings.append((path, line_of(info[path][0], offset), rule, text))

    for tree, prefixes in UNITY_TREES.items():
        files = sorted(p for p in info if p.startswith(prefixes) and p.endswith(".c")
                       and p not in UNITY_EXEMPT)
        for path in files:
            _, macros, _, statics = info[path]
            for name, lines in macros.items():
                defines = [off for kind, off in lines if kind == "define"]
                if not defines:
                    add(path, lines[0][1], "unity-define", f"#undef {name} of a macro this "
                        "file does not define: in a unity build the files after it lose it")
                    continue
                others = [p for p in files
                          if p != path and (name in info[p][1] or name in info[p][2])]
                if others:
                    add(path, defines[0], "unity-define", f"{name} is also defined or used in "
                        f"{', '.join(others)}, in one translation unit with this file in a unity "
                        "build: name it for this file")
            for off, name, init in statics:
                others = [p for p in files
                          if p != path and any(n == name for _, n, _ in info[p][3])]
                if others:
                    add(path, off, "unity-static", f"static {name} is also a file-scope static of "
                        f"{', '.join(others)}"
                        + ("" if init else ", and uninitialised: a unity build merges them silently")
                        + "; name it for this file")


def load_allow(path):
    """Entries `rule file [word]`; '#' starts a comment."""
    allow = []
    with open(path) as f:
        for n, raw in enumerate(f, 1):
            parts = raw.split("#", 1)[0].split()
            if not parts:
                continue
            if len(parts) not in (2, 3):
                sys.exit(f"{path}:{n}: want `rule file [word]`")
            allow.append([parts[0], parts[1], parts[2] if len(parts) == 3 else None, 0, n])
    return allow


def allowed(allow, finding):
    path, _, rule, text = finding
    for a in allow:
        if a[0] == rule and a[1] == path and (a[2] is None or a[2] in text):
            a[3] += 1
            return True
    return False


SELF_TEST_PROBE = r'''#include <stdio.h>
#define HOME_DIR "/.clawbox"
/* sprintf( and getenv( in a comment, "/.clawbox" too */
static int ok(void) { return 0; }
int helper(int a) { char b[4]; sprintf(b, "%d", a); return atoi("1") + strtol("2", 0, 10); }
__attribute__((weak)) void also_bad(void)
{
    const char *s = "sprintf(getenv(";
    const char *help = "default ~/.clawbox/token";
    struct cb_buf b;
    cb_buf_init(&b, 1u << 20);
    cb_buf_init(&b, n + 1);
    cb_buf_init(&b, 0);
    cb_buf_init(&b, BIG_MAX);
    getenv("X");
    system("ls");
}
static const struct x table[] = {{1}, {2}};
int cb_fine(void) { return ok(); }
void cb__fine(void) {}
'''

SELF_TEST_WANT = {
    "src/lib/probe.c": [(2, "home-path"), (5, "banned-call"), (5, "banned-call"),
                        (5, "banned-call"), (5, "prefix"), (6, "prefix"), (11, "buf-max"),
                        (15, "getenv"), (16, "banned-call")],
    "src/cli/probe.c": [(2, "home-path"), (5, "banned-call"), (5, "banned-call"),
                        (5, "banned-call"), (11, "buf-max"), (15, "getenv"),
                        (16, "banned-call")],
    "src/lib/config/probe.c": [(2, "home-path"), (5, "banned-call"), (5, "banned-call"),
                               (5, "banned-call"), (5, "prefix"), (6, "prefix"),
                               (11, "buf-max"), (16, "banned-call")],
    "src/lib/core/home.c": [(5, "banned-call"), (5, "banned-call"), (5, "banned-call"),
                            (5, "prefix"), (6, "prefix"), (11, "buf-max"), (16, "banned-call")],
}

# The unity rules on a small tree: LIMIT and count clash between one.c and
# two.c; the comment, the string, the function-local static, the prototype,
# the own #undef and the other tree do not.
SELF_TEST_UNITY = {
    "src/lib/a/one.c": "#define LIMIT 4\n#define OWN 1\nstatic int count;\n"
                       "static const char *const names[] = {\"x\", \"y\"};\n"
                       "static int helper(int a, int b);\nstatic int local;\n#undef OWN\n",
    "src/lib/b/two.c": "#define LIMIT 4\nstatic int count;\n"
                       "int f(void) { static int local; int names = LIMIT; return names + local; }\n"
                       "#undef EXTERNAL\n",
    "src/lib/b/three.c": "/* LIMIT */\nstatic const char *s = \"LIMIT count\";\n",
    "src/cli/one.c": "static int count;\n#define LIMIT 4\n",
}
SELF_TEST_UNITY_WANT = [("src/lib/a/one.c", 1, "unity-define"),
                        ("src/lib/a/one.c", 3, "unity-static"),
                        ("src/lib/b/two.c", 1, "unity-define"),
                        ("src/lib/b/two.c", 2, "unity-static"),
                        ("src/lib/b/two.c", 4, "unity-define")]


def self_test():
    """Checks the rules on a probe file placed at several paths, and the
    unity rules on a probe tree."""
    ok = True
    findings = []
    check_unity(SELF_TEST_UNITY, findings)
    got = sorted((path, line, rule) for path, line, rule, _ in findings)
    if got != sorted(SELF_TEST_UNITY_WANT):
        print(f"lint self-test: unity: got {got}, want {sorted(SELF_TEST_UNITY_WANT)}")
        ok = False
    for path, want in SELF_TEST_WANT.items():
        findings = []
        check_file(path, findings, SELF_TEST_PROBE)
        got = sorted((line, rule) for _, line, rule, _ in findings)
        if got != sorted(want):
            print(f"lint self-test: {path}: got {got}, want {sorted(want)}")
            ok = False
    return 0 if ok else 1


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    os.chdir(root)
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard",
                            "src/*.c", "src/*.h"], capture_output=True,
                           text=True, check=True).stdout.split()
    files = [f for f in files if os.path.exists(f)]
    allow = load_allow("scripts/lint-allow.txt")
    findings = []
    sources = {}
    for path in sorted(files):
        with open(path, encoding="utf-8", errors="replace") as f:
            sources[path] = f.read()
        check_file(path, findings, sources[path])
    check_unity(sources, findings)
    findings.sort(key=lambda f: (f[0], f[1]))
    bad = [f for f in findings if not allowed(allow, f)]
    for path, line, rule, text in bad:
        print(f"{path}:{line}: {rule}: {text}")
    stale = [a for a in allow if a[3] == 0]
    for a in stale:
        print(f"scripts/lint-allow.txt:{a[4]}: stale: nothing to allow for "
              f"`{a[0]} {a[1]}{' ' + a[2] if a[2] else ''}`; remove the entry")
    if bad or stale:
        print(f"lint: {len(bad)} finding(s), {len(stale)} stale allowlist entr(y/ies)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
