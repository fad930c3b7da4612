import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import type * as tfc from '@tensorflow/tfjs-core';
import { getTf } from '../src/runtime/tf';
import { selectBackend } from '../src/runtime/backend';
import { spikeSlabKl } from '../src/losses/spike-slab-kl';
import { gaussianKl } from '../src/losses/gaussian-kl';
import { spikeSlabPriorPlugin, scheduleProgress, type SpikeSlabPriorOptions } from '../src/priors/spike-slab';
import { createRegistry } from '../src/builtins';
import { runExperiment } from '../src/experiment';
import { Rng } from '../src/runtime/rng';
import { tmpDir, smallConfig, tinyDataSet, epochLines } from './helpers';
import type { Model } from '../src/contracts';

test.before(async () => {
  await selectBackend('cpu');
});

const logN = (z: number, m: number, lv: number) => -0.5 * (Math.log(2 * Math.PI) + lv + (z - m) ** 2 / Math.exp(lv));

test('spikeSlabKl equals a Monte Carlo estimate of KL(q ‖ p_s) with hard spikes', () => {
  // q(z_k) = γ·N(μ, σ²) + (1 − γ)·δ(0), p_s(z_k) = a·N(0, 1) + (1 − a)·δ(0). Both put mass
  // 1 − γ (resp. 1 − a) on the point 0 and have densities γ·N(z; μ, σ²), a·N(z; 0, 1) on the
  // rest, so with s ~ Bernoulli(γ), z = s·(μ + σε):
  //   KL = E[log q/p] = (1 − γ) log((1 − γ)/(1 − a)) + γ log(γ/a) + γ·KL(N(μ, σ²) ‖ N(0, 1)),
  // the formula of docs/models.md "Prior 2". Here we estimate E[log q/p] by sampling.
  const tf = getTf();
  const mu = [
    [0.5, -1.2, 0.0],
    [2.0, 0.3, -0.7],
  ];
  const lv = [
    [-0.5, 0.4, -2.0],
    [0.8, -1.0, 0.1],
  ];
  const gamma = [
    [0.9, 0.2, 0.5],
    [0.05, 0.7, 0.99],
  ];
  for (const a of [0.2, 0.5, 0.9]) {
    const closed = spikeSlabKl(tf.tensor2d(mu), tf.tensor2d(lv), tf.log(tf.tensor2d(gamma)) as tfc.Tensor2D, a).arraySync() as number[];
    const rng = new Rng(11);
    const S = 100000;
    for (let b = 0; b < 2; b++) {
      let sum = 0;
      for (let s = 0; s < S; s++)
        for (let k = 0; k < 3; k++) {
          const g = gamma[b][k];
          if (rng.uniform() >= g) {
            sum += Math.log((1 - g) / (1 - a)); // z = 0: ratio of the point masses
          } else {
            const z = mu[b][k] + Math.exp(lv[b][k] / 2) * rng.normal();
            sum += Math.log(g) + logN(z, mu[b][k], lv[b][k]) - Math.log(a) - logN(z, 0, 0);
          }
        }
      const mc = sum / S;
      assert.ok(Math.abs(closed[b] - mc) < 0.03, `a=${a} row ${b}: closed ${closed[b]} vs MC ${mc}`);
    }
  }
});

test('with γ = 1 and a = 1 the spike-slab KL is the Gaussian KL', () => {
  const tf = getTf();
  const mu = tf.tensor2d([
    [0.5, -1.2, 0.0, 3.0],
    [2.0, 0.3, -0.7, 0.0],
  ]);
  const lv = tf.tensor2d([
    [-0.5, 0.4, -2.0, 1.0],
    [0.8, -1.0, 0.1, 0.0],
  ]);
  const ss = spikeSlabKl(mu, lv, tf.zeros([2, 4]) as tfc.Tensor2D, 1).arraySync() as number[];
  const g = gaussianKl(mu, lv).arraySync() as number[];
  for (let b = 0; b < 2; b++) assert.ok(Math.abs(ss[b] - g[b]) <= 1e-5 * Math.max(1, Math.abs(g[b])), `${ss[b]} vs ${g[b]}`);
  // and the KL of q = p (γ = a, μ = 0, σ = 1) is zero
  const zero = spikeSlabKl(
    tf.zeros([1, 3]) as tfc.Tensor2D,
    tf.zeros([1, 3]) as tfc.Tensor2D,
    tf.fill([1, 3], Math.log(0.3)) as tfc.Tensor2D,
    0.3,
  );
  assert.ok(Math.abs(zero.dataSync()[0]) < 1e-5);
});

async function makeModel(prior: Record<string, unknown>): Promise<Model> {
  const tf = getTf();
  const registry = createRegistry();
  return registry.create(
    'model',
    {
      kind: 'vae',
      latent: 4,
      prior: { kind: 'spike-slab', alpha: 0.2, c: 50, warmup: 1, mean: 'expected', logvar_min: -30, logvar_max: 20, ...prior },
      encoder: { kind: 'mlp', hidden: [8], activation: 'relu' },
      decoder: { kind: 'mlp', hidden: [8], activation: 'relu' },
      likelihood: 'bernoulli',
    },
    { tf, registry, rng: new Rng(5), baseDir: '.', data: tinyDataSet({ shape: [4, 4, 1] }) },
  );
}

test('gradients of the loss through the spike-slab prior are finite', async () => {
  const tf = getTf();
  const model = await makeModel({ c: { kind: 'linear', from: 50, to: 200, start_epoch: 0, end_epoch: 2 }, warmup: 0.5 });
  const x = tf.tensor2d(new Rng(1).uniforms(6 * 16), [6, 16]);
  const vars = [...model.params.values()];
  const { value, grads } = tf.variableGrads(
    () => model.terms({ x, y: null }, { c1: 1, c2: 1, alpha: 0 }, new Rng(2), { epoch: 1, step: 3, fraction: 0.5 }).loss,
    vars,
  );
  assert.ok(Number.isFinite(value.dataSync()[0]));
  assert.equal(Object.keys(grads).length, vars.length);
  for (const [name, g] of Object.entries(grads)) {
    assert.ok((g.dataSync() as Float32Array).every(Number.isFinite), `gradient of ${name} is not finite`);
  }
  // extreme encoder outputs (γ at both clamps, huge μ and log σ²): KL and its gradient stay finite
  const registry = createRegistry();
  const prior = spikeSlabPriorPlugin.create(
    { kind: 'spike-slab', alpha: 0.01, c: 200, warmup: 1, mean: 'expected', logvar_min: -30, logvar_max: 20 },
    { tf, registry, rng: new Rng(0), baseDir: '.', latent: 2, inDim: 4 },
  );
  const enc = tf.variable(tf.tensor2d([[1e3, -1e3, 40, -40, 0, 0, 100, -100]]));
  const kg = tf.variableGrads(
    () =>
      tf.sum(
        tf.add(
          prior.kl(enc, 2, { epoch: 0, step: 0, fraction: 0 }),
          tf.sum(prior.sample(enc, 2, new Rng(3), { epoch: 0, step: 0, fraction: 0 })),
        ),
      ) as tfc.Scalar,
    [enc],
  );
  assert.ok(Number.isFinite(kg.value.dataSync()[0]), String(kg.value.dataSync()[0]));
  assert.ok((Object.values(kg.grads)[0].dataSync() as Float32Array).every(Number.isFinite));
  // no density: importance weighting is refused with the reason
  assert.equal(model.logImportanceWeights, undefined);
  assert.match(model.noImportanceWeights!, /spike-slab.*no density/);
});

test('sample, mean and prior draws: spikes are zeros, c follows its schedule', () => {
  const tf = getTf();
  const registry = createRegistry();
  const mk = (mean: SpikeSlabPriorOptions['mean']) =>
    spikeSlabPriorPlugin.create(
      {
        kind: 'spike-slab',
        alpha: 0.25,
        c: { kind: 'linear', from: 50, to: 200, start_epoch: 0, end_epoch: 10 },
        warmup: 1,
        mean: mean,
        logvar_min: -30,
        logvar_max: 20,
      },
      { tf, registry, rng: new Rng(0), baseDir: '.', latent: 2, inDim: 4 },
    );
  // K = 2: μ = [2, −3], log σ² = [−20, −20] (σ ≈ 0), v = [5, −50] → γ = [1, e^−50 → 1e-6]
  const enc = tf.tensor2d([[2, -3, -20, -20, 5, -50]]);
  const near = (got: ArrayLike<number>, want: number[], tol: number) =>
    assert.ok(
      want.every((w, i) => Math.abs(got[i] - w) <= tol),
      `${Array.from(got)} vs ${want}`,
    );
  near(mk('expected').mean(enc, 2).dataSync(), [2, 0], 1e-4); // γ⊙μ
  near(mk('selected').mean(enc, 2).dataSync(), [2, 0], 0); // μ where γ > 0.5
  near(mk('slab').mean(enc, 2).dataSync(), [2, -3], 0); // μ
  const z = mk('expected')
    .sample(tf.tile(enc, [200, 1]) as tfc.Tensor2D, 2, new Rng(4), { epoch: 9, step: 0, fraction: 0.9 })
    .arraySync() as number[][];
  // γ = 1: sigmoid(c·η) with c ≥ 50 and η ~ U(0,1) is nearly always ≈ 1; γ ≈ 0: never selected
  assert.ok(z.filter((r) => Math.abs(r[0] - 2) < 0.05).length > 180);
  assert.ok(z.filter((r) => Math.abs(r[1]) < 0.01).length > 180);
  // c: 50 at epoch 0, 200 at the end; evaluation (fraction 1) uses the end value
  assert.equal(scheduleProgress({ epoch: 0, step: 0, fraction: 0 }).epochFloat, 0);
  assert.equal(scheduleProgress({ epoch: 3, step: 0, fraction: 0.3, epochFloat: 3.5 }).epochFloat, 3.5);
  assert.equal(scheduleProgress({ epoch: 0, step: 0, fraction: 1 }).epochFloat, Infinity);
  // prior draws: a fraction a of the entries are non-zero
  const p = mk('expected').sampleFromPrior(4000, 5, new Rng(8)).dataSync();
  const nonZero = Array.from(p).filter((v) => v !== 0).length / p.length;
  assert.ok(Math.abs(nonZero - 0.25) < 0.02, String(nonZero));
});

test('a short VSC training run lowers its objective; sparsity and latent classifier run on it', async () => {
  const dir = tmpDir();
  const r = await runExperiment({
    config: smallConfig(dir),
    runsDir: path.join(dir, 'runs'),
    overrides: [
      'model.prior={kind: spike-slab, alpha: 0.2, c: {kind: linear, from: 50, to: 200, end_epoch: 6}}',
      'train.epochs=6',
      'eval=[{kind: elbo}, {kind: sparsity}, {kind: latent-classifier, classifier: knn}]',
    ],
    progress: false,
  });
  assert.equal(r.status, 'FINISHED', r.error);
  const lines = epochLines(r.runDir);
  assert.equal(lines.length, 6);
  assert.ok(lines[5]['train/loss'] < lines[0]['train/loss'] - 1, `train/loss ${lines[0]['train/loss']} → ${lines[5]['train/loss']}`);
  assert.ok(lines[5]['val/elbo'] > lines[0]['val/elbo'], `val/elbo ${lines[0]['val/elbo']} → ${lines[5]['val/elbo']}`);
  for (const k of [
    'test/elbo',
    'test/kl',
    'test/sparsity_zero_fraction',
    'test/sparsity_active_dims_mean',
    'test/latent_classifier_error',
  ]) {
    assert.ok(Number.isFinite(r.metrics[k]), k);
  }
  const s = JSON.parse(fs.readFileSync(path.join(r.runDir, 'artifacts', 'sparsity.json'), 'utf8'));
  assert.equal(s.activation_rate.length, 4);
  assert.ok(fs.existsSync(path.join(r.runDir, 'artifacts', 'sparsity.png')));
});
