#!/usr/bin/env python3
"""Writes the man pages from the CLI's own help text, so the two never
differ: clawbox.1 from `clawbox --help`, and clawbox-VERB.1 from
`clawbox VERB --help` for each verb it lists.

usage: man.py CLAWBOX OUTDIR
"""
import os
import re
import subprocess
import sys


def roff_escape(line):
    line = line.replace("\\", "\\e").replace("-", "\\-")
    # A line starting with . or ' would be read as a request.
    return "\\&" + line if line[:1] in (".", "'") else line


def page(name, summary, version, synopsis, body):
    out = [f'.TH {name.upper()} 1 "" "clawbox {version}" "clawbox manual"',
           ".SH NAME", f"{name} \\- {roff_escape(summary)}"]
    if synopsis:
        out += [".SH SYNOPSIS", ".nf"] + [roff_escape(l) for l in synopsis] + [".fi"]
    out += [".SH DESCRIPTION", ".nf"] + [roff_escape(l) for l in body] + [".fi"]
    if name != "clawbox":
        out += [".SH SEE ALSO", "clawbox(1)"]
    return "\n".join(out) + "\n"


def help_text(binary, *args):
    p = subprocess.run([binary, *args], capture_output=True, text=True, check=True)
    return p.stdout.rstrip("\n").split("\n")


def split_usage(lines):
    """The Usage: paragraph (without the word) and the rest."""
    syn, i = [], 0
    while i < len(lines) and lines[i].strip():
        syn.append(re.sub(r"^Usage: ", "", lines[i]))
        i += 1
    return syn, lines[i + 1:] if i < len(lines) else []


def main():
    binary, outdir = sys.argv[1], sys.argv[2]
    top = help_text(binary, "--help")
    version = help_text(binary, "--version")[0].split()[-1]
    verbs = [(m.group(1), m.group(2)) for m in
             (re.match(r"^  (\S+)\s+(.*)$", l) for l in top) if m]
    pages = {"clawbox.1": page("clawbox", "sandboxed tool execution for AI agents", version,
                               None, top)}
    for verb, summary in verbs:
        syn, rest = split_usage(help_text(binary, verb, "--help"))
        pages[f"clawbox-{verb}.1"] = page(f"clawbox-{verb}", summary, version, syn, rest)
    os.makedirs(outdir, exist_ok=True)
    for name, text in pages.items():
        with open(os.path.join(outdir, name), "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
