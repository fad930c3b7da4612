import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { getTf } from '../src/runtime/tf';
import { Rng } from '../src/runtime/rng';
import { likelihoodOf } from '../src/losses/likelihood';
import { createRegistry } from '../src/builtins';
import { tinyDataSet } from './helpers';
import { LIKELIHOODS, type Model } from '../src/contracts';

test('every likelihood: log p(x|out) for k rows per example (x not repeated) equals −nll with x repeated', () => {
  const tf = getTf();
  const rng = new Rng(4);
  const B = 3;
  const k = 4;
  const D = 6;
  for (const name of LIKELIHOODS) {
    const lik = likelihoodOf(name, D);
    const x = tf.tensor2d(rng.uniforms(B * D), [B, D]);
    const out = tf.tensor2d(rng.normals(B * k * lik.outPerDim * D), [B * k, lik.outPerDim * D]);
    assert.deepEqual(lik.mean(out).shape, [B * k, D], name);
    if (!lik.logDensityK) {
      assert.match(lik.noDensity!, /image loss .* not a density/, name);
      continue;
    }
    const fast = lik.logDensityK(x, out, k).arraySync() as number[][];
    const xRep = tf.reshape(tf.tile(tf.expandDims(x, 1), [1, k, 1]), [B * k, D]) as typeof x;
    const slow = tf.neg(lik.nll(xRep, out)).reshape([B, k]).arraySync() as number[][];
    for (let b = 0; b < B; b++)
      for (let i = 0; i < k; i++) assert.ok(Math.abs(fast[b][i] - slow[b][i]) < 1e-3, `${name} [${b},${i}] ${fast[b][i]} vs ${slow[b][i]}`);
  }
});

test('a VAE with the learned-variance Gaussian likelihood is a density: importance weights work', async () => {
  const tf = getTf();
  const registry = createRegistry();
  const data = tinyDataSet({ shape: [6], n: 8 });
  const options = {
    kind: 'vae',
    latent: 2,
    prior: { kind: 'gaussian' },
    encoder: { kind: 'mlp', hidden: [5] },
    decoder: { kind: 'mlp', hidden: [5] },
    likelihood: 'gaussian_learned',
  };
  const model: Model = await registry.create('model', options, { tf, registry, rng: new Rng(1), baseDir: '.', data });
  const caps = registry.get('model', 'vae').capabilities!;
  assert.deepEqual(caps(options as never, { registry }).provides, ['latent', 'density']);
  const lw = model.logImportanceWeights!(tf.tensor2d(data.test.x.subarray(0, 12), [2, 6]), 3, new Rng(2));
  assert.deepEqual(lw.shape, [2, 3]);
  assert.ok((lw.dataSync() as Float32Array).every(Number.isFinite));
  // the fixed-variance image loss is not one, and says so
  const fixed = await registry.create(
    'model',
    { ...options, likelihood: 'gaussian' },
    { tf, registry, rng: new Rng(1), baseDir: '.', data },
  );
  assert.equal(fixed.logImportanceWeights, undefined);
  assert.match(fixed.noImportanceWeights!, /not a density/);
});

test('importance weights for any encoder-decoder model: the G-VAE has them with a density likelihood', async () => {
  const tf = getTf();
  const registry = createRegistry();
  const data = tinyDataSet({ shape: [6], n: 8, classes: 2 });
  const options = { kind: 'gvae', latent: 2, encoder: { kind: 'mlp', hidden: [5] }, decoder: { kind: 'mlp', hidden: [5] } };
  const learned: Model = await registry.create(
    'model',
    { ...options, likelihood: 'gaussian_learned' },
    { tf, registry, rng: new Rng(1), baseDir: '.', data },
  );
  const lw = learned.logImportanceWeights!(tf.tensor2d(data.test.x.subarray(0, 12), [2, 6]), 3, new Rng(2));
  assert.deepEqual(lw.shape, [2, 3]);
  assert.ok((lw.dataSync() as Float32Array).every(Number.isFinite));
  const caps = registry.get('model', 'gvae').capabilities;
  assert.ok(typeof caps === 'function');
  assert.deepEqual(caps({ ...options, likelihood: 'gaussian_learned', prior: { kind: 'gaussian' } } as never, { registry }).provides, [
    'latent',
    'density',
    'classify',
  ]);
  // its default, the image loss, is not a density
  assert.deepEqual(caps({ ...options, likelihood: 'gaussian', prior: { kind: 'gaussian' } } as never, { registry }).provides, [
    'latent',
    'classify',
  ]);
  const fixed: Model = await registry.create('model', options, { tf, registry, rng: new Rng(1), baseDir: '.', data });
  assert.match(fixed.noImportanceWeights!, /image loss/);
});
