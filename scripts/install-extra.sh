#!/usr/bin/env bash
# Run by `meson install`: the man pages (made from the installed binary's
# help text) and the bash completion.
set -euo pipefail
root=${MESON_INSTALL_DESTDIR_PREFIX:?run by meson install}
src=${MESON_SOURCE_ROOT:?}
bin=$1
python3 "$src/scripts/man.py" "$bin" "$root/share/man/man1"
install -D -m 0644 "$src/share/clawbox.bash" "$root/share/bash-completion/completions/clawbox"
