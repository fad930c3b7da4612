import type * as tfc from '@tensorflow/tfjs-core';
import { createRegistry } from '../builtins';
import { buildRun } from '../run/build';
import { Rng } from '../runtime/rng';
import { makeTrainStep, inTraining, type StepOptions } from '../train/step';
import { compiledEvaluations } from '../eval/compiled';
import { DECONV_NCHW } from '../runtime/native-ops';
import type { DataSet, Evaluator, PluginOptions, WeightValues } from '../contracts';

/**
 * The benchmark's workloads: each is a model config as a user would write it, on
 * synthetic data of the real shape (the benchmark needs no download), trained with the
 * same step as `elbo run` (src/train/step.ts), or, for an evaluation workload
 * (`evaluate`), evaluated as `elbo run` evaluates the test set. src/bench/reference_torch.py
 * builds the same networks in PyTorch.
 */
export interface Workload {
  name: string;
  description: string;
  shape: number[];
  classes: number;
  /** Rows per step; `labelled` of them carry labels (the rest y = −1). */
  batch: number;
  labelled: number;
  model: PluginOptions;
  /** The loss weights by name: those the model plugin declares (registry/weights.ts). */
  weights: WeightValues;
  /**
   * An evaluation workload: no training; a timed call is the iwae evaluator
   * (src/eval/iwae.ts, its default pass sizes) with `k` importance samples over `batch`
   * test images, the model at its initial parameters.
   */
  evaluate?: { k: number };
  /** train.compile of the config the workload stands for, when not auto (iwae.yaml: xla). */
  compile?: 'xla';
}

const mlp = (hidden: number[], activation = 'relu') => ({ kind: 'mlp', hidden, activation });
/** An MLP with batch normalisation after the product of every hidden layer (`norm: batch`). */
const mlpBn = (hidden: number[]) => ({ ...mlp(hidden), norm: 'batch' });
const conv = (channels: number[]) => ({ kind: 'conv', channels, kernel: 4, residual: false, activation: 'relu' });
const gaussian = { kind: 'gaussian', logvar_min: -30, logvar_max: 20 };
/** configs/mnist/iwae.yaml's model: the networks of configs/mnist/vae.yaml, trained on the k = 50 bound. */
const iwaeMnist = {
  kind: 'iwae',
  k: 50,
  latent: 50,
  prior: gaussian,
  encoder: mlp([200, 200], 'tanh'),
  decoder: mlp([200, 200], 'tanh'),
  likelihood: 'bernoulli',
};

export const WORKLOADS: Workload[] = [
  {
    name: 'vae-mlp',
    description: 'quickstart VAE, MLP 784-400-(2×20) / 20-400-784, Bernoulli, batch 128',
    shape: [28, 28, 1],
    classes: 0,
    batch: 128,
    labelled: 0,
    model: { kind: 'vae', latent: 20, prior: gaussian, encoder: mlp([400]), decoder: mlp([400]), likelihood: 'bernoulli' },
    weights: { c1: 1, c2: 1 },
  },
  {
    name: 'm2-mnist',
    description: 'M2 on MNIST, z 50, one hidden layer of 500 (softplus), batch 100 = 10 labelled + 90 unlabelled',
    shape: [28, 28, 1],
    classes: 10,
    batch: 100,
    labelled: 10,
    model: {
      kind: 'm2',
      latent: 50,
      prior: gaussian,
      classifier: mlp([500], 'softplus'),
      encoder: mlp([500], 'softplus'),
      decoder: mlp([500], 'softplus'),
      likelihood: 'bernoulli',
    },
    weights: { c1: 1, c2: 1, alpha: 50 },
  },
  {
    name: 'adgm-mnist',
    description:
      'ADGM on MNIST (configs/mnist/adgm.yaml), a = z = 100, five MLPs of 500-500 (ReLU, batch normalisation on every hidden layer), batch 200 = 100 labelled + 100 unlabelled',
    shape: [28, 28, 1],
    classes: 10,
    batch: 200,
    labelled: 100,
    model: {
      kind: 'adgm',
      latent: 100,
      aux: 100,
      prior: gaussian,
      encoder_a: mlpBn([500, 500]),
      classifier: mlpBn([500, 500]),
      encoder: mlpBn([500, 500]),
      decoder: mlpBn([500, 500]),
      decoder_a: mlpBn([500, 500]),
      likelihood: 'bernoulli',
    },
    weights: { c1: 1, c2: 1, alpha: 50 },
  },
  {
    name: 'iwae-mnist',
    description:
      'IWAE (configs/mnist/iwae.yaml), MLP 784-200-200-(2×50) / 50-200-200-784 (tanh), Bernoulli, k = 50 samples, batch 100 (5,000 decoder rows)',
    shape: [28, 28, 1],
    classes: 0,
    batch: 100,
    labelled: 0,
    model: iwaeMnist,
    weights: {},
    compile: 'xla',
  },
  {
    name: 'iwae-k5000',
    description:
      'the k = 5000 importance-weighted test estimate (the iwae evaluator of configs/mnist/iwae.yaml and vae.yaml) on the same networks, evaluation only: one image per pass of 5,000 decoder rows, 10 images per timed call',
    shape: [28, 28, 1],
    classes: 0,
    batch: 10,
    labelled: 0,
    model: iwaeMnist,
    weights: {},
    evaluate: { k: 5000 },
  },
  {
    name: 'gvae-conv',
    description: 'G-VAE, conv 32×32×3 (channels 32-64-128, kernel 4), K 128, batch 64',
    shape: [32, 32, 3],
    classes: 10,
    batch: 64,
    labelled: 64,
    model: {
      kind: 'gvae',
      latent: 128,
      prior: gaussian,
      encoder: conv([32, 64, 128]),
      decoder: conv([32, 64, 128]),
      likelihood: 'gaussian',
    },
    weights: { c1: 0.0025, c2: 1, alpha: 20 },
  },
];

export interface Phase {
  /** Stop after this many steps once minSeconds have passed ... */
  steps: number;
  minSeconds: number;
  /** ... or at maxSeconds regardless, so slow backends stay bounded (at least 2 steps). */
  maxSeconds: number;
}

/**
 * FLOPs of the matmul and convolution kernels a profiled step ran (forward and backward).
 * Each product counts once: on the tensorflow backend a `_FusedMatMul` (a dense layer
 * with its bias, as tf.fused.matMul runs it) is a BatchMatMul kernel and an Add, both
 * profiled just before it, so a fused product whose BatchMatMul came just before is not
 * counted again (on wasm the fused kernel is the only one).
 */
export function countFlops(kernels: { name: string; inputShapes: (number[] | null)[]; outputShapes: number[][] }[]): number {
  const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);
  const same = (x: (number[] | null)[], y: (number[] | null)[]) => JSON.stringify(x.slice(0, 2)) === JSON.stringify(y.slice(0, 2));
  let flops = 0;
  kernels.forEach((k, i) => {
    const out = k.outputShapes[0];
    const [a, b] = k.inputShapes;
    if (!out || !a || !b) return;
    switch (k.name) {
      case '_FusedMatMul':
        // the BatchMatMul inside it, then its bias and activation (at most 3 kernels)
        if (kernels.slice(Math.max(0, i - 4), i).some((p) => p.name === 'BatchMatMul' && same(p.inputShapes, k.inputShapes))) return;
      // falls through
      case 'BatchMatMul':
        // inner dimension K from a's size and the output rows
        flops += 2 * prod(out) * (prod(a) / prod(out.slice(0, -1)));
        break;
      case 'Conv2D':
      case 'FusedConv2D': // x, filter [kh, kw, ci, co] → out [B, Ho, Wo, co]
        flops += 2 * prod(out) * b[0] * b[1] * b[2];
        break;
      case DECONV_NCHW: // the same, as x [B, Ho, Wo, co] (runtime/native-ops.ts: a transposed convolution run in NCHW)
      case 'Conv2DBackpropInput': // dy [B, Ho, Wo, co], filter [kh, kw, ci, co]
        flops += 2 * prod(a) * b[0] * b[1] * b[2];
        break;
      case 'Conv2DBackpropFilter': // x, dy [B, Ho, Wo, co] → filter [kh, kw, ci, co]
        flops += 2 * prod(b) * out[0] * out[1] * out[2];
        break;
    }
  });
  return flops;
}

/** What a timed run of a workload measured: `steps` timed calls (training steps, or evaluator calls over `batch` images). */
export interface Timed {
  steps: number;
  seconds: number;
  /** The last loss (training) or estimate (evaluation), read back once at the end. */
  loss: number;
}

/** A built workload, ready to time. */
export interface Built {
  run(p: Phase): Timed | Promise<Timed>;
  /** Matmul + convolution FLOPs of one timed call, counted from the kernels it runs (eagerly). */
  flopsPerStep(): Promise<number>;
  /** How a call runs: 'graph (N kernels)' (one TensorFlow graph per step or pass) or 'eager'. */
  mode(): string;
  model: import('../contracts').Model;
}

/** The model and the synthetic data of a workload, built as `elbo run` builds a run (src/run/build.ts buildRun). */
async function setup(tf: typeof tfc, w: Workload, seed: number) {
  const registry = createRegistry();
  const rng = new Rng(seed);
  const dim = w.shape.reduce((a, b) => a * b, 1);
  // a few distinct batches, so no backend can cache one upload; values in [0,1]
  const pool = 4;
  const split = {
    x: rng.fork('data').uniforms(pool * w.batch * dim),
    y: Int32Array.from({ length: pool * w.batch }, (_, i) => (w.classes ? i % w.classes : 0)),
    n: pool * w.batch,
  };
  const data: DataSet = {
    name: 'synthetic',
    shape: w.shape,
    dim,
    classes: w.classes,
    train: split,
    val: null,
    test: split,
    sha256: '',
    source: 'bench (uniform random)',
    binarize: 'none',
    labelled: null,
  };
  const config = {
    model: w.model,
    loss: w.weights,
    eval: [],
    train: { optimizer: { kind: 'adam', lr: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 } },
  };
  const { model, optimizer, weights: schedules } = await buildRun(config, data, { tf, registry, rng, baseDir: process.cwd() });
  // the weights are numbers here: their value at the start
  const weights = Object.fromEntries(Object.entries(schedules).map(([n, s]) => [n, s({ epoch: 0, step: 0, fraction: 0, epochFloat: 0 })]));
  /** Batch b of the pool: its rows, and its labels with rows from `labelled` on unlabelled (−1). */
  const batch = (b: number) => ({
    x: split.x.subarray(b * w.batch * dim, (b + 1) * w.batch * dim),
    y: w.classes ? Int32Array.from({ length: w.batch }, (_, i) => (i < w.labelled ? split.y[b * w.batch + i] : -1)) : null,
  });
  return { registry, rng, dim, pool, data, model, optimizer, weights, batch };
}

/** Build a training workload with the build step of a run (src/run/build.ts buildRun), on synthetic data. */
export async function buildWorkload(tf: typeof tfc, w: Workload, seed = 0, stepOptions: StepOptions = {}) {
  if (w.evaluate) throw new Error(`${w.name} is an evaluation workload: buildEvaluation builds it`);
  const { rng, dim, pool, model, optimizer, weights, batch } = await setup(tf, w, seed);
  const step = makeTrainStep(tf, model, optimizer, stepOptions);
  // FLOPs are counted from the kernels an eager step dispatches (a graph step is one call)
  const eagerStep = makeTrainStep(tf, model, optimizer, { compile: 'off' });
  const noise = rng.fork('noise');
  let count = 0;

  /** One training step as the training loop does it (batch upload included); returns the loss, unread. */
  function trainStep(s = step): tfc.Scalar {
    const b = batch(count++ % pool);
    const x = tf.tensor2d(b.x, [w.batch, dim]);
    const { loss, ...rest } = s(x, b.y, weights, noise, { epoch: 0, step: count, fraction: 0 });
    x.dispose();
    Object.values(rest).forEach((t) => t.dispose());
    return loss;
  }

  /**
   * Run steps until the phase ends; the loss is read back once, at the end, so the
   * time includes all queued work but no per-step synchronisation.
   */
  function run(p: Phase): Timed {
    const t0 = performance.now();
    const elapsed = () => (performance.now() - t0) / 1000;
    let loss: tfc.Scalar | null = null;
    let n = 0;
    while (n < 2 || !((n >= p.steps && elapsed() >= p.minSeconds) || elapsed() >= p.maxSeconds)) {
      loss?.dispose();
      loss = trainStep();
      n++;
    }
    const value = loss!.dataSync()[0];
    const seconds = elapsed();
    loss!.dispose();
    return { steps: n, seconds, loss: value };
  }

  /** Matmul + convolution FLOPs of one step, counted from the kernels it runs. */
  async function flopsPerStep(): Promise<number> {
    const info = await tf.profile(() => {
      trainStep(eagerStep).dispose();
    });
    return countFlops(info.kernels);
  }

  const mode = () =>
    step.modes[0]?.mode === 'graph' ? `graph (${step.modes[0].kernels} kernels${step.modes[0].xla ? ', XLA' : ''})` : 'eager';
  return { run, flopsPerStep, modes: step.modes, mode, model } satisfies Built & { modes: unknown };
}

/**
 * Build an evaluation workload (`w.evaluate`): a timed call is the iwae evaluator over
 * the `w.batch` images of one batch of the pool, as `elbo run` evaluates the test set
 * (compiled per pass on the tensorflow backend unless `stepOptions.compile` is 'off').
 */
export async function buildEvaluation(tf: typeof tfc, w: Workload, seed = 0, stepOptions: StepOptions = {}) {
  const k = w.evaluate?.k;
  if (!k) throw new Error(`${w.name} is a training workload: buildWorkload builds it`);
  const { registry, rng, pool, data, model, batch } = await setup(tf, w, seed);
  const evaluator: Evaluator = registry.create('evaluator', { kind: 'iwae', k }, { tf, registry, rng, baseDir: process.cwd() });
  const noise = rng.fork('noise');
  let count = 0;

  /** The evaluator over one batch of images (the estimate read back, as the evaluator does once per call). */
  async function evaluate(compile = stepOptions.compile ?? 'auto', r: Rng = noise, images = w.batch): Promise<number> {
    const b = batch(count++ % pool);
    const test = { x: b.x.subarray(0, images * data.dim), y: new Int32Array(images), n: images };
    const out = await evaluator.run({
      tf,
      model,
      data: { ...data, test },
      rng: r,
      compile,
      artifact: (name) => name,
      log: () => {},
      unitWeights: {},
    });
    return out[`log_likelihood_k${k}`];
  }

  async function run(p: Phase): Promise<Timed> {
    const t0 = performance.now();
    const elapsed = () => (performance.now() - t0) / 1000;
    let loss = NaN;
    let n = 0;
    while (n < 2 || !((n >= p.steps && elapsed() >= p.minSeconds) || elapsed() >= p.maxSeconds)) {
      loss = await evaluate();
      n++;
    }
    return { steps: n, seconds: elapsed(), loss };
  }

  async function flopsPerStep(): Promise<number> {
    const info = await tf.profile(async () => {
      await evaluate('off');
    });
    return countFlops(info.kernels);
  }

  const mode = () => {
    const graphs = Object.values(compiledEvaluations(model)).filter((g): g is number => g !== null);
    return graphs.length ? `graph (${graphs.join(', ')} kernels)` : 'eager';
  };
  return { run, flopsPerStep, mode, evaluate, model, data } satisfies Built & Record<string, unknown>;
}

/** Build either kind of workload. */
export async function buildAny(tf: typeof tfc, w: Workload, seed = 0, stepOptions: StepOptions = {}): Promise<Built> {
  return w.evaluate ? buildEvaluation(tf, w, seed, stepOptions) : buildWorkload(tf, w, seed, stepOptions);
}

/** An Rng that keeps the values of its array draws, in the order they were made. */
class RecordingRng extends Rng {
  normalDraws: Float32Array[] = [];
  uniformDraws = 0;
  override normals(n: number): Float32Array {
    const v = super.normals(n);
    this.normalDraws.push(v);
    return v;
  }
  override uniforms(n: number): Float32Array {
    this.uniformDraws += n;
    return super.uniforms(n);
  }
}

/**
 * One loss of a workload for its PyTorch twin to recompute (reference_torch.py --check):
 * the model's parameters by name, a batch (its rows and labels, −1 for unlabelled), the
 * normal draws elbo made for it in order (the twin takes its draws from them, in its own
 * order, so a different row layout or draw order gives a different loss), and elbo's
 * value: the training loss (model.terms, as the step computes it) or, for an evaluation
 * workload, the estimate over the first `images` images.
 */
export async function referenceCase(tf: typeof tfc, w: Workload, seed = 0, images = 2) {
  const rng = new RecordingRng(seed + 1);
  let x: Float32Array;
  let y: Int32Array | null;
  let loss: number;
  let model: import('../contracts').Model;
  if (w.evaluate) {
    const e = await buildEvaluation(tf, w, seed);
    model = e.model;
    // the evaluator's first call reads the first images of the pool
    x = e.data.test.x.slice(0, images * e.data.dim);
    y = null;
    // eagerly: every draw through `rng` (compiled passes after the first draw on a worker
    // thread, from a copy of the stream: the same numbers, test/iwae.test.ts)
    loss = await e.evaluate('off', rng, images);
  } else {
    const s = await setup(tf, w, seed);
    model = s.model;
    ({ x, y } = s.batch(0));
    const xt = tf.tensor2d(x, [w.batch, s.dim]);
    // in training, as the step computes it (batch normalisation on the batch's statistics)
    loss = inTraining(
      model,
      () => tf.tidy(() => model.terms({ x: xt, y }, s.weights, rng, { epoch: 0, step: 0, fraction: 0 }).loss.dataSync()[0]),
      rng,
    );
    xt.dispose();
  }
  const params = [...model.params.entries()].map(([name, v]) => ({ name, shape: v.shape, values: v.dataSync() as Float32Array }));
  const n = rng.normalDraws.reduce((a, d) => a + d.length, 0);
  const draws = new Float32Array(n);
  rng.normalDraws.reduce((at, d) => (draws.set(d, at), at + d.length), 0);
  const dim = w.shape.reduce((a, b) => a * b, 1);
  return {
    workload: w.name,
    params,
    x,
    xShape: [x.length / dim, dim],
    y,
    draws,
    uniformDraws: rng.uniformDraws,
    loss,
    images: w.evaluate ? images : undefined,
  };
}
