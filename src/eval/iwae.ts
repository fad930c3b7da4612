import type * as tfc from '@tensorflow/tfjs-core';
import { definePlugin, Type, type OptionsOf } from '../registry/define';
import { rows } from './evaluator';
import { UserError } from '../errors';
import { evalGraph } from './compiled';
import type { Rng } from '../runtime/rng';

const iwaeOptions = {
  k: Type.Integer({ minimum: 1, default: 100, description: 'Importance samples per example (the IWAE paper reports k = 5000)' }),
  batch_size: Type.Integer({ minimum: 1, default: 50, description: 'Test examples per forward pass at most (each repeated k times; max_rows caps it too)' }),
  max_rows: Type.Integer({ minimum: 1, default: 5000, description: 'Decoder rows (examples × k) per pass at most: bounds memory; k above it is split into chunks of draws' }),
  max_examples: Type.Optional(Type.Integer({ minimum: 1, description: 'Evaluate only the first N test examples (the metric says how many)' })),
};
export type IwaeOptions = OptionsOf<typeof iwaeOptions>;

/**
 * Importance-weighted estimate of log p(x) (Burda et al.): log (1/k) Σ_i p(x, z_i)/q(z_i|x),
 * z_i ~ q(z|x), averaged over the test set. A lower bound that tightens as k grows.
 *
 * The decoder runs on (examples per pass)·k rows; a pass takes at most `max_rows` of them
 * (and at most `batch_size` examples), so k = 5000 runs one example per pass. A k larger
 * than max_rows is split into chunks of draws whose log-sum-exps are combined on the device.
 * Per-example sums stay on the device and are read back once, at the end. The draws come
 * from the evaluator's seeded stream example by example, so the pass sizes do not change
 * the estimate (beyond float rounding). On the tensorflow backend each pass is one
 * compiled graph (src/eval/compiled.ts).
 */
export const iwaeEvaluator = definePlugin({
  kind: 'evaluator',
  name: 'iwae',
  needs: ['latent', 'density'],
  description: 'Importance-weighted log-likelihood estimate with k samples: test/log_likelihood_k<k>',
  options: iwaeOptions,
  metrics: (o) => [`log_likelihood_k${o.k}`, ...(o.max_examples !== undefined ? [`log_likelihood_k${o.k}_examples`] : [])],
  create: (o) => ({
    async run(ctx) {
      const { tf, model, data } = ctx;
      if (!model.logImportanceWeights) {
        throw new UserError(`the iwae evaluator cannot run on this model: ${model.noImportanceWeights ?? 'no importance weights'}`, 'eval: iwae');
      }
      const n = Math.min(data.test.n, o.max_examples ?? Infinity);
      const perPass = Math.max(1, Math.min(o.batch_size, Math.floor(o.max_rows / o.k)));
      const chunk = Math.min(o.k, o.max_rows);
      const logK = Math.log(o.k);
      let total = tf.scalar(0);
      for (let start = 0; start < n; start += perPass) {
        const end = Math.min(n, start + perPass);
        const next = tf.tidy(() => {
          const x = rows(tf, data.test, data.dim, start, end);
          // log Σ_i w_i per example, [end − start]; each chunk's own tidy frees its rows
          const parts: tfc.Tensor1D[] = [];
          for (let s = 0; s < o.k; s += chunk) {
            const size = Math.min(chunk, o.k - s);
            const lse = (xs: tfc.Tensor2D, r: Rng) => tf.logSumExp(model.logImportanceWeights!(xs, size, r), 1) as tfc.Tensor1D;
            const graph = evalGraph(tf, model, `iwae k ${size}`, [x], ([xs], r) => [lse(xs as tfc.Tensor2D, r)], ctx.rng, { compile: ctx.compile });
            parts.push(tf.tidy(() => (graph ? (graph.run([x], ctx.rng)[0] as tfc.Tensor1D) : lse(x, ctx.rng))));
          }
          const lse = parts.length === 1 ? parts[0] : tf.logSumExp(tf.stack(parts, 1), 1);
          return tf.add(total, tf.sum(tf.sub(lse, logK))) as tfc.Scalar;
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
});
