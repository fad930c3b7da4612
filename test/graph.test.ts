import { test, before } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { tmpDir, smallConfig, binaryToyDataSet, untimed, runJson } from './helpers';
import { runExperiment } from '../src/experiment';
import { ProtoWriter } from '../src/runtime/graph/protobuf';
import { encodeSavedModel, ATTR } from '../src/runtime/graph/saved-model';
import { selectBackend, installedBackends, getTf } from '../src/runtime/backend';
import { WORKLOADS, buildWorkload, type Workload } from '../src/bench/workload';
import { makeTrainStep, type StepOptions } from '../src/train/step';
import { adam } from '../src/train/optimizer';
import { Rng } from '../src/runtime/rng';
import { spawnSync } from 'child_process';
import { createRegistry } from '../src/builtins';
import { buildRun } from '../src/run/build';
import { evaluateTerms } from '../src/eval/elbo';
import { encodeMeans } from '../src/eval/latent-classifier';
import { compiledEvaluations } from '../src/eval/compiled';
import { configProto, parseSessionConfig } from '../src/runtime/graph/session-config';
import type { UserError } from '../src/errors';
import type * as tfc from '@tensorflow/tfjs-core';
import type { Batch, Model, StepMode } from '../src/contracts';

// The compiled step needs the native backend (npm run setup:native); the encoder does not.
const native = installedBackends().includes('tensorflow');
const needsNative = native ? {} : { skip: 'the tensorflow backend is not installed here (npm run setup:native builds it)' };

/** runJson on the native backend: the settings S fixed, the extra arguments of each call after them. */
function nativeRunner(cfg: string, runs: string, sets: string[]) {
  return (...extra: string[]) => runJson(cfg, runs, sets, ['--backend', 'tensorflow', ...extra]);
}
test('protobuf writer: varints, negative int64, fixed32 floats, nested messages (the protobuf docs examples)', () => {
  assert.deepEqual([...new ProtoWriter().int(1, 150).finish()], [0x08, 0x96, 0x01]);
  assert.deepEqual([...new ProtoWriter().string(2, 'testing').finish()], [0x12, 0x07, 0x74, 0x65, 0x73, 0x74, 0x69, 0x6e, 0x67]);
  assert.deepEqual([...new ProtoWriter().message(3, new ProtoWriter().int(1, 150)).finish()], [0x1a, 0x03, 0x08, 0x96, 0x01]);
  // int64 −1: ten bytes of two's complement
  assert.deepEqual([...new ProtoWriter().int(1, -1).finish()], [0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
  assert.deepEqual([...new ProtoWriter().float(4, 1).finish()], [0x25, 0x00, 0x00, 0x80, 0x3f]);
  assert.deepEqual([...new ProtoWriter().packedInts(3, [3, 270]).finish()], [0x1a, 0x03, 0x03, 0x8e, 0x02]);
});

test('SavedModel encoding: a Placeholder node with dtype and shape attributes, byte for byte', () => {
  const bytes = encodeSavedModel([
    {
      name: 'f0',
      op: 'Placeholder',
      inputs: [],
      attrs: [
        { name: 'dtype', type: ATTR.TYPE, value: 1 },
        { name: 'shape', type: ATTR.SHAPE, value: [2] },
      ],
    },
  ]);
  const s = Buffer.from(bytes);
  // SavedModel{schema 1, MetaGraphDef{tags "serve", GraphDef{NodeDef, versions}}}
  assert.equal(s[0], 0x08);
  assert.equal(s[1], 0x01);
  for (const text of ['serve', 'f0', 'Placeholder', 'dtype', 'shape']) assert.ok(s.includes(Buffer.from(text)), text);
  // attr "shape": AttrValue{shape(7): TensorShapeProto{dim(2): Dim{size(1): 2}}}
  assert.ok(s.includes(Buffer.from([0x3a, 0x04, 0x12, 0x02, 0x08, 0x02])), 'shape attribute');
  // attr "dtype": AttrValue{type(6): DT_FLOAT = 1}
  assert.ok(s.includes(Buffer.from([0x05, 0x64, 0x74, 0x79, 0x70, 0x65, 0x12, 0x02, 0x30, 0x01])), 'dtype attribute');
});

before(async () => {
  if (native) await selectBackend('tensorflow');
});

/**
 * Losses every `every` steps of a benchmark workload, with the step compiled or not.
 * Compiled and eager steps train on the same draws only with the host's (draws: host).
 */
async function losses(w: Workload, opts: StepOptions, rounds = 4, every = 5) {
  const tf = getTf();
  const wl = await buildWorkload(tf, w, 3, opts);
  const out: number[] = [];
  for (let i = 0; i < rounds; i++) out.push(wl.run({ steps: every, minSeconds: 0, maxSeconds: 1e9 }).loss);
  return { out, modes: wl.modes };
}

function close(a: number[], b: number[], rel: number) {
  a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) <= rel * (1 + Math.abs(v)), `step ${i}: ${v} vs ${b[i]}`));
}

test('tensorflow: the MLP VAE step runs as one graph and trains as the eager step does', needsNative, async () => {
  const w = WORKLOADS.find((x) => x.name === 'vae-mlp')!;
  const g = await losses(w, { compile: 'auto', draws: 'host' });
  const e = await losses(w, { compile: 'off', draws: 'host' });
  assert.equal(g.modes.length, 1);
  assert.equal(g.modes[0].mode, 'graph', g.modes[0].reason);
  assert.equal(g.modes[0].state, 'session', g.modes[0].stateReason);
  assert.ok(g.modes[0].kernels! > 100);
  assert.equal(e.modes.length, 0);
  close(g.out, e.out, 1e-4);
  // and training moved: the loss went down
  assert.ok(g.out[3] < g.out[0]);
});

test('tensorflow: compiled runs with one seed give identical losses', needsNative, async () => {
  const w = WORKLOADS.find((x) => x.name === 'vae-mlp')!;
  assert.deepEqual((await losses(w, {}, 3)).out, (await losses(w, {}, 3)).out);
});

test('tensorflow: labels enter the graph as an input (G-VAE with its class term)', needsNative, async () => {
  const w: Workload = {
    ...WORKLOADS.find((x) => x.name === 'gvae-conv')!,
    shape: [8, 8, 3],
    batch: 16,
    labelled: 10, // six rows of every batch unlabelled: the mask is computed on the device
    model: {
      kind: 'gvae',
      latent: 8,
      prior: { kind: 'gaussian', logvar_min: -30, logvar_max: 20 },
      encoder: { kind: 'mlp', hidden: [32] },
      decoder: { kind: 'mlp', hidden: [32] },
      likelihood: 'gaussian',
    },
  };
  const g = await losses(w, { compile: 'auto', draws: 'host' });
  const e = await losses(w, { compile: 'off', draws: 'host' });
  assert.equal(g.modes[0].mode, 'graph', g.modes[0].reason);
  assert.equal(g.modes[0].state, 'session', g.modes[0].stateReason);
  close(g.out, e.out, 1e-4);
});

test('tensorflow: M2 compiles with its row layout as step inputs, one graph per labelled count', needsNative, async () => {
  const w: Workload = {
    ...WORKLOADS.find((x) => x.name === 'm2-mnist')!,
    shape: [8, 8, 1],
    batch: 20,
    labelled: 4,
    model: {
      kind: 'm2',
      latent: 4,
      prior: { kind: 'gaussian', logvar_min: -30, logvar_max: 20 },
      likelihood: 'bernoulli',
      classifier: { kind: 'mlp', hidden: [16] },
      encoder: { kind: 'mlp', hidden: [16] },
      decoder: { kind: 'mlp', hidden: [16] },
    },
  };
  const g = await losses(w, { compile: 'auto', draws: 'host' }, 3, 3);
  assert.equal(g.modes.length, 1);
  assert.equal(g.modes[0].mode, 'graph', g.modes[0].reason);
  assert.match(g.modes[0].batch, /lab 4/);
  assert.equal(g.modes[0].state, 'session', g.modes[0].stateReason);
  close(g.out, (await losses(w, { compile: 'off', draws: 'host' }, 3, 3)).out, 1e-4);
});

test('tensorflow: ADGM and SDGM (class passes by parts) compile to one graph that trains as the eager step', needsNative, async () => {
  for (const kind of ['adgm', 'sdgm']) {
    const net = { kind: 'mlp', hidden: [16] };
    const w: Workload = {
      ...WORKLOADS.find((x) => x.name === 'adgm-mnist')!,
      shape: [8, 8, 1],
      batch: 20,
      labelled: 4,
      model: {
        kind,
        latent: 4,
        aux: 3,
        prior: { kind: 'gaussian', logvar_min: -30, logvar_max: 20 },
        likelihood: 'bernoulli',
        encoder_a: net,
        classifier: net,
        encoder: net,
        decoder: net,
        decoder_a: net,
      },
    };
    const g = await losses(w, { compile: 'auto', draws: 'host' }, 3, 3);
    assert.equal(g.modes.length, 1);
    assert.equal(g.modes[0].mode, 'graph', `${kind}: ${g.modes[0].reason}`);
    assert.equal(g.modes[0].state, 'session', g.modes[0].stateReason);
    close(g.out, (await losses(w, { compile: 'off', draws: 'host' }, 3, 3)).out, 1e-4);
  }
});

test(
  'tensorflow: a prior whose schedules move every step compiles: c and the warm-up λ are graph inputs (spike-slab)',
  needsNative,
  async () => {
    const w: Workload = {
      ...WORKLOADS.find((x) => x.name === 'vae-mlp')!,
      shape: [8, 8, 1],
      batch: 16,
      model: {
        kind: 'vae',
        latent: 4,
        likelihood: 'bernoulli',
        encoder: { kind: 'mlp', hidden: [16] },
        decoder: { kind: 'mlp', hidden: [16] },
        prior: {
          kind: 'spike-slab',
          alpha: 0.2,
          mean: 'expected',
          logvar_min: -30,
          logvar_max: 20,
          // the workload's steps all sit at epoch 0 (c = 50, λ = 0); the trace at the end of
          // training sees c = 200, λ = 1: as graph inputs, both traces give one graph
          c: { kind: 'linear', from: 50, to: 200, start_epoch: 0, end_epoch: 10 },
          warmup: { kind: 'linear', from: 0, to: 1, start_epoch: 0, end_epoch: 5 },
        },
      },
    };
    const g = await losses(w, { compile: 'auto', draws: 'host' }, 3, 3);
    assert.equal(g.modes[0].mode, 'graph', g.modes[0].reason);
    assert.equal(g.modes[0].state, 'session', g.modes[0].stateReason);
    close(g.out, (await losses(w, { compile: 'off', draws: 'host' }, 3, 3)).out, 1e-4);
  },
);

test(
  'tensorflow: elbo run logs and records how the step ran; train.compile: off runs kernel by kernel to the same numbers (train.draws: host, the default), to the same distribution with the draws made in the graph',
  needsNative,
  async () => {
    const dir = tmpDir();
    const cfg = smallConfig(dir);
    const runs = path.join(dir, 'runs');
    const run = nativeRunner(cfg, runs, ['train.epochs=2', 'train.batch_size=64', 'eval=[{kind: elbo}]']);
    const g = run();
    assert.match(fs.readFileSync(path.join(g.out.runDir, 'config.yaml'), 'utf8'), /\n {2}draws: host\n/);
    // 400 generated rows, 50 for validation: 350 train rows = 5 batches of 64 + one of 30
    assert.deepEqual(
      g.rec.step_modes.map((m: StepMode) => [m.batch, m.mode, m.state]),
      [
        ['64×64', 'graph', 'session'],
        ['30×64', 'graph', 'session'],
      ],
    );
    assert.match(g.stderr, /train step \(64×64\): one TensorFlow graph of \d+ kernels/);
    const e = run('--set', 'train.compile=off');
    assert.equal(e.rec.step_modes, undefined);
    for (const k of ['test/elbo', 'val/elbo', 'train/loss']) {
      const a = g.out.metrics[k];
      const b = e.out.metrics[k];
      assert.ok(Math.abs(a - b) <= 1e-3 * Math.abs(b), `${k}: ${a} vs ${b}`);
    }
    // train.step_state: fed: the state fed in and returned every step, Adam as the eager step
    // computes it: the eager run's numbers to the bit (and those of runs made before the session kept the state)
    const f = run('--set', 'train.step_state=fed');
    assert.deepEqual(
      f.rec.step_modes.map((m: StepMode) => [m.batch, m.mode, m.state]),
      [
        ['64×64', 'graph', 'fed'],
        ['30×64', 'graph', 'fed'],
      ],
    );
    assert.deepEqual(untimed(f.out.metrics), untimed(e.out.metrics));
    assert.ok(Object.keys(untimed(f.out.metrics)).length >= 8);
    // train.draws: graph: the compiled step draws (noise, dynamic binarisation) in its graph,
    // so it trains on other numbers than the eager step: the same distribution, not the same values
    const gg = run('--set', 'train.draws=graph');
    const ge = run('--set', 'train.compile=off', '--set', 'train.draws=graph');
    assert.deepEqual(
      gg.rec.step_modes.map((m: StepMode) => [m.mode, m.state]),
      [
        ['graph', 'session'],
        ['graph', 'session'],
      ],
    );
    for (const k of ['test/elbo', 'val/elbo', 'train/loss']) {
      const a = gg.out.metrics[k];
      const b = ge.out.metrics[k];
      assert.notEqual(a, b, k);
      assert.ok(Math.abs(a - b) <= 0.03 * Math.abs(b), `${k}: ${a} vs ${b}`);
    }
  },
);

test('tensorflow: M1+M2 compiles with the frozen M1 held as constants, and matches the eager step', needsNative, async () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  const runs = path.join(dir, 'runs');
  const run = nativeRunner(cfg, runs, [
    'model={kind: m1m2, m1: {model: {kind: vae, latent: 6, encoder: {kind: mlp, hidden: [16]}, decoder: {kind: mlp, hidden: [16]}}, train: {epochs: 1, batch_size: 50}}, min_std: 0.01, latent: 3, encoder: {kind: mlp, hidden: [16]}, decoder: {kind: mlp, hidden: [16]}, classifier: {kind: mlp, hidden: [16]}, alpha_expression: "0.1*N_total/N_labelled"}',
    'data.labelled=20',
    'train.labelled_per_batch=10',
    'train.epochs=2',
    'eval=[{kind: accuracy}]',
  ]);
  const g = run();
  assert.ok(g.rec.step_modes.length > 0);
  for (const m of g.rec.step_modes) assert.equal(m.mode, 'graph', `${m.batch}: ${m.reason}`);
  const e = run('--set', 'train.compile=off'); // the same M1, reused
  assert.equal(e.rec.depends_on.m1.how, 'reused');
  for (const k of ['train/loss', 'val/accuracy']) {
    const a = g.out.metrics[k];
    const b = e.out.metrics[k];
    assert.ok(Math.abs(a - b) <= 1e-3 * (1 + Math.abs(b)), `${k}: ${a} vs ${b}`);
  }
});

test('tensorflow: a model that reads a loss weight as a JavaScript number stays eager, and its steps still train', needsNative, () => {
  const tf = getTf();
  const p = tf.variable(tf.tensor1d([1, -2, 3]), true, 'toy/p');
  // a toy model: only the parts the step reads (no encoder or decoder)
  const model: Pick<Model, 'params' | 'latent' | 'terms'> = {
    params: new Map<string, tfc.Variable>([['p', p]]),
    latent: 1,
    terms(batch: Batch, w: { c1: number }) {
      const c1 = +w.c1; // a JavaScript number: the graph would freeze it
      const loss: tfc.Scalar = tf.mul(c1, tf.sum(tf.square(p)));
      return { loss, elbo: tf.neg(loss) };
    },
  };
  const opt = adam(tf, { kind: 'adam', lr: 0.1, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 }, model.params);
  const step = makeTrainStep(tf, model as Model, opt);
  const x: tfc.Tensor2D = tf.zeros([2, 3]);
  const losses: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t = step(x, null, { c1: 1, c2: 1, alpha: 0 }, new Rng(1), { epoch: 0, step: i, fraction: 0 });
    losses.push(t.loss.dataSync()[0]);
    Object.values(t).forEach((v) => v.dispose());
  }
  assert.equal(step.modes[0].mode, 'eager');
  assert.match(step.modes[0].reason!, /reads loss weight c1 as a JavaScript number/);
  assert.equal(losses[0], 14);
  assert.ok(losses[2] < losses[0], losses.join());
  step.dispose();
});

test(
  "tensorflow: train.draws graph: the compiled step makes its noise and binarisation in the graph, keyed by the step (a resumed step draws the same), in the eager step's distribution",
  needsNative,
  () => {
    const tf = getTf();
    const n = 4000;
    // a toy model whose terms are statistics of its draws and of its (binarised) batch
    const p = tf.variable(tf.zeros([1]), true, 'toy/draws');
    // a toy model: only the parts the step reads (no encoder or decoder)
    const model: Pick<Model, 'params' | 'latent' | 'terms'> = {
      params: new Map<string, tfc.Variable>([['p', p]]),
      latent: 1,
      terms(batch: Batch, _w: unknown, rng: Rng) {
        const eps = tf.tensor1d(rng.normals(n));
        const mean: tfc.Scalar = tf.mean(eps);
        return {
          loss: tf.add(tf.mul(tf.sum(p), mean), tf.mean(tf.square(p))),
          mean,
          square: tf.mean(tf.square(eps)),
          ones: tf.mean(batch.x),
        };
      },
    };
    const grey: tfc.Tensor2D = tf.fill([8, n / 8], 0.3); // binarised: a Bernoulli(0.3) per value
    const calls = { normals: 0, uniforms: 0 };
    const spied = (['normals', 'uniforms'] as const).map((m) => {
      const f = Rng.prototype[m];
      Rng.prototype[m] = function (this: Rng, k: number) {
        calls[m]++;
        return f.call(this, k);
      };
      return () => (Rng.prototype[m] = f);
    });
    const steps = (o: StepOptions, from: number, count: number) => {
      const opt = adam(tf, { kind: 'adam', lr: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 }, model.params);
      const step = makeTrainStep(tf, model as Model, opt, { binarize: true, ...o });
      const rng = new Rng(5);
      const out: number[][] = [];
      for (let i = from; i < from + count; i++) {
        if (i === from + 1) calls.normals = calls.uniforms = 0; // after the first step compiled it
        const t = step(grey, null, { c1: 1, c2: 1 }, rng, { epoch: 0, step: i, fraction: 0 });
        out.push(['mean', 'square', 'ones'].map((k) => t[k].dataSync()[0]));
        Object.values(t).forEach((v) => v.dispose());
      }
      const modes = step.modes;
      step.dispose();
      return { out, modes, calls: { ...calls } };
    };
    try {
      const g = steps({ draws: 'graph' }, 0, 4);
      assert.equal(g.modes[0].mode, 'graph', g.modes[0].reason);
      assert.equal(g.modes[0].state, 'session', g.modes[0].stateReason);
      // after compiling, no draw is made in JavaScript: the graph makes them
      assert.deepEqual(g.calls, { normals: 0, uniforms: 0 });
      const e = steps({ draws: 'graph', compile: 'off' }, 0, 4);
      assert.ok(e.calls.normals > 0 && e.calls.uniforms > 0);
      for (const r of [...g.out, ...e.out]) {
        // N(0, 1) and Bernoulli(0.3) over 4,000 draws: 5 standard errors
        assert.ok(Math.abs(r[0]) < 5 / Math.sqrt(n), `mean ${r[0]}`);
        assert.ok(Math.abs(r[1] - 1) < 5 * Math.sqrt(2 / n), `mean square ${r[1]}`);
        assert.ok(Math.abs(r[2] - 0.3) < 5 * Math.sqrt(0.21 / n), `binarised mean ${r[2]}`);
      }
      // every step draws afresh; the graph's numbers are not the eager step's (other generators)
      assert.equal(new Set(g.out.map((r) => r[0])).size, 4);
      assert.notEqual(g.out[0][0], e.out[0][0]);
      // a run resumed at step 2 (a new step, compiled afresh) makes the uninterrupted run's draws
      assert.deepEqual(steps({ draws: 'graph' }, 2, 2).out, g.out.slice(2));
      assert.deepEqual(steps({ draws: 'graph', compile: 'off' }, 2, 2).out, e.out.slice(2));
      // host draws: the compiled step trains on the eager step's numbers
      const h = steps({ draws: 'host' }, 0, 2);
      assert.ok(h.calls.normals > 0);
      const he = steps({ draws: 'host', compile: 'off' }, 0, 2);
      h.out.forEach((r, i) => r.forEach((v, k) => assert.ok(Math.abs(v - he.out[i][k]) < 1e-5, `step ${i}: ${v} vs ${he.out[i][k]}`)));
    } finally {
      spied.forEach((undo) => undo());
      grey.dispose();
    }
  },
);

test('train.draws graph (per-step streams; on tensorflow, the graph makes the draws): two runs with one seed are identical, and an interrupted run resumes to the uninterrupted metrics', async () => {
  const dir = tmpDir();
  // (on the backend the other tests here use: a run selects its backend for the whole process)
  const opts = {
    config: smallConfig(dir),
    runsDir: path.join(dir, 'runs'),
    ...(native ? { backend: 'tensorflow' } : {}),
    overrides: ['train.draws=graph', 'train.epochs=2', 'eval=[{kind: elbo}]'],
    progress: false,
  };
  const full = await runExperiment(opts);
  const rec = JSON.parse(fs.readFileSync(path.join(full.runDir, 'run.json'), 'utf8'));
  if (rec.backend.name === 'tensorflow') for (const m of rec.step_modes) assert.equal(m.mode, 'graph', `${m.batch}: ${m.reason}`);
  const again = await runExperiment(opts);
  let epochs = 0;
  const cut = await runExperiment({ ...opts, onEpoch: () => epochs++, shouldStop: () => epochs >= 1 });
  assert.equal(cut.status, 'KILLED');
  const resumed = await runExperiment({ resume: cut.runDir, progress: false });
  assert.equal(resumed.status, 'FINISHED', resumed.error);
  for (const k of ['test/elbo', 'val/elbo', 'train/loss']) {
    assert.equal(again.metrics[k], full.metrics[k], k);
    assert.equal(resumed.metrics[k], full.metrics[k], k);
  }
});

test(
  'tensorflow: evaluations run as graphs (loss terms, IWAE, latent encodings) and give the eager numbers, after training moves the parameters too',
  needsNative,
  async () => {
    const tf = getTf();
    const registry = createRegistry();
    const rng = new Rng(4);
    const data = binaryToyDataSet(rng, 8, 120);
    const { dim, train: split } = data;
    const n = split.n;
    // the build step of a run (src/run/build.ts): the model and the iwae evaluator
    const config = {
      model: {
        kind: 'vae',
        latent: 3,
        prior: { kind: 'gaussian', logvar_min: -30, logvar_max: 20 },
        encoder: { kind: 'mlp', hidden: [16] },
        decoder: { kind: 'mlp', hidden: [16] },
        likelihood: 'bernoulli',
      },
      loss: {},
      eval: [{ kind: 'iwae', k: 8, batch_size: 40, max_rows: 5000 }],
      train: { optimizer: { kind: 'adam', lr: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 } },
    };
    const { model, evaluators } = await buildRun(config, data, { tf, registry, rng, baseDir: '.' });
    const iwae = evaluators[0].ev;
    const all = async (compile: 'auto' | 'off') => ({
      terms: evaluateTerms(tf, model, split, dim, 50, new Rng(9), { c1: 1, c2: 1 }, compile),
      iwae: await iwae.run({
        tf,
        model,
        data,
        rng: new Rng(10),
        compile,
        artifact: () => '',
        log: () => {},
        unitWeights: { c1: 1, c2: 1 },
      }),
      codes: [...encodeMeans(tf, model, split.x, n, dim, 50, 'mean', compile)],
    });
    // metrics by name (terms, iwae) or codes by index
    const near = <K extends string | number>(a: Readonly<Record<K, number>>, b: Readonly<Record<K, number>>) => {
      for (const k of Object.keys(b) as K[]) assert.ok(Math.abs(a[k] - b[k]) <= 1e-4 * (1 + Math.abs(b[k])), `${k}: ${a[k]} vs ${b[k]}`);
    };
    for (let round = 0; round < 2; round++) {
      const g = await all('auto');
      const e = await all('off');
      near(g.terms, e.terms);
      near(g.iwae, e.iwae);
      near<number>(g.codes, e.codes);
      // as training does between two validations
      for (const p of model.params.values()) p.assign(tf.add(p, 0.05));
    }
    // 120 rows in batches of 50 (40 for iwae): a graph per computation and shape (null would be eager)
    const compiled = compiledEvaluations(model);
    assert.deepEqual(Object.keys(compiled).sort(), [
      'encode mean: 20×64',
      'encode mean: 50×64',
      'iwae k 8: 40×64',
      'loss terms: 20×64',
      'loss terms: 50×64',
    ]);
    for (const [k, kernels] of Object.entries(compiled)) assert.ok(typeof kernels === 'number' && kernels > 0, `${k}: ${kernels}`);
  },
);

test('tensorflow: absl log lines are silent unless ELBO_TF_LOG=1 asks for them', needsNative, () => {
  // a graph session makes TensorFlow's MLIR pass write its 'I0000 ...' line, through absl
  const script = `const b = require(${JSON.stringify(path.join(__dirname, '..', 'src', 'runtime', 'backend'))});
    const c = require(${JSON.stringify(path.join(__dirname, '..', 'src', 'runtime', 'graph', 'compile'))});
    const { Rng } = require(${JSON.stringify(path.join(__dirname, '..', 'src', 'runtime', 'rng'))});
    b.selectBackend('tensorflow').then(() => { const tf = b.getTf(); const x = tf.ones([2, 2]);
      const g = c.compileFunction(tf, ([t]) => [tf.matMul(t, t)], [x], [tf.zeros([2, 2])], new Rng(1));
      console.log(typeof g === 'string' ? g : g.run([x], null)[0].dataSync().join()); });`;
  const run = (extra: Record<string, string>) => {
    const env = { ...process.env, ...extra };
    delete env.TF_CPP_MIN_LOG_LEVEL;
    return spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env });
  };
  const quiet = run({});
  assert.equal(quiet.stdout.trim(), '2,2,2,2', quiet.stderr);
  assert.doesNotMatch(quiet.stderr, /absl::InitializeLog|I0000|mlir_graph_optimization/);
  const loud = run({ ELBO_TF_LOG: '1' });
  assert.equal(loud.stdout.trim(), '2,2,2,2', loud.stderr);
  assert.match(loud.stderr, /mlir_graph_optimization_pass/);
});

test('ELBO_TF_SESSION: the TensorFlow configuration as ConfigProto bytes; mistakes are one-line errors naming it', () => {
  const hex = (spec?: string) => Buffer.from(configProto(parseSessionConfig(spec))).toString('hex');
  // defaults: graph_options(10){optimizer_options(3){global_jit_level(5) = OFF (−1)}, rewrite_options(10){remapping(14) = ON}}
  assert.equal(hex(), '52' + '11' + '1a0b28ffffffffffffffffff01' + '52027001');
  // intra_op_parallelism_threads(2) = 2, inter_op(5) = 1, remapping OFF (2), jit ON_1
  assert.equal(hex('intra=2, inter=1,remapper=off,xla=on'), '1002' + '2801' + '52' + '08' + '1a022801' + '52027002');
  const refused = (spec: string) => {
    try {
      parseSessionConfig(spec);
    } catch (e) {
      return (e as UserError).line();
    }
    return 'accepted';
  };
  assert.equal(refused('threads=2'), "ELBO_TF_SESSION: unknown setting 'threads' (allowed: intra, inter, remapper, xla)");
  assert.equal(refused('xla=yes'), "ELBO_TF_SESSION: xla takes on or off, not 'yes'");
  assert.match(refused('intra=-1'), /^ELBO_TF_SESSION: intra takes a thread count \(0: TensorFlow's choice\), not '-1'$/);
});
