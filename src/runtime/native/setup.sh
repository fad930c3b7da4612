#!/usr/bin/env bash
# npm run setup:native [-- --gpu] [--check] [--force]
#
# Builds TensorFlow.js's native binding (@tensorflow/tfjs-node, or -gpu) from source
# against the TensorFlow C library taken from the PyPI wheel, because the package's own
# installer downloads libtensorflow from an address that no longer answers.
#
#   1. pip downloads the pinned wheel (hash-checked: requirements-*.txt beside this file);
#      with --gpu also the CUDA 12 / cuDNN 9 libraries (requirements-cuda.txt)
#   2. its libtensorflow_cc.so.2, libtensorflow_framework.so.2 and C headers are laid out
#      where tfjs-node's binding.gyp expects them (deps/lib, deps/include)
#   3. the addon is patched (patch-binding.py: log level, session configuration) and
#      compiled with node-gyp against the local Node headers
#
# Everything goes into .native/ at the project root (ignored by git, untouched by npm ci;
# ELBO_NATIVE_DIR names another folder); the backend chooser (src/runtime/backend.ts)
# finds it there. Idempotent: a finished build is kept unless --force is given.
# --check prints what the build needs and what is here (with --gpu: the NVIDIA driver, the
# CUDA 12 / cuDNN 9 libraries), downloads and builds nothing, and exits 1 when something is
# missing. --gpu prints the same before it builds.
# `npm ci` runs this through install.sh (beside this file), which never fails the install.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../../.." && pwd)"
HERE="$ROOT/src/runtime/native"
FLAVOUR=cpu
FORCE=0
CHECK=0
for a in "$@"; do
  case "$a" in
    --gpu) FLAVOUR=gpu ;;
    --force) FORCE=1 ;;
    --check) CHECK=1 ;;
    *) echo "setup:native: unknown option '$a' (use --gpu, --check, --force)" >&2; exit 2 ;;
  esac
done
NATIVE="${ELBO_NATIVE_DIR:-$ROOT/.native}"
if [ "$CHECK" = 1 ] || [ "$FLAVOUR" = gpu ]; then
  # what the build needs, and what this machine has; nothing downloaded
  ok=1
  say() { echo "  $*"; }
  tfline="$(grep -v '^#' "$HERE/requirements-$FLAVOUR.txt" | cut -d' ' -f1 | head -1)"
  echo "setup:native: check: the $FLAVOUR build takes libtensorflow from $tfline"
  if command -v python3 >/dev/null && python3 -m pip --version >/dev/null 2>&1; then say "python3 and pip: found (they download the wheels)"; else say "python3 and pip: MISSING (they download the wheels)"; ok=0; fi
  if [ -f "${npm_config_nodedir:-/usr}/include/node/node_api.h" ]; then say "Node headers: ${npm_config_nodedir:-/usr}/include/node"; else say "Node headers: MISSING under ${npm_config_nodedir:-/usr}/include/node (set npm_config_nodedir)"; ok=0; fi
  if [ "$FLAVOUR" = gpu ]; then
    say "TensorFlow 2.18.1's GPU build needs CUDA 12 and cuDNN 9 at run time, from"
    say "the pip packages (requirements-cuda.txt, pinned, about 3 GB):"
    { grep -v '^#' "$HERE/requirements-cuda.txt" | cut -d'=' -f1 | tr '\n' ' '; echo; } | fold -s -w 72 | sed 's/ *$//; s/^/    /'
    say "This build lays their lib/*.so* out beside libtensorflow, where TensorFlow"
    say "finds them. Installed any other way (pip install 'tensorflow[and-cuda]',"
    say "or @tensorflow/tfjs-node-gpu), put each site-packages/nvidia/*/lib folder"
    say "on LD_LIBRARY_PATH. TF_FORCE_GPU_ALLOW_GROWTH=true (elbo sets it unless"
    say "set) keeps TensorFlow from taking all of the GPU's memory at start."
    if command -v nvidia-smi >/dev/null && gpus="$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null)" && [ -n "$gpus" ]; then
      while IFS= read -r g; do say "GPU: $g (CUDA 12 needs driver 525.60 or newer)"; done <<<"$gpus"
    else
      say "GPU: NONE VISIBLE (nvidia-smi is missing or lists none): a GPU build"
      say "would compute on the CPU, and elbo run --device gpu refuses to start"
      ok=0
    fi
    # the libraries, where TensorFlow or the dynamic loader would find them
    dirs="$NATIVE/tfjs-node-gpu/deps/lib:${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64"
    for site in $(python3 -c 'import site; print(" ".join(site.getsitepackages() + [site.getusersitepackages()]))' 2>/dev/null); do
      for d in "$site"/nvidia/*/lib; do [ -d "$d" ] && dirs="$dirs:$d"; done
    done
    cache="$( (ldconfig -p || /sbin/ldconfig -p) 2>/dev/null || true)"
    for lib in libcudart.so.12 libcublas.so.12 libcublasLt.so.12 libcudnn.so.9 libcufft.so.11 libcusolver.so.11 libcusparse.so.12; do
      found=""
      IFS=: read -ra ds <<<"$dirs"
      for d in "${ds[@]}"; do [ -n "$d" ] && [ -e "$d/$lib" ] && { found="$d/$lib"; break; }; done
      [ -z "$found" ] && found="$(awk -v l="$lib" '$1 == l { print $NF; exit }' <<<"$cache")"
      say "$(printf '%-18s %s' "$lib" "${found:-not here (the build downloads it)}")"
    done
    avail="$(df -Pk "$(dirname "$NATIVE")" 2>/dev/null | awk 'NR == 2 { print int($4 / 1048576) }')"
    if [ -n "$avail" ] && [ "$avail" -lt 8 ]; then say "disk: ${avail} GB free under $(dirname "$NATIVE"); the build needs about 8 GB"; ok=0; fi
  fi
  if [ "$CHECK" = 1 ]; then
    cmd="npm run setup:native"; [ "$FLAVOUR" = gpu ] && cmd="$cmd -- --gpu"
    if [ "$ok" = 1 ]; then echo "setup:native: check: ready ($cmd builds it)"; exit 0; fi
    echo "setup:native: check: not ready (see above; nothing was downloaded)"
    exit 1
  fi
fi
# (resolved from the project: elbo installed as a dependency has it in the parent's node_modules)
TFJS_VERSION="$(node -p "require(require.resolve('@tensorflow/tfjs/package.json', { paths: ['$ROOT'] })).version" 2>/dev/null || true)"
if [ -z "$TFJS_VERSION" ]; then echo "setup:native: run npm ci first (node_modules/@tensorflow/tfjs is missing)" >&2; exit 1; fi
PKG=tfjs-node; [ "$FLAVOUR" = gpu ] && PKG=tfjs-node-gpu
DEST="$NATIVE/$PKG"
STAMP="$DEST/.elbo-built"
REQ="$HERE/requirements-$FLAVOUR.txt"
# what was built: a change of versions, wheel or binding patch rebuilds
# the GPU build also takes the CUDA libraries its TensorFlow loads (requirements-cuda.txt)
CUDA_REQ=""; [ "$FLAVOUR" = gpu ] && CUDA_REQ="$HERE/requirements-cuda.txt"
WANT="$PKG@$TFJS_VERSION $(grep -hv '^#' "$REQ" $CUDA_REQ | tr -s ' \n' ' ') patch $(sha256sum "$HERE/patch-binding.py" | cut -c1-16)"
if [ "$FORCE" = 0 ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  echo "setup:native: $PKG already built in $DEST"
  bash "$HERE/link-modules.sh" "$NATIVE" "$ROOT"
  exit 0
fi
export npm_config_nodedir="${npm_config_nodedir:-/usr}"
if [ ! -f "$npm_config_nodedir/include/node/node_api.h" ]; then
  echo "setup:native: Node headers not found under $npm_config_nodedir/include/node; set npm_config_nodedir to the prefix that holds include/node" >&2
  exit 1
fi
command -v python3 >/dev/null || { echo "setup:native: python3 not found on PATH: pip needs it to download the TensorFlow wheel" >&2; exit 1; }
python3 -m pip --version >/dev/null 2>&1 || { echo "setup:native: pip is not available for $(command -v python3) (install python3-pip)" >&2; exit 1; }
WORK="$NATIVE/work"
rm -rf "$WORK" "$DEST.tmp"
mkdir -p "$WORK/wheel" "$DEST.tmp"

echo "setup:native: [1/4] downloading the TensorFlow wheel from PyPI ($(grep -v '^#' "$REQ" | cut -d' ' -f1))"
# pip download of hash-pinned wheels (the Python version and platform of the wheels, not of this machine)
fetch() { # REQUIREMENTS DIR WHAT
  mkdir -p "$2"
  python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
    --platform manylinux2014_x86_64 --require-hashes -r "$1" -d "$2" >"$WORK/pip.log" 2>&1 || {
    tail -5 "$WORK/pip.log" >&2
    echo "setup:native: pip could not download $3 from PyPI (no network or registry? full log: $WORK/pip.log)" >&2
    exit 1
  }
}
fetch "$REQ" "$WORK/wheel" "$(grep -v '^#' "$REQ" | cut -d' ' -f1 | head -1)"
WHEEL="$(ls "$WORK"/wheel/*.whl | head -1)"
if [ -n "$CUDA_REQ" ]; then
  echo "setup:native: [1/4] downloading the CUDA 12 and cuDNN 9 libraries from PyPI (requirements-cuda.txt, about 3 GB)"
  fetch "$CUDA_REQ" "$WORK/cuda" "the CUDA libraries"
fi

echo "setup:native: [2/4] fetching @tensorflow/$PKG@$TFJS_VERSION (sources only; its download step is skipped)"
(cd "$WORK" && npm pack --silent "@tensorflow/$PKG@$TFJS_VERSION" >/dev/null)
tar -xzf "$WORK"/tensorflow-$PKG-*.tgz -C "$WORK"
cp -r "$WORK/package/." "$DEST.tmp/"

echo "setup:native: [3/4] laying out libtensorflow from the wheel"
python3 - "$WHEEL" "$DEST.tmp/deps" "$WORK"/cuda/*.whl <<'PY'
import sys, zipfile, os, glob
wheel, deps, cuda = sys.argv[1], sys.argv[2], [w for w in sys.argv[3:] if os.path.isfile(w)]
inc, lib = os.path.join(deps, 'include'), os.path.join(deps, 'lib')
os.makedirs(inc, exist_ok=True); os.makedirs(lib, exist_ok=True)
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        n = info.filename
        if n.startswith('tensorflow/include/') and not n.endswith('/'):
            target = os.path.join(inc, n[len('tensorflow/include/'):])
        elif n in ('tensorflow/libtensorflow_cc.so.2', 'tensorflow/libtensorflow_framework.so.2'):
            target = os.path.join(lib, os.path.basename(n))
        else:
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with z.open(info) as src, open(target, 'wb') as dst:
            while True:
                chunk = src.read(1 << 20)
                if not chunk: break
                dst.write(chunk)
# GPU: the CUDA libraries (nvidia/<part>/lib/*.so*) beside libtensorflow, whose RUNPATH ($ORIGIN/)
# is where TensorFlow's loader finds them
for w in cuda:
    with zipfile.ZipFile(w) as z:
        for info in z.infolist():
            n = info.filename
            if n.startswith('nvidia/') and '/lib/' in n and '.so' in os.path.basename(n):
                with z.open(info) as src, open(os.path.join(lib, os.path.basename(n)), 'wb') as dst:
                    while True:
                        chunk = src.read(1 << 20)
                        if not chunk: break
                        dst.write(chunk)
# binding.gyp links -ltensorflow -ltensorflow_framework; the C and eager C APIs live in libtensorflow_cc
os.symlink('libtensorflow_cc.so.2', os.path.join(lib, 'libtensorflow.so'))
os.symlink('libtensorflow_framework.so.2', os.path.join(lib, 'libtensorflow_framework.so'))
PY

echo "setup:native: [4/4] compiling the addon with node-gyp (a few minutes)"
cd "$DEST.tmp"
# absl's log level from TF_CPP_MIN_LOG_LEVEL, and ELBO_TF_CONFIG (the session configuration);
# the offset of libtensorflow_cc's internal absl level variable, from its symbol table
OFFSET="$( (nm deps/lib/libtensorflow_cc.so.2 2>/dev/null || true) | awk '$3 ~ /_GLOBAL__N_113min_log_levelE/ { print $1; exit }')"
python3 "$HERE/patch-binding.py" binding $OFFSET
# use the project's @tensorflow/tfjs (one tfjs-core for elbo and the binding), not a second copy
node -e "
const fs=require('fs');const p=JSON.parse(fs.readFileSync('package.json'));
delete p.dependencies['@tensorflow/tfjs']; delete p.scripts.install; delete p.devDependencies;
fs.writeFileSync('package.json', JSON.stringify(p,null,2));"
npm install --silent --omit=dev --ignore-scripts --no-package-lock --no-audit --no-fund >/dev/null
NODE_GYP="${npm_config_node_gyp:-}"
if [ -z "$NODE_GYP" ] || [ ! -f "$NODE_GYP" ]; then
  NODE_GYP="$(dirname "$(command -v npm)")/../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"
fi
# the N-API version the addon targets: the newest that tfjs-node and this Node both support
NAPI="$(node -p "Math.max(...require('./package.json').binary.napi_versions.filter(v => v <= Number(process.versions.napi)))")"
MODPATH="lib/napi-v$NAPI"
node "$NODE_GYP" rebuild --nodedir="$npm_config_nodedir" -j 2 \
  --module_name=tfjs_binding --module_path="$PWD/$MODPATH" --napi_build_version="$NAPI" >"$WORK/node-gyp.log" 2>&1 || {
  tail -30 "$WORK/node-gyp.log" >&2
  echo "setup:native: node-gyp failed; full log in $WORK/node-gyp.log" >&2
  exit 1
}
[ -f "$MODPATH/tfjs_binding.node" ] || { echo "setup:native: the build made no $MODPATH/tfjs_binding.node (log: $WORK/node-gyp.log)" >&2; exit 1; }
rm -rf build
cd "$ROOT"
rm -rf "$DEST"
mv "$DEST.tmp" "$DEST"
# an ELBO_NATIVE_DIR outside the project: the addon finds the project's @tensorflow/tfjs
bash "$HERE/link-modules.sh" "$NATIVE" "$ROOT"
rm -rf "$WORK"
echo "$WANT" > "$STAMP"
node -e "
process.env.TF_CPP_MIN_LOG_LEVEL='2';
const tf=require('$DEST');
tf.setBackend('tensorflow').then(async()=>{await tf.ready();
console.log('setup:native: ok: backend', tf.getBackend(), 'TensorFlow', tf.backend().binding.TF_Version, 'in $DEST');});"
