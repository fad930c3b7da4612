/**
 * `npm run bench`: training throughput of the quickstart VAE on each installed backend.
 *
 *   node dist/src/bench/bench.js [--backends wasm,cpu] [--steps 30] [--min-seconds 5] [--max-seconds 20] [--no-torch] [--json]
 *
 * Each backend runs in its own child process (`--worker NAME`), because tfjs keeps one
 * global engine per process: backends would otherwise share kernels' registration,
 * memory and thread pools, and the first one would warm caches for the others.
 */
import { spawnSync } from 'child_process';
import * as os from 'os';
import * as path from 'path';
import { installedBackends, selectBackend, getTf } from '../runtime/backend';
import { buildWorkload, flopsPerSample, BATCH, Phase } from './workload';

interface Result {
  backend: string;
  version: string;
  threads: number | null;
  steps: number;
  seconds: number;
  msPerStep: number;
  samplesPerSec: number;
  gflops: number;
  loss: number;
}
type Outcome = Result | { backend: string; error: string };

function parseArgs(argv: string[]) {
  const flag = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const num = (name: string, dflt: number) => {
    const v = Number(flag(name) ?? dflt);
    if (!(v > 0)) throw new Error(`${name} must be a positive number`);
    return v;
  };
  return {
    worker: flag('--worker'),
    backends: flag('--backends')?.split(',').filter(Boolean) ?? installedBackends(),
    json: argv.includes('--json'),
    noTorch: argv.includes('--no-torch'),
    timed: { steps: num('--steps', 30), minSeconds: num('--min-seconds', 5), maxSeconds: num('--max-seconds', 20) } as Phase,
    passThrough: ['--steps', '--min-seconds', '--max-seconds'].flatMap((f) => (flag(f) ? [f, flag(f)!] : [])),
  };
}

/** Child: measure one backend, print one JSON line. */
async function worker(name: string, timed: Phase): Promise<void> {
  const info = await selectBackend(name, '--backends');
  const tf = getTf();
  // wasm picks its thread count at load time; report it, as it explains most of the spread between machines
  const threads = name === 'wasm' ? require('@tensorflow/tfjs-backend-wasm').getThreadsCount() : null;
  const w = buildWorkload(tf);
  // warm-up: kernel compilation, wasm memory growth, first-use allocations
  w.run({ steps: 5, minSeconds: 0, maxSeconds: 3 });
  const r = w.run(timed);
  const samplesPerSec = (r.steps * BATCH) / r.seconds;
  const result: Result = {
    backend: name, version: info.version, threads, steps: r.steps, seconds: r.seconds,
    msPerStep: (1000 * r.seconds) / r.steps, samplesPerSec, gflops: (samplesPerSec * flopsPerSample()) / 1e9, loss: r.loss,
  };
  process.stdout.write(JSON.stringify(result) + '\n');
}

function runChild(backend: string, passThrough: string[]): Outcome {
  const p = spawnSync(process.execPath, [__filename, '--worker', backend, ...passThrough], { encoding: 'utf8' });
  const line = p.stdout?.trim().split('\n').pop() ?? '';
  if (p.status === 0 && line.startsWith('{')) return JSON.parse(line) as Result;
  const why = p.error?.message ?? p.stderr?.trim().split('\n').filter(Boolean).pop() ?? `exit ${p.status}`;
  return { backend, error: why };
}

/**
 * The PyTorch reference (reference_torch.py beside the compiled file's source), when
 * `torch` imports: same network, same timing rules, run in the same bench invocation.
 */
function runTorch(passThrough: string[]): Outcome | null {
  const script = path.join(__dirname, '..', '..', '..', 'src', 'bench', 'reference_torch.py');
  const python = process.env.PYTHON ?? 'python3';
  const probe = spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' });
  if (probe.status !== 0) return null;
  const p = spawnSync(python, [script, ...passThrough], { encoding: 'utf8' });
  const line = p.stdout?.trim().split('\n').pop() ?? '';
  if (p.status === 0 && line.startsWith('{')) return JSON.parse(line) as Result;
  return { backend: 'pytorch', error: p.stderr?.trim().split('\n').pop() ?? `exit ${p.status}` };
}

function machine() {
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    os: `${os.platform()} ${os.release()} ${os.arch()}`,
    node: process.version,
    date: new Date().toISOString(),
  };
}

function printTable(results: Outcome[], m: ReturnType<typeof machine>): void {
  const head = ['backend', 'threads', 'steps', 'ms/step', 'samples/s', 'GFLOP/s', 'vs PyTorch'];
  const ok = results.filter((r): r is Result => !('error' in r));
  const torch = ok.find((r) => r.backend === 'pytorch');
  const rows = ok.map((r) => [
    `${r.backend} ${r.version}`, String(r.threads ?? '-'), String(r.steps),
    r.msPerStep.toFixed(1), r.samplesPerSec.toFixed(0), r.gflops.toFixed(2),
    torch ? `${(r.samplesPerSec / torch.samplesPerSec).toFixed(2)}×` : '-',
  ]);
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmt = (r: string[]) => r.map((v, i) => (i ? v.padStart(width[i]) : v.padEnd(width[i]))).join('  ');
  console.log(`quickstart VAE 784-400-(2x20) / 20-400-784, batch ${BATCH}, Adam: ${(flopsPerSample() / 1e6).toFixed(2)} MFLOP/sample (matmuls, fwd+bwd)`);
  console.log(`${m.cpu}, ${m.cores} cores, ${m.os}, node ${m.node}, ${m.date}\n`);
  [head, ...rows].forEach((r) => console.log(fmt(r)));
  for (const r of results) if ('error' in r) console.log(`${r.backend}: failed: ${r.error}`);
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  if (a.worker) return worker(a.worker, a.timed);
  const results: Outcome[] = [];
  for (const b of a.backends) {
    process.stderr.write(`bench: ${b} ...\n`);
    results.push(runChild(b, a.passThrough));
  }
  if (!a.noTorch) {
    process.stderr.write('bench: pytorch reference ...\n');
    const torch = runTorch(a.passThrough);
    if (torch) results.push(torch);
    else process.stderr.write('bench: torch is not importable (pip install torch), no reference row\n');
  }
  const m = machine();
  if (a.json) console.log(JSON.stringify({ machine: m, batch: BATCH, flopsPerSample: flopsPerSample(), results }, null, 2));
  else printTable(results, m);
  if (results.some((r) => 'error' in r)) process.exitCode = 1;
}

main().catch((e) => {
  console.error(e?.line?.() ?? e?.message ?? e);
  process.exit(1);
});
