#!/usr/bin/env bash
# The project's one test command (README, docs/testing.md, .ci/run): installs what is missing, builds,
# lints (ESLint and a Prettier format check: `npm run lint`; `npm run format` fixes the
# formatting), and runs every test with Node's test runner: first with the WebAssembly backend
# pinned for 'auto', then again on the native TensorFlow backend.
#
# `npm ci` builds the native backend (src/runtime/native/install.sh); when node_modules
# was already there, the same step runs here: it builds the native backend where it is
# missing or out of date (ELBO_NATIVE=0 never builds it). ELBO_TEST_NATIVE=0 skips the
# native pass. Under CI=true a native backend that could not be built fails the run
# instead of going untested.
set -euo pipefail
cd "$(dirname "$0")/.."
export npm_config_nodedir="${npm_config_nodedir:-/usr}"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
# lint first (seconds); a lint failure fails the run but the test passes still run, as a wasm
# failure does not stop the native pass; what it found is printed only when it fails (any
# warning fails it)
lint=0
lintlog="$(mktemp)"
npm run --silent lint > "$lintlog" 2>&1 || lint=$?
if [ "$lint" = 0 ]; then
  echo "test: lint passed"
else
  cat "$lintlog"
fi
rm -f "$lintlog"
NATIVE="${ELBO_NATIVE_DIR:-.native}"
built() { [ -f "$NATIVE/tfjs-node/.elbo-built" ] || [ -f "$NATIVE/tfjs-node-gpu/.elbo-built" ]; }
wanted=1
case "${ELBO_NATIVE:-1}" in 0 | off | false | no) wanted=0 ;; esac
[ "${ELBO_TEST_NATIVE:-}" = 0 ] && wanted=0
# (quick when it is built and up to date; a build from older pinned versions or patch is rebuilt)
if [ "$wanted" = 1 ]; then bash src/runtime/native/install.sh; fi
if [ "${CI:-}" = true ] && [ "$wanted" = 1 ] && ! built; then
  echo "test: CI needs the native backend and it could not be built (log: $NATIVE/setup.log)" >&2
  exit 1
fi
npm run --silent build
# what git sees before the tests (a checkout's own edits), so that a test that writes into the
# checkout instead of a temporary directory is caught (ignored paths, runs/ included, are not seen)
status() { git status --porcelain --untracked-files=all 2>/dev/null || true; }
before="$(status)"
# both passes run even when the first fails (a wasm failure must not hide the native pass's)
wasm=0
ELBO_BACKEND=wasm node --test --test-concurrency=2 dist/test/*.test.js || wasm=$?
native=skipped
if built && [ "${ELBO_TEST_NATIVE:-}" != 0 ]; then
  echo "test: again on the native tensorflow backend (the MLflow, SLURM and browser-harness tests, and those of plain JavaScript, which do not depend on the backend, run once)"
  native=0
  # backend-independent: real servers and browsers, and config loading, draws, layout checks (no tensors)
  once="mlflow|slurm|chromium|/(config|fuzz|rng|data-files|architecture|function-length|plugin-names|docs-links)\.test"
  ELBO_BACKEND=tensorflow node --test --test-concurrency=2 $(ls dist/test/*.test.js | grep -v -E "$once") || native=$?
fi
stray="$(comm -13 <(echo "$before" | sort) <(status | sort))"
clean=0
if [ -n "$stray" ]; then
  clean=1
  echo "test: the tests changed the checkout (write under a temporary directory, e.g. tmpDir() in test/helpers.ts):" >&2
  echo "$stray" | sed 's/^/  /' >&2
fi
word() { case "$1" in 0) echo passed ;; skipped) echo skipped ;; *) echo "FAILED (exit $1)" ;; esac; }
echo "test: lint $(word "$lint"), wasm pass $(word "$wasm"), native pass $(word "$native"), checkout $([ "$clean" = 0 ] && echo untouched || echo CHANGED)"
[ "$lint" = 0 ] && [ "$wasm" = 0 ] && { [ "$native" = 0 ] || [ "$native" = skipped ]; } && [ "$clean" = 0 ]
