import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { getTf } from '../src/runtime/tf';
import { selectBackend } from '../src/runtime/backend';
import { classifyLatents, labelledRows, encodeMeans, LatentSet, ClassifierOptions } from '../src/eval/latent-classifier';
import { loadSweep, resolveCells } from '../src/sweep/spec';
import { runExperiment } from '../src/experiment';
import { Rng } from '../src/runtime/rng';
import { tmpDir, smallConfig, elbo, lastJson, ROOT, type DryRunOutput } from './helpers';
import type { PluginOptions, Model } from '../src/contracts';

test.before(async () => {
  await selectBackend('auto'); // ELBO_BACKEND picks it in the test runs
});

/** C Gaussian clusters in K dims, 4 apart, unit noise. */
function clusters(n: number, K: number, C: number, seed: number): LatentSet {
  const rng = new Rng(seed);
  const z = new Float32Array(n * K);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % C;
    for (let k = 0; k < K; k++) z[i * K + k] = (k === y[i] ? 4 : 0) + rng.normal();
  }
  return { z, y, n };
}

const sgd: ClassifierOptions = { classifier: 'linear-sgd', k: 5, standardize: 'none', l2: 0, steps: 1, lr: 0.05 };

test('linear-sgd (the VSC reproduction’s classifier) learns separable latents, deterministically, on every backend alike', () => {
  const tf = getTf();
  const K = 6;
  const C = 4;
  const train = clusters(400, K, C, 1);
  const test = clusters(400, K, C, 2);
  const a = classifyLatents(tf, train, test, K, C, sgd, { rng: new Rng(3) });
  // the ReLU on the outputs can leave a class dead (its output stuck at 0): well above
  // chance, not necessarily near 0
  assert.ok(a.error < 40, `error ${a.error}%`);
  assert.ok(a.metrics.sgd_loss > 0, `training loss ${a.metrics.sgd_loss}`);
  const b = classifyLatents(tf, train, test, K, C, sgd, { rng: new Rng(3) });
  assert.deepEqual(Array.from(b.predictions), Array.from(a.predictions));
  assert.equal(b.metrics.sgd_loss, a.metrics.sgd_loss);
  // another seed orders the mini-batches (and initialises) differently
  assert.notEqual(classifyLatents(tf, train, test, K, C, sgd, { rng: new Rng(4) }).metrics.sgd_loss, a.metrics.sgd_loss);
  // plain softmax regression (no ReLU), and the options: 1 epoch of a tiny step rate learns less
  const plain = classifyLatents(tf, train, test, K, C, { ...sgd, sgd: { relu: false } }, { rng: new Rng(3) });
  assert.ok(plain.error < 5, `no relu: error ${plain.error}%`);
  assert.ok(plain.metrics.sgd_loss < 0.5, `no relu: training loss ${plain.metrics.sgd_loss}`);
  const short = classifyLatents(tf, train, test, K, C, { ...sgd, sgd: { epochs: 1, lr: 1e-4 } }, { rng: new Rng(3) });
  assert.ok(short.metrics.sgd_loss > a.metrics.sgd_loss, `${short.metrics.sgd_loss} vs ${a.metrics.sgd_loss}`);
});

test('labelled_draw: uniform draws N rows whatever their classes; balanced keeps N/C per class', () => {
  const n = 1000;
  const y = Int32Array.from({ length: n }, (_, i) => (i < 700 ? 0 : 1 + (i % 3))); // 70% class 0
  const train = { n, y, x: new Float32Array(n) };
  const u = labelledRows({ train, labelled: null, classes: 4 }, 100, new Rng(0), 'here', 'uniform');
  assert.equal(u.length, 100);
  assert.equal(new Set(u).size, 100);
  assert.deepEqual(
    Array.from(u),
    Array.from(u).sort((p, q) => p - q),
  );
  assert.deepEqual(Array.from(labelledRows({ train, labelled: null, classes: 4 }, 100, new Rng(0), 'here', 'uniform')), Array.from(u));
  const zeros = Array.from(u).filter((i) => y[i] === 0).length;
  assert.ok(zeros > 50, `a uniform draw follows the class frequencies: ${zeros} of class 0`);
  const bal = labelledRows({ train, labelled: null, classes: 4 }, 100, new Rng(0), 'here');
  assert.equal(Array.from(bal).filter((i) => y[i] === 0).length, 25);
  assert.throws(
    () => labelledRows({ train, labelled: null, classes: 4 }, 2000, new Rng(0), 'here', 'uniform'),
    /more than the 1000 training rows/,
  );
});

test('features: mu reads the slab mean of a VSC (γ ignored), mean the posterior mean; both run as evaluators', async () => {
  const tf = getTf();
  const dir = tmpDir();
  const r = await runExperiment({
    config: smallConfig(dir),
    runsDir: path.join(dir, 'runs'),
    overrides: [
      'model.prior={kind: spike-slab, alpha: 0.2, c: 50}',
      'train.epochs=1',
      'data.binarize=none',
      'eval=[{kind: latent-classifier, classifier: linear-sgd, features: mu, labelled: 100, labelled_draw: uniform, standardize: none, sgd: {epochs: 5}}, ' +
        '{kind: latent-classifier, classifier: linear-sgd, features: mean, labelled: 100, standardize: none, prefix: on_mean}]',
    ],
    progress: false,
  });
  assert.equal(r.status, 'FINISHED', r.error ?? undefined);
  for (const m of ['test/latent_classifier_accuracy', 'test/latent_classifier_sgd_loss', 'test/on_mean_accuracy'])
    assert.ok(Number.isFinite(r.metrics[m]), `${m}: ${JSON.stringify(r.metrics)}`);
  assert.equal(r.metrics['test/latent_classifier_labelled'], 100);
  // on the model itself: mu is the first K encoder outputs, mean is γ⊙μ
  const { loadRunModel } = await import('../src/models/load-run');
  const { createRegistry } = await import('../src/builtins');
  const { loadConfig } = await import('../src/config/load');
  const registry = createRegistry();
  const { config } = loadConfig(path.join(r.runDir, 'config.yaml'), [], registry);
  const data = await registry.create('dataset', config.data, {
    tf,
    registry,
    rng: new Rng(config.seed).fork('data'),
    baseDir: path.dirname(path.join(dir, 'small.yaml')),
  });
  const { model } = await loadRunModel(r.runDir, tf, registry, data, 'test');
  const x = data.test.x.subarray(0, 10 * data.dim);
  const mu = encodeMeans(tf, model, x, 10, data.dim, 4, 'mu');
  const mean = encodeMeans(tf, model, x, 10, data.dim, 4, 'mean');
  assert.notDeepEqual(Array.from(mu), Array.from(mean));
  assert.ok(
    mean.every((m, i) => Math.abs(m) <= Math.abs(mu[i]) + 1e-6),
    'γ⊙μ is never larger than μ',
  );
  // a model without μ: a clear error
  const noMu = { ...model, encodeMu: undefined } as Model;
  assert.throws(() => encodeMeans(tf, noMu, x, 10, data.dim, 4, 'mu'), /features: mu needs a model whose prior has a location/);
});

test('the VSC latent-size sweep: K ∈ {8 … 200} × {VAE, VSC} × {MNIST, Fashion-MNIST}, each cell with its own published number', () => {
  const prev = process.cwd();
  process.chdir(ROOT);
  try {
    const cells = resolveCells(loadSweep('configs/papers/vsc-latent-size.yaml'));
    assert.equal(cells.length, 24);
    const seen = new Set<string>();
    for (const { loaded } of cells) {
      const c = loaded.config;
      const prior = c.model.prior as PluginOptions;
      const model = prior.kind === 'spike-slab' ? `vsc${prior.alpha}` : 'vae';
      seen.add(`${c.data.kind} ${model} ${c.model.latent}`);
      assert.equal(c.published?.length, 1);
      assert.equal(c.published![0].metric, 'test/latent_classifier_accuracy');
      // the protocol evaluator is the one the published metric names
      const ev = c.eval.find((e) => e.kind === 'latent-classifier' && e.prefix === 'latent_classifier')!;
      assert.deepEqual(
        [ev.classifier, ev.features, ev.labelled, ev.labelled_draw, ev.standardize],
        ['linear-sgd', 'mu', 5000, 'uniform', 'none'],
      );
      assert.deepEqual([c.train.epochs, c.train.batch_size, c.data.validation], [11, 32, 0]);
    }
    for (const d of ['mnist', 'fashion-mnist'])
      for (const m of ['vae', 'vsc0.01'])
        for (const K of [8, 16, 32, 64, 128, 200]) assert.ok(seen.has(`${d} ${m} ${K}`), `${d} ${m} ${K}`);
    // K = 200 cells carry the base configs' own numbers
    const at200 = cells.filter(({ loaded }) => loaded.config.model.latent === 200).map(({ loaded }) => loaded.config.published![0].value);
    assert.deepEqual(at200.sort(), [67.05, 79.66, 86.57, 91.78]);
  } finally {
    process.chdir(prev);
  }
  const dry = elbo(['sweep', 'configs/papers/vsc-latent-size.yaml', '--dry-run', '--json']);
  assert.equal(dry.status, 0, dry.stderr);
  assert.equal(lastJson<DryRunOutput>(dry.stdout).cells.length, 24);
});

test('elbo compare plots a metric against the latent size of a sweep over two base configs', () => {
  const dir = tmpDir();
  smallConfig(dir);
  const small = path.join(dir, 'small.yaml');
  const text = fs
    .readFileSync(small, 'utf8')
    .replace(
      /eval:[\s\S]*$/,
      'eval:\n  - kind: latent-classifier\n    classifier: linear-sgd\n    features: mu\n    labelled: 40\n    sgd: { epochs: 2 }\n',
    );
  fs.writeFileSync(small, text.replace('epochs: 3', 'epochs: 1'));
  fs.writeFileSync(
    path.join(dir, 'vsc.yaml'),
    text
      .replace('epochs: 3', 'epochs: 1')
      .replace('experiment: small', 'experiment: small-vsc')
      .replace('  latent: 4\n', '  latent: 4\n  prior: { kind: spike-slab, alpha: 0.2 }\n'),
  );
  fs.writeFileSync(path.join(dir, 'sweep.yaml'), 'name: k\nsweep:\n  grid:\n    base: [small.yaml, vsc.yaml]\n    model.latent: [2, 4]\n');
  const run = elbo(['sweep', path.join(dir, 'sweep.yaml'), '--runs-dir', path.join(dir, 'runs')], { cwd: dir });
  assert.equal(run.status, 0, run.stderr + run.stdout);
  const cmp = elbo(
    ['compare', path.join(dir, 'runs', 'sweeps', 'k'), '--metric', 'test/latent_classifier_accuracy', '--by', 'model.latent'],
    { cwd: dir },
  );
  assert.equal(cmp.status, 0, cmp.stderr);
  assert.match(cmp.stderr, /test\/latent_classifier_accuracy against model\.latent/);
  assert.ok(fs.existsSync(path.join(dir, 'runs', 'sweeps', 'k', 'compare-test_latent_classifier_accuracy.png')));
  // one series per base config, named in the plot's legend as the sweep names it
  assert.match(cmp.stderr, /, 2 series( \(|:\n {2})/, cmp.stderr);
  const svg = fs.readFileSync(path.join(dir, 'runs', 'sweeps', 'k', 'compare-test_latent_classifier_accuracy.svg'), 'utf8');
  for (const label of ['>base<', '>small<', '>vsc<']) assert.ok(svg.includes(label), label);
  // the same runs given as run directories: the series by what tells the configs apart, the prior's kind
  const runDirs = JSON.parse(fs.readFileSync(path.join(dir, 'runs', 'sweeps', 'k', 'sweep.json'), 'utf8')).cells.map(
    (c: { runDir: string }) => c.runDir,
  );
  const loose = elbo(
    ['compare', ...runDirs, '--metric', 'test/latent_classifier_accuracy', '--by', 'model.latent', '--plot', path.join(dir, 'loose.png')],
    {
      cwd: dir,
    },
  );
  assert.equal(loose.status, 0, loose.stderr);
  assert.match(loose.stderr, /, 2 series:\n {2}gaussian\n {2}spike-slab\n/, loose.stderr);
  const looseSvg = fs.readFileSync(path.join(dir, 'loose.svg'), 'utf8');
  for (const label of ['>model.prior<', '>gaussian<', '>spike-slab<']) assert.ok(looseSvg.includes(label), label);
});
