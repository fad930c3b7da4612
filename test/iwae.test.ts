import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import type * as tfc from '@tensorflow/tfjs-core';
import { getTf } from '../src/runtime/tf';
import { selectBackend } from '../src/runtime/backend';
import { loadConfig } from '../src/config/load';
import { createRegistry } from '../src/builtins';
import { runExperiment } from '../src/experiment';
import { buildData, buildRun } from '../src/run/build';
import { bernoulliNll, likelihoodOf } from '../src/losses/likelihood';
import { importanceTerms, importanceWeightsOf } from '../src/models/importance';
import { latentParts } from '../src/models/vae';
import { modelContext } from '../src/registry/model-context';
import { mlp, type MlpOptions } from '../src/nn/mlp';
import { Rng } from '../src/runtime/rng';
import { ROOT, tmpDir, smallConfig, tinyDataSet } from './helpers';
import type { Model, DataSet, Evaluator, LatentPartsOptions } from '../src/contracts';

test.before(async () => {
  await selectBackend('auto'); // ELBO_BACKEND picks it in the test runs
});

/** A VAE and an IWAE of one config (same seed: the same initial parameters) on the small generated data set. */
async function models(k: number): Promise<{ tf: ReturnType<typeof getTf>; data: DataSet; vae: Model; iwae: Model; x: tfc.Tensor2D }> {
  const tf = getTf();
  const dir = tmpDir();
  const registry = createRegistry();
  const { config, baseDir } = loadConfig(smallConfig(dir), ['data.binarize=none'], registry);
  const ctx = { tf, registry, rng: new Rng(3), baseDir };
  // the build step of a run (src/run/build.ts): the IWAE's initial parameters are the VAE's
  const data = await buildData(config, ctx);
  const { model: vae } = await buildRun(config, data, ctx);
  const { model: iwae } = await buildRun({ ...config, model: { ...config.model, kind: 'iwae', k } }, data, ctx);
  const x = tf.tensor2d(data.train.x.subarray(0, 40 * data.dim), [40, data.dim]);
  return { tf, data, vae, iwae, x };
}

const w = { c1: 1, c2: 1, alpha: 1 };
const at = { epoch: 0, step: 0, fraction: 1 };
const values = (t: Record<string, tfc.Scalar>) => Object.fromEntries(Object.entries(t).map(([k, v]) => [k, v.dataSync()[0]]));

test('IWAE at k = 1 is the ELBO of the same draws; its reconstruction term is the VAE’s', async () => {
  const { tf, vae, iwae, x } = await models(1);
  const a = tf.tidy(() => values(iwae.terms({ x, y: null }, w, new Rng(11), at)));
  const v = tf.tidy(() => values(vae.terms({ x, y: null }, w, new Rng(11), at)));
  assert.equal(a.iwae, a.elbo, 'L_1 is the mean log weight');
  assert.equal(a.loss, -a.iwae);
  assert.ok(Math.abs(a.elbo + a.recon + a.kl) < 1e-3 * Math.abs(a.elbo), JSON.stringify(a));
  // same parameters, same z (same stream): the same −log p(x|z), through the other formula
  assert.ok(Math.abs(a.recon - v.recon) < 1e-4 * Math.abs(v.recon), `iwae recon ${a.recon} vs vae ${v.recon}`);
  // the Monte Carlo KL over the 40 rows is near the closed form
  assert.ok(Math.abs(a.kl - v.kl) < 0.5 * Math.abs(v.kl) + 0.5, `MC KL ${a.kl} vs closed form ${v.kl}`);
});

test('IWAE at k > 1 is above the ELBO on average, and grows with k', async () => {
  const { tf, iwae, x } = await models(1);
  const bound = (k: number, seeds: number) => {
    let sum = 0;
    for (let s = 0; s < seeds; s++)
      sum += tf.tidy(() => {
        const lw = iwae.logImportanceWeights!(x, k, new Rng(100 + s));
        return tf.mean(tf.sub(tf.logSumExp(lw, 1), Math.log(k))).dataSync()[0];
      });
    return sum / seeds;
  };
  const l1 = bound(1, 20);
  const l5 = bound(5, 20);
  const l50 = bound(50, 20);
  assert.ok(l5 > l1 && l50 > l5, `L_1 ${l1}, L_5 ${l5}, L_50 ${l50}`);
  // the model's term is that bound
  const { iwae: i50 } = await models(50);
  const term = tf.tidy(() => values(i50.terms({ x, y: null }, w, new Rng(100), at)));
  const direct = tf.tidy(
    () => tf.mean(tf.sub(tf.logSumExp(i50.logImportanceWeights!(x, 50, new Rng(100)), 1), Math.log(50))).dataSync()[0],
  );
  assert.ok(Math.abs(term.iwae - direct) < 1e-4 * Math.abs(direct), `${term.iwae} vs ${direct}`);
  assert.ok(term.iwae > term.elbo, JSON.stringify(term));
});

test('log weights match the plain formula (x repeated, −BCE + log p(z) − log q(z|x)) on the same draws', async () => {
  const { tf, vae, x } = await models(1);
  const k = 7;
  const lw = tf.tidy(() => vae.logImportanceWeights!(x, k, new Rng(5)).arraySync() as number[][]);
  // the reference: decode the same z (same stream: k rows of example b after the k rows of b − 1)
  const rng = new Rng(5);
  const ref = tf.tidy(() => {
    const { mu, logvar } = vae.encodeGaussian!(x);
    const B = x.shape[0];
    const K = mu.shape[1];
    const eps = tf.tensor2d(rng.normals(B * k * K), [B * k, K]);
    const rep = (t: tfc.Tensor2D) => tf.reshape(tf.tile(tf.expandDims(t, 1), [1, k, 1]), [B * k, t.shape[1]]) as tfc.Tensor2D;
    const m = rep(mu);
    const lv = rep(logvar);
    const z = tf.add(m, tf.mul(tf.exp(tf.mul(0.5, lv)), eps)) as tfc.Tensor2D;
    // decode gives probabilities; go back to logits for the stable BCE
    const p = tf.clipByValue(vae.decode(z), 1e-7, 1 - 1e-7);
    const logits = tf.sub(tf.log(p), tf.log1p(tf.neg(p))) as tfc.Tensor2D;
    const logpx = tf.neg(bernoulliNll(rep(x), logits));
    const c = Math.log(2 * Math.PI);
    const logpz = tf.mul(-0.5, tf.sum(tf.add(tf.square(z), c), 1));
    const logqz = tf.mul(-0.5, tf.sum(tf.add(tf.add(tf.div(tf.square(tf.sub(z, m)), tf.exp(lv)), lv), c), 1));
    return tf.reshape(tf.sub(tf.add(logpx, logpz), logqz), [B, k]).arraySync() as number[][];
  });
  for (let b = 0; b < lw.length; b++)
    for (let i = 0; i < k; i++)
      assert.ok(Math.abs(lw[b][i] - ref[b][i]) < 2e-3 + 1e-4 * Math.abs(ref[b][i]), `[${b}, ${i}] ${lw[b][i]} vs ${ref[b][i]}`);
});

test('importance weights through the shortcuts (importanceSample, the affine head, logDensityAffineK) equal the terms the IWAE trains on, on the same draws', () => {
  const tf = getTf();
  const registry = createRegistry();
  const data = tinyDataSet({ shape: [12], n: 8 });
  const { ctx } = modelContext({ tf, registry, rng: new Rng(1), baseDir: '.', data }, latentParts);
  const x = tf.tensor2d(data.test.x.subarray(0, 3 * 12), [3, 12]);
  const k = 6;
  const mlp = (hidden: number[], more = {}) => ({ kind: 'mlp', hidden, activation: 'tanh', ...more });
  const cases: [string, LatentPartsOptions][] = [
    ['gaussian prior, tanh MLP', { latent: 3, prior: { kind: 'gaussian' }, encoder: mlp([5]), decoder: mlp([7, 5]) }],
    ['vamp prior', { latent: 3, prior: { kind: 'vamp', components: 3 }, encoder: mlp([5]), decoder: mlp([7]) }],
    ['batch-normalised decoder', { latent: 3, prior: { kind: 'gaussian' }, encoder: mlp([5]), decoder: mlp([7], { norm: 'batch' }) }],
    ['decoder without hidden layers', { latent: 3, prior: { kind: 'gaussian' }, encoder: mlp([5]), decoder: mlp([]) }],
  ];
  for (const [what, o] of cases) {
    const parts = ctx.latentParts({ ...o, likelihood: 'bernoulli' });
    assert.ok(
      parts.prior.importanceSample && parts.decoder.affineHead && parts.likelihood.logDensityAffineK,
      `${what}: the shortcuts are there`,
    );
    // logits of ±20 and more next to small ones: the normaliser's saturated range
    parts.decoder.params.forEach((v, name) => name.endsWith('/w') && v.assign(tf.mul(v, 6)));
    const terms = importanceTerms(tf, parts, String(o.prior.kind));
    assert.ok(typeof terms !== 'string');
    const fast = tf.tidy(() => importanceWeightsOf(tf, terms, parts).logImportanceWeights!(x, k, new Rng(4)).arraySync());
    const plain = tf.tidy(() => {
      const t = terms(x, k, new Rng(4));
      return tf.sub(tf.add(t.logpx, t.logpz), t.logqz).arraySync() as number[][];
    });
    for (let b = 0; b < 3; b++)
      for (let i = 0; i < k; i++)
        assert.ok(
          Math.abs(fast[b][i] - plain[b][i]) < 1e-5 * (1 + Math.abs(plain[b][i])),
          `${what} [${b}, ${i}]: ${fast[b][i]} vs ${plain[b][i]}`,
        );
  }
});

test('the shortcuts one by one: an MLP is its affine head, importanceSample is sample on enc repeated, the Bernoulli density from h·w + b', () => {
  const tf = getTf();
  const registry = createRegistry();
  const rng = new Rng(21);
  const [B, k, H, D, K] = [3, 5, 7, 12, 4];
  tf.tidy(() => {
    // the network: apply(x) = hidden(x)·w + b
    const shape = { inDim: D, outDim: 9 };
    for (const o of [
      { hidden: [6, 5], activation: 'tanh' },
      { hidden: [6], activation: 'relu', norm: 'batch' },
      { hidden: [], activation: 'relu' },
    ] as MlpOptions[]) {
      const net = mlp(tf, o, shape, new Rng(2));
      const xs = tf.tensor2d(rng.uniforms(B * D), [B, D]);
      const head = net.affineHead!();
      const viaHead = tf.add(tf.matMul(head.hidden(xs), head.w), head.b).arraySync() as number[][];
      const out = net.apply(xs).arraySync() as number[][];
      out.forEach((row, b) =>
        row.forEach((v, j) =>
          assert.ok(Math.abs(v - viaHead[b][j]) < 1e-5 * (1 + Math.abs(v)), `${JSON.stringify(o)}: ${v} vs ${viaHead[b][j]}`),
        ),
      );
    }
    // the Gaussian posteriors' importanceSample: the z of sample on enc repeated k times, from the same draws
    const enc = tf.tensor2d(rng.normals(B * 2 * K), [B, 2 * K]);
    const encoder = { params: new Map(), apply: (t: tfc.Tensor2D) => tf.slice(t, [0, 0], [-1, 2 * K]) as tfc.Tensor2D };
    for (const kind of ['gaussian', 'vamp']) {
      const prior = registry.create(
        'prior',
        { kind, components: 3 },
        { tf, registry, rng: new Rng(3), baseDir: '.', latent: K, inDim: 2 * K, encoder: () => encoder },
      );
      const [r1, r2] = [new Rng(8), new Rng(8)];
      const { z, logRatio } = prior.importanceSample!(enc, K, k, r1);
      const encK = tf.reshape(tf.tile(tf.expandDims(enc, 1), [1, k, 1]), [B * k, 2 * K]) as tfc.Tensor2D;
      const zRef = prior.sample(encK, K, r2);
      const ratioRef = tf.sub(prior.logPrior!(zRef), prior.logPosterior!(zRef, encK, K)).dataSync();
      assert.deepEqual(r1.state(), r2.state(), `${kind}: the same draws`);
      const zs = z.dataSync();
      zRef.dataSync().forEach((v, i) => assert.ok(Math.abs(zs[i] - v) <= 1e-6 * (1 + Math.abs(v)), `${kind} z[${i}]: ${zs[i]} vs ${v}`));
      logRatio
        .dataSync()
        .forEach((v, i) =>
          assert.ok(Math.abs(v - ratioRef[i]) < 1e-4 * (1 + Math.abs(v)), `${kind} log p(z) − log q(z|x) [${i}]: ${v} vs ${ratioRef[i]}`),
        );
    }
    // the Bernoulli likelihood read through an affine head: logits of ±30 next to small ones, x grey and binary
    const lik = likelihoodOf('bernoulli', D);
    const h = tf.tensor2d(rng.normals(B * k * H), [B * k, H]);
    const w = tf.mul(tf.tensor2d(rng.normals(H * D), [H, D]), 5) as tfc.Tensor2D;
    const b = tf.tensor1d(rng.normals(D));
    for (const x of [tf.tensor2d(rng.uniforms(B * D), [B, D]), tf.round(tf.tensor2d(rng.uniforms(B * D), [B, D])) as tfc.Tensor2D]) {
      const fast = lik.logDensityAffineK!(x, h, w, b, k).dataSync();
      const plain = lik.logDensityK!(x, tf.add(tf.matMul(h, w), b) as tfc.Tensor2D, k).dataSync();
      plain.forEach((v, i) => assert.ok(Math.abs(fast[i] - v) < 1e-5 * (1 + Math.abs(v)), `log p(x|h·w + b) [${i}]: ${fast[i]} vs ${v}`));
    }
  });
});

test('the iwae evaluator gives the same estimate whatever the pass sizes (chunks of draws, examples per pass)', async () => {
  const { tf, data, vae } = await models(1);
  const registry = createRegistry();
  const estimate = async (options: Record<string, unknown>) => {
    const ev: Evaluator = registry.create(
      'evaluator',
      { kind: 'iwae', k: 20, batch_size: 50, max_rows: 5000, ...options },
      { tf, registry, rng: new Rng(0), baseDir: '.' },
    );
    const before = tf.memory().numTensors;
    const out = await ev.run({ tf, model: vae, data, rng: new Rng(9), artifact: (n) => n, log: () => {}, unitWeights: {} });
    assert.equal(tf.memory().numTensors, before, 'the evaluator leaks tensors');
    return out.log_likelihood_k20;
  };
  const whole = await estimate({});
  for (const o of [{ max_rows: 8 }, { max_rows: 20, batch_size: 3 }, { batch_size: 1 }, { max_rows: 45 }]) {
    const v = await estimate(o);
    assert.ok(Math.abs(v - whole) < 1e-4 * Math.abs(whole), `${JSON.stringify(o)}: ${v} vs ${whole}`);
  }
});

test('the iwae evaluator draws as one stream, example by example: its estimate and the stream after it are those of the draws made in turn', async () => {
  // one example per pass (max_rows = k), and three chunks of draws per example (max_rows 8):
  // on the tensorflow backend the draws of every pass after the first come from a worker thread
  const { tf, data, vae } = await models(1);
  const registry = createRegistry();
  const k = 20;
  const n = 12;
  const x = (b: number) => tf.tensor2d(data.test.x.subarray(b * data.dim, (b + 1) * data.dim), [1, data.dim]);
  const direct = new Rng(9);
  let sum = 0;
  for (let b = 0; b < n; b++)
    sum += tf.tidy(() => tf.sub(tf.logSumExp(vae.logImportanceWeights!(x(b), k, direct)), Math.log(k)).dataSync()[0]);
  for (const max_rows of [k, 8]) {
    const ev: Evaluator = registry.create(
      'evaluator',
      { kind: 'iwae', k, max_rows, max_examples: n },
      { tf, registry, rng: new Rng(0), baseDir: '.' },
    );
    const stream = new Rng(9);
    const out = await ev.run({ tf, model: vae, data, rng: stream, artifact: (f) => f, log: () => {}, unitWeights: {} });
    assert.ok(
      Math.abs(out.log_likelihood_k20 - sum / n) < 1e-5 * Math.abs(sum / n),
      `max_rows ${max_rows}: ${out.log_likelihood_k20} vs ${sum / n}`,
    );
    assert.deepEqual(stream.state(), direct.state(), `max_rows ${max_rows}: the stream ends where the draws made in turn end`);
    assert.equal(stream.clone().normal(), direct.clone().normal());
  }
});

test('an IWAE trains from a config: terms declared, k = 1 evaluation below the bound, iwae.yaml validates', async () => {
  const dir = tmpDir();
  const r = await runExperiment({
    config: smallConfig(dir),
    runsDir: path.join(dir, 'runs'),
    overrides: [
      'model.kind=iwae',
      'model.k=5',
      'train.epochs=2',
      'eval=[{kind: elbo}, {kind: iwae, k: 20}]',
      'train.select={metric: val/iwae}',
    ],
    progress: false,
  });
  assert.equal(r.status, 'FINISHED', r.error ?? undefined);
  const m = r.metrics;
  for (const t of ['iwae', 'elbo', 'recon', 'kl']) {
    assert.ok(Number.isFinite(m[`test/${t}`]), `test/${t} missing: ${JSON.stringify(m)}`);
    assert.ok(Number.isFinite(m[`val/${t}`]), `val/${t} missing`);
  }
  assert.ok(m['test/iwae'] > m['test/elbo'], `L_5 ${m['test/iwae']} ≤ ELBO ${m['test/elbo']}`);
  assert.ok(m['test/log_likelihood_k20'] > m['test/elbo'], JSON.stringify(m));
  const lines = fs
    .readFileSync(path.join(r.runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.ok(lines.some((l) => Number.isFinite(l['train/iwae'])));
  // the shipped config validates, with its published k = 5000 entry
  const { config } = loadConfig(path.join(ROOT, 'configs/mnist/iwae.yaml'), [], createRegistry());
  assert.equal(config.model.kind, 'iwae');
  assert.equal(config.model.k, 50);
  assert.deepEqual(
    config.published?.map((p) => [p.metric, p.value]),
    [['test/log_likelihood_k5000', -84.78]],
  );
  // and refuses a likelihood without a density
  await assert.rejects(
    runExperiment({
      config: smallConfig(tmpDir()),
      runsDir: path.join(dir, 'runs2'),
      overrides: ['model.kind=iwae', 'model.likelihood=gaussian', 'train.epochs=1'],
      progress: false,
    }),
    // refused when validated (the iwae evaluator needs a density), else by the model itself
    /likelihood 'gaussian' is the unnormalised image loss|iwae objective needs importance weights: the gaussian likelihood/,
  );
});
