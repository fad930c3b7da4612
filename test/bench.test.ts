import { test, before } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { selectBackend, installedBackends, getTf } from '../src/runtime/backend';
import { WORKLOADS, buildAny, buildEvaluation, type Workload } from '../src/bench/workload';
import { ROOT, tmpDir } from './helpers';

// `npm run bench` times each workload against its PyTorch twin (src/bench/reference_torch.py);
// these tests check that the twin is the same computation.
const SCRIPT = path.join(ROOT, 'src', 'bench', 'reference_torch.py');
const PYTHON = process.env.PYTHON ?? 'python3';
const native = installedBackends().includes('tensorflow');

before(async () => {
  await selectBackend('auto'); // ELBO_BACKEND picks it in the test runs
});

const byName = (name: string) => WORKLOADS.find((w) => w.name === name)!;

test('every bench workload has a PyTorch twin of its sizes: batch, labelled rows, samples, every parameter by name and shape (no torch needed)', async () => {
  const r = spawnSync(PYTHON, [SCRIPT, '--spec'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const specs = JSON.parse(r.stdout);
  assert.deepEqual(Object.keys(specs).sort(), WORKLOADS.map((w) => w.name).sort());
  const tf = getTf();
  for (const w of WORKLOADS) {
    const s = specs[w.name];
    assert.equal(s.batch, w.batch, w.name);
    assert.equal(s.labelled, w.labelled, w.name);
    assert.equal(s.k, w.evaluate?.k ?? (w.model.k as number | undefined) ?? 1, `${w.name}: samples per example`);
    assert.equal(!!s.evaluate, !!w.evaluate, w.name);
    const { model } = await buildAny(tf, w);
    const shapes = Object.fromEntries([...model.params].map(([name, v]) => [name, v.shape]));
    assert.deepEqual(s.params, shapes, `${w.name}: parameters`);
  }
});

// The twins' losses against elbo's (reference_torch.py --check, which needs torch) are
// checked by `npm run bench` itself before it times them (src/bench/twin-check.ts): a bench
// with torch whose twins disagree fails. Here torch is not assumed.

test('a training step counts each product once, forward and backward (the native backend runs a fused dense layer as a BatchMatMul inside it)', async () => {
  const tf = getTf();
  const w = byName('vae-mlp');
  const B = w.batch;
  const layers = [
    [784, 400],
    [400, 40],
    [20, 400],
    [400, 784],
  ];
  const forward = layers.reduce((s, [i, o]) => s + 2 * B * i * o, 0);
  // weight gradients of every layer; input gradients of all but the first (x is no parameter)
  const backward = forward + layers.slice(1).reduce((s, [i, o]) => s + 2 * B * i * o, 0);
  assert.equal(await (await buildAny(tf, w)).flopsPerStep(), forward + backward);
});

test('the k = 5000 estimate counts the FLOPs of its passes: the encoder once per image, the decoder and the likelihood on 5,000 rows', async () => {
  const tf = getTf();
  const w: Workload = { ...byName('iwae-k5000'), batch: 1 };
  const k = w.evaluate!.k;
  // the output layer's bias is a last row of its weights ([h, 1]·[w; b]), and Σ x·l is [h, 1]·([w; b]·x): 201 columns
  // (losses/likelihood.ts bernoulliLogDensityAffineK)
  const perImage = 2 * (784 * 200 + 200 * 200 + 200 * 100) + 2 * k * (50 * 200 + 200 * 200 + 201 * 784) + 2 * 784 * 201 + 2 * k * 201;
  assert.equal(await (await buildEvaluation(tf, w)).flopsPerStep(), perImage);
});

test(
  'npm run bench times the IWAE workloads: the k = 50 training step, and the k = 5000 estimate per image against its arithmetic floor',
  native ? {} : { skip: 'the tensorflow backend is not installed here (npm run setup:native builds it): the floor needs its sgemm peak' },
  () => {
    const file = path.join(tmpDir(), 'BENCH.md');
    const args = [
      '--backends',
      'tensorflow',
      '--workloads',
      'iwae-mnist,iwae-k5000',
      '--rounds',
      '1',
      '--steps',
      '1',
      '--min-seconds',
      '0.001',
      '--max-seconds',
      '0.001',
      '--no-torch',
      '--markdown',
      file,
    ];
    const r = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'src', 'bench', 'bench.js'), ...args], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr + r.stdout);
    const md = fs.readFileSync(file, 'utf8');
    // the step as configs/mnist/iwae.yaml trains it (compile: xla), then the same graph without XLA
    assert.match(
      md,
      /### iwae-mnist: .*k = 50.*\n\n\| backend \| step .*\n.*\n\| tensorflow [^|]*\| graph \(\d+ kernels, XLA\) \|.*\n\| tensorflow [^|]*\| graph \(\d+ kernels\) \|/,
    );
    assert.match(
      md,
      /\| backend \| pass \| threads \| images \| ms\/image \| images\/s \| 10,000 images \| GFLOP\/s \| of peak \| × floor \| vs PyTorch \|/,
    );
    // the compiled pass and, for comparison, the eager one; 2 calls of 10 images at least
    const rows = md
      .slice(md.indexOf('### iwae-k5000'))
      .split('\n')
      .filter((l) => /^\| tensorflow .*\| (graph \(\d+ kernels\)|eager) \| - \| \d+ \|/.test(l));
    assert.equal(rows.length, 2, md);
    for (const row of rows) {
      const cells = row.split('|').map((c) => c.trim());
      assert.ok(Number(cells[4]) >= 20, row);
      // the time against the floor (the FLOPs at the sgemm peak) is 1 / the share of the peak;
      // not asserted above 1: a peak measured while a neighbour loads the machine can be lower
      // than what the pass reaches in a quieter moment (no test depends on the machine's speed)
      const times = Number(cells[10].replace('×', ''));
      const pct = Number(cells[9].replace('%', ''));
      // (both rounded: the share to a whole percent, the factor to 0.01)
      assert.ok(times > 0 && Math.abs(times - 100 / pct) <= (100 / pct) * (0.6 / pct) + 0.006, row);
    }
    assert.match(
      md,
      /Counted: 2\.079 GFLOP per image \(matmul kernels, forward only\); the arithmetic floor for 10,000 images, those FLOPs at the sgemm peak: (\d+ min \d+ s|[\d.]+ s)\./,
    );
  },
);

test('npm run bench -- --help prints its options and exits 0; an unknown option or a missing value is one line and exit 1, before any timing', () => {
  const bench = (...args: string[]) =>
    // (the bench.js compiled beside this test)
    spawnSync(process.execPath, [path.join(__dirname, '..', 'src', 'bench', 'bench.js'), ...args], { encoding: 'utf8', timeout: 60_000 });
  const help = bench('--help');
  assert.equal(help.status, 0, help.stderr);
  for (const o of ['--backends', '--workloads', '--rounds', '--no-torch', '--markdown', 'iwae-k5000'])
    assert.ok(help.stdout.includes(o), o);
  assert.ok(
    help.stdout.split('\n').every((l) => l.length <= 80),
    help.stdout,
  );
  assert.equal(help.stderr, '');
  for (const [args, line] of [
    [['--foo'], "bench: unknown option '--foo' (see --help)"],
    [['--no-torch', '--rounds'], 'bench: --rounds needs a value (see --help)'],
    [
      ['--workloads', 'nope', '--no-torch'],
      "bench: unknown workload 'nope' (allowed: vae-mlp, m2-mnist, adgm-mnist, iwae-mnist, iwae-k5000, gvae-conv)",
    ],
  ] as [string[], string][]) {
    const r = bench(...args);
    assert.equal(r.status, 1, args.join(' '));
    assert.equal(r.stderr.trimEnd(), line);
    assert.equal(r.stdout, '');
  }
});
