import { test, before } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import type * as tfc from '@tensorflow/tfjs-core';
import { selectBackend, getTf } from '../src/runtime/backend';
import { transformGradients } from '../src/train/gradients';
import { makeTrainStep } from '../src/train/step';
import { createRegistry } from '../src/builtins';
import { Rng } from '../src/runtime/rng';
import { runExperiment } from '../src/experiment';
import { parse as parseYaml } from 'yaml';
import { tmpDir, smallConfig } from './helpers';
import type { Model, Optimizer } from '../src/contracts';

let tf: typeof tfc;
before(async () => {
  await selectBackend('auto'); // ELBO_BACKEND picks it in the test runs
  tf = getTf();
});

const close = (a: ArrayLike<number>, b: number[], what: string) =>
  b.forEach((v, i) => assert.ok(Math.abs(a[i] - v) <= 1e-5 * (1 + Math.abs(v)), `${what}[${i}]: ${a[i]} vs ${v}`));

test('gradients by hand: the global norm, clipping by norm, then by value, then weight decay', () => {
  const params = new Map<string, tfc.Variable>([
    ['a', tf.variable(tf.tensor1d([1, 2]))],
    ['b', tf.variable(tf.tensor2d([[3]]))],
    ['c', tf.variable(tf.tensor1d([-4]))],
  ]);
  const grads = { a: tf.tensor1d([3, 4]), b: tf.tensor2d([[12]]) };
  // ‖g‖ = √(9 + 16 + 144) = 13
  const none = transformGradients(tf, grads, params, {});
  assert.equal(none.norm.dataSync()[0], 13);
  assert.equal(none.grads.a, grads.a, 'no options: the gradients pass through');
  // norm 6.5 halves every gradient
  const byNorm = transformGradients(tf, grads, params, { clip: { norm: 6.5 } });
  close(byNorm.grads.a.dataSync(), [1.5, 2], 'norm a');
  close(byNorm.grads.b.dataSync(), [6], 'norm b');
  assert.equal(byNorm.norm.dataSync()[0], 13, 'the norm is measured before clipping');
  // a norm above ‖g‖ leaves them alone
  close(transformGradients(tf, grads, params, { clip: { norm: 20 } }).grads.b.dataSync(), [12], 'norm above');
  // norm, then value: [1.5, 2] → [1.5, 1.8], [6] → [1.8]
  const both = transformGradients(tf, grads, params, { clip: { norm: 6.5, value: 1.8 } });
  close(both.grads.a.dataSync(), [1.5, 1.8], 'both a');
  close(both.grads.b.dataSync(), [1.8], 'both b');
  // value alone: [3, 4] → [3, 3], [12] → [3]
  const byValue = transformGradients(tf, grads, params, { clip: { value: 3 } });
  close(byValue.grads.a.dataSync(), [3, 3], 'value a');
  // weight decay after clipping, on every parameter (c had no gradient)
  const wd = transformGradients(tf, grads, params, { clip: { value: 3 }, weightDecay: 0.1 });
  close(wd.grads.a.dataSync(), [3.1, 3.2], 'decay a');
  close(wd.grads.b.dataSync(), [3.3], 'decay b');
  close(wd.grads.c.dataSync(), [-0.4], 'decay c');
});

/**
 * A model whose loss is Σ w·c over its one parameter w (so ∂loss/∂w = c, whatever x is),
 * trained by SGD with rate 1: one step moves w by exactly the transformed gradient.
 */
function linearModel(c: number[]): { model: Pick<Model, 'params' | 'latent' | 'terms'>; w: tfc.Variable; optimizer: Optimizer } {
  const w = tf.variable(tf.tensor1d([0.5, -0.5, 2]), true, 'lin_w');
  const params = new Map([['w', w]]);
  const model: Pick<Model, 'params' | 'latent' | 'terms'> = {
    params,
    latent: 0,
    terms: (batch: { x: tfc.Tensor2D }) => {
      // x enters the loss (times 0) so the step's graph has its input
      const loss = tf.add(tf.sum(tf.mul(w, tf.tensor1d(c))), tf.mul(0, tf.sum(batch.x))) as tfc.Scalar;
      return { loss };
    },
  };
  const optimizer = createRegistry().create('optimizer', { kind: 'sgd', lr: 1, momentum: 0 }, {
    tf,
    registry: createRegistry(),
    rng: new Rng(0),
    baseDir: '.',
    params,
  } as never);
  return { model, w, optimizer };
}

test('the training step clips and decays inside the step (compiled on the native backend) and returns grad_norm', () => {
  const c = [3, 0, 4]; // ‖c‖ = 5
  const { model, w, optimizer } = linearModel(c);
  // the step reads only these parts of a model
  const step = makeTrainStep(tf, model as Model, optimizer, { gradients: { clip: { norm: 1 }, weightDecay: 0.5 } });
  const x = tf.ones([4, 2]) as tfc.Tensor2D;
  const progress = { epoch: 0, step: 0, fraction: 0, epochFloat: 0 };
  const before = Array.from(w.dataSync());
  const t1 = step(x, null, {}, new Rng(1), progress);
  // g = c/5 + 0.5·w (a compiled step keeps w in its session until sync)
  const expect1 = before.map((v, i) => v - (c[i] / 5 + 0.5 * v));
  step.sync();
  close(w.dataSync(), expect1, 'after step 1');
  assert.ok(Math.abs(t1.grad_norm.dataSync()[0] - 5) < 1e-5, `grad_norm ${t1.grad_norm.dataSync()[0]}`);
  // a second step (the compiled graph, where there is one) does the same arithmetic
  const t2 = step(x, null, {}, new Rng(1), { ...progress, step: 1 });
  step.sync();
  close(
    w.dataSync(),
    expect1.map((v, i) => v - (c[i] / 5 + 0.5 * v)),
    'after step 2',
  );
  assert.ok(Math.abs(t2.grad_norm.dataSync()[0] - 5) < 1e-5);
  if (tf.getBackend() === 'tensorflow') assert.equal(step.modes[0]?.mode, 'graph', JSON.stringify(step.modes));
  step.dispose();
});

test('train.clip and train.weight_decay in a run: grad_norm per epoch in metrics.jsonl and run.json; clipping changes the numbers', async () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  const runs = path.join(dir, 'runs');
  const base = ['train.epochs=2', 'eval=[{kind: elbo}]'];
  const plain = await runExperiment({ config: cfg, runsDir: runs, progress: false, overrides: base });
  const clipped = await runExperiment({
    config: cfg,
    runsDir: runs,
    progress: false,
    overrides: [...base, 'train.clip={norm: 0.5, value: 0.01}', 'train.weight_decay=0.001'],
  });
  assert.equal(clipped.status, 'FINISHED');
  const lines = (r: { runDir: string }) =>
    fs
      .readFileSync(path.join(r.runDir, 'metrics.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
  const epochs = lines(clipped).filter((l) => 'train/grad_norm' in l);
  assert.equal(epochs.length, 2, 'train/grad_norm in both epochs');
  assert.ok(
    epochs.every((l) => l['train/grad_norm'] > 0.5),
    'the logged norm is before clipping (above the clip norm)',
  );
  assert.ok(
    lines(plain).some((l) => 'train/grad_norm' in l),
    'the norm is logged without clipping too',
  );
  assert.notEqual(clipped.metrics['test/elbo'], plain.metrics['test/elbo']);
  const recorded = parseYaml(fs.readFileSync(path.join(clipped.runDir, 'config.yaml'), 'utf8'));
  assert.deepEqual(recorded.train.clip, { norm: 0.5, value: 0.01 });
  assert.equal(recorded.train.weight_decay, 0.001);
});

test('mlp init_std: weights from N(0, std²) drawn from the run seed, biases 0; absent: Glorot-uniform as before', () => {
  const registry = createRegistry();
  const make = (o: Record<string, unknown>) =>
    registry.create(
      'network',
      { kind: 'mlp', hidden: [300], activation: 'relu', ...o } as never,
      { tf, registry, rng: new Rng(3), baseDir: '.', shape: { inDim: 200, outDim: 10 } } as never,
    );
  const small = make({ init_std: 1e-3 });
  const w = Array.from(small.params.get('dense0/w')!.dataSync());
  const mean = w.reduce((a, b) => a + b, 0) / w.length;
  const std = Math.sqrt(w.reduce((a, b) => a + (b - mean) ** 2, 0) / w.length);
  assert.ok(Math.abs(std - 1e-3) < 2e-5, `std ${std}`);
  assert.ok(Math.abs(mean) < 2e-5, `mean ${mean}`);
  assert.deepEqual(Array.from(small.params.get('dense0/b')!.dataSync()), new Array(300).fill(0));
  // the same seed draws the same weights; Glorot-uniform is bounded by √(6/(in+out))
  assert.deepEqual(
    Array.from(make({ init_std: 1e-3 }).params.get('dense1/w')!.dataSync()),
    Array.from(small.params.get('dense1/w')!.dataSync()),
  );
  const glorot = Array.from(make({}).params.get('dense0/w')!.dataSync());
  const limit = Math.sqrt(6 / 500);
  assert.ok(
    glorot.every((v) => Math.abs(v) <= limit) && Math.max(...glorot.map(Math.abs)) > 0.9 * limit,
    'Glorot-uniform without init_std',
  );
});
