import { test, before } from 'node:test';
import * as assert from 'node:assert/strict';
import type * as tfc from '@tensorflow/tfjs-core';
import { selectBackend, installedBackends, getTf } from '../src/runtime/backend';
import { createRegistry } from '../src/builtins';
import { buildRun } from '../src/run/build';
import { Rng } from '../src/runtime/rng';
import { makeTrainStep, type StepOptions, type TrainStep } from '../src/train/step';
import type { Model, Optimizer } from '../src/contracts';
import { binaryToyDataSet } from './helpers';

// The compiled step that keeps its state in the TensorFlow session (StepOptions.state) needs
// the native backend; elsewhere the step is eager and these tests have nothing to compare.
const native = installedBackends().includes('tensorflow');
const needsNative = native ? {} : { skip: 'the tensorflow backend is not installed here (npm run setup:native builds it)' };

before(async () => {
  if (native) await selectBackend('tensorflow');
});

const DIM = 36;
const ROWS = 60;

/** A small VAE (batch normalisation optional) and its optimizer, built as a run builds them, from seed 4. */
async function toy(o: { norm?: boolean; lr?: unknown } = {}) {
  const tf = getTf();
  const rng = new Rng(4);
  const data = binaryToyDataSet(rng, 6, ROWS);
  const split = data.train;
  const net = { kind: 'mlp', hidden: [16], ...(o.norm ? { norm: 'batch', norm_momentum: 0.9, norm_epsilon: 1e-5 } : {}) };
  const config = {
    model: {
      kind: 'vae',
      latent: 3,
      prior: { kind: 'gaussian', logvar_min: -30, logvar_max: 20 },
      encoder: net,
      decoder: net,
      likelihood: 'bernoulli',
    },
    loss: {},
    eval: [],
    train: { optimizer: { kind: 'adam', lr: o.lr ?? 1e-2, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 } },
  };
  const { model, optimizer } = await buildRun(config, data, { tf, registry: createRegistry(), rng, baseDir: '.' });
  return { tf, model, optimizer, split };
}

type Toy = Awaited<ReturnType<typeof toy>>;

/** Every state tensor's values by name: parameters, buffers, optimizer state. */
function stateOf(model: Model, optimizer: Optimizer): Map<string, Float32Array> {
  const all = [...model.params, ...(model.buffers ?? []), ...[...optimizer.state].map(([k, v]) => [`optimizer/${k}`, v] as const)];
  return new Map(all.map(([k, v]) => [k, Float32Array.from(v.dataSync() as Float32Array)]));
}

/** Steps on batches of the given row counts (consecutive rows of the toy set), from step `from`; the losses. */
function steps(t: Toy, step: TrainStep, rows: number[], from = 0, total = rows.length): number[] {
  const noise = new Rng(7).fork(`from-${from}`);
  const losses: number[] = [];
  rows.forEach((n, k) => {
    const i = from + k;
    const start = (i * 7) % (ROWS - n);
    const x = t.tf.tensor2d(t.split.x.subarray(start * DIM, (start + n) * DIM), [n, DIM]);
    const terms = step(x, null, { c1: 1, c2: 1 }, noise, { epoch: 0, step: i, fraction: i / total, epochFloat: i / total });
    losses.push(terms.loss.dataSync()[0]);
    Object.values(terms).forEach((v) => v.dispose());
    x.dispose();
  });
  return losses;
}

/** A run of steps from a fresh toy: the losses, the modes and the state after (synced). */
async function run(rows: number[], opts: StepOptions, o: { norm?: boolean; lr?: unknown } = {}) {
  const t = await toy(o);
  const start = stateOf(t.model, t.optimizer);
  const step = makeTrainStep(t.tf, t.model, t.optimizer, { draws: 'host', ...opts });
  const losses = steps(t, step, rows);
  step.sync();
  const state = stateOf(t.model, t.optimizer);
  const modes = step.modes;
  step.dispose();
  return { losses, modes, state, start };
}

/**
 * Per state tensor, ‖a − b‖ against how far b moved from `start` (the values before the
 * steps): float rounding that differs between the two is a tiny fraction of the movement.
 */
function near(
  a: Map<string, Float32Array>,
  b: Map<string, Float32Array>,
  start: Map<string, Float32Array>,
  rel: number,
  what: string,
): number {
  assert.deepEqual([...a.keys()], [...b.keys()]);
  let worst = 0;
  for (const [k, x] of a) {
    const y = b.get(k)!;
    const s = start.get(k)!;
    assert.equal(x.length, y.length, k);
    let diff = 0;
    let moved = 0;
    x.forEach((v, i) => {
      diff += (v - y[i]) ** 2;
      moved += (y[i] - s[i]) ** 2;
    });
    const r = Math.sqrt(diff) / Math.sqrt(moved);
    assert.ok(r <= rel, `${what}: ${k}: ‖a − b‖ = ${Math.sqrt(diff)} against a movement of ${Math.sqrt(moved)}`);
    worst = Math.max(worst, r);
  }
  if (process.env.ELBO_TEST_VERBOSE) console.log(`${what}: largest ‖a − b‖ / ‖b − start‖ ${worst.toExponential(2)}`);
  return worst;
}

const EIGHT = [20, 20, 20, 20, 20, 20, 20, 20];

for (const [name, o, opts] of [
  ['Adam', {}, {}],
  [
    'Adam with clipping, weight decay and a cosine learning rate',
    { lr: { kind: 'cosine', from: 1e-2, to: 1e-3, end_epoch: 1 } },
    { gradients: { clip: { norm: 0.5, value: 0.01 }, weightDecay: 0.01 } },
  ],
  ['Adam, batch normalisation (its running averages kept in the session too)', { norm: true }, {}],
] as const) {
  test(
    `tensorflow: ${name}: the compiled step keeps the state in its session and updates with ResourceApplyAdam; after 8 steps the parameters, moments, step count${o.norm ? ', buffers' : ''} and losses match the fed step's and the eager step's`,
    needsNative,
    async () => {
      const s = await run(EIGHT, { ...opts, state: 'session' }, o);
      const f = await run(EIGHT, { ...opts, state: 'fed' }, o);
      const e = await run(EIGHT, { ...opts, compile: 'off' }, o);
      assert.equal(s.modes[0].mode, 'graph', s.modes[0].reason);
      assert.equal(s.modes[0].state, 'session', s.modes[0].stateReason);
      assert.equal(f.modes[0].state, 'fed');
      assert.deepEqual(s.state.get('optimizer/t'), Float32Array.of(8));
      // the session's update rounds differently (m + (g − m)(1 − β1) for β1·m + (1 − β1)·g):
      // float rounding apart, against parameters and moments of order 0.01–1
      near(s.state, f.state, s.start, 1e-4, `${name}: session vs fed`);
      near(s.state, e.state, s.start, 1e-4, `${name}: session vs eager`);
      near(f.state, e.state, s.start, 1e-4, `${name}: fed vs eager`);
      s.losses.forEach((l, i) => assert.ok(Math.abs(l - f.losses[i]) <= 1e-5 * Math.abs(f.losses[i]), `loss ${i}: ${l} vs ${f.losses[i]}`));
    },
  );
}

test(
  "tensorflow: two batch shapes (an epoch's last, smaller batch) in turn: the state moves between the two graphs' sessions through the variables, as the fed step's does",
  needsNative,
  async () => {
    const rows = [20, 20, 12, 20, 12, 12, 20, 20];
    const s = await run(rows, { state: 'session' }, { norm: true });
    const f = await run(rows, { state: 'fed' }, { norm: true });
    assert.deepEqual(
      s.modes.map((m) => [m.batch, m.mode, m.state]),
      [
        ['20×36', 'graph', 'session'],
        ['12×36', 'graph', 'session'],
      ],
    );
    assert.deepEqual(s.state.get('optimizer/t'), Float32Array.of(8));
    near(s.state, f.state, s.start, 1e-4, 'two shapes: session vs fed');
  },
);

test(
  'tensorflow: the variables lag behind the session until sync(); what changes them after a sync is what the next step starts from; no tensors leak',
  needsNative,
  async () => {
    const t = await toy();
    const step = makeTrainStep(t.tf, t.model, t.optimizer, { draws: 'host' });
    const start = stateOf(t.model, t.optimizer);
    steps(t, step, [20, 20]);
    assert.equal(step.modes[0].state, 'session');
    // still the values the session started from
    assert.deepEqual(stateOf(t.model, t.optimizer), start);
    step.sync();
    const moved = stateOf(t.model, t.optimizer);
    assert.deepEqual(moved.get('optimizer/t'), Float32Array.of(2));
    assert.notDeepEqual(moved.get('encoder/dense0/w') ?? [...moved.values()][0], start.get('encoder/dense0/w') ?? [...start.values()][0]);
    // a change made between steps (as a checkpoint restore would) is uploaded by the next step
    const [name, p] = [...t.model.params][0];
    p.assign(t.tf.zerosLike(p));
    const fed = await toy();
    const ref = makeTrainStep(fed.tf, fed.model, fed.optimizer, { draws: 'host', state: 'fed' });
    steps(fed, ref, [20, 20]);
    fed.model.params.get(name)!.assign(fed.tf.zerosLike(p));
    const tensors = t.tf.memory().numTensors;
    steps(t, step, [20, 20, 20], 2, 5);
    steps(fed, ref, [20, 20, 20], 2, 5);
    step.sync();
    assert.equal(t.tf.memory().numTensors, tensors, 'tensors after three steps and a sync');
    near(stateOf(t.model, t.optimizer), stateOf(fed.model, fed.optimizer), start, 1e-4, 'after the change');
    step.dispose();
    ref.dispose();
  },
);

test(
  'tensorflow: a step made afresh from the synced variables (a resumed run) continues bit for bit where the first one stopped',
  needsNative,
  async () => {
    const rows = [20, 20, 12, 20, 20, 12, 20, 20];
    const whole = await toy({ norm: true });
    const one = makeTrainStep(whole.tf, whole.model, whole.optimizer, { draws: 'host' });
    const l1 = [...steps(whole, one, rows.slice(0, 4), 0, 8), ...steps(whole, one, rows.slice(4), 4, 8)];
    one.dispose();
    const cut = await toy({ norm: true });
    const first = makeTrainStep(cut.tf, cut.model, cut.optimizer, { draws: 'host' });
    const l2 = steps(cut, first, rows.slice(0, 4), 0, 8);
    first.dispose();
    // (the values, as a checkpoint holds them, into another model and optimizer)
    const resumed = await toy({ norm: true });
    const saved = stateOf(cut.model, cut.optimizer);
    const vars = [
      ...resumed.model.params,
      ...(resumed.model.buffers ?? []),
      ...[...resumed.optimizer.state].map(([k, v]) => [`optimizer/${k}`, v] as const),
    ];
    for (const [k, v] of vars) v.assign(resumed.tf.tensor(saved.get(k)!, v.shape) as tfc.Tensor);
    const second = makeTrainStep(resumed.tf, resumed.model, resumed.optimizer, { draws: 'host' });
    l2.push(...steps(resumed, second, rows.slice(4), 4, 8));
    second.dispose();
    assert.equal(first.modes[0].state, 'session');
    assert.deepEqual(l2, l1);
    assert.deepEqual(stateOf(resumed.model, resumed.optimizer), stateOf(whole.model, whole.optimizer));
  },
);
