import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import type * as tfc from '@tensorflow/tfjs-core';
import { selectBackend } from '../src/runtime/backend';
import { getTf } from '../src/runtime/tf';
import { Rng } from '../src/runtime/rng';
import { conv } from '../src/nn/conv';
import { createRegistry } from '../src/builtins';
import { adgmCore } from '../src/models/adgm';
import { UserError } from '../src/errors';
import { tinyDataSet, tinyAdgmOptions, values, near } from './helpers';

test.before(async () => {
  await selectBackend('auto');
});

test('conv with columns beside its image (inImageAt): the image convolved, the other columns joined to its features before the dense layer (by hand)', () => {
  const tf = getTf();
  const [B, A, H, W, Z, O] = [3, 2, 8, 8, 3, 4];
  const inDim = A + H * W + Z;
  const net = conv(
    tf,
    { kind: 'conv', channels: [4], kernel: 3, residual: false, activation: 'relu', norm: 'none' },
    { inDim, outDim: O, inShape: [H, W, 1], inImageAt: A },
    new Rng(1),
  );
  const flat = (H / 2) * (W / 2) * 4;
  assert.deepEqual(net.params.get('dense/w')!.shape, [flat + A + Z, O]);
  const rows = Array.from({ length: B }, (_, i) => Array.from(new Rng(10 + i).uniforms(inDim)));
  const byHand = tf.tidy(() => {
    const img = tf.tensor2d(rows.map((r) => r.slice(A, A + H * W)));
    const t = tf.relu(
      tf.add(
        tf.conv2d(tf.reshape(img, [B, H, W, 1]) as tfc.Tensor4D, net.params.get('conv0/w') as tfc.Tensor4D, 2, 'same'),
        net.params.get('conv0/b')!,
      ),
    );
    const f = tf.reshape(t, [B, flat]).arraySync() as number[][];
    // [features, the columns before the image, the columns after it]
    const joined = tf.tensor2d(f.map((fi, i) => [...fi, ...rows[i].slice(0, A), ...rows[i].slice(A + H * W)]));
    return values(tf.add(tf.matMul(joined, net.params.get('dense/w') as tfc.Tensor2D), net.params.get('dense/b')!));
  });
  near(values(net.apply(tf.tensor2d(rows))), byHand, 1e-5, 'output');
  // the side columns reach the output
  const moved = rows.map((r) => r.map((v, j) => (j < A ? v + 1 : v)));
  assert.ok(values(net.apply(tf.tensor2d(moved))).some((v, i) => Math.abs(v - byHand[i]) > 1e-4));
  // such a network has no Layers form (elbo export), said plainly
  assert.throws(
    () => net.layers!({} as never, {} as never),
    (e: unknown) => e instanceof UserError && /inputs beside its image/.test(e.message),
  );
  // an image that does not fit the row is refused as before
  assert.throws(
    () =>
      conv(
        tf,
        { kind: 'conv', channels: [4], kernel: 3, residual: false, activation: 'relu', norm: 'none' },
        { inDim: 10, outDim: O, inShape: [H, W, 1], inImageAt: A },
        new Rng(1),
      ),
    /needs image data/,
  );
});

test('adgm and sdgm: a conv q(y|a,x) convolves x and reads a beside it; classify gives probabilities', () => {
  const tf = getTf();
  for (const variant of ['adgm', 'sdgm'] as const) {
    const m = adgmCore(
      tinyAdgmOptions({
        classifier: { kind: 'conv', channels: [2], kernel: 2, residual: false, activation: 'relu', norm: 'none' },
        classify_samples: 4,
      }) as never,
      { tf, registry: createRegistry(), rng: new Rng(5), baseDir: '.', data: tinyDataSet({ shape: [4, 4, 1], classes: 3 }) },
      variant,
      `model (${variant})`,
    );
    // 2×2×2 features of the 4×4 image, then a's 3 columns
    assert.deepEqual(m.parts.classifier.params.get('dense/w')!.shape, [8 + 3, 3]);
    const x = tf.tensor2d(Array.from(new Rng(2).uniforms(5 * 16)), [5, 16]);
    const p = m.classify!(x).arraySync() as number[][];
    for (const r of p) near([r.reduce((s, v) => s + v, 0)], [1], 1e-5, `${variant}: probabilities`);
  }
});
