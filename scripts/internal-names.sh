#!/usr/bin/env bash
# Lists the non-static cb_ functions of src/lib that could be narrower:
#
#   static     every use is in the file that defines it, and no test uses
#              it: a candidate for static.
#   internal   every use in src/ is inside the function's own module
#              directory (the directory of the .c that defines it): a
#              candidate for the cb__ prefix. Tests may use it either way.
#   test-only  nothing in src/ uses it outside its definition, but tests do:
#              it goes, or moves to the tests.
#   unused     nothing uses it at all.
#   kept       would be one of the above, but scripts/internal-names-keep.txt
#              keeps it as it is, for the reason printed (API that product
#              code is about to use, say).
#   stale      an entry of that file that keeps nothing any more (the
#              product calls the function now, or it is gone): remove it.
#
# A use is the name as an identifier in a .c file (comments and strings
# aside), or in a macro body of a header outside the module (counted as a
# use outside). The tool shim is left out: its cb_tool_* entry points are
# found by dlsym. It prints `kind name file:line [where used]` and changes
# nothing: renames are applied by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 - "$@" <<'EOF'
import os
import re
import subprocess
import sys

sys.path.insert(0, "scripts")
import lint  # noqa: E402  (strip, function_definitions, line_of)

COMMENT_OR_STRING = re.compile(r'//[^\n]*|/\*.*?(?:\*/|\Z)|"(?:[^"\\\n]|\\.)*"?|\'(?:[^\'\\\n]|\\.)*\'?',
                               re.S)
DEFINE = re.compile(r"^[ \t]*#[ \t]*define\b(?:[^\n]*\\\n)*[^\n]*", re.M)
IDENT = re.compile(r"\b[A-Za-z_]\w*\b")


def files(*patterns):
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard",
                          *patterns], capture_output=True, text=True, check=True).stdout.split()
    return [f for f in out if os.path.exists(f)]


def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def identifiers(text):
    counts = {}
    for name in IDENT.findall(text):
        counts[name] = counts.get(name, 0) + 1
    return counts


# name -> {file: count} over src/ and tests/ .c files, plus header macros.
uses = {}
for path in files("src/*.c", "tests/*.c", "tests/*.cc", "tests/*.cpp"):
    text = COMMENT_OR_STRING.sub(" ", read(path))
    for name, n in identifiers(text).items():
        uses.setdefault(name, {})[path] = n
for path in files("src/*.h"):
    text = COMMENT_OR_STRING.sub(" ", read(path))
    for m in DEFINE.finditer(text):
        for name, n in identifiers(m.group(0)).items():
            uses.setdefault(name, {})[path] = uses.get(name, {}).get(path, 0) + n

KEEP_FILE = "scripts/internal-names-keep.txt"
keep = {}  # name -> (reason, line in KEEP_FILE)
with open(KEEP_FILE, encoding="utf-8") as f:
    for n, line in enumerate(f, 1):
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, reason = line.partition(" ")
            keep[name] = (reason.strip(), n)

rows = []
for path in files("src/lib/*.c"):
    if path in lint.PREFIX_EXEMPT:
        continue
    src = read(path)
    code, _ = lint.strip(src)
    module = os.path.dirname(path) + "/"
    for off, name, is_static in lint.function_definitions(code):
        if is_static or not name.startswith("cb_") or name.startswith("cb__"):
            continue
        where = dict(uses.get(name, {}))
        where[path] = where.get(path, 0) - 1  # the definition itself
        in_src = {f: n for f, n in where.items() if n > 0 and f.startswith("src/")}
        in_tests = sorted(f for f, n in where.items() if n > 0 and f.startswith("tests/"))
        outside = [f for f in in_src if not f.startswith(module)]
        line = lint.line_of(src, off)
        if list(in_src) == [path] and not in_tests:
            kind, used = "static", []
        elif in_src and not outside:
            kind, used = "internal", sorted(in_src)
        elif not in_src and in_tests:
            kind, used = "test-only", in_tests
        elif not in_src:
            kind, used = "unused", []
        else:
            continue
        if name in keep:
            rows.append(("kept", name, f"{path}:{line}", keep.pop(name)[0]))
            continue
        rows.append((kind, name, f"{path}:{line}", "[" + " ".join(used) + "]" if used else ""))
for name, (_, n) in keep.items():
    rows.append(("stale", name, f"{KEEP_FILE}:{n}", ""))

order = {"static": 0, "internal": 1, "test-only": 2, "unused": 3, "kept": 4, "stale": 5}
for kind, name, at, used in sorted(rows, key=lambda r: (order[r[0]], r[2], r[1])):
    print(f"{kind:9} {name:40} {at}  {used}" if used else f"{kind:9} {name:40} {at}")
counts = {k: sum(1 for r in rows if r[0] == k) for k in order}
print("# " + ", ".join(f"{n} {k}" for k, n in counts.items()), file=sys.stderr)
EOF
