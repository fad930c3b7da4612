import type * as tfcore from '@tensorflow/tfjs-core';
import * as path from 'path';
import { UserError, type Caught } from '../errors';
import { getTf, setTf, baseTf } from './tf';
import { registerWasmKernels } from './wasm-kernels';
import { applySessionConfig } from './graph/session-config';
import { DEVICES, DeviceRequest, nativeDir, nativeBuilds, nvidiaSmiGpus, visibleGpus } from './device';

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
  /**
   * Where it computes: 'cpu', or 'gpu: <name>' (the GPU build with a GPU TensorFlow uses).
   * Absent in records written before it was recorded.
   */
  device?: string;
}

/**
 * Candidates, fastest first. 'tensorflow' is the native binding (GPU or CPU build):
 * installed as an npm package, or built by `npm ci` / `npm run setup:native` into .native/
 * (or $ELBO_NATIVE_DIR).
 */
const NATIVE_DIR = nativeDir();
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

const isGpuBuild = (pkg: string) => /tfjs-node-gpu$/.test(pkg);

/** What is read of tfjs-node's backend object, beyond the KernelBackend tfjs-core types it as. */
type NativeBackend = tfcore.KernelBackend & { binding?: { TF_Version?: string }; isUsingGpuDevice?: boolean };

/**
 * Try to make `name` the active backend; null (with the reason) when it is not installed.
 * `device` (native backend only): 'gpu' tries only the GPU builds; 'cpu' tries the CPU builds
 * first and hides every GPU from TensorFlow (CUDA_VISIBLE_DEVICES=-1, read when the library loads).
 */
async function tryBackend(name: string, device: DeviceRequest = 'auto'): Promise<BackendInfo | string> {
  const cand = CANDIDATES.find((c) => c.name === name)!;
  const reasons: string[] = [];
  let packages = cand.packages;
  if (name === 'tensorflow') {
    // threads, Grappler and XLA for the eager context and every graph session (ELBO_TF_SESSION
    // changes them; a mistake there is the user's, not a reason to fall back to wasm)
    applySessionConfig();
    if (device === 'gpu') packages = packages.filter(isGpuBuild);
    if (device === 'cpu') {
      packages = [...packages.filter((p) => !isGpuBuild(p)), ...packages.filter(isGpuBuild)];
      process.env.CUDA_VISIBLE_DEVICES = '-1';
    }
    // TensorFlow takes nearly all of a GPU's memory at start unless told to grow as needed
    process.env.TF_FORCE_GPU_ALLOW_GROWTH ??= 'true';
  }
  for (const pkg of packages) {
    let mod: unknown;
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
    } catch (e) {
      const msg = String((e as Caught)?.message ?? e).split('\n')[0];
      // a build in an ELBO_NATIVE_DIR outside the project, made before setup.sh linked node_modules there
      const hint =
        pkg.startsWith(NATIVE_DIR) && /Cannot find module '@tensorflow\/tfjs'/.test(msg)
          ? " (npm run setup:native links the project's node_modules there)"
          : '';
      reasons.push(`${pkg}: ${msg}${hint}`);
      continue;
    }
    // the native binding ships its own tfjs-core; ops must run on that engine (tfjs-node is
    // optional and loaded by path, so nothing types the module: it is tfjs-core's API)
    const tf: typeof tfcore = name === 'tensorflow' ? (mod as typeof tfcore) : baseTf();
    try {
      tf.env().set('PROD', true);
      if (!(await tf.setBackend(name))) throw new Error('setBackend returned false');
      await tf.ready();
    } catch (e) {
      reasons.push(`${pkg}: ${String((e as Caught)?.message ?? e).split('\n')[0]}`);
      continue;
    }
    if (name === 'wasm') registerWasmKernels(tf);
    setTf(tf);
    const info: BackendInfo = {
      name,
      package: pkg.startsWith(NATIVE_DIR) ? `${path.basename(pkg)} (setup:native)` : pkg,
      version: version(pkg),
    };
    if (name === 'tensorflow') {
      info.tensorflow = (tf.backend() as NativeBackend).binding?.TF_Version;
      if (process.env.ELBO_TF_SESSION) info.session = process.env.ELBO_TF_SESSION;
    }
    info.device =
      name === 'tensorflow' && (tf.backend() as NativeBackend).isUsingGpuDevice ? `gpu: ${visibleGpus()[0]?.name ?? 'unknown'}` : 'cpu';
    if (device === 'cpu' && info.device !== 'cpu') {
      // the library was loaded with the GPU visible earlier in this process: it cannot be hidden now
      reasons.push(`${pkg}: loaded earlier in this process with the GPU visible (device cpu needs a new process)`);
      continue;
    }
    return info;
  }
  return reasons.join('; ');
}

/** `device:` / `--device` as selectBackend is asked it, with where it was said (for errors). */
export interface DeviceChoice {
  device: DeviceRequest;
  where: string;
}

/** Why `auto` passes over the native backend when no build of it is there (also what elbo env says). */
export const NOT_BUILT = 'the native backend is not built (npm run setup:native builds it)';

const GPU_HELP =
  "build it with 'npm run setup:native -- --gpu' (it needs the CUDA 12 and cuDNN 9 libraries; see elbo env), or use device cpu";

/**
 * Why `device: gpu` cannot be had here, found without loading TensorFlow (null: try it):
 * the GPU build is not installed, or no GPU is visible.
 */
export function gpuUnavailable(env: NodeJS.ProcessEnv = process.env): string | null {
  if (!nativeBuilds().some((b) => b.gpu && b.installed)) return `the GPU build of the native backend is not installed: ${GPU_HELP}`;
  const all = nvidiaSmiGpus();
  if (!all) return 'no GPU is visible (nvidia-smi is not installed or does not answer: no NVIDIA driver?); use device cpu, or see elbo env';
  if (!all.length) return 'no GPU is visible (nvidia-smi lists none); use device cpu, or see elbo env';
  if (!visibleGpus(all, env).length) return `CUDA_VISIBLE_DEVICES=${env.CUDA_VISIBLE_DEVICES} hides every GPU; unset it, or use device cpu`;
  return null;
}

/**
 * Activate the requested backend, or the fastest one that loads when 'auto'.
 * Returns what was chosen, for the run record.
 *
 * `device` (default auto: the GPU when the GPU build is the one that loads and TensorFlow sees
 * one): 'gpu' needs the native backend's GPU build and a GPU it uses, else a UserError before
 * anything trains (never a quiet CPU run); 'cpu' hides the GPUs from TensorFlow.
 */
export async function selectBackend(
  requested: string,
  where = '--backend',
  constraint?: BackendConstraint,
  device: DeviceChoice = { device: 'auto', where: 'device' },
): Promise<BackendInfo> {
  if (!DEVICES.includes(device.device))
    throw new UserError(`unknown device '${device.device}' (allowed: ${DEVICES.join(', ')})`, device.where);
  if (device.device === 'gpu') return selectGpu(requested, where, constraint, device.where);
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
      throw new UserError(
        `backend '${requested}' cannot train this config: ${constraint.reason}; use ${constraint.backends.join(' or ')} (or auto)`,
        where,
      );
    }
    const r = await tryBackend(requested, device.device);
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
    const r = await tryBackend(c.name, device.device);
    if (typeof r !== 'string') return fallback ? { ...r, fallback } : r;
    if (c.name === 'tensorflow') {
      fallback = installedBackends().includes('tensorflow') ? `the native backend did not load (${r})` : NOT_BUILT;
    }
  }
  throw new UserError(
    constraint
      ? `no installed backend can train this config: ${constraint.reason}`
      : 'no TensorFlow.js backend could be loaded; run npm ci',
    where,
  );
}

/** `device: gpu`: the native backend's GPU build on a GPU, or a one-line UserError naming `deviceWhere`. */
async function selectGpu(
  requested: string,
  where: string,
  constraint: BackendConstraint | undefined,
  deviceWhere: string,
): Promise<BackendInfo> {
  if (requested !== 'auto' && requested !== 'tensorflow') {
    throw new UserError(
      `a GPU needs the tensorflow backend (its GPU build); backend '${requested}' (${where}) computes on the CPU only`,
      deviceWhere,
    );
  }
  if (constraint && !constraint.backends.includes('tensorflow')) {
    throw new UserError(`a GPU needs the tensorflow backend, and this config cannot train on it: ${constraint.reason}`, deviceWhere);
  }
  const why = gpuUnavailable();
  if (why) throw new UserError(why, deviceWhere);
  const r = await tryBackend('tensorflow', 'gpu');
  if (typeof r === 'string') throw new UserError(`the GPU build of the native backend did not load (${r}); see elbo env`, deviceWhere);
  if (!r.device?.startsWith('gpu')) {
    throw new UserError(
      "the GPU build loaded but TensorFlow found no GPU it can use (the CUDA 12 / cuDNN 9 libraries missing or not on LD_LIBRARY_PATH? elbo env lists them; ELBO_TF_LOG=1 shows TensorFlow's reason)",
      deviceWhere,
    );
  }
  return r;
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
