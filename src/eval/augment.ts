import type * as tfc from '@tensorflow/tfjs-core';
import type { Plugin } from '../registry/types';
import type { Evaluator, EvalContext } from './evaluator';
import type { Model } from '../models/model';
import { writeImageGrid } from '../util/png';
import { subset } from '../data/splits';
import { loadRunModel } from '../models/load-run';
import { UserError } from '../errors';

export interface AugmentOptions {
  kind: 'augment';
  lambda_clip: number;
  steps: number;
  per_class: number;
  compare_run?: string;
}

/**
 * G-VAE's augmentation (SPEC.md "Model: G-VAE"): for a test image, sort σ descending,
 * keep the top λ_clip fraction (δ = σ there, 0 elsewhere) and decode μ + 0.5·i·δ for
 * i = −steps … steps (to 3σ with steps = 6). One grid row per image: centre column is
 * μ. With compare_run (a finished plain-VAE run on the same data) its row is drawn
 * beside. When the model classifies, the share of decoded images that keep their
 * class is reported as augment_class_kept.
 */
function augmentRows(tf: typeof tfc, model: Model, x: tfc.Tensor2D, o: AugmentOptions): Float32Array[][] {
  if (!model.encodeGaussian) throw new UserError('augment needs a model with a Gaussian posterior (μ, σ²)', 'eval: augment');
  return tf.tidy(() => {
    const { mu, logvar } = model.encodeGaussian!(x);
    const K = mu.shape[1];
    const sigma = tf.exp(tf.mul(0.5, logvar)).arraySync() as number[][];
    const keep = Math.max(1, Math.ceil(o.lambda_clip * K));
    const delta = sigma.map((s) => {
      const order = s.map((v, k) => [v, k]).sort((a, b) => b[0] - a[0]).slice(0, keep).map(([, k]) => k);
      const d = new Float32Array(K);
      for (const k of order) d[k] = s[k];
      return d;
    });
    const B = x.shape[0];
    const cols = 2 * o.steps + 1;
    const offsets = new Float32Array(B * cols * K);
    for (let b = 0; b < B; b++)
      for (let c = 0; c < cols; c++) {
        const i = c - o.steps;
        for (let k = 0; k < K; k++) offsets[(b * cols + c) * K + k] = 0.5 * i * delta[b][k];
      }
    const muRep = tf.reshape(tf.tile(tf.expandDims(mu, 1), [1, cols, 1]), [B * cols, K]);
    const z = tf.add(muRep, tf.tensor2d(offsets, [B * cols, K])) as tfc.Tensor2D;
    const images = model.decode(z).dataSync() as Float32Array;
    const D = images.length / (B * cols);
    return Array.from({ length: B }, (_, b) => Array.from({ length: cols }, (_, c) => images.slice((b * cols + c) * D, (b * cols + c + 1) * D)));
  });
}

export const augmentEvaluator: Plugin<AugmentOptions, Evaluator> = {
  kind: 'evaluator',
  name: 'augment',
  needs: ['latent'],
  description: 'G-VAE augmentation grid: decode μ ± 0.5·i·δ (top λ_clip σ dims) per test image (artifacts/augment.png)',
  schema: {
    properties: {
      lambda_clip: { type: 'number', exclusiveMinimum: 0, maximum: 1, default: 0.1, description: 'Fraction of latent dims (largest σ) moved' },
      steps: { type: 'integer', minimum: 1, default: 6, description: 'Steps of 0.5σ each way (6: to 3σ)' },
      per_class: { type: 'integer', minimum: 1, default: 2, description: 'Test images per class' },
      compare_run: { type: 'string', description: 'A finished plain-VAE run on the same data, drawn beside' },
    },
  },
  // augment_class_kept only when the model classifies
  metrics: () => ['augment_class_kept'],
  create: (o, pctx) => ({
    async run(ctx: EvalContext) {
      const { tf, model, data } = ctx;
      if (!data.test.y) throw new UserError('augment picks test images per class and needs labels', 'eval: augment');
      const picks: number[] = [];
      for (let c = 0; c < data.classes; c++) {
        let found = 0;
        for (let i = 0; i < data.test.n && found < o.per_class; i++) if (data.test.y[i] === c) picks.push(i), found++;
      }
      const x = tf.tensor2d(subset(data.test, data.dim, picks).x, [picks.length, data.dim]);
      const rows = augmentRows(tf, model, x, o);
      let other: Float32Array[][] | null = null;
      if (o.compare_run) {
        const { model: vae } = await loadRunModel(o.compare_run, tf, pctx.registry, data, 'eval: augment.compare_run');
        other = augmentRows(tf, vae, x, o);
      }
      x.dispose();
      const blank = new Float32Array(data.dim).fill(1);
      const cols = 2 * o.steps + 1;
      const grid = rows.flatMap((r, b) => (other ? [...r, blank, ...other[b]] : r));
      writeImageGrid(ctx.artifact('augment.png'), grid, data.shape, other ? 2 * cols + 1 : cols);
      const out: Record<string, number> = {};
      if (model.classify) {
        const all = rows.flat();
        const probs = tf.tidy(() => model.classify!(tf.tensor2d(Float32Array.from(all.flatMap((a) => Array.from(a))), [all.length, data.dim])).argMax(1).dataSync());
        let kept = 0;
        all.forEach((_, k) => (kept += probs[k] === data.test.y![picks[Math.floor(k / cols)]] ? 1 : 0));
        out.augment_class_kept = kept / all.length;
      }
      return out;
    },
  }),
};
