#!/usr/bin/env bash
# The project's one test command (README, .ci/run): installs what is missing, builds,
# and runs every test with Node's test runner.
set -euo pipefail
cd "$(dirname "$0")/.."
export npm_config_nodedir="${npm_config_nodedir:-/usr}"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run --silent build
node --test --test-concurrency=2 dist/test/*.test.js
