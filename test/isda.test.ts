import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { getTf } from '../src/runtime/tf';
import { selectBackend } from '../src/runtime/backend';
import { isdaClassLoss } from '../src/losses/isda';
import { Rng } from '../src/runtime/rng';
import type * as tfc from '@tensorflow/tfjs-core';

test.before(async () => {
  await selectBackend('auto'); // ELBO_BACKEND picks it in the test runs
});

/** The bound in float64, plain JS, from the float32 values the tensors hold. */
function reference(
  mu: Float32Array,
  s2: Float32Array,
  W: Float32Array,
  b: Float32Array,
  y: Int32Array,
  B: number,
  K: number,
  C: number,
): number[] {
  return Array.from({ length: B }, (_, i) => {
    const t = Array.from({ length: C }, (_, j) => {
      let e = b[j] - b[y[i]];
      for (let k = 0; k < K; k++) {
        const d = W[k * C + j] - W[k * C + y[i]];
        e += 0.5 * d * d * s2[i * K + k] + d * mu[i * K + k];
      }
      return e;
    });
    const m = Math.max(...t);
    return m + Math.log(t.reduce((s, v) => s + Math.exp(v - m), 0));
  });
}

function inputs(seed: number, B: number, K: number, C: number, scale: { W: number; spread: number; s2: number; mu: number }) {
  const rng = new Rng(seed);
  const base = Float32Array.from({ length: K }, () => scale.W * (1 + rng.normal()));
  // class vectors close to one another (base + small spread), far from 0
  const W = Float32Array.from({ length: K * C }, (_, i) => base[Math.floor(i / C)] + scale.spread * rng.normal());
  const s2 = Float32Array.from({ length: B * K }, () => scale.s2 * rng.uniform());
  const mu = Float32Array.from({ length: B * K }, () => scale.mu * rng.normal());
  const b = Float32Array.from({ length: C }, () => rng.normal());
  const y = Int32Array.from({ length: B }, (_, i) => i % C);
  return { W, s2, mu, b, y };
}

test('ISDA class loss stays accurate where the expanded square cancels (large σ², large |W|, close classes)', () => {
  const tf = getTf();
  const B = 16;
  const K = 64;
  const C = 10;
  for (const scale of [
    { W: 100, spread: 0.01, s2: 1000, mu: 10 }, // the case that cancelled: errors of 0.26 (cpu), 0.60 (wasm)
    { W: 1000, spread: 0.1, s2: 50, mu: 1 },
    { W: 0.1, spread: 0.1, s2: 1, mu: 1 }, // an ordinary case
  ]) {
    const { W, s2, mu, b, y } = inputs(1, B, K, C, scale);
    const ref = reference(mu, s2, W, b, y, B, K, C);
    const got = tf.tidy(
      () =>
        isdaClassLoss(
          tf.tensor2d(mu, [B, K]),
          tf.tensor2d(s2, [B, K]),
          tf.tensor2d(W, [K, C]),
          tf.tensor1d(b),
          tf.tensor1d(y, 'int32'),
        ).arraySync() as number[],
    );
    const rel = Math.max(...got.map((g, i) => Math.abs(g - ref[i]) / Math.max(1, Math.abs(ref[i]))));
    assert.ok(rel < 1e-5, `${JSON.stringify(scale)}: relative error ${rel.toExponential(2)} (got ${got[0]}, float64 ${ref[0]})`);
  }
});

test('ISDA class loss: gradients flow to μ, σ², W and b, and match finite differences', () => {
  const tf = getTf();
  const B = 4;
  const K = 5;
  const C = 3;
  const { W, s2, mu, b, y } = inputs(2, B, K, C, { W: 0.5, spread: 0.5, s2: 0.5, mu: 1 });
  const yT = tf.tensor1d(y, 'int32');
  const f = (m: tfc.Tensor2D, s: tfc.Tensor2D, w: tfc.Tensor2D, bb: tfc.Tensor1D) => tf.sum(isdaClassLoss(m, s, w, bb, yT));
  const args = [tf.tensor2d(mu, [B, K]), tf.tensor2d(s2, [B, K]), tf.tensor2d(W, [K, C]), tf.tensor1d(b)];
  const grads = tf
    // grads hands f the tensors of args, in order: two matrices [B, K], W [K, C], b [C]
    .grads(f as (...xs: tfc.Tensor[]) => tfc.Scalar)(args)
    .map((g) => g.dataSync());
  // finite differences in float64 on the reference, one coordinate of each argument
  const h = 1e-3;
  const arrays = [mu, s2, W, b];
  arrays.forEach((a, which) => {
    const i = 1;
    const plus = arrays.map((x) => Float32Array.from(x));
    const minus = arrays.map((x) => Float32Array.from(x));
    plus[which][i] += h;
    minus[which][i] -= h;
    const sum = (v: Float32Array[]) => reference(v[0], v[1], v[2], v[3], y, B, K, C).reduce((s, x) => s + x, 0);
    const fd = (sum(plus) - sum(minus)) / (2 * h);
    assert.ok(
      Math.abs(grads[which][i] - fd) < 1e-2 * Math.max(1, Math.abs(fd)),
      `argument ${which}: gradient ${grads[which][i]} vs finite difference ${fd}`,
    );
  });
});
