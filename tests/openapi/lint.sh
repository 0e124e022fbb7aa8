#!/bin/sh
# Lints docs/openapi.yaml with the Redocly CLI and the rules in redocly.yaml.
# Installs the CLI from package-lock.json when it is missing or another
# version; needs node and npm (scripts/deps.sh check installs them).
set -eu
cd "$(dirname "$0")"
for p in node npm; do
    command -v "$p" >/dev/null || {
        echo "openapi-lint: $p is missing; run scripts/deps.sh check" >&2
        exit 1
    }
done
want=$(node -p 'require("./package.json").dependencies["@redocly/cli"]')
have=$(node -p 'try { require("./node_modules/@redocly/cli/package.json").version } catch { "" }')
if [ "$have" != "$want" ]; then
    npm ci --no-audit --no-fund --loglevel=error >&2
fi
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
exec node_modules/.bin/redocly lint --config redocly.yaml ../../docs/openapi.yaml
