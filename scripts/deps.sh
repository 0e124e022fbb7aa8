#!/usr/bin/env bash
# Installs the Debian packages clawbox needs that are missing.
#   scripts/deps.sh build   - to build and run
#   scripts/deps.sh check   - also to run the tests
#   scripts/deps.sh bench   - also to run the benchmarks
set -euo pipefail

build_pkgs=(meson ninja-build pkg-config gcc libc6-dev python3 libjansson-dev
            libcurl4-openssl-dev libssl-dev libsqlite3-dev libpsl-dev publicsuffix libpcre2-dev
            libseccomp-dev zlib1g-dev curl libnftables-dev nftables
            clang lld-14 wasi-libc libclang-rt-14-dev-wasm32 libc++-14-dev-wasm32
            libc++abi-14-dev-wasm32 wabt libcmocka-dev
            crun runc umoci skopeo mmdebstrap busybox-static catatonit)
check_pkgs=(clang-format prometheus golang-github-burntsushi-toml-dev clang
            libclang-rt-14-dev python3-yaml)
bench_pkgs=(wrk nginx-light bc)

want=("${build_pkgs[@]}")
case "${1:-build}" in
  build) ;;
  check) want+=("${check_pkgs[@]}") ;;
  bench) want+=("${check_pkgs[@]}" "${bench_pkgs[@]}") ;;
  *) echo "usage: $0 build|check|bench" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The tests need node and npm (the MCP client test, the OpenAPI lint); a node
# from elsewhere (NodeSource bundles npm) is used as it is.
if [ "${1:-build}" != build ] && ! { command -v node && command -v npm; } >/dev/null; then
  missing+=(nodejs npm)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "Installing missing packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Package installs must not start services (nginx, prometheus) on this machine.
policy=/usr/sbin/policy-rc.d
added_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod +x "$policy"
  added_policy=1
fi
trap '[ $added_policy -eq 1 ] && $sudo rm -f "$policy"' EXIT
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
