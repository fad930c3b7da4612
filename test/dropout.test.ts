import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'path';
import type * as tfc from '@tensorflow/tfjs-core';
import { selectBackend, installedBackends } from '../src/runtime/backend';
import { getTf } from '../src/runtime/tf';
import { createRegistry } from '../src/builtins';
import { Rng } from '../src/runtime/rng';
import { mlp } from '../src/nn/mlp';
import { conv } from '../src/nn/conv';
import { buildRun } from '../src/run/build';
import { makeTrainStep } from '../src/train/step';
import { runExperiment } from '../src/experiment';
import { tmpDir, smallConfig, binaryToyDataSet, values, near } from './helpers';

const native = installedBackends().includes('tensorflow');
const needsNative = native ? {} : { skip: 'the tensorflow backend is not installed here (npm run setup:native builds it)' };

test.before(async () => {
  await selectBackend('auto');
});

/** h·W + b, row-major, then ReLU when `relu`. */
function layer(h: number[], w: number[], b: number[], B: number, D: number, H: number, relu: boolean): number[] {
  const z = new Array<number>(B * H).fill(0);
  for (let i = 0; i < B; i++)
    for (let j = 0; j < H; j++) {
      let s = b[j];
      for (let k = 0; k < D; k++) s += h[i * D + k] * w[k * H + j];
      z[i * H + j] = relu ? Math.max(0, s) : s;
    }
  return z;
}
/** Inverted dropout by hand from the same uniforms: u < 1 − rate keeps a unit, scaled by 1/(1 − rate). */
const masked = (h: number[], u: Float32Array, rate: number) => h.map((v, i) => (u[i] < 1 - rate ? v / (1 - rate) : 0));

test('mlp dropout: while training, inverted masks from phase.rng on the input and every hidden layer (by hand); in evaluation the whole network', () => {
  const tf = getTf();
  const [B, D, H1, H2, O] = [7, 6, 5, 4, 3];
  const phase: { training: boolean; rng?: Rng } = { training: false };
  const net = mlp(
    tf,
    { kind: 'mlp', hidden: [H1, H2], activation: 'relu', norm: 'none', dropout: 0.5, dropout_input: 0.25 },
    { inDim: D, outDim: O },
    new Rng(1),
    phase,
  );
  const p = (k: string) => values(net.params.get(k)!);
  const x = Array.from(new Rng(2).normals(B * D));
  const plain = (h0: number[], masks: ((h: number[], i: number) => number[]) | null) => {
    let h = masks ? masks(h0, 0) : h0;
    h = layer(h, p('dense0/w'), p('dense0/b'), B, D, H1, true);
    if (masks) h = masks(h, 1);
    h = layer(h, p('dense1/w'), p('dense1/b'), B, H1, H2, true);
    if (masks) h = masks(h, 2);
    return layer(h, p('dense2/w'), p('dense2/b'), B, H2, O, false);
  };
  // evaluation: no masks
  near(values(net.apply(tf.tensor2d(x, [B, D]))), plain(x, null), 1e-5, 'evaluation');
  // training: the masks are the rng's next uniforms, input first, then each hidden layer
  phase.training = true;
  phase.rng = new Rng(3);
  const twin = new Rng(3);
  const u = [twin.uniforms(B * D), twin.uniforms(B * H1), twin.uniforms(B * H2)];
  const got = values(net.apply(tf.tensor2d(x, [B, D])));
  near(
    got,
    plain(x, (h, i) => masked(h, u[i], i === 0 ? 0.25 : 0.5)),
    1e-5,
    'training',
  );
  // about half the hidden units dropped (the masks are not all ones)
  assert.ok(u[1].filter((v) => v >= 0.5).length > 5, 'some units dropped');
  // training without the step's rng is a programming error, said plainly
  phase.rng = undefined;
  assert.throws(() => net.apply(tf.tensor2d(x, [B, D])), /phase\.rng/);
});

test('conv dropout: while training, masks on the pixels and on the flattened features before the dense layer (the encoder rebuilt by hand from its parameters); in evaluation the whole network', () => {
  const tf = getTf();
  const [B, H, W, O] = [3, 8, 8, 5];
  const phase: { training: boolean; rng?: Rng } = { training: false };
  const net = conv(
    tf,
    { kind: 'conv', channels: [4, 6], kernel: 3, residual: false, activation: 'relu', norm: 'none', dropout: 0.5, dropout_input: 0.25 },
    { inDim: H * W, outDim: O, inShape: [H, W, 1] },
    new Rng(1),
    phase,
  );
  const p = (k: string) => net.params.get(k)!;
  const x = Array.from(new Rng(2).uniforms(B * H * W));
  const flat = (H / 4) * (W / 4) * 6;
  /** The encoder by hand: two stride-2 convolutions with bias and ReLU, flatten, `mask` on the features, dense. */
  const byHand = (pixels: number[], mask: (f: number[]) => number[]) =>
    tf.tidy(() => {
      let t = tf.reshape(tf.tensor2d(pixels, [B, H * W]), [B, H, W, 1]) as tfc.Tensor4D;
      for (const i of [0, 1])
        t = tf.relu(tf.add(tf.conv2d(t, p(`conv${i}/w`) as tfc.Tensor4D, 2, 'same'), p(`conv${i}/b`))) as tfc.Tensor4D;
      const f = mask(Array.from(t.dataSync()));
      return Array.from(tf.add(tf.matMul(tf.tensor2d(f, [B, flat]), p('dense/w') as tfc.Tensor2D), p('dense/b')).dataSync());
    });
  near(
    values(net.apply(tf.tensor2d(x, [B, H * W]))),
    byHand(x, (f) => f),
    1e-5,
    'evaluation',
  );
  phase.training = true;
  phase.rng = new Rng(3);
  const twin = new Rng(3);
  const [uIn, uFeat] = [twin.uniforms(B * H * W), twin.uniforms(B * flat)];
  const got = values(net.apply(tf.tensor2d(x, [B, H * W])));
  near(
    got,
    byHand(masked(x, uIn, 0.25), (f) => masked(f, uFeat, 0.5)),
    1e-5,
    'training',
  );
  // the masks were the rng's next draws, and no more
  assert.equal(phase.rng.uniform(), twin.uniform());
});

test('conv decoder dropout: evaluation as without it; training draws a mask on the code, then on the first feature map, reproducibly from phase.rng', () => {
  const tf = getTf();
  const [B, D, H, W] = [3, 4, 8, 8];
  const make = (dropout: number, dropoutInput: number, phase: { training: boolean; rng?: Rng }) =>
    conv(
      tf,
      {
        kind: 'conv',
        channels: [4, 6],
        kernel: 3,
        residual: false,
        activation: 'relu',
        norm: 'none',
        dropout,
        dropout_input: dropoutInput,
      },
      { inDim: D, outDim: H * W, outShape: [H, W, 1] },
      new Rng(1),
      phase,
    );
  const phase: { training: boolean; rng?: Rng } = { training: false };
  const net = make(0.5, 0.25, phase);
  const plain = make(0, 0, { training: false });
  const z = tf.tensor2d(Array.from(new Rng(2).normals(B * D)), [B, D]);
  near(values(net.apply(z)), values(plain.apply(z)), 1e-6, 'evaluation');
  phase.training = true;
  const train = (seed: number) => {
    phase.rng = new Rng(seed);
    return values(net.apply(z));
  };
  const a = train(3);
  near(train(3), a, 0, 'the same draws, the same output');
  assert.ok(
    a.some((v, i) => Math.abs(v - values(plain.apply(z))[i]) > 1e-4),
    'dropout changes the output',
  );
  // the code's mask, then the first map's ([B, 2, 2, 6]): B·D + B·24 uniforms
  const twin = new Rng(3);
  twin.uniforms(B * D);
  twin.uniforms(B * 2 * 2 * 6);
  phase.rng = new Rng(3);
  net.apply(z);
  assert.equal(phase.rng.uniform(), twin.uniform());
});

test('mlp dropout is refused at 1 or below 0 by the schema, located', async () => {
  const dir = tmpDir();
  for (const rate of ['1', '-0.1']) {
    const r = await runExperiment({
      config: smallConfig(dir),
      runsDir: path.join(dir, 'runs'),
      overrides: [`model.encoder={kind: mlp, hidden: [8], dropout: ${rate}}`],
      progress: false,
    }).then(
      () => null,
      (e: Error) => e,
    );
    assert.ok(r, `dropout ${rate} accepted`);
    assert.match(r.message, /model\.encoder\.dropout/);
  }
});

/** Steps of a classifier-free VAE with dropout in both networks on fixed batches: the losses. */
async function dropoutSteps(compile: 'auto' | 'off', steps = 5) {
  const tf = getTf();
  const rng = new Rng(4);
  const data = binaryToyDataSet(rng, 6, 60);
  const net = { kind: 'mlp', hidden: [16], dropout: 0.3 };
  const config = {
    model: { kind: 'vae', latent: 3, encoder: { ...net, dropout_input: 0.2 }, decoder: net, likelihood: 'bernoulli' },
    loss: {},
    eval: [],
    train: { optimizer: { kind: 'adam', lr: 1e-3 } },
  };
  const { model, optimizer } = await buildRun(config, data, { tf, registry: createRegistry(), rng, baseDir: '.' });
  const step = makeTrainStep(tf, model, optimizer, { compile, draws: 'host' });
  const noise = new Rng(7);
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) {
    const x = tf.tensor2d(data.train.x.subarray((i % 3) * 20 * data.dim, ((i % 3) + 1) * 20 * data.dim), [20, data.dim]);
    const terms = step(x, null, { c1: 1, c2: 1 }, noise, { epoch: 0, step: i, fraction: 0, epochFloat: 0 });
    losses.push(terms.loss.dataSync()[0]);
    Object.values(terms).forEach((t) => t.dispose());
    x.dispose();
  }
  step.dispose();
  return { losses, modes: step.modes, phase: model.phase };
}

test(
  'tensorflow: with dropout the step stays one TensorFlow graph (the masks are its inputs) and trains as the eager step does',
  needsNative,
  async () => {
    await selectBackend('tensorflow');
    const g = await dropoutSteps('auto');
    const e = await dropoutSteps('off');
    assert.equal(g.modes.length, 1);
    assert.equal(g.modes[0].mode, 'graph', g.modes[0].reason);
    near(g.losses, e.losses, 1e-4, 'losses');
    // the step leaves the model in evaluation, without the step's rng
    assert.equal(g.phase?.training, false);
    assert.equal(g.phase?.rng, undefined);
    await selectBackend('auto');
  },
);

test('with dropout two runs of one seed give the same metrics, another seed others, and an interrupted run resumes to the uninterrupted one exactly', async () => {
  const dir = tmpDir();
  const overrides = [
    'model.encoder={kind: mlp, hidden: [32], dropout: 0.5, dropout_input: 0.2}',
    'model.decoder={kind: mlp, hidden: [32], dropout: 0.5}',
    'eval=[{kind: elbo}]',
  ];
  const o = { config: smallConfig(dir), runsDir: path.join(dir, 'runs'), overrides, progress: false };
  const full = await runExperiment(o);
  assert.equal(full.status, 'FINISHED', full.error);
  const again = await runExperiment(o);
  const other = await runExperiment({ ...o, overrides: [...overrides, 'seed=2'] });
  const noDrop = await runExperiment({ ...o, overrides: ['eval=[{kind: elbo}]'] });
  let epochs = 0;
  const cut = await runExperiment({ ...o, onEpoch: () => epochs++, shouldStop: () => epochs >= 1 });
  assert.equal(cut.status, 'KILLED');
  const resumed = await runExperiment({ resume: cut.runDir, progress: false });
  assert.equal(resumed.status, 'FINISHED', resumed.error);
  for (const k of ['test/elbo', 'val/elbo', 'train/loss']) {
    assert.equal(again.metrics[k], full.metrics[k], `same seed: ${k}`);
    assert.equal(resumed.metrics[k], full.metrics[k], `resumed: ${k}`);
  }
  assert.notEqual(other.metrics['train/loss'], full.metrics['train/loss'], 'another seed');
  // and dropout does change training
  assert.notEqual(noDrop.metrics['train/loss'], full.metrics['train/loss'], 'dropout changes training');
});
