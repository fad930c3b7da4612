import type * as tfc from '@tensorflow/tfjs-core';
import type { Plugin } from '../registry/types';
import type { Evaluator } from './evaluator';
import { rows } from './evaluator';
import { UserError } from '../errors';

export interface IwaeOptions {
  kind: 'iwae';
  k: number;
  batch_size: number;
  max_examples?: number;
}

/**
 * Importance-weighted estimate of log p(x) (Burda et al.): log (1/k) Σ_i p(x, z_i)/q(z_i|x),
 * z_i ~ q(z|x), averaged over the test set. A lower bound that tightens as k grows.
 */
export const iwaeEvaluator: Plugin<IwaeOptions, Evaluator> = {
  kind: 'evaluator',
  name: 'iwae',
  needs: ['latent', 'density'],
  description: 'Importance-weighted log-likelihood estimate with k samples: test/log_likelihood_k<k>',
  schema: {
    properties: {
      k: { type: 'integer', minimum: 1, default: 100, description: 'Importance samples per example (the IWAE paper reports k = 5000)' },
      batch_size: { type: 'integer', minimum: 1, default: 50, description: 'Test examples per forward pass (each repeated k times)' },
      max_examples: { type: 'integer', minimum: 1, description: 'Evaluate only the first N test examples (the metric says how many)' },
    },
  },
  metrics: (o) => [`log_likelihood_k${o.k}`, ...(o.max_examples !== undefined ? [`log_likelihood_k${o.k}_examples`] : [])],
  create: (o) => ({
    async run(ctx) {
      const { tf, model, data } = ctx;
      if (!model.logImportanceWeights) {
        throw new UserError(`the iwae evaluator cannot run on this model: ${model.noImportanceWeights ?? 'no importance weights'}`, 'eval: iwae');
      }
      const n = Math.min(data.test.n, o.max_examples ?? Infinity);
      let total = tf.scalar(0);
      for (let start = 0; start < n; start += o.batch_size) {
        const end = Math.min(n, start + o.batch_size);
        const next = tf.tidy(() => {
          const logw = model.logImportanceWeights!(rows(tf, data.test, data.dim, start, end), o.k, ctx.rng);
          const ll = tf.sub(tf.logSumExp(logw, 1), Math.log(o.k));
          return tf.add(total, tf.sum(ll)) as tfc.Scalar;
        });
        total.dispose();
        total = next;
      }
      const value = total.dataSync()[0] / n;
      total.dispose();
      const out: Record<string, number> = { [`log_likelihood_k${o.k}`]: value };
      if (n < data.test.n) out[`log_likelihood_k${o.k}_examples`] = n;
      return out;
    },
  }),
};
