import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { elboRoot } from './fingerprint';

/**
 * What the machine offers the native backend, found without loading TensorFlow: the
 * native builds there are (npm packages, `npm run setup:native` builds in .native/), the
 * GPUs nvidia-smi lists, and the CUDA 12 / cuDNN 9 libraries the GPU build loads. Used by
 * `elbo env` and by `device: gpu` (src/runtime/backend.ts), which must refuse before any
 * training when a GPU run cannot happen.
 */

/** `device:` (config) and `--device` (elbo run): where the native backend computes. */
export const DEVICES = ['auto', 'cpu', 'gpu'] as const;
export type DeviceRequest = (typeof DEVICES)[number];

/** The folder `npm run setup:native` builds into. */
export function nativeDir(): string {
  return process.env.ELBO_NATIVE_DIR ? path.resolve(process.env.ELBO_NATIVE_DIR) : path.join(elboRoot(), '.native');
}

export interface NativeBuild {
  /** What require() loads: an npm package name or a folder. */
  package: string;
  /** How it is shown: '@tensorflow/tfjs-node-gpu' or '.native/tfjs-node (setup:native)'. */
  label: string;
  gpu: boolean;
  source: 'npm' | 'setup:native';
  /** Present: require.resolve finds it. */
  installed: boolean;
  version?: string;
  /** The TensorFlow C library's version, where it can be read without loading it (setup:native's build stamp). */
  tensorflow?: string;
  /** Folder of the build's shared libraries (where setup.sh --gpu lays out the CUDA libraries). */
  libDir?: string;
}

function resolvable(p: string): boolean {
  try {
    require.resolve(p);
    return true;
  } catch {
    return false;
  }
}

/** The native builds backend.ts tries, in its order (GPU builds first), each present or not. */
export function nativeBuilds(): NativeBuild[] {
  const dir = nativeDir();
  const shownDir =
    path.relative(process.cwd(), dir) && !path.relative(process.cwd(), dir).startsWith('..') ? path.relative(process.cwd(), dir) : dir;
  const out: NativeBuild[] = [];
  for (const name of ['tfjs-node-gpu', 'tfjs-node']) {
    const pkg = `@tensorflow/${name}`;
    const b: NativeBuild = { package: pkg, label: pkg, gpu: name.endsWith('-gpu'), source: 'npm', installed: resolvable(pkg) };
    if (b.installed) {
      try {
        const pj = require.resolve(`${pkg}/package.json`);
        b.version = require(pj).version;
        b.libDir = path.join(path.dirname(pj), 'deps', 'lib');
      } catch {
        /* no package.json */
      }
    }
    out.push(b);
  }
  for (const name of ['tfjs-node-gpu', 'tfjs-node']) {
    const folder = path.join(dir, name);
    const b: NativeBuild = {
      package: folder,
      label: `${path.join(shownDir, name)} (setup:native)`,
      gpu: name.endsWith('-gpu'),
      source: 'setup:native',
      installed: resolvable(folder),
    };
    if (b.installed) {
      try {
        b.version = JSON.parse(fs.readFileSync(path.join(folder, 'package.json'), 'utf8')).version;
      } catch {
        /* unreadable */
      }
      b.libDir = path.join(folder, 'deps', 'lib');
      try {
        // setup.sh's stamp: "tfjs-node@4.22.0 tensorflow-cpu==2.18.1 --hash=... patch ..."
        const m = /\btensorflow(?:-cpu)?==(\S+)/.exec(fs.readFileSync(path.join(folder, '.elbo-built'), 'utf8'));
        if (m) b.tensorflow = m[1];
      } catch {
        /* built before the stamp, or by hand */
      }
    }
    out.push(b);
  }
  // backend.ts's order: npm packages before setup:native builds, GPU before CPU within each
  return out;
}

export interface Gpu {
  name: string;
  /** As nvidia-smi says it, e.g. '81559 MiB'. */
  memory: string;
}

/**
 * The GPUs `nvidia-smi --query-gpu=name,memory.total --format=csv,noheader` lists; null when
 * it is not installed or does not answer (no driver), [] when it lists none. CUDA_VISIBLE_DEVICES
 * is not applied here (see visibleGpus).
 */
export function nvidiaSmiGpus(): Gpu[] | null {
  let out: string;
  try {
    out = execFileSync('nvidia-smi', ['--query-gpu=name,memory.total', '--format=csv,noheader'], {
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 10000,
    }).toString();
  } catch {
    return null;
  }
  return out
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => {
      const i = l.lastIndexOf(',');
      return i < 0 ? { name: l, memory: 'unknown' } : { name: l.slice(0, i).trim(), memory: l.slice(i + 1).trim() };
    });
}

/** The GPUs a CUDA program started now would see: nvidia-smi's, narrowed by CUDA_VISIBLE_DEVICES (indices). */
export function visibleGpus(all: Gpu[] | null = nvidiaSmiGpus(), env: NodeJS.ProcessEnv = process.env): Gpu[] {
  if (!all) return [];
  const cvd = env.CUDA_VISIBLE_DEVICES;
  if (cvd === undefined) return all;
  const picked: Gpu[] = [];
  for (const part of cvd.split(',').map((s) => s.trim())) {
    // CUDA stops at the first invalid entry (e.g. -1, or a UUID it cannot match here: kept as is)
    if (!/^\d+$/.test(part)) {
      if (/^(GPU|MIG)-/.test(part)) picked.push(...all.slice(picked.length, picked.length + 1));
      else break;
      continue;
    }
    const g = all[Number(part)];
    if (!g) break;
    picked.push(g);
  }
  return picked;
}

/** The CUDA 12 / cuDNN 9 libraries TensorFlow 2.18's GPU build loads; the first three are what elbo env lists. */
export const CUDA_LIBRARIES = [
  'libcudart.so.12',
  'libcublas.so.12',
  'libcudnn.so.9',
  'libcublasLt.so.12',
  'libcufft.so.11',
  'libcusolver.so.11',
  'libcusparse.so.12',
];

export interface CudaLibrary {
  name: string;
  /** Where it was found, or null. */
  path: string | null;
}

/** Folders of the `nvidia-*-cu12` pip wheels (site-packages/nvidia/<part>/lib) in the usual Python prefixes. */
function pipNvidiaLibDirs(): string[] {
  const prefixes = new Set<string>(['/usr/lib', '/usr/local/lib', path.join(os.homedir(), '.local', 'lib')]);
  if (process.env.VIRTUAL_ENV) prefixes.add(path.join(process.env.VIRTUAL_ENV, 'lib'));
  if (process.env.CONDA_PREFIX) prefixes.add(path.join(process.env.CONDA_PREFIX, 'lib'));
  const dirs: string[] = [];
  for (const prefix of prefixes) {
    let pythons: string[];
    try {
      pythons = fs.readdirSync(prefix).filter((d) => /^python3(\.\d+)?$/.test(d));
    } catch {
      continue;
    }
    for (const py of pythons) {
      for (const site of ['site-packages', 'dist-packages']) {
        const nvidia = path.join(prefix, py, site, 'nvidia');
        let parts: string[];
        try {
          parts = fs.readdirSync(nvidia);
        } catch {
          continue;
        }
        for (const part of parts) dirs.push(path.join(nvidia, part, 'lib'));
      }
    }
  }
  return dirs;
}

/** `ldconfig -p`: library name → path, for the libraries the dynamic loader's cache knows. */
function ldconfigCache(): Map<string, string> {
  const map = new Map<string, string>();
  for (const bin of ['ldconfig', '/sbin/ldconfig', '/usr/sbin/ldconfig']) {
    try {
      const out = execFileSync(bin, ['-p'], { stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).toString();
      for (const line of out.split('\n')) {
        const m = /^\s*(\S+)\s.*=>\s*(\S+)\s*$/.exec(line);
        if (m && !map.has(m[1])) map.set(m[1], m[2]);
      }
      return map;
    } catch {
      /* try the next */
    }
  }
  return map;
}

/**
 * Where the CUDA 12 / cuDNN 9 libraries are: the GPU build's own lib folder (setup.sh --gpu
 * puts them beside libtensorflow), LD_LIBRARY_PATH, the loader's cache (ldconfig -p),
 * /usr/local/cuda, and the nvidia-* pip wheels' lib folders.
 */
export function findCudaLibraries(extraDirs: string[] = [], names: string[] = CUDA_LIBRARIES): CudaLibrary[] {
  const dirs = [
    ...extraDirs,
    ...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean),
    '/usr/local/cuda/lib64',
    '/usr/local/cuda/targets/x86_64-linux/lib',
    ...pipNvidiaLibDirs(),
  ];
  let cache: Map<string, string> | undefined;
  return names.map((name) => {
    for (const d of dirs) {
      const p = path.join(d, name);
      if (fs.existsSync(p)) return { name, path: p };
    }
    cache ??= ldconfigCache();
    return { name, path: cache.get(name) ?? null };
  });
}

/** The name nvidia-smi gives the GPU a process started now would use first (CUDA_VISIBLE_DEVICES applied). */
export function firstVisibleGpuName(): string | null {
  return visibleGpus()[0]?.name ?? null;
}
