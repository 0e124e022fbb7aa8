#!/usr/bin/env python3
"""Round-trips wasm modules through the instrumenter: each output must pass
wasm-validate, and its text (wasm2wat) with the fuel charges removed must
equal the original's, apart from the added global and export, the
clamped memory limits, and the start section, which must have become the
__clawbox_start export of the same function.

usage: roundtrip.py TOOL WASM_VALIDATE WASM2WAT (FILE.wasm | DIR)...
"""
import os
import re
import subprocess
import sys
import tempfile

FEATURES = ["--enable-threads", "--enable-tail-call"]


def charge_re(idx):
    g = r"\s*global\.get %d\n" % idx
    return re.compile(
        g + r"\s*i64\.const \d+\n\s*i64\.sub\n\s*global\.set %d\n" % idx + g
        + r"\s*i64\.const 0\n\s*i64\.lt_s\n\s*if  ;; label = @\d+\n"
        r"\s*unreachable\n\s*end(\)*)\n")


def wat(wasm2wat, path):
    return subprocess.run([wasm2wat, *FEATURES, path], check=True,
                          capture_output=True, text=True).stdout


def fuel_index(text):
    m = re.search(r'\(export "__clawbox_fuel" \(global (\d+)\)\)', text)
    if not m:
        raise AssertionError("no __clawbox_fuel export")
    return int(m.group(1))


def normalise(text, idx=None):
    lines = []
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("(memory") or s.startswith("(start") or "__clawbox_fuel" in s \
                or "__clawbox_start" in s:
            continue
        if idx is not None and re.match(r"\(global \(;%d;\) \(mut i64\)" % idx, s):
            continue
        # The module's closing paren moves to whichever line is now last.
        lines.append(line.rstrip(")"))
    return "\n".join(lines) + "\n"


def check(tool, validate, wasm2wat, path, tmp):
    out = os.path.join(tmp, os.path.basename(path) + ".inst")
    subprocess.run([tool, "instrument", path, out], check=True)
    subprocess.run([validate, *FEATURES, out], check=True)
    subprocess.run([tool, "inspect", out], check=True, capture_output=True)
    before = wat(wasm2wat, path)
    after = wat(wasm2wat, out)
    idx = fuel_index(after)
    start = re.search(r"^\s*\(start (\d+)\)", before, re.M)
    export = re.search(r'\(export "__clawbox_start" \(func (\d+)\)\)', after)
    if re.search(r"^\s*\(start ", after, re.M) or bool(start) != bool(export) or \
            (start and start.group(1) != export.group(1)):
        raise AssertionError("%s: the start section did not become the __clawbox_start export"
                             % path)
    charges = len(charge_re(idx).findall(after))
    stripped = charge_re(idx).sub(lambda m: m.group(1) + "\n", after)
    # An empty function prints as "(func ... (type 0))" before and as
    # "(func ... (type 0)\n)" once its charge is gone.
    stripped = re.sub(r"\n(\)+)\n", r"\1\n", stripped)
    if normalise(before) != normalise(stripped, idx):
        a, b = normalise(before).splitlines(), normalise(stripped, idx).splitlines()
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                raise AssertionError("%s: line %d differs:\n  %s\n  %s" % (path, i, x, y))
        raise AssertionError("%s: lengths differ (%d vs %d)" % (path, len(a), len(b)))
    funcs = len(re.findall(r"^  \(func ", before, re.M))
    if charges < funcs:
        raise AssertionError("%s: %d charges for %d functions" % (path, charges, funcs))
    return charges


def main():
    tool, validate, wasm2wat = sys.argv[1:4]
    files = []
    for arg in sys.argv[4:]:
        if os.path.isdir(arg):
            files += sorted(os.path.join(arg, f) for f in os.listdir(arg) if f.endswith(".wasm"))
        else:
            files.append(arg)
    if not files:
        sys.exit("no modules given")
    with tempfile.TemporaryDirectory() as tmp:
        for path in files:
            n = check(tool, validate, wasm2wat, path, tmp)
            print("ok %s (%d charges)" % (os.path.basename(path), n))


if __name__ == "__main__":
    main()
