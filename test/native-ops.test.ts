import { test, before } from 'node:test';
import * as assert from 'node:assert/strict';
import type * as tfc from '@tensorflow/tfjs-core';
import { selectBackend, installedBackends, getTf } from '../src/runtime/backend';
import { relu, conv2dTransposeBias } from '../src/runtime/native-ops';
import { traceNative } from '../src/runtime/graph/trace';
import { WORKLOADS, buildWorkload, type Workload } from '../src/bench/workload';
import { Rng } from '../src/runtime/rng';

// The ops exist for the native backend (npm run setup:native); elsewhere they are tfjs's own.
const native = installedBackends().includes('tensorflow');
const needsNative = native ? {} : { skip: 'the tensorflow backend is not installed here (npm run setup:native builds it)' };

before(async () => {
  if (native) await selectBackend('tensorflow');
});

const values = (t: tfc.Tensor) => Array.from(t.dataSync());

function closeArrays(a: number[], b: number[], rel: number, what: string) {
  assert.equal(a.length, b.length, what);
  const scale = Math.max(1e-6, ...b.map(Math.abs));
  a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) <= rel * scale, `${what}[${i}]: ${v} vs ${b[i]}`));
}

/** Gradients of Σ f(inputs)·weights (fixed random weights, so every output element counts differently). */
function gradsOf(tf: typeof tfc, f: (...xs: tfc.Tensor[]) => tfc.Tensor, inputs: tfc.Tensor[], seed: number) {
  return tf.tidy(() => {
    const shape = f(...inputs).shape;
    const w = tf.tensor(new Rng(seed).normals(shape.reduce((a, b) => a * b, 1)), shape);
    const { value, grads } = tf.valueAndGrads((...xs: tfc.Tensor[]) => tf.sum(tf.mul(f(...xs), w)) as tfc.Scalar)(inputs);
    return { value: value.dataSync()[0], grads: grads.map(values) };
  });
}

test(
  'tensorflow: relu with ReluGrad on its output equals tfjs relu, values and gradients, and its trace holds no step chain',
  needsNative,
  () => {
    const tf = getTf();
    const x = tf.tensor(
      Array.from(new Rng(1).normals(4 * 6 * 6 * 5)).map((v, i) => (i % 7 === 0 ? 0 : v)),
      [4, 6, 6, 5],
    );
    assert.deepEqual(values(relu(tf, x)), values(tf.relu(x)));
    const mine = gradsOf(tf, (t) => relu(tf, t), [x], 2);
    const theirs = gradsOf(tf, (t) => tf.relu(t), [x], 2);
    assert.equal(mine.value, theirs.value);
    // (exactly: both pass dy where x > 0, zero elsewhere; x = 0 gets zero from both)
    assert.deepEqual(
      mine.grads[0].map((v) => v + 0),
      theirs.grads[0].map((v) => v + 0),
    );
    const { trace, outputs } = traceNative(
      tf,
      [x],
      () => -1,
      () => [tf.grad((t: tfc.Tensor) => tf.sum(relu(tf, t)))(x)],
    );
    outputs.forEach((t) => t.dispose());
    const ops = trace.nodes.map((n) => n.op);
    assert.ok(ops.includes('Relu') && ops.includes('ReluGrad'), ops.join());
    assert.ok(!ops.includes('IsNan') && !ops.includes('Select'), ops.join());
    x.dispose();
  },
);

test(
  'tensorflow: conv2dTransposeBias (NCHW for few output channels) equals conv2dTranspose + bias, values and gradients',
  needsNative,
  () => {
    const tf = getTf();
    const rng = new Rng(3);
    for (const [B, h, cin, cout] of [
      [3, 4, 6, 3],
      [2, 5, 4, 1],
      [2, 4, 5, 9],
    ]) {
      const x = tf.tensor4d(rng.normals(B * h * h * cin), [B, h, h, cin]);
      const k = tf.tensor4d(rng.normals(4 * 4 * cout * cin), [4, 4, cout, cin]);
      const b = tf.tensor1d(rng.normals(cout));
      const shape: [number, number, number, number] = [B, 2 * h, 2 * h, cout];
      const mine = (xs: tfc.Tensor, ks: tfc.Tensor, bs: tfc.Tensor) =>
        conv2dTransposeBias(tf, xs as tfc.Tensor4D, ks as tfc.Tensor4D, bs as tfc.Tensor1D, shape, 2);
      const theirs = (xs: tfc.Tensor, ks: tfc.Tensor, bs: tfc.Tensor) =>
        tf.add(tf.conv2dTranspose(xs as tfc.Tensor4D, ks as tfc.Tensor4D, shape, 2, 'same'), bs);
      const what = `${B}×${h}×${h}×${cin} → ${cout} channels`;
      const y = mine(x, k, b);
      assert.deepEqual(y.shape, shape, what);
      closeArrays(values(y), values(theirs(x, k, b)), 1e-5, `${what}: values`);
      const g = gradsOf(tf, mine, [x, k, b], 4);
      const e = gradsOf(tf, theirs, [x, k, b], 4);
      ['x', 'filter', 'bias'].forEach((n, i) => closeArrays(g.grads[i], e.grads[i], 1e-5, `${what}: gradient of ${n}`));
      tf.dispose([x, k, b, y]);
    }
  },
);

test('tensorflow: a conv G-VAE compiles into one graph and trains as the eager step does', needsNative, async () => {
  const tf = getTf();
  const conv = (channels: number[]) => ({ kind: 'conv', channels, kernel: 4, residual: false, activation: 'relu' });
  const w: Workload = {
    ...WORKLOADS.find((x) => x.name === 'gvae-conv')!,
    shape: [16, 16, 3],
    batch: 8,
    labelled: 6,
    model: {
      kind: 'gvae',
      latent: 8,
      prior: { kind: 'gaussian', logvar_min: -30, logvar_max: 20 },
      encoder: conv([8, 16]),
      decoder: conv([8, 16]),
      likelihood: 'gaussian',
    },
  };
  const losses = async (compile: 'auto' | 'off') => {
    const wl = await buildWorkload(tf, w, 3, { compile, draws: 'host' });
    const out = [0, 1, 2].map(() => wl.run({ steps: 2, minSeconds: 0, maxSeconds: 1e9 }).loss);
    return { out, modes: wl.modes };
  };
  const g = await losses('auto');
  const e = await losses('off');
  assert.equal(g.modes[0].mode, 'graph', g.modes[0].reason);
  g.out.forEach((v, i) => assert.ok(Math.abs(v - e.out[i]) <= 1e-4 * (1 + Math.abs(v)), `step ${2 * i + 2}: ${v} vs ${e.out[i]}`));
});
