#!/usr/bin/env bash
# The project's own checksrc: banned calls, unprefixed non-static functions
# in src/lib, literal cb_buf_init maxima, getenv outside the config and key
# modules, and the clawbox home path outside core/home. For the unity build
# (the default: Meson joins a target's .c files into one translation unit),
# the clashes the compiler lets through, among the .c files of src/lib and
# of src/cli: a file-scope static variable name in two files (two
# uninitialised ones merge silently), a #define in two files or defined in
# one and used in another, and an #undef of a macro the file did not
# define (unity-static, unity-define). The rules and their
# reasons are in scripts/lint.py; tolerated findings in
# scripts/lint-allow.txt. Prints `file:line: rule: text` per finding and
# exits 1 if there is any. `scripts/lint.sh --self-test` checks the rules.
set -euo pipefail
exec python3 "$(dirname "$0")/lint.py" "$@"
