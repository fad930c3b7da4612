import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { ROOT, tmpDir, smallConfig, elbo, lastJson, type RunOutput } from './helpers';
import type { EnvReport } from '../src/runtime/environment';
import type { CudaLibrary } from '../src/runtime/device';

// `elbo env` and `device: auto | cpu | gpu` (--device): a GPU is reported, and trained on,
// only when the GPU build uses one; asking for it where it cannot be had is one line and
// exit 1 before any run directory exists.

/** The CPU build `npm ci` made (absent where Python or PyPI were not there). */
const CPU_BUILD = path.join(
  process.env.ELBO_NATIVE_DIR ? path.resolve(process.env.ELBO_NATIVE_DIR) : path.join(ROOT, '.native'),
  'tfjs-node',
);
const HAVE_CPU_BUILD = fs.existsSync(path.join(CPU_BUILD, '.elbo-built'));

/**
 * A native folder for ELBO_NATIVE_DIR: empty, with the CPU build, or with the CPU build posing as
 * the GPU build (a GPU build on a machine whose TensorFlow finds no GPU).
 */
function nativeDir(builds: { cpu?: boolean; fakeGpu?: boolean }): string {
  const dir = tmpDir('elbo-native-');
  if (builds.cpu) fs.symlinkSync(CPU_BUILD, path.join(dir, 'tfjs-node'));
  if (builds.fakeGpu) fs.symlinkSync(CPU_BUILD, path.join(dir, 'tfjs-node-gpu'));
  return dir;
}

/** PATH with an nvidia-smi first: one that lists an H100, or one that fails as without a driver. */
function fakeNvidiaSmi(kind: 'h100' | 'no-driver'): string {
  const bin = tmpDir('elbo-smi-');
  const body =
    kind === 'h100'
      ? 'case "$*" in *driver_version*) echo "NVIDIA H100 80GB HBM3, 81559 MiB, 550.54.15" ;; *) echo "NVIDIA H100 80GB HBM3, 81559 MiB" ;; esac'
      : 'echo "NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver." >&2; exit 9';
  fs.writeFileSync(path.join(bin, 'nvidia-smi'), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return `${bin}:${process.env.PATH}`;
}

const noGpu = () => ({ PATH: fakeNvidiaSmi('no-driver'), ELBO_BACKEND: '' });

test('elbo env: fits 80 columns, says what auto picks and why, no GPU here, and does not load TensorFlow', () => {
  const dir = tmpDir();
  const probe = path.join(dir, 'probe.js');
  fs.writeFileSync(
    probe,
    `const Module = require('module'); const seen = new Set(); const load = Module._load;
Module._load = function (req, parent, isMain) {
  try { const f = Module._resolveFilename(req, parent, isMain); if (/@tensorflow|tfjs/.test(f) && !f.endsWith('package.json')) seen.add(f); } catch {}
  return load.apply(this, arguments);
};
process.on('exit', () => require('fs').writeFileSync(process.env.PROBE_OUT, JSON.stringify([...seen])));\n`,
  );
  const out = path.join(dir, 'loaded.json');
  // (reading the packages' versions from their package.json is not loading them)
  const r = elbo(['env'], { env: { ...noGpu(), ELBO_NATIVE_DIR: nativeDir({}), NODE_OPTIONS: `--require ${probe}`, PROBE_OUT: out } });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '');
  const lines = r.stdout.trimEnd().split('\n');
  for (const l of lines) assert.ok(l.length <= 80, `longer than 80 columns (${l.length}): ${l}`);
  const text = r.stdout.replace(/\n {13}/g, ' ');
  assert.match(text, new RegExp(`^node +${process.version.replace(/\./g, '\\.')} `, 'm'));
  assert.match(text, /^elbo +\d+\.\d+\.\d+ \((git [0-9a-f]{12}|not a git checkout)/m);
  assert.match(text, /^backend +auto picks wasm: the native backend is not built \(npm run setup:native builds it\)$/m);
  assert.match(text, /^devices +cpu: .*\(\d+ cores\) no GPU: nvidia-smi is not installed or does not answer$/m);
  assert.match(text, /^nvidia-smi +not found, or no driver answering$/m);
  assert.match(text, /^CUDA\/cuDNN +CUDA 12 and cuDNN 9, needed by the GPU build only/m);
  for (const lib of ['libcudart.so.12', 'libcublas.so.12', 'libcudnn.so.9'])
    assert.match(r.stdout, new RegExp(`^ {13}${lib.replace(/\./g, '\\.')} +(missing|/\\S+)$`, 'm'));
  assert.match(text, /^threads +TF_NUM_INTRAOP_THREADS /m);
  assert.match(text, /ELBO_TF_SESSION \(unset\): intra auto, inter auto/);
  assert.deepEqual(JSON.parse(fs.readFileSync(out, 'utf8')), [], 'elbo env loads TensorFlow');
  // the probe itself works: --load does load it
  const l = elbo(['env', '--load'], {
    env: { ...noGpu(), ELBO_NATIVE_DIR: nativeDir({}), NODE_OPTIONS: `--require ${probe}`, PROBE_OUT: out },
  });
  assert.equal(l.status, 0, l.stderr);
  assert.ok(JSON.parse(fs.readFileSync(out, 'utf8')).some((f: string) => f.includes('tfjs-core')));
});

test('elbo env --json: node, tfjs, native builds, backend, devices, cuda and threads; no GPU without the GPU build', () => {
  const native = nativeDir({ cpu: HAVE_CPU_BUILD });
  const r = elbo(['env', '--json'], {
    env: { PATH: fakeNvidiaSmi('h100'), ELBO_BACKEND: '', ELBO_NATIVE_DIR: native, OMP_NUM_THREADS: '3' },
  });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim().split('\n').length, 1);
  const e = JSON.parse(r.stdout);
  assert.equal(e.node.version, process.version);
  assert.equal(e.tfjs['@tensorflow/tfjs-core'], require('@tensorflow/tfjs-core/package.json').version);
  assert.equal(e.cpu.cores, require('os').cpus().length);
  assert.ok(e.memory.total_bytes > 0);
  assert.deepEqual(
    e.native.map((b: EnvReport['native'][number]) => [b.source, b.gpu, b.installed]),
    [
      ['npm', true, e.native[0].installed],
      ['npm', false, e.native[1].installed],
      ['setup:native', true, false],
      ['setup:native', false, HAVE_CPU_BUILD],
    ],
  );
  // nvidia-smi lists a GPU, but no GPU build is installed: TensorFlow computes on the CPU only
  assert.deepEqual(e.nvidia_smi, [{ name: 'NVIDIA H100 80GB HBM3', memory: '81559 MiB' }]);
  assert.deepEqual(
    e.devices.map((d: EnvReport['devices'][number]) => d.type),
    ['cpu'],
  );
  assert.equal(e.backend.device, 'cpu');
  if (!e.native[0].installed && !e.native[1].installed) {
    assert.equal(e.backend.auto, HAVE_CPU_BUILD ? 'tensorflow' : 'wasm');
    assert.equal(e.backend.loaded, false);
    if (HAVE_CPU_BUILD) assert.equal(e.tensorflow, '2.18.1');
  }
  assert.deepEqual(
    e.cuda.libraries.slice(0, 3).map((l: CudaLibrary) => l.name),
    ['libcudart.so.12', 'libcublas.so.12', 'libcudnn.so.9'],
  );
  assert.match(e.cuda.needed_by, /^the GPU build only/);
  assert.equal(e.threads.OMP_NUM_THREADS, '3');
  assert.equal(e.threads.TF_NUM_INTRAOP_THREADS, null);
  assert.deepEqual(e.threads.session, { intra: 0, inter: 0, remapper: 'on', xla: 'off' });

  // the text says why there is no GPU: the GPU build is missing, not the GPU
  const t = elbo(['env'], { env: { PATH: fakeNvidiaSmi('h100'), ELBO_BACKEND: '', ELBO_NATIVE_DIR: native } });
  assert.equal(t.status, 0, t.stderr);
  assert.match(t.stdout, /^ {13}no GPU: no GPU build \(npm run setup:native -- --gpu\)$/m);
  assert.match(t.stdout, /^nvidia-smi +NVIDIA H100 80GB HBM3 \(81559 MiB/m);
});

test(
  'elbo env --load: loads the backend auto picks and reports it',
  { skip: !HAVE_CPU_BUILD && 'the native backend is not built here' },
  () => {
    const r = elbo(['env', '--json', '--load'], { env: { ...noGpu(), ELBO_NATIVE_DIR: nativeDir({ cpu: true }) } });
    assert.equal(r.status, 0, r.stderr);
    const e = JSON.parse(r.stdout);
    assert.deepEqual([e.backend.auto, e.backend.loaded, e.backend.device, e.tensorflow], ['tensorflow', true, 'cpu', '2.18.1']);
    assert.match(e.backend.reason, /tfjs-node \(setup:native\) loads/);
  },
);

test(
  'ELBO_NATIVE_DIR outside the project: the build there loads once link-modules.sh has linked its node_modules',
  { skip: !HAVE_CPU_BUILD && 'the native backend is not built here' },
  () => {
    // a real copy of the build (hard links: no symlink that Node would resolve back into the
    // project), in a folder whose parents hold no node_modules
    const native = tmpDir('elbo-native-outside-');
    const cp = spawnSync('cp', ['-al', fs.realpathSync(CPU_BUILD), path.join(native, 'tfjs-node')]);
    assert.equal(cp.status, 0, String(cp.stderr));
    const load = () => elbo(['env', '--json', '--load'], { env: { ...noGpu(), ELBO_NATIVE_DIR: native } });
    const link = () => spawnSync('bash', [path.join(ROOT, 'src/runtime/native/link-modules.sh'), native, ROOT], { encoding: 'utf8' });
    const before = JSON.parse(load().stdout);
    assert.equal(before.backend.auto, 'wasm');
    assert.match(
      before.backend.reason,
      /Cannot find module '@tensorflow\/tfjs' \(npm run setup:native links the project's node_modules there\)/,
    );
    const linked = link();
    assert.equal(linked.status, 0, linked.stderr);
    assert.match(linked.stdout, /is outside the project: .*node_modules links to .*node_modules$/m);
    assert.equal(fs.realpathSync(path.join(native, 'node_modules')), fs.realpathSync(path.join(ROOT, 'node_modules')));
    const after = JSON.parse(load().stdout);
    assert.deepEqual([after.backend.auto, after.backend.loaded, after.tensorflow], ['tensorflow', true, '2.18.1']);
    // a second run leaves a working link alone
    const again = link();
    assert.deepEqual([again.status, again.stdout], [0, '']);
  },
);

/** `elbo run` that must refuse before training: exit 1, one stderr line matching `line`, no run directory. */
function refuses(args: string[], env: Record<string, string>, line: RegExp): void {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  const runs = path.join(dir, 'runs');
  const r = elbo(['run', cfg, '--runs-dir', runs, '--set', 'train.epochs=1', ...args], { env });
  assert.equal(r.status, 1, r.stderr);
  const errs = r.stderr.trimEnd().split('\n');
  assert.equal(errs.length, 1, r.stderr);
  assert.match(errs[0], line);
  assert.equal(r.stdout, '');
  assert.ok(!fs.existsSync(runs), `a run directory was created: ${fs.existsSync(runs) ? fs.readdirSync(runs) : ''}`);
}

test('--device gpu and device: gpu without the GPU build: one line naming the flag or key and what to do, exit 1, no run directory', () => {
  const env = { ...noGpu(), ELBO_NATIVE_DIR: nativeDir({ cpu: HAVE_CPU_BUILD }) };
  const notInstalled =
    "the GPU build of the native backend is not installed: build it with 'npm run setup:native -- --gpu' \\(it needs the CUDA 12 and cuDNN 9 libraries; see elbo env\\), or use device cpu$";
  refuses(['--device', 'gpu'], env, new RegExp(`^--device gpu: ${notInstalled}`));
  refuses(['--set', 'device=gpu'], env, new RegExp(`^config 'device: gpu': ${notInstalled}`));
  // --device wins over the config's key
  refuses(['--set', 'device=cpu', '--device', 'gpu'], env, new RegExp(`^--device gpu: ${notInstalled}`));
  // a backend that computes on the CPU only
  refuses(
    ['--device', 'gpu', '--backend', 'wasm'],
    env,
    /^--device gpu: a GPU needs the tensorflow backend \(its GPU build\); backend 'wasm' \(--backend\) computes on the CPU only$/,
  );
  // an unknown device is oclif's usage error
  const dir = tmpDir();
  const r = elbo(['run', smallConfig(dir), '--runs-dir', path.join(dir, 'runs'), '--device', 'tpu'], { env });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /^run: Expected --device=tpu to be one of: auto, cpu, gpu/);
});

test(
  'device gpu with a GPU build that finds no GPU: refused before training, never a quiet CPU run',
  { skip: !HAVE_CPU_BUILD && 'the native backend is not built here' },
  () => {
    // the CPU build posing as the GPU build: installed, but TensorFlow sees no GPU
    const native = nativeDir({ fakeGpu: true });
    refuses(
      ['--device', 'gpu'],
      { PATH: fakeNvidiaSmi('no-driver'), ELBO_BACKEND: '', ELBO_NATIVE_DIR: native },
      /^--device gpu: no GPU is visible \(nvidia-smi is not installed or does not answer: no NVIDIA driver\?\); use device cpu, or see elbo env$/,
    );
    refuses(
      ['--device', 'gpu'],
      { PATH: fakeNvidiaSmi('h100'), ELBO_BACKEND: '', ELBO_NATIVE_DIR: native, CUDA_VISIBLE_DEVICES: '-1' },
      /^--device gpu: CUDA_VISIBLE_DEVICES=-1 hides every GPU; unset it, or use device cpu$/,
    );
    // nvidia-smi lists one, the build loads, and TensorFlow uses no GPU: said, not trained on the CPU
    refuses(
      ['--set', 'device=gpu'],
      { PATH: fakeNvidiaSmi('h100'), ELBO_BACKEND: '', ELBO_NATIVE_DIR: native },
      /^config 'device: gpu': the GPU build loaded but TensorFlow found no GPU it can use \(the CUDA 12 \/ cuDNN 9 libraries missing/,
    );
    // elbo env asks that build, and reports no GPU device
    const e = elbo(['env', '--json'], { env: { PATH: fakeNvidiaSmi('h100'), ELBO_BACKEND: '', ELBO_NATIVE_DIR: native } });
    assert.equal(e.status, 0, e.stderr);
    const j = JSON.parse(e.stdout);
    assert.deepEqual(
      [j.backend.loaded, j.backend.device, j.devices.map((d: EnvReport['devices'][number]) => d.type)],
      [true, 'cpu', ['cpu']],
    );
    const t = elbo(['env'], { env: { PATH: fakeNvidiaSmi('h100'), ELBO_BACKEND: '', ELBO_NATIVE_DIR: native } });
    assert.match(t.stdout, /no GPU: the GPU build loaded but TensorFlow uses no GPU/);
  },
);

test('elbo validate accepts device: cpu, refuses device: tpu; a config without device resolves without the key', () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  const withCpu = path.join(dir, 'cpu.yaml');
  fs.writeFileSync(withCpu, fs.readFileSync(cfg, 'utf8') + 'device: cpu\n');
  const v = elbo(['validate', withCpu]);
  assert.equal(v.status, 0, v.stderr);
  const bad = path.join(dir, 'tpu.yaml');
  fs.writeFileSync(bad, fs.readFileSync(cfg, 'utf8') + 'device: tpu\n');
  const b = elbo(['validate', bad]);
  assert.equal(b.status, 1);
  assert.match(b.stderr, /device must be one of auto, cpu, gpu/);
  // no default: configs written before the key resolve (and hash) as they did
  const p = elbo(['run', cfg, '--print-config']);
  assert.equal(p.status, 0, p.stderr);
  assert.doesNotMatch(p.stdout, /^device:/m);
  const q = elbo(['run', withCpu, '--print-config']);
  assert.match(q.stdout, /^device: cpu$/m);
});

test('a run records the device that trained in run.json (backend.device) and says it in its header', () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  const r = elbo(
    [
      'run',
      cfg,
      '--runs-dir',
      path.join(dir, 'runs'),
      '--json',
      '--device',
      'cpu',
      '--set',
      'train.epochs=1',
      '--set',
      'eval=[{kind: elbo}]',
    ],
    { env: { PATH: fakeNvidiaSmi('no-driver') } },
  );
  assert.equal(r.status, 0, r.stderr);
  const out = lastJson<RunOutput>(r.stdout);
  const rec = JSON.parse(fs.readFileSync(path.join(out.runDir, 'run.json'), 'utf8'));
  assert.equal(rec.backend.device, 'cpu');
  assert.match(r.stderr, new RegExp(`^run ${out.runId}: .*, backend ${rec.backend.name}(?: \\(.*\\))?, device cpu, seed 1$`, 'm'));
  const show = elbo(['runs', 'show', out.runDir]);
  assert.equal(show.status, 0, show.stderr);
  assert.match(show.stdout, /^backend +\S+ [^\n]*, device cpu$/m);
});

test('a run that trained on a GPU resumes on one: refused in one line where there is none; --device cpu continues it', () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  const env = { PATH: fakeNvidiaSmi('no-driver') };
  const r = elbo(
    [
      'run',
      cfg,
      '--runs-dir',
      path.join(dir, 'runs'),
      '--json',
      '--set',
      'train.epochs=2',
      '--set',
      'eval=[{kind: elbo}]',
      '--pause-at',
      '1',
      '-q',
    ],
    { env },
  );
  assert.equal(r.status, 0, r.stderr);
  const runDir = lastJson<RunOutput>(r.stdout).runDir;
  const file = path.join(runDir, 'run.json');
  const rec = JSON.parse(fs.readFileSync(file, 'utf8'));
  assert.equal(rec.status, 'PAUSED');
  // as if it had trained on a GPU
  rec.backend = { ...rec.backend, name: 'tensorflow', device: 'gpu: NVIDIA H100 80GB HBM3' };
  fs.writeFileSync(file, JSON.stringify(rec, null, 2));
  const again = elbo(['run', '--resume', runDir, '-q'], { env });
  assert.equal(again.status, 1, again.stderr);
  assert.equal(again.stderr.trimEnd().split('\n').length, 1, again.stderr);
  assert.match(again.stderr, /^--resume \(the run trained on gpu: NVIDIA H100 80GB HBM3; --device cpu continues it on the CPU\): /);
  assert.equal(JSON.parse(fs.readFileSync(file, 'utf8')).status, 'PAUSED', 'the refused resume changed the record');
  if (!HAVE_CPU_BUILD && !process.env.ELBO_BACKEND) return;
  const cpu = elbo(['run', '--resume', runDir, '--device', 'cpu', '--backend', process.env.ELBO_BACKEND || 'tensorflow', '--json', '-q'], {
    env,
  });
  assert.equal(cpu.status, 0, cpu.stderr);
  assert.equal(JSON.parse(fs.readFileSync(file, 'utf8')).backend.device, 'cpu');
});

test(
  'device cpu with the GPU build: the GPUs are hidden (CUDA_VISIBLE_DEVICES=-1) and the run records cpu',
  { skip: !HAVE_CPU_BUILD && 'the native backend is not built here' },
  () => {
    const dir = tmpDir();
    const cfg = smallConfig(dir);
    const r = elbo(
      [
        'run',
        cfg,
        '--runs-dir',
        path.join(dir, 'runs'),
        '--json',
        '--set',
        'device=cpu',
        '--set',
        'train.epochs=1',
        '--set',
        'eval=[{kind: elbo}]',
      ],
      {
        env: { PATH: fakeNvidiaSmi('h100'), ELBO_BACKEND: '', ELBO_NATIVE_DIR: nativeDir({ fakeGpu: true }) },
      },
    );
    assert.equal(r.status, 0, r.stderr);
    const rec = JSON.parse(fs.readFileSync(path.join(lastJson<RunOutput>(r.stdout).runDir, 'run.json'), 'utf8'));
    assert.deepEqual([rec.backend.name, rec.backend.package, rec.backend.device], ['tensorflow', 'tfjs-node-gpu (setup:native)', 'cpu']);
  },
);

test('npm run setup:native -- --gpu --check: what the GPU build needs and what is here; downloads nothing', () => {
  const native = path.join(tmpDir(), 'native');
  const script = path.join(ROOT, 'src', 'runtime', 'native', 'setup.sh');
  const r = spawnSync('bash', [script, '--gpu', '--check'], {
    encoding: 'utf8',
    env: { ...process.env, PATH: fakeNvidiaSmi('no-driver'), ELBO_NATIVE_DIR: native },
    timeout: 60_000,
  });
  assert.equal(r.status, 1, r.stderr);
  const text = r.stdout.replace(/\n +/g, ' ');
  assert.match(r.stdout, /^setup:native: check: the gpu build takes libtensorflow from tensorflow==2\.18\.1$/m);
  assert.match(
    text,
    /needs CUDA 12 and cuDNN 9 at run time, from the pip packages \(requirements-cuda\.txt, pinned, about 3 GB\): .*nvidia-cublas-cu12 .*nvidia-cuda-runtime-cu12 nvidia-cudnn-cu12 /,
  );
  assert.match(text, /LD_LIBRARY_PATH/);
  assert.match(text, /TF_FORCE_GPU_ALLOW_GROWTH=true/);
  assert.match(text, /GPU: NONE VISIBLE/);
  for (const lib of ['libcudart.so.12', 'libcublas.so.12', 'libcudnn.so.9'])
    assert.match(r.stdout, new RegExp(`^  ${lib.replace(/\./g, '\\.')} +\\S`, 'm'));
  assert.match(r.stdout, /^setup:native: check: not ready \(see above; nothing was downloaded\)$/m);
  assert.ok(!fs.existsSync(native), 'the check created the native folder');
  // with a GPU listed: its line, with the driver
  const g = spawnSync('bash', [script, '--gpu', '--check'], {
    encoding: 'utf8',
    env: { ...process.env, PATH: fakeNvidiaSmi('h100'), ELBO_NATIVE_DIR: native },
    timeout: 60_000,
  });
  assert.match(g.stdout, /^ {2}GPU: NVIDIA H100 80GB HBM3, 81559 MiB, 550\.54\.15 \(CUDA 12 needs driver 525\.60 or newer\)$/m);
});
