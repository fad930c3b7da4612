/**
 * `npm run bench`: training throughput of the benchmark workloads (workload.ts) on each
 * installed backend, and of the same networks in PyTorch on the CPU when `torch`
 * imports (reference_torch.py), all in one invocation. An evaluation workload (iwae-k5000)
 * times the iwae evaluator instead, per image, with the time for a 10,000-image test set
 * and its arithmetic floor (its FLOPs at the sgemm peak).
 *
 *   node dist/src/bench/bench.js [--backends tensorflow,wasm,cpu] [--workloads vae-mlp,m2-mnist,adgm-mnist,iwae-mnist,iwae-k5000,gvae-conv]
 *        [--rounds 3] [--steps 30] [--min-seconds 3] [--max-seconds 10] [--no-torch] [--all-workloads] [--json] [--markdown FILE]
 *
 * Each backend runs in its own child process (`--worker NAME`): tfjs keeps one global
 * engine per process, and backends would otherwise share kernels' registration, memory
 * and thread pools. Effective GFLOP/s counts the matmul and convolution FLOPs of one
 * step from the kernels it runs (forward and backward), divided by the step time, and is
 * given as a fraction of this machine's sgemm peak, which the tensorflow worker measures
 * (`sgemmPeak`; the fastest of all rounds).
 *
 * The pure-JS cpu backend runs only vae-mlp, and wasm no evaluation workload, unless
 * `--all-workloads` (or, for cpu, `--backends cpu`) asks: they take minutes there.
 *
 * The whole sequence (every backend, then PyTorch) runs `--rounds` times and each row
 * keeps its fastest round: on a shared machine a neighbour's load slows some rounds, and
 * interleaving the rounds gives elbo and PyTorch the same chances.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { installedBackends, selectBackend, getTf } from '../runtime/backend';
import { buildAny, Phase, WORKLOADS, type Workload } from './workload';
import type { StepOptions } from '../train/step';
import { checkTwins } from './twin-check';
import type { Caught } from '../errors';

const TORCH_SCRIPT = path.join(__dirname, '..', '..', '..', 'src', 'bench', 'reference_torch.py');

interface Result {
  workload: string;
  backend: string;
  version: string;
  threads: number | null;
  steps: number;
  seconds: number;
  msPerStep: number;
  samplesPerSec: number;
  flopsPerStep: number;
  gflops: number;
  /** How the training step (or the evaluator's pass) ran: 'graph (N kernels)' or 'eager' (kernel by kernel). */
  step: string;
}
type Outcome = Result | { workload: string; backend: string; error: string };
const failed = (r: Outcome): r is { workload: string; backend: string; error: string } => 'error' in r;

const USAGE = `usage: npm run bench -- [options]
       (or node dist/src/bench/bench.js [options])

Times the training step of each workload on each installed backend, and the
same networks in PyTorch (CPU) when torch imports, in one invocation; prints a
table per workload. PYTHON names the interpreter with torch (default python3).

  --backends LIST    tensorflow,wasm,cpu (default: every installed backend)
  --workloads LIST   default: all of
                     ${WORKLOADS.map((w) => w.name).join(',')}
  --rounds N         rounds over every backend and PyTorch, each row its
                     fastest (default 3)
  --steps N          timed steps per row at least (default 30)
  --min-seconds S    timed seconds per row at least (default 3)
  --max-seconds S    timed seconds per row at most (default 10)
  --no-torch         no PyTorch rows (and no twin check)
  --all-workloads    every workload on every backend, however slow
  --json             the results as JSON on stdout
  --markdown FILE    also write the tables to FILE
  -h, --help         this text`;

/** Options that take a value, and those that do not (--worker and --explicit-cpu: the parent's, for its workers). */
const VALUE_OPTIONS = ['--backends', '--workloads', '--rounds', '--steps', '--min-seconds', '--max-seconds', '--markdown', '--worker'];
const SWITCHES = ['--no-torch', '--all-workloads', '--json', '--explicit-cpu'];

function parseArgs(argv: string[]) {
  for (let i = 0; i < argv.length; i++) {
    if (VALUE_OPTIONS.includes(argv[i])) {
      if (argv[i + 1] === undefined || argv[i + 1].startsWith('--')) throw new Error(`${argv[i]} needs a value (see --help)`);
      i++;
    } else if (!SWITCHES.includes(argv[i])) throw new Error(`unknown option '${argv[i]}' (see --help)`);
  }
  const flag = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const num = (name: string, dflt: number) => {
    const v = Number(flag(name) ?? dflt);
    if (!(v > 0)) throw new Error(`${name} must be a positive number`);
    return v;
  };
  const workloads = flag('--workloads')?.split(',').filter(Boolean) ?? WORKLOADS.map((w) => w.name);
  for (const w of workloads)
    if (!WORKLOADS.some((x) => x.name === w))
      throw new Error(`unknown workload '${w}' (allowed: ${WORKLOADS.map((x) => x.name).join(', ')})`);
  return {
    worker: flag('--worker'),
    backends: flag('--backends')?.split(',').filter(Boolean) ?? installedBackends(),
    workloads,
    json: argv.includes('--json'),
    noTorch: argv.includes('--no-torch'),
    markdown: flag('--markdown'),
    /** cpu named on the command line (--explicit-cpu: the parent's, passed to a worker): run every training workload on it, however slow */
    explicitCpu: !!flag('--backends')?.split(',').includes('cpu') || argv.includes('--explicit-cpu') || argv.includes('--all-workloads'),
    /** every workload on every backend, the evaluation ones on wasm too */
    all: argv.includes('--all-workloads'),
    timed: { steps: num('--steps', 30), minSeconds: num('--min-seconds', 3), maxSeconds: num('--max-seconds', 10) } as Phase,
    rounds: num('--rounds', 3),
    /** the workers and the PyTorch script measure with the same phase */
    passThrough: [
      '--steps',
      String(num('--steps', 30)),
      '--min-seconds',
      String(num('--min-seconds', 3)),
      '--max-seconds',
      String(num('--max-seconds', 10)),
    ],
  };
}

/**
 * This machine's sgemm peak: float32 matrix products n×n by n×n on the native backend
 * (TensorFlow's own kernel, on every core it uses), the fastest of `reps` timed batches
 * of about 2 GFLOP, in GFLOP/s. The workloads' effective GFLOP/s are given as a fraction
 * of it. (n = 512 measured fastest here, against 256 and 1024.)
 */
function sgemmPeak(tf: typeof import('@tensorflow/tfjs-core'), n = 512, reps = 10): number {
  const a = tf.randomUniform([n, n]);
  const b = tf.randomUniform([n, n]);
  tf.matMul(a, b).dispose();
  const k = Math.max(2, Math.round(2e9 / (2 * n ** 3)));
  let best = 0;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    let c: import('@tensorflow/tfjs-core').Tensor | null = null;
    for (let i = 0; i < k; i++) {
      c?.dispose();
      c = tf.matMul(a, b);
    }
    c!.dataSync();
    c!.dispose();
    best = Math.max(best, (k * 2 * n ** 3) / ((performance.now() - t0) / 1000) / 1e9);
  }
  a.dispose();
  b.dispose();
  return best;
}

/** Child: measure every workload on one backend, one JSON line each (and the sgemm peak on tensorflow). */
async function worker(name: string, workloads: string[], timed: Phase, explicit: boolean, all: boolean): Promise<void> {
  const info = await selectBackend(name, '--backends');
  const tf = getTf();
  if (name === 'tensorflow') process.stdout.write(JSON.stringify({ peak: sgemmPeak(tf) }) + '\n');
  // wasm picks its thread count at load time; it explains most of the spread between machines
  const threads = name === 'wasm' ? require('@tensorflow/tfjs-backend-wasm').getThreadsCount() : null;
  for (const wname of workloads) {
    const w = WORKLOADS.find((x) => x.name === wname)!;
    const skip = (error: string) => process.stdout.write(JSON.stringify({ workload: wname, backend: name, error }) + '\n');
    if (name === 'wasm' && JSON.stringify(w.model).includes('"conv"')) {
      skip('wasm lacks the Conv2DBackpropFilter kernel');
      continue;
    }
    if (name === 'cpu' && wname !== 'vae-mlp' && !(explicit && (!w.evaluate || all))) {
      // measured on the 2-core VM of BENCHMARKS.md: 9.6 s/step (m2-mnist), 143 s/step (gvae-conv)
      skip(
        `skipped: the pure-JS backend takes seconds to minutes per step here; ${w.evaluate ? '--all-workloads' : '--backends cpu'} runs it`,
      );
      continue;
    }
    if (name === 'wasm' && w.evaluate && !all) {
      skip('skipped: about a second per image on wasm (2 GFLOP each); --all-workloads runs it');
      continue;
    }
    try {
      // tensorflow: the graph step training uses (XLA-compiled where the workload's config
      // says so, then also without), and the eager step it replaces
      const graph = await measure(w, w.compile ? { compile: w.compile } : {});
      if (graph.startsWith('graph') && w.compile) await measure(w, {});
      if (graph.startsWith('graph')) await measure(w, { compile: 'off' });
    } catch (e) {
      skip(String((e as Caught)?.message ?? e).split('\n')[0]);
    }
  }

  async function measure(w: Workload, stepOptions: StepOptions): Promise<string> {
    const wname = w.name;
    const run = await buildAny(tf, w, 0, stepOptions);
    // warm-up: kernel compilation, graph tracing, memory growth, first-use allocations
    await run.run({ steps: 5, minSeconds: 0, maxSeconds: 3 });
    const flopsPerStep = await run.flopsPerStep();
    const r = await run.run(timed);
    const samplesPerSec = (r.steps * w.batch) / r.seconds;
    const result: Result = {
      workload: wname,
      backend: name,
      version: info.tensorflow ? `${info.version}, TF ${info.tensorflow}` : info.version,
      threads,
      steps: r.steps,
      seconds: r.seconds,
      msPerStep: (1000 * r.seconds) / r.steps,
      samplesPerSec,
      flopsPerStep,
      gflops: (flopsPerStep * r.steps) / r.seconds / 1e9,
      step: run.mode(),
    };
    process.stdout.write(JSON.stringify(result) + '\n');
    return result.step;
  }
}

/** A JSON line a worker prints: a workload's outcome, or the sgemm peak it measured ({peak}). */
type WorkerLine = Partial<Outcome> & { peak?: unknown };

function jsonLines(out: string | undefined): WorkerLine[] {
  return (out ?? '')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
}

/** The fastest sgemm a worker measured (GFLOP/s), across rounds. */
let peak = 0;

function runChild(backend: string, workloads: string[], passThrough: string[]): Outcome[] {
  const p = spawnSync(process.execPath, [__filename, '--worker', backend, '--workloads', workloads.join(','), ...passThrough], {
    encoding: 'utf8',
  });
  const lines = jsonLines(p.stdout);
  for (const l of lines) if (typeof l.peak === 'number') peak = Math.max(peak, l.peak);
  const got = lines.filter((l) => typeof l.peak !== 'number') as Outcome[];
  if (p.status === 0) return got;
  const why = p.error?.message ?? p.stderr?.trim().split('\n').filter(Boolean).pop() ?? `exit ${p.status}`;
  return [...got, ...workloads.filter((w) => !got.some((g) => g.workload === w)).map((workload) => ({ workload, backend, error: why }))];
}

/** The PyTorch reference (reference_torch.py), when `torch` imports; null otherwise. */
function runTorch(workloads: string[], passThrough: string[]): Outcome[] | null {
  const script = TORCH_SCRIPT;
  const python = process.env.PYTHON ?? 'python3';
  if (spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' }).status !== 0) return null;
  const p = spawnSync(python, [script, '--workloads', workloads.join(','), ...passThrough], { encoding: 'utf8' });
  const got = jsonLines(p.stdout) as Outcome[];
  if (p.status !== 0) got.push({ workload: '?', backend: 'pytorch', error: p.stderr?.trim().split('\n').pop() ?? `exit ${p.status}` });
  return got;
}

function machine(rounds: number) {
  return {
    rounds,
    /** GFLOP/s, 0 when not measured */
    sgemmPeak: peak,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    memory: `${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    os: `${os.platform()} ${os.release()} ${os.arch()}`,
    node: process.version,
    date: new Date().toISOString(),
  };
}

/**
 * Per workload, backend and step mode, the fastest round; a backend that never ran a
 * workload keeps its reason. Rows stay in the order they first appeared.
 */
function fastest(all: Outcome[]): Outcome[] {
  const key = (r: Outcome) => `${r.workload}|${r.backend}|${failed(r) ? '' : (r.step ?? '')}`;
  const ran = (r: Outcome) => all.some((x) => !failed(x) && x.workload === r.workload && x.backend === r.backend);
  const best = new Map<string, Outcome>();
  for (const r of all) {
    if (failed(r) && ran(r)) continue;
    const prev = best.get(key(r));
    if (!prev || (!failed(r) && !failed(prev) && r.samplesPerSec > prev.samplesPerSec)) best.set(key(r), r);
  }
  return [...best.keys()].sort((x, y) => all.findIndex((r) => key(r) === x) - all.findIndex((r) => key(r) === y)).map((k) => best.get(k)!);
}

/** GFLOP/s as a share of the sgemm peak ('-' when either is unknown). */
function ofPeak(gflops: number, peak: number): string {
  const pct = gflops && peak ? (100 * gflops) / peak : 0;
  return pct ? `${pct.toFixed(pct < 10 ? 1 : 0)} %` : '-';
}

/** The test set an evaluation workload's time is extrapolated to (MNIST's). */
const TEST_IMAGES = 10000;

/** Minutes and seconds, e.g. '5 min 42 s' (or '48.1 s'). */
const duration = (s: number) => (s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(Math.round(s) / 60)} min ${Math.round(s) % 60} s`);

/**
 * An evaluation workload's table: per image, and extrapolated to the 10,000 test images,
 * against the arithmetic floor (the counted FLOPs at the sgemm peak).
 */
function evaluationTable(
  lines: string[],
  w: Workload,
  rows: Outcome[],
  flops: number | undefined,
  torch: Result | undefined,
  peak: number,
): void {
  lines.push(
    `| backend | pass | threads | images | ms/image | images/s | ${TEST_IMAGES.toLocaleString('en')} images | GFLOP/s | of peak | × floor | vs PyTorch |`,
    '|---|---|---|---|---|---|---|---|---|---|---|',
  );
  const perImage = flops ? flops / w.batch : 0;
  const floor = perImage && peak ? (TEST_IMAGES * perImage) / (peak * 1e9) : 0;
  for (const r of rows) {
    if (failed(r)) {
      lines.push(`| ${r.backend} | | | | | | | | | | not run: ${r.error} |`);
      continue;
    }
    const gflops = (perImage * r.samplesPerSec) / 1e9;
    const total = TEST_IMAGES / r.samplesPerSec;
    const ratio = torch ? `${(r.samplesPerSec / torch.samplesPerSec).toFixed(2)}×` : '-';
    lines.push(
      `| ${r.backend} ${r.version} | ${r.step ?? (r.backend === 'pytorch' ? 'eager' : '-')} | ${r.threads ?? '-'} | ${r.steps * w.batch} | ${(1000 / r.samplesPerSec).toFixed(1)} | ${r.samplesPerSec.toFixed(1)} | ${duration(total)} | ${gflops ? gflops.toFixed(2) : '-'} | ${ofPeak(gflops, peak)} | ${floor ? `${(total / floor).toFixed(2)}×` : '-'} | ${ratio} |`,
    );
  }
  if (perImage) {
    lines.push(
      '',
      `Counted: ${(perImage / 1e9).toFixed(3)} GFLOP per image (matmul kernels, forward only); the arithmetic floor for ${TEST_IMAGES.toLocaleString('en')} images, ` +
        (floor ? `those FLOPs at the sgemm peak: ${duration(floor)}.` : 'those FLOPs at the sgemm peak: not known (no peak measured).'),
    );
  }
  lines.push('');
}

/** One markdown table per workload; also what the console shows. */
function tables(results: Outcome[], m: ReturnType<typeof machine>): string {
  const lines: string[] = [
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memory}, ${m.os}, Node ${m.node}; ${m.date}; fastest of ${m.rounds} round(s) per row`,
    '',
  ];
  lines.push(
    m.sgemmPeak
      ? `sgemm peak: ${m.sgemmPeak.toFixed(1)} GFLOP/s (float32 512×512 products on the native backend, fastest batch); "of peak" is each row's GFLOP/s against it.`
      : 'sgemm peak: not measured (it needs the native tensorflow backend).',
    '',
  );
  for (const w of WORKLOADS) {
    const rows = results.filter((r) => r.workload === w.name);
    if (!rows.length) continue;
    // PyTorch does the same FLOPs per step: take tfjs's count
    const flops = (rows.find((r) => !failed(r) && r.flopsPerStep) as Result | undefined)?.flopsPerStep;
    const torch = rows.find((r) => !failed(r) && r.backend === 'pytorch') as Result | undefined;
    lines.push(`### ${w.name}: ${w.description}`, '');
    if (w.evaluate) {
      evaluationTable(lines, w, rows, flops, torch, m.sgemmPeak);
      continue;
    }
    lines.push(
      '| backend | step | threads | steps | ms/step | samples/s | GFLOP/s | of peak | vs PyTorch |',
      '|---|---|---|---|---|---|---|---|---|',
    );
    for (const r of rows) {
      if (failed(r)) {
        lines.push(`| ${r.backend} | | | | | | | | not run: ${r.error} |`);
        continue;
      }
      const gflops = r.backend === 'pytorch' && flops ? (flops * r.steps) / r.seconds / 1e9 : r.gflops;
      const ratio = torch ? `${(r.samplesPerSec / torch.samplesPerSec).toFixed(2)}×` : '-';
      lines.push(
        `| ${r.backend} ${r.version} | ${r.step ?? (r.backend === 'pytorch' ? 'eager' : '-')} | ${r.threads ?? '-'} | ${r.steps} | ${r.msPerStep.toFixed(1)} | ${r.samplesPerSec.toFixed(0)} | ${gflops ? gflops.toFixed(2) : '-'} | ${ofPeak(gflops, m.sgemmPeak)} | ${ratio} |`,
      );
    }
    if (flops) lines.push('', `Counted: ${(flops / 1e9).toFixed(3)} GFLOP per step (matmul + convolution kernels, forward and backward).`);
    lines.push('');
  }
  return lines.join('\n');
}

/** With torch: the twins are checked to be elbo's computation before they are timed (twin-check.ts); a mismatch fails the bench. */
async function checkTwinsFirst(workloads: string[]): Promise<void> {
  const python = process.env.PYTHON ?? 'python3';
  if (spawnSync(python, ['-c', 'import torch, numpy'], { encoding: 'utf8' }).status !== 0) return;
  process.stderr.write("bench: checking that each PyTorch twin computes elbo's loss ...\n");
  await selectBackend('auto');
  const problems = await checkTwins(getTf(), python, TORCH_SCRIPT, workloads);
  if (problems.length) throw new Error(`the PyTorch twins are not elbo's computation: ${problems.join('; ')}`);
  process.stderr.write('bench: every twin agrees with elbo to 1e-5\n');
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return;
  }
  const a = parseArgs(argv);
  if (a.worker) return worker(a.worker, a.workloads, a.timed, a.explicitCpu, a.all);
  const all: Outcome[] = [];
  let torchMissing = false;
  if (!a.noTorch) await checkTwinsFirst(a.workloads);
  for (let round = 1; round <= a.rounds; round++) {
    for (const b of a.backends) {
      process.stderr.write(`bench: round ${round}/${a.rounds}: ${b} ...\n`);
      all.push(...runChild(b, a.workloads, [...a.passThrough, ...(a.all ? ['--all-workloads'] : a.explicitCpu ? ['--explicit-cpu'] : [])]));
    }
    if (!a.noTorch && !torchMissing) {
      process.stderr.write(`bench: round ${round}/${a.rounds}: pytorch reference ...\n`);
      const torch = runTorch(a.workloads, a.passThrough);
      if (torch) all.push(...torch);
      else {
        torchMissing = true;
        process.stderr.write('bench: torch is not importable (pip install torch==2.13.0), no reference rows\n');
      }
    }
  }
  const results = fastest(all);
  const m = machine(a.rounds);
  const text = tables(results, m);
  if (a.json) console.log(JSON.stringify({ machine: m, results }, null, 2));
  else console.log(text);
  if (a.markdown) {
    fs.writeFileSync(
      a.markdown,
      `# Benchmarks\n\nWritten by \`npm run bench -- --markdown ${a.markdown}\`: training steps of each workload (and, for iwae-k5000, the k = 5000 test estimate, timed per image and extrapolated to the 10,000 test images), after a warm-up, on each backend in its own process; PyTorch (CPU) runs the same networks in the same invocation. Every backend and PyTorch run in turn, for several rounds; each row is its fastest round (the machine is shared: a neighbour's load slows some rounds). On the tensorflow backend the step runs as training runs it (one TensorFlow graph per step where the trace allows, src/train/step.ts; compiled by XLA where the workload's config says train.compile: xla, and then also without) and, for comparison, kernel by kernel (train.compile: off). "of peak" is the effective GFLOP/s (matmul and convolution FLOPs counted from the kernels of one step) against this machine's sgemm peak, measured in the same invocation.\n\n${text}\n`,
    );
    process.stderr.write(`bench: wrote ${a.markdown}\n`);
  }
  // a backend that lacks a kernel, or a workload skipped as too slow there, is no failure
  if (results.some((r) => failed(r) && !/lacks|^skipped:/.test(r.error))) process.exitCode = 1;
}

main().catch((e) => {
  console.error(`bench: ${e?.line?.() ?? e?.message ?? e}`);
  process.exit(1);
});
