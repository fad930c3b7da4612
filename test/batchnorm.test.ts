import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import type * as tfc from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs';
import { selectBackend, installedBackends } from '../src/runtime/backend';
import { getTf } from '../src/runtime/tf';
import { createRegistry } from '../src/builtins';
import { Rng } from '../src/runtime/rng';
import { mlp, mlpNetworkPlugin, type MlpOptions } from '../src/nn/mlp';
import { conv } from '../src/nn/conv';
import { batchNormTraining } from '../src/runtime/native-ops';
import { buildRun } from '../src/run/build';
import { trainingState } from '../src/run/train';
import { makeTrainStep } from '../src/train/step';
import { saveCheckpoint, loadCheckpoint } from '../src/track/checkpoint';
import { evaluateTerms } from '../src/eval/elbo';
import { compiledEvaluations } from '../src/eval/compiled';
import { runExperiment } from '../src/experiment';
import { tmpDir, smallConfig, tinyDataSet, binaryToyDataSet, values, near } from './helpers';
import { trainAndExport, trainAndExportConv, elboOwn } from './tfjs-export-helpers';
import type { Model, PluginOptions } from '../src/contracts';

// the compiled step needs the native backend; the rest runs on the one ELBO_BACKEND picks
const native = installedBackends().includes('tensorflow');
const needsNative = native ? {} : { skip: 'the tensorflow backend is not installed here (npm run setup:native builds it)' };

test.before(async () => {
  await selectBackend('auto');
});

const ADAM = { kind: 'adam', lr: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 };
const STEP0 = { epoch: 0, step: 0, fraction: 0, epochFloat: 0 };
/** z = x·W ([B, D]·[D, H], row-major), per-column mean and biased variance. */
function dense(x: number[], w: number[], B: number, D: number, H: number): number[] {
  const z = new Array<number>(B * H).fill(0);
  for (let i = 0; i < B; i++) for (let j = 0; j < H; j++) for (let k = 0; k < D; k++) z[i * H + j] += x[i * D + k] * w[k * H + j];
  return z;
}
function columnStats(z: number[], B: number, H: number): { mean: number[]; variance: number[] } {
  const mean = Array.from({ length: H }, (_, j) => Array.from({ length: B }, (_, i) => z[i * H + j]).reduce((s, v) => s + v, 0) / B);
  const variance = Array.from(
    { length: H },
    (_, j) => Array.from({ length: B }, (_, i) => (z[i * H + j] - mean[j]) ** 2).reduce((s, v) => s + v, 0) / B,
  );
  return { mean, variance };
}

/** An exported Layers model (OUT/<part>/), with BatchNormalization among its layers, loaded by tfjs in Node. */
async function loadExported(exportDir: string, part: string): Promise<tfl.LayersModel> {
  if (tfl.engine() !== getTf().engine()) await tfl.setBackend('cpu');
  const json = JSON.parse(fs.readFileSync(path.join(exportDir, part, 'model.json'), 'utf8'));
  const bin = fs.readFileSync(path.join(exportDir, part, 'weights.bin'));
  const classes = json.modelTopology.config.layers.map((l: { class_name: string }) => l.class_name);
  assert.ok(classes.includes('BatchNormalization'), `${part} layers: ${classes.join(', ')}`);
  return tfl.loadLayersModel(
    tfl.io.fromMemory({
      modelTopology: json.modelTopology,
      weightSpecs: json.weightsManifest[0].weights,
      weightData: bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength),
    }),
  );
}

const predict = (m: tfl.LayersModel, v: Float32Array, rows: number) =>
  tfl.tidy(() => Array.from((m.predict(tfl.tensor2d(v, [rows, v.length / rows])) as tfl.Tensor).dataSync()));

test('mlp norm: batch — training output is γ·(z − μ_B)/√(σ²_B + ε) + β by hand, the running averages move by the hand update, evaluation uses them', () => {
  const tf = getTf();
  const B = 5,
    D = 4,
    H = 3,
    O = 2;
  const eps = 1e-3,
    m = 0.8;
  const phase = { training: true };
  const net = mlp(
    tf,
    { kind: 'mlp', hidden: [H], activation: 'tanh', norm: 'batch', norm_input: false, norm_momentum: m, norm_epsilon: eps },
    { inDim: D, outDim: O },
    new Rng(3),
    phase,
  );
  assert.deepEqual([...net.params.keys()], ['dense0/w', 'bn0/gamma', 'bn0/beta', 'dense1/w', 'dense1/b']);
  assert.deepEqual([...net.buffers!.keys()], ['bn0/mean', 'bn0/var']);
  // initial values: γ 1, β 0, running mean 0 and variance 1
  assert.deepEqual(values(net.params.get('bn0/gamma')!), [1, 1, 1]);
  assert.deepEqual(values(net.params.get('bn0/beta')!), [0, 0, 0]);
  assert.deepEqual(values(net.buffers!.get('bn0/mean')!), [0, 0, 0]);
  assert.deepEqual(values(net.buffers!.get('bn0/var')!), [1, 1, 1]);
  const gamma = [1.5, 0.5, -2],
    beta = [0.1, -0.3, 0.7],
    run0 = { mean: [0.2, -0.1, 0.3], variance: [2, 0.5, 1.2] };
  net.params.get('bn0/gamma')!.assign(tf.tensor1d(gamma));
  net.params.get('bn0/beta')!.assign(tf.tensor1d(beta));
  net.params.get('dense1/b')!.assign(tf.tensor1d([0.25, -0.5]));
  net.buffers!.get('bn0/mean')!.assign(tf.tensor1d(run0.mean));
  net.buffers!.get('bn0/var')!.assign(tf.tensor1d(run0.variance));
  const w0 = values(net.params.get('dense0/w')!);
  const w1 = values(net.params.get('dense1/w')!);
  const x = Array.from(new Rng(8).normals(B * D));
  const head = (h: number[]) => dense(h, w1, B, H, O).map((v, i) => v + [0.25, -0.5][i % O]);
  const normed = (z: number[], s: { mean: number[]; variance: number[] }) =>
    z.map((v, i) => Math.tanh((gamma[i % H] * (v - s.mean[i % H])) / Math.sqrt(s.variance[i % H] + eps) + beta[i % H]));

  const z = dense(x, w0, B, D, H);
  const batch = columnStats(z, B, H);
  const xt = tf.tensor2d(x, [B, D]);
  near(values(net.apply(xt)), head(normed(z, batch)), 1e-5, 'training output');
  // mean ← m·mean + (1 − m)·μ_B; var ← m·var + (1 − m)·σ²_B·B/(B − 1)
  const run1 = {
    mean: run0.mean.map((v, j) => m * v + (1 - m) * batch.mean[j]),
    variance: run0.variance.map((v, j) => m * v + (1 - m) * batch.variance[j] * (B / (B - 1))),
  };
  near(values(net.buffers!.get('bn0/mean')!), run1.mean, 1e-6, 'running mean');
  near(values(net.buffers!.get('bn0/var')!), run1.variance, 1e-6, 'running variance');

  phase.training = false;
  const evalOut = values(net.apply(xt));
  near(evalOut, head(normed(z, run1)), 1e-5, 'evaluation output');
  // evaluation leaves the running averages alone, and differs from the training output
  near(values(net.buffers!.get('bn0/mean')!), run1.mean, 1e-6, 'running mean after evaluation');
  assert.ok(
    Math.max(...evalOut.map((v, i) => Math.abs(v - head(normed(z, batch))[i]))) > 1e-2,
    'evaluation uses the running averages, not the batch',
  );

  // norm_input: the features are normalised first, under their own names
  const withInput = mlp(
    tf,
    { kind: 'mlp', hidden: [H], activation: 'relu', norm: 'batch', norm_input: true, norm_momentum: 0.9, norm_epsilon: 1e-5 },
    { inDim: D, outDim: O },
    new Rng(3),
  );
  // (γ but no β: a shift of the input is taken out by the next batch normalisation, its gradient is 0)
  assert.deepEqual([...withInput.params.keys()], ['bn_input/gamma', 'dense0/w', 'bn0/gamma', 'bn0/beta', 'dense1/w', 'dense1/b']);
  assert.deepEqual([...withInput.buffers!.keys()], ['bn_input/mean', 'bn_input/var', 'bn0/mean', 'bn0/var']);
});

test('mlp norm: none (the default) keeps the names, the variables and the numbers; no buffers', () => {
  const tf = getTf();
  const shape = { inDim: 4, outDim: 2 };
  // without the norm options (as a config from before them): the defaults are not filled in here
  const plain = mlp(tf, { kind: 'mlp', hidden: [3, 5], activation: 'relu' } as MlpOptions, shape, new Rng(3));
  const none = mlp(
    tf,
    { kind: 'mlp', hidden: [3, 5], activation: 'relu', norm: 'none', norm_input: false, norm_momentum: 0.9, norm_epsilon: 1e-5 },
    shape,
    new Rng(3),
    { training: true },
  );
  assert.deepEqual([...none.params.keys()], ['dense0/w', 'dense0/b', 'dense1/w', 'dense1/b', 'dense2/w', 'dense2/b']);
  assert.equal(none.buffers, undefined);
  const x = tf.tensor2d(Array.from(new Rng(2).normals(12)), [3, 4]);
  assert.deepEqual(values(none.apply(x)), values(plain.apply(x)));
  // the weights drawn are the same with batch normalisation on (only the biases go)
  const bn = mlp(
    tf,
    { kind: 'mlp', hidden: [3, 5], activation: 'relu', norm: 'batch', norm_input: false, norm_momentum: 0.9, norm_epsilon: 1e-5 },
    shape,
    new Rng(3),
  );
  for (const k of ['dense0/w', 'dense1/w', 'dense2/w', 'dense2/b'])
    assert.deepEqual(values(bn.params.get(k)!), values(none.params.get(k)!), k);
});

/** A classifier model (x → mlp → logits) with batch normalisation, built as a run builds it. */
async function bnClassifier(norm: Record<string, unknown> = {}) {
  const tf = getTf();
  const data = tinyDataSet({ shape: [6], n: 16, classes: 3 });
  const config = {
    model: {
      kind: 'classifier',
      network: { kind: 'mlp', hidden: [4], activation: 'softplus', norm: 'batch', norm_momentum: 0.9, norm_epsilon: 1e-5, ...norm },
    },
    loss: {},
    eval: [],
    train: { optimizer: ADAM },
  };
  return { tf, data, ...(await buildRun(config, data, { tf, registry: createRegistry(), rng: new Rng(1), baseDir: '.' })) };
}

test('the training step runs the forward pass in training (batch statistics, running averages moved by the hand update) and leaves the model in evaluation; buffers get no gradient and no optimizer state', async () => {
  const { tf, data, model, optimizer } = await bnClassifier();
  assert.deepEqual([...model.buffers!.keys()], ['network/bn0/mean', 'network/bn0/var']);
  assert.ok(!['network/bn0/mean', 'network/bn0/var'].some((k) => model.params.has(k)));
  assert.ok(
    [...optimizer.state.keys()].every((k) => !k.includes('bn0/mean') && !k.includes('bn0/var')),
    [...optimizer.state.keys()].join(', '),
  );
  assert.equal(model.phase?.training, false);
  const B = 8,
    D = 6,
    H = 4;
  const x = Array.from(data.train.x.subarray(0, B * D));
  const z = dense(x, values(model.params.get('network/dense0/w')!), B, D, H);
  const s = columnStats(z, B, H);
  const step = makeTrainStep(tf, model, optimizer, { compile: 'off' });
  const terms = step(tf.tensor2d(x, [B, D]), data.train.y!.slice(0, B), {}, new Rng(2), STEP0);
  Object.values(terms).forEach((t) => t.dispose());
  near(
    values(model.buffers!.get('network/bn0/mean')!),
    s.mean.map((v) => 0.1 * v),
    1e-5,
    'running mean',
  );
  near(
    values(model.buffers!.get('network/bn0/var')!),
    s.variance.map((v) => 0.9 + 0.1 * v * (B / (B - 1))),
    1e-5,
    'running variance',
  );
  assert.equal(model.phase?.training, false, 'evaluation again after the step');
  // γ moved (it is trained), the buffers only by the running average
  assert.ok(
    values(model.params.get('network/bn0/gamma')!).some((v) => v !== 1),
    'γ trained',
  );
});

test("every model collects its networks' buffers under their prefixes, and one training step moves every one of them", async () => {
  const tf = getTf();
  const data = tinyDataSet({ shape: [6], n: 16, classes: 3 });
  const net = { kind: 'mlp', hidden: [4], norm: 'batch' };
  const cases: [Record<string, unknown>, string[]][] = [
    [{ kind: 'vae', latent: 2, encoder: net, decoder: net }, ['encoder', 'decoder']],
    [{ kind: 'iwae', latent: 2, k: 3, encoder: net, decoder: net }, ['encoder', 'decoder']],
    [{ kind: 'gvae', latent: 2, encoder: net, decoder: net }, ['encoder', 'decoder']],
    [{ kind: 'm2', latent: 2, encoder: net, decoder: net, classifier: net }, ['classifier', 'encoder', 'decoder']],
    [
      { kind: 'adgm', latent: 2, aux: 2, encoder: net, decoder: net, classifier: net, encoder_a: net, decoder_a: net },
      ['encoder_a', 'classifier', 'encoder', 'decoder', 'decoder_a'],
    ],
    [{ kind: 'classifier', network: net }, ['network']],
  ];
  for (const [m, parts] of cases) {
    const { model, optimizer } = await buildRun({ model: m as PluginOptions, loss: {}, eval: [], train: { optimizer: ADAM } }, data, {
      tf,
      registry: createRegistry(),
      rng: new Rng(1),
      baseDir: '.',
    });
    assert.deepEqual(
      [...model.buffers!.keys()],
      parts.flatMap((p) => [`${p}/bn0/mean`, `${p}/bn0/var`]),
      m.kind as string,
    );
    const step = makeTrainStep(tf, model, optimizer, { compile: 'off' });
    const y = Int32Array.from({ length: 8 }, (_, i) => (i < 5 ? i % 3 : -1));
    const terms = step(tf.tensor2d(data.train.x.subarray(0, 48), [8, 6]), y, { c1: 1, c2: 1, alpha: 1 }, new Rng(2), STEP0);
    Object.values(terms).forEach((t) => t.dispose());
    for (const [k, v] of model.buffers!)
      if (k.endsWith('/mean'))
        assert.ok(
          values(v).some((a) => a !== 0),
          `${m.kind}: ${k} moved`,
        );
  }
});

test('phase.normSplit = s: the first s rows and the rest are two batches, each normalised by its own statistics by hand; the running averages move by the rest only; s = 0 or s ≥ rows is one batch', () => {
  const tf = getTf();
  const B = 7,
    D = 4,
    H = 3,
    O = 2,
    s = 3;
  const eps = 1e-3,
    m = 0.8;
  const phase: { training: boolean; normSplit?: number } = { training: true, normSplit: s };
  const spec = {
    kind: 'mlp',
    hidden: [H],
    activation: 'tanh' as const,
    norm: 'batch' as const,
    norm_input: false,
    norm_momentum: m,
    norm_epsilon: eps,
  };
  const net = mlp(tf, spec, { inDim: D, outDim: O }, new Rng(3), phase);
  const w0 = values(net.params.get('dense0/w')!);
  const w1 = values(net.params.get('dense1/w')!);
  const b1 = values(net.params.get('dense1/b')!);
  const x = Array.from(new Rng(8).normals(B * D));
  const z = dense(x, w0, B, D, H);
  const headStats = columnStats(z.slice(0, s * H), s, H);
  const tailStats = columnStats(z.slice(s * H), B - s, H);
  // γ 1, β 0 as initialised
  const hidden = z.map((v, i) => {
    const st = i < s * H ? headStats : tailStats;
    return Math.tanh((v - st.mean[i % H]) / Math.sqrt(st.variance[i % H] + eps));
  });
  const want = dense(hidden, w1, B, H, O).map((v, i) => v + b1[i % O]);
  const xt = tf.tensor2d(x, [B, D]);
  near(values(net.apply(xt)), want, 1e-5, 'training output, split');
  // mean ← m·0 + (1 − m)·μ_tail; var ← m·1 + (1 − m)·σ²_tail·n/(n − 1), n = B − s
  near(
    values(net.buffers!.get('bn0/mean')!),
    tailStats.mean.map((v) => (1 - m) * v),
    1e-6,
    'running mean: the tail rows only',
  );
  near(
    values(net.buffers!.get('bn0/var')!),
    tailStats.variance.map((v) => m + (1 - m) * v * ((B - s) / (B - s - 1))),
    1e-6,
    'running variance: the tail rows only',
  );
  // the head rows' outputs do not depend on the tail rows (and are not those of one batch)
  const x2 = [...x.slice(0, s * D), ...x.slice(s * D).map((v) => 3 * v + 1)];
  const out2 = values(net.apply(tf.tensor2d(x2, [B, D])));
  near(out2.slice(0, s * O), want.slice(0, s * O), 1e-5, 'head rows with other tail rows');
  // s = 0 and s = B: one batch (the hand values of the whole batch)
  for (const split of [0, B]) {
    const one = mlp(tf, spec, { inDim: D, outDim: O }, new Rng(3), { training: true, normSplit: split });
    const all = columnStats(z, B, H);
    const hid = z.map((v, i) => Math.tanh((v - all.mean[i % H]) / Math.sqrt(all.variance[i % H] + eps)));
    near(
      values(one.apply(xt)),
      dense(hid, w1, B, H, O).map((v, i) => v + b1[i % O]),
      1e-5,
      `split ${split}: one batch`,
    );
  }
});

/**
 * One training step of a semi-supervised model (m2, adgm, sdgm) with batch normalisation in
 * every network, on a batch of 10 rows (4 labelled) whose unlabelled rows are scaled by
 * `unlabelledScale`: its terms.
 */
async function semiSupervisedStep(
  kind: string,
  groups: 'together' | 'separate',
  unlabelledScale: number,
  compile: 'auto' | 'off' = 'off',
  auxSamples = 1,
) {
  const tf = getTf();
  const data = tinyDataSet({ shape: [6], n: 16, classes: 3 });
  const net = { kind: 'mlp', hidden: [5], norm: 'batch' };
  const nets =
    kind === 'm2'
      ? { encoder: net, decoder: net, classifier: net }
      : { encoder: net, decoder: net, classifier: net, encoder_a: net, decoder_a: net };
  const model = { kind, latent: 2, ...(kind === 'm2' ? {} : { aux: 2, aux_samples: auxSamples }), ...nets, norm_groups: groups };
  const built = await buildRun({ model, loss: {}, eval: [], train: { optimizer: ADAM } }, data, {
    tf,
    registry: createRegistry(),
    rng: new Rng(1),
    baseDir: '.',
  });
  const step = makeTrainStep(tf, built.model, built.optimizer, { compile, draws: 'host' });
  // labelled rows scattered among the unlabelled ones, as a step's batch has them
  const y = Int32Array.from([-1, 0, -1, -1, 2, -1, 1, -1, -1, 0]);
  const x = Array.from(data.train.x.subarray(0, 60), (v, i) => (y[Math.floor(i / 6)] < 0 ? v * unlabelledScale : v));
  const terms = step(tf.tensor2d(x, [10, 6]), y, { c1: 1, c2: 1, alpha: 1 }, new Rng(2), STEP0);
  const out = Object.fromEntries(Object.entries(terms).map(([k, t]) => [k, t.dataSync()[0]]));
  Object.values(terms).forEach((t) => t.dispose());
  step.dispose();
  return { out, model: built.model, modes: step.modes };
}

test('norm_groups: separate (m2, adgm, sdgm): the labelled rows come first and are normalised by their own statistics, so the class term does not depend on the unlabelled rows; together it does', async () => {
  // with S draws of a per row the labelled rows' draws are one group (adgm.test.ts checks that layout)
  for (const [kind, S] of [
    ['m2', 1],
    ['adgm', 1],
    ['sdgm', 1],
    ['adgm', 2],
    ['sdgm', 2],
  ] as [string, number][]) {
    const what = S === 1 ? kind : `${kind}, ${S} draws`;
    const a = await semiSupervisedStep(kind, 'separate', 1, 'off', S);
    const b = await semiSupervisedStep(kind, 'separate', 2.5, 'off', S);
    near([b.out.class], [a.out.class], 1e-5, `${what} separate: class term`);
    assert.ok(Math.abs(b.out.unlabelled - a.out.unlabelled) > 1e-3, `${what}: the unlabelled rows did change`);
    const c = await semiSupervisedStep(kind, 'together', 1, 'off', S);
    const d = await semiSupervisedStep(kind, 'together', 2.5, 'off', S);
    assert.ok(Math.abs(d.out.class - c.out.class) > 1e-6, `${what} together: ${c.out.class} vs ${d.out.class}`);
    if (S > 1) continue;
    // the layout: the labelled rows first (in batch order), then the unlabelled
    const rows = a.model.stepInputs!(Int32Array.from([-1, 0, -1, 2]), 4);
    assert.deepEqual([...rows.perm], [1, 3, 0, 2], kind);
    assert.deepEqual([...rows.lab], [0, 1], kind);
    assert.deepEqual([...rows.labY], [0, 2], kind);
    assert.equal(c.model.stepInputs!(Int32Array.from([-1, 0]), 2).perm, undefined, `${kind} together: no permutation`);
  }
});

test(
  "tensorflow: norm_groups: separate in the compiled step (its row order a graph input) gives the eager step's terms",
  needsNative,
  async () => {
    await selectBackend('tensorflow');
    for (const [kind, S] of [
      ['m2', 1],
      ['sdgm', 1],
      ['sdgm', 2],
    ] as [string, number][]) {
      const g = await semiSupervisedStep(kind, 'separate', 1, 'auto', S);
      const e = await semiSupervisedStep(kind, 'separate', 1, 'off', S);
      assert.equal(g.modes[0].mode, 'graph', g.modes[0].reason);
      for (const k of Object.keys(e.out)) near([g.out[k]], [e.out[k]], 1e-4, `${kind} S=${S} ${k}`);
    }
  },
);

test("ADGM's training step runs its classifier in training once, on the batch's rows: the accuracy term's q(y|ā,x) reads the running averages and does not move them", async () => {
  const tf = getTf();
  const data = tinyDataSet({ shape: [6], n: 16, classes: 3 });
  const calls: { training: boolean; rows: number }[] = [];
  const registry = createRegistry();
  // an mlp that records how q(y|a,x) (in A + D = 8, out C = 3) is applied
  registry.register(
    {
      ...mlpNetworkPlugin,
      name: 'spy-mlp',
      create: (...[o, ctx]: Parameters<typeof mlpNetworkPlugin.create>) => {
        const net = mlpNetworkPlugin.create({ ...o, kind: 'mlp' }, ctx);
        if (ctx.shape.inDim !== 8 || ctx.shape.outDim !== 3) return net;
        const apply = net.apply.bind(net);
        net.apply = (x) => {
          calls.push({ training: !!ctx.phase?.training, rows: x.shape[0] });
          return apply(x);
        };
        return net;
      },
    },
    'test',
  );
  const net = { kind: 'mlp', hidden: [4], norm: 'batch' };
  const model = {
    kind: 'adgm',
    latent: 2,
    aux: 2,
    encoder: net,
    decoder: net,
    classifier: { ...net, kind: 'spy-mlp' },
    encoder_a: net,
    decoder_a: net,
  };
  const { model: adgm, optimizer } = await buildRun({ model, loss: {}, eval: [], train: { optimizer: ADAM } }, data, {
    tf,
    registry,
    rng: new Rng(1),
    baseDir: '.',
  });
  const step = makeTrainStep(tf, adgm, optimizer, { compile: 'off' });
  const y = Int32Array.from({ length: 8 }, (_, i) => (i < 5 ? i % 3 : -1));
  const terms = step(tf.tensor2d(data.train.x.subarray(0, 48), [8, 6]), y, { c1: 1, c2: 1, alpha: 1 }, new Rng(2), STEP0);
  assert.ok(terms.accuracy, 'the accuracy term is still computed');
  Object.values(terms).forEach((t) => t.dispose());
  assert.deepEqual(
    calls.filter((c) => c.training),
    [{ training: true, rows: 8 }],
    JSON.stringify(calls),
  );
  assert.deepEqual(
    calls.filter((c) => !c.training),
    [{ training: false, rows: 5 }],
    "the labelled rows' accuracy pass, in evaluation",
  );
});

test('checkpoints hold the buffers as model/<prefix>/bnN/mean and …/var and restore them', async () => {
  const { tf, model, optimizer } = await bnClassifier({ norm_input: true });
  const state = trainingState({ model, optimizer });
  for (const k of [
    'model/network/bn0/mean',
    'model/network/bn0/var',
    'model/network/bn_input/mean',
    'model/network/bn_input/var',
    'model/network/bn0/gamma',
  ]) {
    assert.ok(state.model.has(k) && state.all.has(k), k);
  }
  const dir = path.join(tmpDir(), 'ckpt');
  const rng = new Rng(4);
  for (const v of model.buffers!.values()) v.assign(tf.tensor(rng.uniforms(v.size), v.shape));
  const saved = new Map([...model.buffers!].map(([k, v]) => [k, values(v)]));
  saveCheckpoint(dir, 1, 10, state.all);
  for (const v of model.buffers!.values()) v.assign(tf.zerosLike(v));
  loadCheckpoint(tf, dir, state.all);
  for (const [k, v] of model.buffers!) assert.deepEqual(values(v), saved.get(k), k);
});

test('with norm: batch an interrupted run resumes to the uninterrupted metrics exactly (the running averages are checkpointed)', async () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  const overrides = [
    'model.encoder={kind: mlp, hidden: [32], norm: batch, norm_input: true}',
    'model.decoder={kind: mlp, hidden: [32], norm: batch}',
    'eval=[{kind: elbo}]',
  ];
  const o = { config: cfg, runsDir: path.join(dir, 'runs'), overrides, progress: false };
  const full = await runExperiment(o);
  assert.equal(full.status, 'FINISHED', full.error);
  let epochs = 0;
  const cut = await runExperiment({ ...o, onEpoch: () => epochs++, shouldStop: () => epochs >= 1 });
  assert.equal(cut.status, 'KILLED');
  const manifest = JSON.parse(fs.readFileSync(path.join(cut.runDir, 'checkpoints', 'epoch-0001', 'manifest.json'), 'utf8'));
  const names = manifest.tensors.map((t: { name: string }) => t.name);
  for (const k of ['model/encoder/bn_input/mean', 'model/encoder/bn0/var', 'model/decoder/bn0/mean']) assert.ok(names.includes(k), k);
  const resumed = await runExperiment({ resume: cut.runDir, progress: false });
  assert.equal(resumed.status, 'FINISHED', resumed.error);
  for (const k of ['test/elbo', 'test/kl', 'test/recon', 'val/elbo', 'train/loss']) assert.equal(resumed.metrics[k], full.metrics[k], k);
});

test("export tfjs with norm: batch: the Layers models (BatchNormalization with the running averages) give elbo's evaluation-mode outputs", async () => {
  const dir = tmpDir('elbo-export-');
  const { runDir, exportDir, card } = trainAndExport(smallConfig(dir), [
    '--set',
    'model.encoder={kind: mlp, hidden: [16], activation: softplus, norm: batch, norm_input: true}',
    '--set',
    'model.decoder={kind: mlp, hidden: [16, 12], activation: leakyrelu, norm: batch}',
    '--set',
    'train.epochs=2',
    '--set',
    'eval=[{kind: elbo}]',
  ]);
  assert.ok(
    card.check.decode_max_abs_diff < 1e-5 && card.check.reconstruct_max_abs_diff < 1e-5,
    `checked at export: ${JSON.stringify(card.check)}`,
  );
  const encoder = await loadExported(exportDir, 'encoder');
  const decoder = await loadExported(exportDir, 'decoder');
  const K = card.model.latent,
    D = card.model.dim,
    n = 6;
  const z = Float32Array.from(new Rng(3).normals(5 * K));
  const x = Float32Array.from(new Rng(5).uniforms(n * D));
  const own = await elboOwn(runDir, z, 5, x, n);
  near(predict(decoder, z, 5), own.decode, 1e-5, 'decode');
  near(predict(encoder, x, n), own.encode, 1e-4, 'encode');
  // the running averages moved in training: evaluation is not the initial statistics
  const ckpt = JSON.parse(fs.readFileSync(path.join(runDir, 'checkpoints', 'epoch-0002', 'manifest.json'), 'utf8'));
  assert.ok(ckpt.tensors.some((t: { name: string }) => t.name === 'model/decoder/bn1/var'));
  encoder.dispose();
  decoder.dispose();
});

test('conv norm: batch — per-channel statistics over batch, height and width; names; evaluation uses the running averages', () => {
  const tf = getTf();
  const o = {
    kind: 'conv',
    channels: [3, 5],
    kernel: 3,
    residual: true,
    activation: 'relu' as const,
    norm: 'batch' as const,
    norm_momentum: 0.9,
    norm_epsilon: 1e-5,
  };
  const phase = { training: true };
  const enc = conv(tf, o, { inDim: 8 * 8 * 2, outDim: 4, inShape: [8, 8, 2] }, new Rng(3), phase);
  assert.deepEqual(
    [...enc.params.keys()].filter((k) => !k.startsWith('conv0/res') && !k.startsWith('conv1/res')),
    ['conv0/w', 'conv0/bn/gamma', 'conv0/bn/beta', 'conv1/w', 'conv1/bn/gamma', 'conv1/bn/beta', 'dense/w', 'dense/b'],
  );
  assert.deepEqual(
    [...enc.buffers!.keys()],
    [
      'conv0/bn/mean',
      'conv0/bn/var',
      'conv0/res/bn1/mean',
      'conv0/res/bn1/var',
      'conv0/res/bn2/mean',
      'conv0/res/bn2/var',
      'conv1/bn/mean',
      'conv1/bn/var',
      'conv1/res/bn1/mean',
      'conv1/res/bn1/var',
      'conv1/res/bn2/mean',
      'conv1/res/bn2/var',
    ],
  );
  const dec = conv(tf, o, { inDim: 4, outDim: 8 * 8 * 2, outShape: [8, 8, 2] }, new Rng(3), phase);
  // the last transposed convolution gives the image: no normalisation there, its bias stays
  assert.deepEqual(
    [...dec.buffers!.keys()].filter((k) => !k.includes('/res/')),
    ['deconv0/bn/mean', 'deconv0/bn/var'],
  );
  assert.ok(dec.params.has('deconv1/b') && !dec.params.has('deconv0/b'));
  const B = 4;
  const x = tf.tensor2d(new Rng(6).uniforms(B * 128), [B, 128]);
  // the first convolution's output, per channel: mean and variance over B·4·4 values
  const c0 = tf.conv2d(tf.reshape(x, [B, 8, 8, 2]) as tfc.Tensor4D, enc.params.get('conv0/w') as tfc.Tensor4D, 2, 'same').dataSync();
  const n = c0.length / 3;
  const mean = [0, 1, 2].map(
    (c) =>
      Array.from(c0)
        .filter((_, i) => i % 3 === c)
        .reduce((s, v) => s + v, 0) / n,
  );
  const variance = [0, 1, 2].map(
    (c) =>
      Array.from(c0)
        .filter((_, i) => i % 3 === c)
        .reduce((s, v) => s + (v - mean[c]) ** 2, 0) /
      (n - 1),
  );
  const trained = values(enc.apply(x));
  near(
    values(enc.buffers!.get('conv0/bn/mean')!),
    mean.map((v) => 0.1 * v),
    1e-5,
    'running mean',
  );
  near(
    values(enc.buffers!.get('conv0/bn/var')!),
    variance.map((v) => 0.9 + 0.1 * v),
    1e-5,
    'running variance',
  );
  phase.training = false;
  const evaluated = values(enc.apply(x));
  assert.ok(
    evaluated.some((v, i) => Math.abs(v - trained[i]) > 1e-3),
    'evaluation uses the running averages',
  );
  // norm: none keeps conv's names
  const plain = conv(tf, { ...o, norm: 'none' }, { inDim: 8 * 8 * 2, outDim: 4, inShape: [8, 8, 2] }, new Rng(3));
  assert.equal(plain.buffers, undefined);
  assert.deepEqual(
    [...plain.params.keys()],
    [
      'conv0/w',
      'conv0/b',
      'conv0/res/conv1',
      'conv0/res/conv2',
      'conv1/w',
      'conv1/b',
      'conv1/res/conv1',
      'conv1/res/conv2',
      'dense/w',
      'dense/b',
    ],
  );
});

test('export tfjs: a conv VAE with norm: batch and residual blocks decodes and encodes in Node as elbo does', async () => {
  const dir = tmpDir('elbo-export-');
  const { runDir, exportDir, card } = trainAndExportConv(dir, 'batch');
  assert.ok(
    card.check.decode_max_abs_diff < 1e-5 && card.check.reconstruct_max_abs_diff < 1e-5,
    `checked at export: ${JSON.stringify(card.check)}`,
  );
  const decoder = await loadExported(exportDir, 'decoder');
  const encoder = await loadExported(exportDir, 'encoder');
  const K = card.model.latent,
    D = card.model.dim;
  const z = Float32Array.from(new Rng(3).normals(5 * K));
  const x = Float32Array.from(new Rng(5).uniforms(4 * D));
  const own = await elboOwn(runDir, z, 5, x, 4);
  near(predict(decoder, z, 5), own.decode, 1e-5, 'decode');
  near(predict(encoder, x, 4), own.encode, 1e-4, 'encode');
  encoder.dispose();
  decoder.dispose();
});

/** Steps of a VAE with batch normalisation on a fixed set of batches: losses and buffers after. */
async function vaeSteps(compile: 'auto' | 'off', steps = 6) {
  const tf = getTf();
  const rng = new Rng(4);
  const data = binaryToyDataSet(rng, 6, 60);
  const { dim, train: split } = data;
  const net = { kind: 'mlp', hidden: [16], norm: 'batch', norm_momentum: 0.9, norm_epsilon: 1e-5 };
  const config = {
    model: {
      kind: 'vae',
      latent: 3,
      prior: { kind: 'gaussian', logvar_min: -30, logvar_max: 20 },
      encoder: { ...net, norm_input: true },
      decoder: net,
      likelihood: 'bernoulli',
    },
    loss: {},
    eval: [],
    train: { optimizer: ADAM },
  };
  const { model, optimizer } = await buildRun(config, data, { tf, registry: createRegistry(), rng, baseDir: '.' });
  const step = makeTrainStep(tf, model, optimizer, { compile, draws: 'host' });
  const noise = new Rng(7);
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) {
    const b = i % 3;
    const x = tf.tensor2d(split.x.subarray(b * 20 * dim, (b + 1) * 20 * dim), [20, dim]);
    const terms = step(x, null, { c1: 1, c2: 1 }, noise, { ...STEP0, step: i });
    losses.push(terms.loss.dataSync()[0]);
    Object.values(terms).forEach((t) => t.dispose());
    x.dispose();
  }
  // (the compiled step keeps the buffers in its session until then)
  step.dispose();
  return { tf, model, losses, modes: step.modes, split, dim, buffers: new Map([...model.buffers!].map(([k, v]) => [k, values(v)])) };
}

test(
  'tensorflow: with norm: batch the step stays one TensorFlow graph (buffers kept in its session) and trains as the eager step does; evaluations compile with the buffers as inputs',
  needsNative,
  async () => {
    await selectBackend('tensorflow');
    const g = await vaeSteps('auto');
    const e = await vaeSteps('off');
    assert.equal(g.modes.length, 1);
    assert.equal(g.modes[0].mode, 'graph', g.modes[0].reason);
    assert.equal(g.modes[0].state, 'session', g.modes[0].stateReason);
    near(g.losses, e.losses, 1e-4, 'losses');
    assert.ok(g.buffers.size === 6, [...g.buffers.keys()].join(', '));
    for (const [k, v] of g.buffers) {
      near(v, e.buffers.get(k)!, 1e-4, k);
      // they moved from their initial values (0, 1)
      assert.ok(
        v.some((a) => a !== 0 && a !== 1),
        `${k} moved`,
      );
    }
    // evaluation: one graph per shape, the running averages as inputs (moved between two calls, as training does)
    const model: Model = g.model;
    for (let round = 0; round < 2; round++) {
      const a = evaluateTerms(g.tf, model, g.split, g.dim, 20, new Rng(9), { c1: 1, c2: 1 }, 'auto');
      const b = evaluateTerms(g.tf, model, g.split, g.dim, 20, new Rng(9), { c1: 1, c2: 1 }, 'off');
      for (const k of Object.keys(b)) near([a[k]], [b[k]], 1e-4, k);
      for (const v of model.buffers!.values()) v.assign(g.tf.add(v, 0.5));
    }
    const compiled = compiledEvaluations(model);
    assert.ok(
      Object.values(compiled).length > 0 && Object.values(compiled).every((k) => typeof k === 'number' && k > 0),
      JSON.stringify(compiled),
    );
  },
);

test(
  "tensorflow: training normalisation runs as TensorFlow's fused kernels (FusedBatchNormV3 and its gradient) and gives tfjs's values and gradients: y, the batch mean, the unbiased variance, ∂/∂x, ∂/∂γ, ∂/∂β; one row per channel keeps tfjs's ops",
  needsNative,
  async () => {
    await selectBackend('tensorflow');
    const tf = getTf();
    const rng = new Rng(21);
    for (const shape of [
      [37, 6],
      [3, 4, 5, 6],
    ]) {
      const n = shape.slice(0, -1).reduce((a, b) => a * b, 1);
      const x = tf.tensor(
        rng.normals(n * 6).map((v) => 3 * v + 1),
        shape,
      );
      const gamma = tf.tensor1d(rng.normals(6).map((v) => 1 + 0.3 * v));
      const beta = tf.tensor1d(rng.normals(6));
      // a loss that weighs every output differently, so that every gradient is non-trivial
      const w = tf.tensor(rng.normals(n * 6), shape);
      const axes = shape.slice(0, -1).map((_, i) => i);
      const composite = (a: tfc.Tensor, g: tfc.Tensor, b: tfc.Tensor) => {
        const m = tf.moments(a, axes);
        return tf.batchNorm(a, m.mean, m.variance, b, g, 1e-5);
      };
      const fused = (a: tfc.Tensor, g: tfc.Tensor, b: tfc.Tensor) => batchNormTraining(tf, a, g, b, 1e-5)!.y;
      const out = batchNormTraining(tf, x, gamma, beta, 1e-5)!;
      const m = tf.moments(x, axes);
      near(values(out.y), values(composite(x, gamma, beta)), 1e-5, `${shape}: y`);
      assert.deepEqual(out.y.shape, shape);
      near(values(out.mean), values(m.mean), 1e-5, `${shape}: mean`);
      near(values(out.unbiased), values(tf.mul(m.variance, n / (n - 1))), 1e-5, `${shape}: unbiased variance`);
      const grads = (f: typeof composite) => tf.grads((a, g, b) => tf.sum(tf.mul(f(a, g, b), w)))([x, gamma, beta]);
      const [fx, fg, fb] = grads(fused);
      const [cx, cg, cb] = grads(composite);
      near(values(fx), values(cx), 1e-4, `${shape}: ∂/∂x`);
      near(values(fg), values(cg), 1e-4, `${shape}: ∂/∂γ`);
      near(values(fb), values(cb), 1e-4, `${shape}: ∂/∂β`);
      assert.ok(
        values(fx).some((v) => Math.abs(v) > 1e-3) && values(fg).some((v) => Math.abs(v) > 1e-3),
        `${shape}: gradients not trivial`,
      );
    }
    assert.equal(batchNormTraining(tf, tf.ones([1, 6]), tf.ones([6]), tf.zeros([6]), 1e-5), null, 'one row: tfjs ops');
  },
);
