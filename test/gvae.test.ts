import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs';
import { isdaClassLoss, softmaxCrossEntropy } from '../src/losses/isda';
import { Rng } from '../src/runtime/rng';
import { runExperiment } from '../src/experiment';
import { tmpDir, smallConfig, epochLines } from './helpers';

test.before(async () => {
  await tf.setBackend('cpu');
});

const K = 3;
const C = 4;
const W = tf.tensor2d([
  [0.5, -1, 0.2, 0],
  [1.5, 0.3, -0.7, 0.1],
  [-0.4, 0.8, 0.9, -1.2],
]); // [K, C]
const b = tf.tensor1d([0.1, -0.2, 0.3, 0]);
const mu = tf.tensor2d([
  [0.2, -1.0, 0.5],
  [1.0, 0.4, -0.3],
]);
const y = tf.tensor1d([2, 0], 'int32');

test('ISDA bound equals the cross-entropy of the mean when σ² = 0', () => {
  const bound = isdaClassLoss(mu, tf.zeros([2, K]) as tf.Tensor2D, W, b, y).arraySync() as number[];
  const ce = softmaxCrossEntropy(tf.add(tf.matMul(mu, W), b) as tf.Tensor2D, y).arraySync() as number[];
  bound.forEach((v, i) => assert.ok(Math.abs(v - ce[i]) < 1e-5, `${v} vs ${ce[i]}`));
});

test('ISDA bound ≥ a sampled E_z[cross-entropy], and matches the explicit formula', () => {
  const sigma2 = tf.tensor2d([
    [0.5, 1.2, 0.3],
    [2.0, 0.1, 0.7],
  ]);
  const bound = isdaClassLoss(mu, sigma2, W, b, y).arraySync() as number[];
  // explicit formula of docs/models.md "Model: G-VAE", element by element
  const Wa = W.arraySync() as number[][];
  const ba = b.arraySync() as number[];
  const ma = mu.arraySync() as number[][];
  const sa = sigma2.arraySync() as number[][];
  const ya = y.arraySync() as number[];
  for (let i = 0; i < 2; i++) {
    const terms = Array.from({ length: C }, (_, j) => {
      let q = 0;
      let l = 0;
      for (let k = 0; k < K; k++) {
        const d = Wa[k][j] - Wa[k][ya[i]];
        q += 0.5 * d * d * sa[i][k];
        l += d * ma[i][k];
      }
      return q + l + ba[j] - ba[ya[i]];
    });
    const m = Math.max(...terms);
    const explicit = m + Math.log(terms.reduce((s, t) => s + Math.exp(t - m), 0));
    assert.ok(Math.abs(explicit - bound[i]) < 1e-4, `explicit ${explicit} vs ${bound[i]}`);
    // Monte Carlo E_z[CE]
    const rng = new Rng(9 + i);
    let sum = 0;
    const S = 20000;
    for (let s = 0; s < S; s++) {
      const z = ma[i].map((m0, k) => m0 + Math.sqrt(sa[i][k]) * rng.normal());
      const logits = Array.from({ length: C }, (_, j) => z.reduce((acc, zk, k) => acc + zk * Wa[k][j], ba[j]));
      const mx = Math.max(...logits);
      sum += mx + Math.log(logits.reduce((acc, t) => acc + Math.exp(t - mx), 0)) - logits[ya[i]];
    }
    assert.ok(bound[i] >= sum / S - 0.01, `bound ${bound[i]} < sampled CE ${sum / S}`);
  }
});

test('G-VAE trains on labelled data: the class term falls and the head classifies', async () => {
  const dir = tmpDir();
  const r = await runExperiment({
    config: smallConfig(dir),
    runsDir: path.join(dir, 'runs'),
    overrides: ['model.kind=gvae', 'loss.alpha=1', 'train.epochs=8', 'eval=[{kind: elbo}]', 'data.binarize=none'],
    progress: false,
  });
  assert.equal(r.status, 'FINISHED', r.error);
  const lines = epochLines(r.runDir);
  assert.ok(lines[7]['train/class'] < lines[0]['train/class'] * 0.7, `class ${lines[0]['train/class']} → ${lines[7]['train/class']}`);
  assert.ok(Number.isFinite(lines[7]['train/loss']));
});
