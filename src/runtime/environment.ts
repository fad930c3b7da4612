import * as os from 'os';
import { elboRoot, elboVersion, gitState } from './fingerprint';
import {
  CUDA_LIBRARIES,
  findCudaLibraries,
  nativeBuilds,
  nvidiaSmiGpus,
  visibleGpus,
  type CudaLibrary,
  type Gpu,
  type NativeBuild,
} from './device';
import { parseSessionConfig, type SessionConfig } from './graph/session-config';
import type { Caught } from '../errors';

/**
 * `elbo env`: what a bug report or a "why is it slow / not on the GPU" question needs, in the
 * spirit of `python -m torch.utils.collect_env`. TensorFlow is loaded only to ask it what it
 * sees when that cannot be known otherwise: with `load`, or when the GPU build is installed
 * and nvidia-smi lists a GPU (a GPU is reported only when TensorFlow uses it).
 */
export interface EnvReport {
  elbo: { version: string; root: string; commit: string | null; dirty: boolean | null; branch: string | null };
  node: { version: string; napi: string };
  os: { platform: string; arch: string; release: string };
  cpu: { model: string; cores: number };
  memory: { total_bytes: number; free_bytes: number };
  /** Versions of the TensorFlow.js packages installed (npm). */
  tfjs: Record<string, string>;
  native: (Pick<NativeBuild, 'label' | 'gpu' | 'source' | 'installed'> & { version: string | null; tensorflow: string | null })[];
  /** The TensorFlow C library version of the native build `auto` would use (null: none, or unknown without loading it). */
  tensorflow: string | null;
  backend: {
    /** What `auto` picks (predicted from what is installed unless `loaded`). */
    auto: string;
    package: string | null;
    reason: string;
    /** TensorFlow was loaded to check (elbo env --load, or a GPU build with a GPU listed). */
    loaded: boolean;
    /** Where `auto` computes: 'cpu' or 'gpu: <name>'. */
    device: string;
    /** Why loading it failed (loaded only). */
    error?: string;
  };
  /** What TensorFlow computes on: the CPU always; a GPU only when the GPU build loaded and uses it. */
  devices: { type: 'cpu' | 'gpu'; name: string; memory?: string }[];
  /** What nvidia-smi lists (null: not installed or no driver answering). */
  nvidia_smi: Gpu[] | null;
  cuda: { needed_by: string; libraries: CudaLibrary[]; gpu_build_lib_dirs: string[] };
  threads: {
    TF_NUM_INTRAOP_THREADS: string | null;
    TF_NUM_INTEROP_THREADS: string | null;
    OMP_NUM_THREADS: string | null;
    CUDA_VISIBLE_DEVICES: string | null;
    TF_FORCE_GPU_ALLOW_GROWTH: string | null;
    ELBO_TF_SESSION: string | null;
    /** The native backend's session configuration ELBO_TF_SESSION gives (over elbo's defaults); null when it does not parse. */
    session: SessionConfig | null;
    session_error?: string;
  };
}

const TFJS_PACKAGES = [
  '@tensorflow/tfjs',
  '@tensorflow/tfjs-core',
  '@tensorflow/tfjs-backend-cpu',
  '@tensorflow/tfjs-backend-wasm',
  '@tensorflow/tfjs-node',
  '@tensorflow/tfjs-node-gpu',
];

export async function envReport(o: { load?: boolean } = {}): Promise<EnvReport> {
  const root = elboRoot();
  const git = gitState(root);
  const tfjs: Record<string, string> = {};
  for (const p of TFJS_PACKAGES) {
    try {
      tfjs[p] = require(`${p}/package.json`).version;
    } catch {
      /* not installed */
    }
  }
  const builds = nativeBuilds();
  const smi = nvidiaSmiGpus();
  const env = process.env;
  const threads: EnvReport['threads'] = {
    TF_NUM_INTRAOP_THREADS: env.TF_NUM_INTRAOP_THREADS ?? null,
    TF_NUM_INTEROP_THREADS: env.TF_NUM_INTEROP_THREADS ?? null,
    OMP_NUM_THREADS: env.OMP_NUM_THREADS ?? null,
    CUDA_VISIBLE_DEVICES: env.CUDA_VISIBLE_DEVICES ?? null,
    TF_FORCE_GPU_ALLOW_GROWTH: env.TF_FORCE_GPU_ALLOW_GROWTH ?? null,
    ELBO_TF_SESSION: env.ELBO_TF_SESSION ?? null,
    session: null,
  };
  try {
    threads.session = parseSessionConfig(env.ELBO_TF_SESSION);
  } catch (e) {
    threads.session_error = String((e as Caught)?.message ?? e);
  }

  // what auto picks, predicted from what is installed (backend.ts's order)
  const firstNative = builds.find((b) => b.installed);
  const pinned = env.ELBO_BACKEND;
  let backend: EnvReport['backend'];
  if (pinned) {
    backend = { auto: pinned, package: null, reason: `ELBO_BACKEND=${pinned} pins what auto means`, loaded: false, device: 'cpu' };
  } else if (firstNative) {
    backend = {
      auto: 'tensorflow',
      package: firstNative.label,
      reason: `the native build ${firstNative.label.replace(' (setup:native)', '')} is there`,
      loaded: false,
      device: 'cpu',
    };
  } else {
    const { NOT_BUILT } = await import('./backend');
    backend = { auto: 'wasm', package: '@tensorflow/tfjs-backend-wasm', reason: NOT_BUILT, loaded: false, device: 'cpu' };
  }
  const gpuBuild = builds.find((b) => b.installed && b.gpu);
  const gpuListed = !!smi && visibleGpus(smi).length > 0;
  const devices: EnvReport['devices'] = [{ type: 'cpu', name: `${os.cpus()[0]?.model?.trim() ?? 'unknown'} (${os.cpus().length} cores)` }];
  let tensorflow = (backend.auto === 'tensorflow' && firstNative?.tensorflow) || null;
  // TensorFlow is asked only when it alone can say: --load, or a GPU build with a GPU to use
  if (o.load || (gpuBuild && gpuListed)) {
    const { selectBackend } = await import('./backend');
    try {
      const info = await selectBackend('auto', 'elbo env');
      backend = {
        auto: info.name,
        package: info.package,
        reason: info.fallback ?? (pinned ? backend.reason : `${info.package} loads`),
        loaded: true,
        device: info.device ?? 'cpu',
      };
      tensorflow = info.tensorflow ?? tensorflow;
    } catch (e) {
      backend = { ...backend, loaded: true, error: String((e as Caught)?.message ?? e).split('\n')[0] };
    }
    if (backend.device.startsWith('gpu')) {
      for (const g of visibleGpus(smi)) devices.push({ type: 'gpu', name: g.name, memory: g.memory });
    }
  }
  return {
    elbo: { version: elboVersion(), root, commit: git.commit, dirty: git.dirty, branch: git.branch ?? null },
    node: { version: process.version, napi: process.versions.napi ?? 'unknown' },
    os: { platform: os.platform(), arch: os.arch(), release: os.release() },
    cpu: { model: os.cpus()[0]?.model?.trim() ?? 'unknown', cores: os.cpus().length },
    memory: { total_bytes: os.totalmem(), free_bytes: os.freemem() },
    tfjs,
    native: builds.map((b) => ({
      label: b.label,
      gpu: b.gpu,
      source: b.source,
      installed: b.installed,
      version: b.version ?? null,
      tensorflow: b.tensorflow ?? null,
    })),
    tensorflow,
    backend,
    devices,
    nvidia_smi: smi,
    cuda: {
      needed_by: 'the GPU build only (npm run setup:native -- --gpu lays them out beside it)',
      libraries: findCudaLibraries(
        builds.filter((b) => b.gpu && b.installed && b.libDir).map((b) => b.libDir!),
        CUDA_LIBRARIES,
      ),
      gpu_build_lib_dirs: builds.filter((b) => b.gpu && b.installed && b.libDir).map((b) => b.libDir!),
    },
    threads,
  };
}

/** Text columns `elbo env` keeps to. */
export const WIDTH = 80;
const LABEL = 13;

/** `label  value`, the value wrapped at spaces (a word longer than the line is cut) under its column. */
function row(label: string, value: string, width = WIDTH): string[] {
  const room = width - LABEL;
  const words = value.split(' ').flatMap((w) => {
    const parts: string[] = [];
    for (let i = 0; i < w.length; i += room) parts.push(w.slice(i, i + room));
    return parts.length ? parts : [''];
  });
  const lines: string[] = [];
  let cur = '';
  for (const w of words) {
    if (cur && cur.length + 1 + w.length > room) {
      lines.push(cur);
      cur = w;
    } else cur = cur ? `${cur} ${w}` : w;
  }
  lines.push(cur);
  return lines.map((l, i) => `${(i === 0 ? label : '').padEnd(LABEL)}${l}`.trimEnd());
}

const gib = (b: number) => `${(b / 2 ** 30).toFixed(1)} GiB`;

export function formatEnv(r: EnvReport): string {
  const out: string[] = [];
  const git = r.elbo.commit
    ? `git ${r.elbo.commit.slice(0, 12)}${r.elbo.dirty ? ', uncommitted changes' : ''}${r.elbo.branch ? ` on ${r.elbo.branch}` : ''}`
    : 'not a git checkout';
  out.push(...row('elbo', `${r.elbo.version} (${git}) in ${r.elbo.root}`));
  out.push(...row('node', `${r.node.version} (N-API ${r.node.napi})`));
  out.push(...row('os', `${r.os.platform} ${r.os.arch} (${r.os.release})`));
  out.push(...row('cpu', `${r.cpu.model}, ${r.cpu.cores} cores`));
  out.push(...row('memory', `${gib(r.memory.total_bytes)} total, ${gib(r.memory.free_bytes)} free`));
  out.push(
    ...row(
      'tfjs',
      Object.entries(r.tfjs)
        .map(([p, v]) => `${p.replace('@tensorflow/', '')} ${v}`)
        .join(', ') || 'none installed (npm ci)',
    ),
  );
  const builds = r.native.map((b) => {
    const what = b.installed
      ? `${b.version ?? '?'}${b.tensorflow ? `, TensorFlow ${b.tensorflow}` : ''}`
      : b.source === 'npm'
        ? 'not installed'
        : `not built${b.gpu ? ' (npm run setup:native -- --gpu)' : ' (npm run setup:native)'}`;
    return `${b.label.replace(' (setup:native)', '')}: ${what}`;
  });
  out.push(...row('native', builds[0]));
  for (const b of builds.slice(1)) out.push(...row('', b));
  out.push(
    ...row(
      'tensorflow',
      r.tensorflow ??
        (r.backend.auto === 'tensorflow' ? 'version unknown without loading it (elbo env --load)' : 'not used (no native build)'),
    ),
  );
  const checked = r.backend.loaded
    ? r.backend.error
      ? `; loading failed: ${r.backend.error}`
      : ''
    : r.backend.auto === 'tensorflow'
      ? '; not loaded (elbo env --load checks it)'
      : '';
  out.push(...row('backend', `auto picks ${r.backend.auto}: ${r.backend.reason}${checked}`));
  out.push(...row('devices', r.devices.map((d) => `${d.type}: ${d.name}${d.memory ? ` (${d.memory})` : ''}`).join('; ')));
  const gpuBuild = r.native.some((b) => b.installed && b.gpu);
  if (!r.devices.some((d) => d.type === 'gpu')) {
    const why = !r.nvidia_smi
      ? 'nvidia-smi is not installed or does not answer'
      : !r.nvidia_smi.length
        ? 'nvidia-smi lists none'
        : !gpuBuild
          ? 'no GPU build (npm run setup:native -- --gpu)'
          : r.backend.loaded && !r.backend.error
            ? 'the GPU build loaded but TensorFlow uses no GPU (CUDA libraries below?)'
            : 'the GPU build did not load';
    out.push(...row('', `no GPU: ${why}`));
  }
  out.push(
    ...row(
      'nvidia-smi',
      r.nvidia_smi === null
        ? 'not found, or no driver answering'
        : r.nvidia_smi.length
          ? r.nvidia_smi.map((g) => `${g.name} (${g.memory})`).join('; ')
          : 'lists no GPU',
    ),
  );
  out.push(...row('CUDA/cuDNN', `CUDA 12 and cuDNN 9, needed by ${r.cuda.needed_by}:`));
  for (const l of r.cuda.libraries) out.push(...row('', `${l.name.padEnd(18)} ${l.path ?? 'missing'}`));
  const t = r.threads;
  const s = t.session;
  const session = t.session_error
    ? `does not parse: ${t.session_error}`
    : `intra ${s!.intra || 'auto'}, inter ${s!.inter || 'auto'}, remapper ${s!.remapper}, xla ${s!.xla}`;
  out.push(...row('threads', `TF_NUM_INTRAOP_THREADS ${t.TF_NUM_INTRAOP_THREADS ?? '(unset)'}`));
  for (const k of ['TF_NUM_INTEROP_THREADS', 'OMP_NUM_THREADS', 'CUDA_VISIBLE_DEVICES', 'TF_FORCE_GPU_ALLOW_GROWTH'] as const)
    out.push(...row('', `${k} ${t[k] ?? '(unset)'}`));
  out.push(...row('', `ELBO_TF_SESSION ${t.ELBO_TF_SESSION ?? '(unset)'}: ${session}`));
  return out.join('\n') + '\n';
}
