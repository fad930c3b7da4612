import type * as tfc from '@tensorflow/tfjs-core';
import { createRegistry } from '../registry/builtins';
import { Rng } from '../runtime/rng';
import type { DataSet } from '../data/dataset';
import type { Model, LossWeights } from '../models/model';
import type { Optimizer } from '../train/optimizer';
import { makeTrainStep } from '../train/step';

/** The quickstart network (configs/quickstart.yaml): what `elbo run` trains by default. */
export const BATCH = 128;
const DIM = 784;
const LATENT = 20;
const HIDDEN = 400;
const MODEL = {
  kind: 'vae',
  latent: LATENT,
  prior: { kind: 'gaussian', logvar_min: -30, logvar_max: 20 },
  encoder: { kind: 'mlp', hidden: [HIDDEN], activation: 'relu' },
  decoder: { kind: 'mlp', hidden: [HIDDEN], activation: 'relu' },
  likelihood: 'bernoulli',
};

/**
 * Matmul FLOPs per training example: 2·in·out per dense layer forward, ×3 for the
 * forward pass plus the two backward matmuls (dX, dW). This is the usual convention,
 * so numbers compare with other frameworks' reports; it slightly overstates the work
 * (tfjs skips dX of the first layer, whose input is data) and ignores elementwise ops,
 * the loss and Adam.
 */
export function flopsPerSample(): number {
  const layers: [number, number][] = [
    [DIM, HIDDEN], [HIDDEN, 2 * LATENT], // encoder → (μ, log σ²)
    [LATENT, HIDDEN], [HIDDEN, DIM], // decoder
  ];
  return 3 * layers.reduce((s, [i, o]) => s + 2 * i * o, 0);
}

export interface Phase {
  /** Stop after this many steps once minSeconds have passed ... */
  steps: number;
  minSeconds: number;
  /** ... or at maxSeconds regardless, so slow backends stay bounded (at least 2 steps). */
  maxSeconds: number;
}

/** Build the model exactly as src/experiment.ts does, on synthetic data (no download needed). */
export function buildWorkload(tf: typeof tfc, seed = 0) {
  const registry = createRegistry();
  const rng = new Rng(seed);
  // a few distinct batches, so no backend can cache one upload; values in [0,1] as the Bernoulli likelihood expects
  const pool = 4 * BATCH;
  const split = { x: rng.fork('data').uniforms(pool * DIM), y: null, n: pool };
  const data: DataSet = {
    name: 'synthetic', shape: [28, 28, 1], dim: DIM, classes: 0, train: split, val: null, test: split,
    sha256: '', source: 'bench (uniform random)', binarize: 'none', labelled: null,
  };
  const ctx = { tf, registry, rng, baseDir: process.cwd(), data };
  const model: Model = registry.create('model', MODEL, { ...ctx, rng: rng.fork('init') });
  const optimizer: Optimizer = registry.create(
    'optimizer', { kind: 'adam', lr: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 }, { ...ctx, params: model.params });

  const step = makeTrainStep(tf, model, optimizer);
  const noise = rng.fork('noise');
  const w: LossWeights = { c1: 1, c2: 1, alpha: 0 };
  let count = 0;

  /** One training step exactly as the training loop does it (batch upload included); returns the loss, unread. */
  function trainStep(): tfc.Scalar {
    const b = count++ % (pool / BATCH);
    const x = tf.tensor2d(split.x.subarray(b * BATCH * DIM, (b + 1) * BATCH * DIM), [BATCH, DIM]);
    const { loss, ...rest } = step(x, null, w, noise, { epoch: 0, step: count, fraction: 0 });
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

  return { run };
}
