#!/usr/bin/env bash
# link-modules.sh NATIVE_DIR PROJECT_ROOT
#
# The addon setup.sh builds requires the project's @tensorflow/tfjs (one tfjs-core for elbo and
# the binding; setup.sh removes it from the addon's own dependencies). Node finds it by walking
# up from the addon's folder: that works for .native/ inside the project, not for an
# ELBO_NATIVE_DIR elsewhere. There, NATIVE_DIR/node_modules becomes a link to the node_modules
# that holds the project's @tensorflow/tfjs. Nothing is done where Node already finds it.
set -euo pipefail
NATIVE="$1"
ROOT="$2"
for pkg in tfjs-node tfjs-node-gpu; do
  [ -d "$NATIVE/$pkg" ] || continue
  if node -e "require.resolve('@tensorflow/tfjs', { paths: [process.argv[1]] })" "$NATIVE/$pkg" 2>/dev/null; then
    continue
  fi
  MODULES="$(node -p "require('path').resolve(require.resolve('@tensorflow/tfjs/package.json', { paths: [process.argv[1]] }), '../../..')" "$ROOT")"
  rm -f "$NATIVE/node_modules"
  ln -s "$MODULES" "$NATIVE/node_modules"
  echo "setup:native: $NATIVE is outside the project: $NATIVE/node_modules links to $MODULES"
  break
done
