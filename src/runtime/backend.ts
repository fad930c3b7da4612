import type * as tfcore from '@tensorflow/tfjs-core';
import * as path from 'path';
import { UserError } from '../errors';
import { getTf, setTf, baseTf } from './tf';
import { elboRoot } from './fingerprint';
import { registerWasmKernels } from './wasm-kernels';
import { applySessionConfig } from './graph/session-config';

export interface BackendInfo {
  /** tfjs backend name: tensorflow | wasm | cpu */
  name: string;
  /** The npm package that provides it, and its version. */
  package: string;
  version: string;
  /** Version of the TensorFlow C library (native backend only). */
  tensorflow?: string;
  /** ELBO_TF_SESSION, when it changed the native backend's TensorFlow configuration. */
  session?: string;
  /** Why `auto` passed over the native backend (it is not built, or did not load). */
  fallback?: string;
}

/**
 * Candidates, fastest first. 'tensorflow' is the native binding (GPU or CPU build):
 * installed as an npm package, or built by `npm ci` / `npm run setup:native` into .native/
 * (or $ELBO_NATIVE_DIR).
 */
const NATIVE_DIR = process.env.ELBO_NATIVE_DIR ? path.resolve(process.env.ELBO_NATIVE_DIR) : path.join(elboRoot(), '.native');
const CANDIDATES: { name: string; packages: string[] }[] = [
  {
    name: 'tensorflow',
    packages: [
      '@tensorflow/tfjs-node-gpu',
      '@tensorflow/tfjs-node',
      path.join(NATIVE_DIR, 'tfjs-node-gpu'),
      path.join(NATIVE_DIR, 'tfjs-node'),
    ],
  },
  { name: 'wasm', packages: ['@tensorflow/tfjs-backend-wasm'] },
  { name: 'cpu', packages: ['@tensorflow/tfjs-backend-cpu'] },
];

function version(pkg: string): string {
  try {
    return require(path.join(pkg, 'package.json')).version;
  } catch {
    return 'unknown';
  }
}

/**
 * TensorFlow's C++ log lines (oneDNN and CPU-feature notices; with the binding setup.sh
 * builds, absl's too: 'I0000 ... mlir_graph_optimization_pass.cc') are off unless asked
 * for: TF_CPP_MIN_LOG_LEVEL=2 before the native library loads, unless the user set it, or
 * ELBO_TF_LOG=1 (which `--verbose` sets) asks for them.
 */
export function quietTensorflowLog(env: NodeJS.ProcessEnv = process.env): void {
  if (env.ELBO_TF_LOG === '1' || env.ELBO_TF_LOG === 'true') return;
  env.TF_CPP_MIN_LOG_LEVEL ??= '2';
}

/** Backends a config is limited to by its plugins (e.g. conv layers cannot train on wasm). */
export interface BackendConstraint {
  backends: string[];
  reason: string;
}

/** Try to make `name` the active backend; null (with the reason) when it is not installed. */
async function tryBackend(name: string): Promise<BackendInfo | string> {
  const cand = CANDIDATES.find((c) => c.name === name)!;
  const reasons: string[] = [];
  // threads, Grappler and XLA for the eager context and every graph session (ELBO_TF_SESSION
  // changes them; a mistake there is the user's, not a reason to fall back to wasm)
  if (name === 'tensorflow') applySessionConfig();
  for (const pkg of cand.packages) {
    let mod: any;
    try {
      if (name === 'tensorflow') {
        // deterministic kernels (the seed must give the same numbers run after run);
        // TensorFlow's C++ logging off unless asked for. Read when the library loads.
        process.env.TF_DETERMINISTIC_OPS ??= '1';
        quietTensorflowLog();
      }
      // the JavaScript tfjs-core (and the union package's gradients) load first, as they did
      // when they were imported at start-up
      baseTf();
      mod = require(pkg);
    } catch (e: any) {
      reasons.push(`${pkg}: ${String(e?.message ?? e).split('\n')[0]}`);
      continue;
    }
    // the native binding ships its own tfjs-core; ops must run on that engine
    const tf: typeof tfcore = name === 'tensorflow' ? mod : baseTf();
    try {
      tf.env().set('PROD', true);
      if (!(await tf.setBackend(name))) throw new Error('setBackend returned false');
      await tf.ready();
    } catch (e: any) {
      reasons.push(`${pkg}: ${String(e?.message ?? e).split('\n')[0]}`);
      continue;
    }
    if (name === 'wasm') registerWasmKernels(tf);
    setTf(tf);
    const info: BackendInfo = { name, package: pkg.startsWith(NATIVE_DIR) ? `${path.basename(pkg)} (setup:native)` : pkg, version: version(pkg) };
    if (name === 'tensorflow') {
      info.tensorflow = (tf.backend() as any).binding?.TF_Version;
      if (process.env.ELBO_TF_SESSION) info.session = process.env.ELBO_TF_SESSION;
    }
    return info;
  }
  return reasons.join('; ');
}

/**
 * Activate the requested backend, or the fastest one that loads when 'auto'.
 * Returns what was chosen, for the run record.
 */
export async function selectBackend(requested: string, where = '--backend', constraint?: BackendConstraint): Promise<BackendInfo> {
  // ELBO_BACKEND pins what 'auto' means (e.g. run the test suite on each backend)
  const preferred = process.env.ELBO_BACKEND;
  if (requested === 'auto' && preferred && (!constraint || constraint.backends.includes(preferred))) {
    requested = preferred;
    where = 'ELBO_BACKEND';
  }
  if (requested !== 'auto') {
    if (!CANDIDATES.some((c) => c.name === requested)) {
      throw new UserError(`unknown backend '${requested}' (allowed: auto, ${CANDIDATES.map((c) => c.name).join(', ')})`, where);
    }
    if (constraint && !constraint.backends.includes(requested)) {
      throw new UserError(`backend '${requested}' cannot train this config: ${constraint.reason}; use ${constraint.backends.join(' or ')} (or auto)`, where);
    }
    const r = await tryBackend(requested);
    if (typeof r === 'string') {
      const hint =
        requested === 'tensorflow'
          ? "; the native backend is not installed (see README: 'npm run setup:native')"
          : '; reinstall with npm ci';
      throw new UserError(`backend '${requested}' is not available (${r})${hint}`, where);
    }
    return r;
  }
  let fallback: string | undefined;
  for (const c of CANDIDATES) {
    if (constraint && !constraint.backends.includes(c.name)) continue;
    const r = await tryBackend(c.name);
    if (typeof r !== 'string') return fallback ? { ...r, fallback } : r;
    if (c.name === 'tensorflow') {
      fallback = installedBackends().includes('tensorflow')
        ? `the native backend did not load (${r})`
        : 'the native backend is not built (npm run setup:native builds it)';
    }
  }
  throw new UserError(
    constraint ? `no installed backend can train this config: ${constraint.reason}` : 'no TensorFlow.js backend could be loaded; run npm ci',
    where,
  );
}

/** Backends that load here (used by the benchmark and `elbo plugins`). */
export function installedBackends(): string[] {
  return CANDIDATES.filter((c) =>
    c.packages.some((p) => {
      try {
        require.resolve(p);
        return true;
      } catch {
        return false;
      }
    }),
  ).map((c) => c.name);
}

export { getTf };
