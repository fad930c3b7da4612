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
import { bernoulliNll } from '../src/losses/likelihood';
import { Rng } from '../src/runtime/rng';
import { ROOT, tmpDir, smallConfig } from './helpers';
import type { Model, DataSet, Evaluator } from '../src/contracts';

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
