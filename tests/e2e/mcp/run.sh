#!/bin/sh
# Installs the MCP SDK client (from package-lock.json) when it is missing,
# then runs the end-to-end test of `clawbox mcp` with node's test runner.
set -eu
cd "$(dirname "$0")"
if [ ! -f node_modules/@modelcontextprotocol/sdk/package.json ]; then
    npm ci --no-audit --no-fund --loglevel=error >&2
fi
exec node --test --test-concurrency=1 test_mcp.mjs
