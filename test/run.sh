#!/usr/bin/env bash
# The project's one test command (README, .ci/run): installs what is missing, builds,
# and runs every test with Node's test runner: first with the WebAssembly backend
# pinned for 'auto', then, where the native backend is built, again with it.
#
# The native backend (npm run setup:native) is built here when CI=true or
# ELBO_TEST_NATIVE=1 (ELBO_TEST_NATIVE=0 never builds it); otherwise it is tested only
# when it is already built.
set -euo pipefail
cd "$(dirname "$0")/.."
export npm_config_nodedir="${npm_config_nodedir:-/usr}"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run --silent build
ELBO_BACKEND=wasm node --test --test-concurrency=2 dist/test/*.test.js

want="${ELBO_TEST_NATIVE:-}"
if [ "$want" = 1 ] || { [ "${CI:-}" = true ] && [ "$want" != 0 ]; }; then
  mkdir -p .native
  echo "test: building the native backend (npm run setup:native, log in .native/setup.log)"
  if ! npm run --silent setup:native > .native/setup.log 2>&1; then
    echo "test: npm run setup:native failed (last lines below); the tensorflow backend is not tested"
    tail -5 .native/setup.log
  fi
fi
if [ -f .native/tfjs-node/.elbo-built ] && [ "$want" != 0 ]; then
  echo "test: again on the native tensorflow backend (the MLflow and SLURM tests, which do not depend on the backend, run once)"
  ELBO_BACKEND=tensorflow node --test --test-concurrency=2 $(ls dist/test/*.test.js | grep -v -E "mlflow|slurm")
fi
