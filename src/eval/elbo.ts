import type * as tfc from '@tensorflow/tfjs-core';
import { definePlugin, Type, type OptionsOf } from '../registry/types';
import { rows } from './evaluator';
import { DeviceSums } from './device-sums';
import type { Model, LossWeights } from '../models/model';
import type { Split } from '../data/dataset';
import type { Rng } from '../runtime/rng';

/**
 * Mean loss terms over a whole split with every weight the model reads at 1 (`weights`,
 * by name), so `elbo` is the evidence lower bound in nats whatever weights training used.
 * One read-back at the end.
 */
export function evaluateTerms(tf: typeof tfc, model: Model, split: Split, dim: number, batch: number, rng: Rng, weights: LossWeights): Record<string, number> {
  const sums = new DeviceSums(tf);
  for (let start = 0; start < split.n; start += batch) {
    const end = Math.min(split.n, start + batch);
    tf.tidy(() => {
      const x = rows(tf, split, dim, start, end);
      const y = split.y ? split.y.subarray(start, end) : null;
      sums.add(model.terms({ x, y }, weights, rng, { epoch: 0, step: 0, fraction: 1 }), end - start, 'loss');
    });
  }
  const means = sums.means(split.n);
  sums.dispose();
  return means;
}

const elboOptions = {
  batch_size: Type.Integer({ minimum: 1, default: 500 }),
};
export type ElboEvalOptions = OptionsOf<typeof elboOptions>;

export const elboEvaluator = definePlugin({
  kind: 'evaluator',
  name: 'elbo',
  description: 'Test-set ELBO in nats (every loss weight at 1) and its terms: test/elbo, test/recon, test/kl',
  options: elboOptions,
  // the model's loss terms but the weighted objective (evaluateTerms skips `loss`)
  metrics: (_o, { modelTerms }) => modelTerms?.filter((t) => t !== 'loss') ?? null,
  create: (o) => ({
    async run(ctx) {
      return evaluateTerms(ctx.tf, ctx.model, ctx.data.test, ctx.data.dim, o.batch_size, ctx.rng, ctx.unitWeights);
    },
  }),
});
