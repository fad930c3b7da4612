import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-cpu';
import { gaussianKl, gaussianLogDensity } from '../src/losses/gaussian-kl';
import { bernoulliNll, logSumExp } from '../src/losses/likelihood';
import { Rng } from '../src/runtime/rng';

test.before(async () => {
  await tf.setBackend('cpu');
});

test('Gaussian KL (closed form) matches a Monte Carlo estimate of E_q[log q − log p]', () => {
  const rng = new Rng(3);
  const mu = tf.tensor2d([
    [0.5, -1.2, 0.0],
    [2.0, 0.3, -0.7],
  ]);
  const logvar = tf.tensor2d([
    [-0.5, 0.4, -2.0],
    [0.8, -1.0, 0.1],
  ]);
  const closed = gaussianKl(mu, logvar).arraySync() as number[];
  const S = 200000;
  const mc = [0, 1].map((b) => {
    const m = (mu.arraySync() as number[][])[b];
    const lv = (logvar.arraySync() as number[][])[b];
    let sum = 0;
    for (let s = 0; s < S; s++) {
      for (let k = 0; k < 3; k++) {
        const z = m[k] + Math.exp(lv[k] / 2) * rng.normal();
        const logq = -0.5 * (Math.log(2 * Math.PI) + lv[k] + (z - m[k]) ** 2 / Math.exp(lv[k]));
        const logp = -0.5 * (Math.log(2 * Math.PI) + z * z);
        sum += logq - logp;
      }
    }
    return sum / S;
  });
  for (let b = 0; b < 2; b++) assert.ok(Math.abs(closed[b] - mc[b]) < 0.02, `row ${b}: closed ${closed[b]} vs MC ${mc[b]}`);
  // KL of q = p is zero
  assert.ok(Math.abs(gaussianKl(tf.zeros([1, 4]) as tf.Tensor2D, tf.zeros([1, 4]) as tf.Tensor2D).dataSync()[0]) < 1e-7);
});

test('gaussianLogDensity equals the textbook formula', () => {
  const z = tf.tensor2d([[0.3, -1.0]]);
  const got = gaussianLogDensity(z, tf.tensor2d([[0.1, 0.2]]), tf.tensor2d([[0.0, -1.0]])).dataSync()[0];
  const expect = -0.5 * (Math.log(2 * Math.PI) + 0 + 0.2 ** 2) - 0.5 * (Math.log(2 * Math.PI) - 1 + 1.2 ** 2 / Math.exp(-1));
  assert.ok(Math.abs(got - expect) < 1e-5, `${got} vs ${expect}`);
});

test('Bernoulli NLL is stable and equals −Σ[x log σ(l) + (1−x) log(1−σ(l))]', () => {
  const x = tf.tensor2d([[1, 0, 0.3]]);
  const l = tf.tensor2d([[2.0, -1.5, 0.7]]);
  const sig = (v: number) => 1 / (1 + Math.exp(-v));
  const naive = -[
    [1, 2.0],
    [0, -1.5],
    [0.3, 0.7],
  ].reduce((s, [xi, li]) => s + xi * Math.log(sig(li)) + (1 - xi) * Math.log(1 - sig(li)), 0);
  assert.ok(Math.abs(bernoulliNll(x, l).dataSync()[0] - naive) < 1e-5);
  // extreme logits: finite, and ≈ |l| when the sign is wrong
  const extreme = bernoulliNll(tf.tensor2d([[1, 0]]), tf.tensor2d([[-500, 500]])).dataSync()[0];
  assert.ok(Number.isFinite(extreme) && Math.abs(extreme - 1000) < 1e-3, String(extreme));
});

test('Bernoulli NLL gradient: the closed form σ(l) − x (scaled per row) equals differentiating the formula', () => {
  const x = tf.tensor2d([
    [1, 0, 0.3],
    [0, 1, 0.9],
  ]);
  const l = tf.tensor2d([
    [2.0, -1.5, 0.7],
    [30, -30, 0],
  ]);
  const rowWeights = tf.tensor1d([0.5, 2]);
  const plain = (v: tf.Tensor) =>
    tf.sum(tf.mul(tf.sum(tf.add(tf.sub(tf.relu(v), tf.mul(x, v)), tf.log1p(tf.exp(tf.neg(tf.abs(v))))), 1), rowWeights));
  const closed = (v: tf.Tensor) => tf.sum(tf.mul(bernoulliNll(x, v as tf.Tensor2D), rowWeights));
  const a = tf.grad(plain)(l).arraySync() as number[][];
  const b = tf.grad(closed)(l).arraySync() as number[][];
  a.forEach((row, i) => row.forEach((v, j) => assert.ok(Math.abs(v - b[i][j]) < 1e-5, `[${i},${j}]: ${v} vs ${b[i][j]}`)));
  // and the value is unchanged
  assert.ok(Math.abs(plain(l).dataSync()[0] - closed(l).dataSync()[0]) < 1e-4);
  // x made inside the differentiated function (M2 gathers its rows) is gone by the backward pass unless kept
  const inner = (v: tf.Tensor) => tf.sum(tf.mul(bernoulliNll(tf.mul(x, 1) as tf.Tensor2D, v as tf.Tensor2D), rowWeights));
  const c = tf.grad(inner)(l).arraySync() as number[][];
  a.forEach((row, i) => row.forEach((v, j) => assert.ok(Math.abs(v - c[i][j]) < 1e-5, `inner [${i},${j}]: ${v} vs ${c[i][j]}`)));
});

test('logSumExp does not overflow', () => {
  const v = logSumExp(
    tf.tensor2d([
      [1000, 1000],
      [-1000, -1000],
    ]),
    1,
  ).dataSync();
  assert.ok(Math.abs(v[0] - (1000 + Math.log(2))) < 1e-3);
  assert.ok(Math.abs(v[1] - (-1000 + Math.log(2))) < 1e-3);
});

test('Rng: same seed, same stream; forks are independent of draw order', () => {
  const a = new Rng(42);
  const b = new Rng(42);
  assert.deepEqual(Array.from(a.normals(5)), Array.from(b.normals(5)));
  const c = new Rng(42);
  const f1 = c.fork('x').uniforms(3);
  c.uniforms(100);
  assert.deepEqual(Array.from(new Rng(42).fork('x').uniforms(3)), Array.from(f1));
  assert.notDeepEqual(Array.from(new Rng(42).fork('y').uniforms(3)), Array.from(f1));
  const n = new Rng(1).normals(100000);
  const mean = n.reduce((s, v) => s + v, 0) / n.length;
  const varc = n.reduce((s, v) => s + (v - mean) ** 2, 0) / n.length;
  assert.ok(Math.abs(mean) < 0.01 && Math.abs(varc - 1) < 0.02, `${mean} ${varc}`);
});
