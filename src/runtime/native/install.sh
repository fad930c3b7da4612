#!/usr/bin/env bash
# npm's install step (package.json "install", run by `npm ci` and `npm install`): builds the
# native TensorFlow backend with setup.sh (beside this file), so that training runs on it
# from the first command. It never fails the install: when Python, pip or PyPI is not
# there, or the build fails, it prints one line saying so and training uses wasm
# (`npm run setup:native` retries, showing everything).
#
#   ELBO_NATIVE=0    skip it (wasm unless built before); also off, false, no
#   ELBO_NATIVE=gpu  the GPU build (setup.sh --gpu); ELBO_NATIVE=cpu the CPU build
#   unset / 1        the GPU build when `nvidia-smi -L` lists a GPU, else the CPU build
#
# The build's output goes to .native/setup.log (or $ELBO_NATIVE_DIR/setup.log).
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
NATIVE="${ELBO_NATIVE_DIR:-$ROOT/.native}"
want="${ELBO_NATIVE:-1}"
case "$want" in
  0 | off | false | no)
    echo "elbo: ELBO_NATIVE=$want: the native TensorFlow backend is not built; training uses wasm (npm run setup:native builds it)"
    exit 0
    ;;
  gpu) flags=(--gpu) ;;
  cpu) flags=() ;;
  *)
    flags=()
    if command -v nvidia-smi >/dev/null && nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then flags=(--gpu); fi
    ;;
esac
mkdir -p "$NATIVE" 2>/dev/null
LOG="$NATIVE/setup.log"
[ -w "$NATIVE" ] || LOG=/dev/null
# one line: what is being done now (the build takes minutes), and how it ended
printf 'elbo: native TensorFlow backend%s (ELBO_NATIVE=0 skips; log: %s): ' "${flags[*]:+ (GPU)}" "${LOG#"$ROOT"/}"
# the build's log is kept: a later check that finds the backend built adds its line to it
# (npm ci runs this, then npm test again) instead of replacing the build's output
RUN_LOG="$LOG"
[ "$LOG" = /dev/null ] || RUN_LOG="$LOG.run-$$"
if bash "$HERE/setup.sh" "${flags[@]}" >"$RUN_LOG" 2>&1; then
  if [ "$RUN_LOG" != "$LOG" ]; then
    if grep -q 'already built in' "$RUN_LOG" && [ -s "$LOG" ]; then
      { printf '\n[%s] checked again:\n' "$(date -u +%FT%TZ)"; cat "$RUN_LOG"; } >>"$LOG"
      rm -f "$RUN_LOG"
    else
      mv -f "$RUN_LOG" "$LOG"
    fi
  fi
  grep '^setup:native: ' "$LOG" | tail -1 | sed 's/^setup:native: //'
else
  [ "$RUN_LOG" = "$LOG" ] || mv -f "$RUN_LOG" "$LOG"
  # setup.sh says why in its last 'setup:native: ...' line
  why="$(grep '^setup:native: ' "$LOG" 2>/dev/null | tail -1 | sed 's/^setup:native: //')"
  echo "not built (${why:-see the log}); training falls back to wasm (npm run setup:native retries)"
fi
exit 0
