import type * as tfc from '@tensorflow/tfjs-core';
import { createRegistry } from '../builtins';
import { buildRun } from '../run/build';
import { Rng } from '../runtime/rng';
import { makeTrainStep, type StepOptions } from '../train/step';
import type { DataSet, PluginOptions, WeightValues } from '../contracts';

/**
 * The benchmark's workloads: each is a model config as a user would write it, on
 * synthetic data of the real shape (the benchmark needs no download), trained with the
 * same step as `elbo run` (src/train/step.ts). src/bench/reference_torch.py builds the
 * same networks in PyTorch.
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
}

const mlp = (hidden: number[], activation = 'relu') => ({ kind: 'mlp', hidden, activation });
const conv = (channels: number[]) => ({ kind: 'conv', channels, kernel: 4, residual: false, activation: 'relu' });
const gaussian = { kind: 'gaussian', logvar_min: -30, logvar_max: 20 };

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
    description: 'ADGM on MNIST (configs/mnist/adgm.yaml), a = z = 100, five MLPs of 500-500 (ReLU), batch 200 = 100 labelled + 100 unlabelled',
    shape: [28, 28, 1],
    classes: 10,
    batch: 200,
    labelled: 100,
    model: {
      kind: 'adgm',
      latent: 100,
      aux: 100,
      prior: gaussian,
      encoder_a: mlp([500, 500]),
      classifier: mlp([500, 500]),
      encoder: mlp([500, 500]),
      decoder: mlp([500, 500]),
      decoder_a: mlp([500, 500]),
      likelihood: 'bernoulli',
    },
    weights: { c1: 1, c2: 1, alpha: 50 },
  },
  {
    name: 'gvae-conv',
    description: 'G-VAE, conv 32×32×3 (channels 32-64-128, kernel 4), K 128, batch 64',
    shape: [32, 32, 3],
    classes: 10,
    batch: 64,
    labelled: 64,
    model: { kind: 'gvae', latent: 128, prior: gaussian, encoder: conv([32, 64, 128]), decoder: conv([32, 64, 128]), likelihood: 'gaussian' },
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

/** FLOPs of the matmul and convolution kernels a profiled step ran (forward and backward). */
function countFlops(kernels: { name: string; inputShapes: number[][]; outputShapes: number[][] }[]): number {
  const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);
  let flops = 0;
  for (const k of kernels) {
    const out = k.outputShapes[0];
    const [a, b] = k.inputShapes;
    if (!out || !a || !b) continue;
    switch (k.name) {
      case 'BatchMatMul':
      case '_FusedMatMul':
        // inner dimension K from a's size and the output rows
        flops += 2 * prod(out) * (prod(a) / prod(out.slice(0, -1)));
        break;
      case 'Conv2D':
      case 'FusedConv2D': // x, filter [kh, kw, ci, co] → out [B, Ho, Wo, co]
        flops += 2 * prod(out) * b[0] * b[1] * b[2];
        break;
      case 'Conv2DBackpropInput': // dy [B, Ho, Wo, co], filter [kh, kw, ci, co]
        flops += 2 * prod(a) * b[0] * b[1] * b[2];
        break;
      case 'Conv2DBackpropFilter': // x, dy [B, Ho, Wo, co] → filter [kh, kw, ci, co]
        flops += 2 * prod(b) * out[0] * out[1] * out[2];
        break;
    }
  }
  return flops;
}

/** Build a workload with the build step of a run (src/run/build.ts buildRun), on synthetic data. */
export async function buildWorkload(tf: typeof tfc, w: Workload, seed = 0, stepOptions: StepOptions = {}) {
  const registry = createRegistry();
  const rng = new Rng(seed);
  const dim = w.shape.reduce((a, b) => a * b, 1);
  // a few distinct batches, so no backend can cache one upload; values in [0,1]
  const pool = 4;
  const split = { x: rng.fork('data').uniforms(pool * w.batch * dim), y: Int32Array.from({ length: pool * w.batch }, (_, i) => (w.classes ? i % w.classes : 0)), n: pool * w.batch };
  const data: DataSet = {
    name: 'synthetic', shape: w.shape, dim, classes: w.classes, train: split, val: null, test: split,
    sha256: '', source: 'bench (uniform random)', binarize: 'none', labelled: null,
  };
  const config = { model: w.model, loss: w.weights, eval: [], train: { optimizer: { kind: 'adam', lr: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 } } };
  const { model, optimizer, weights: schedules } = await buildRun(config, data, { tf, registry, rng, baseDir: process.cwd() });
  // the weights are numbers here: their value at the start
  const weights = Object.fromEntries(Object.entries(schedules).map(([n, s]) => [n, s({ epoch: 0, step: 0, fraction: 0, epochFloat: 0 })]));
  const step = makeTrainStep(tf, model, optimizer, stepOptions);
  // FLOPs are counted from the kernels an eager step dispatches (a graph step is one call)
  const eagerStep = makeTrainStep(tf, model, optimizer, { compile: 'off' });
  const noise = rng.fork('noise');
  let count = 0;

  /** One training step as the training loop does it (batch upload included); returns the loss, unread. */
  function trainStep(s = step): tfc.Scalar {
    const b = count++ % pool;
    const x = tf.tensor2d(split.x.subarray(b * w.batch * dim, (b + 1) * w.batch * dim), [w.batch, dim]);
    const y = w.classes ? Int32Array.from({ length: w.batch }, (_, i) => (i < w.labelled ? split.y[b * w.batch + i] : -1)) : null;
    const { loss, ...rest } = s(x, y, weights, noise, { epoch: 0, step: count, fraction: 0 });
    x.dispose();
    Object.values(rest).forEach((t) => t.dispose());
    return loss;
  }

  /**
   * Run steps until the phase ends; the loss is read back once, at the end, so the
   * time includes all queued work but no per-step synchronisation.
   */
  function run(p: Phase): { steps: number; seconds: number; loss: number } {
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
    return countFlops(info.kernels as any);
  }

  return { run, flopsPerStep, modes: step.modes };
}
