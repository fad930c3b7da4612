import type * as tfc from '@tensorflow/tfjs-core';
import { definePlugin, Type, type OptionsOf } from '../registry/define';
import { rows } from './evaluator';
import { evalGraph } from './compiled';
import type { Rng } from '../runtime/rng';
import type { CompileMode, Model, LossWeights, Split, WeightValues } from '../contracts';
import { termMeans } from '../models/model';

/**
 * Mean loss terms over a whole split with every weight the model reads at 1 (`weights`,
 * by name), so `elbo` is the evidence lower bound in nats whatever weights training used.
 * One read-back at the end. On the tensorflow backend each batch runs as one compiled
 * graph where that is exact (src/eval/compiled.ts: a model whose terms depend on the labels
 * stays eager).
 */
export function evaluateTerms(
  tf: typeof tfc,
  model: Model,
  split: Split,
  dim: number,
  batch: number,
  rng: Rng,
  weights: WeightValues,
  compile?: CompileMode,
): Record<string, number> {
  let names: string[] = [];
  // the terms but the weighted objective, as one vector
  const terms = (x: tfc.Tensor2D, y: Int32Array | null, r: Rng, w: LossWeights) => {
    const t = model.terms({ x, y }, w, r, { epoch: 0, step: 0, fraction: 1 });
    names = Object.keys(t).filter((k) => k !== 'loss');
    return tf.stack(names.map((k) => t[k])) as tfc.Tensor1D;
  };
  // the weights are inputs of a compiled graph, not constants: a scheduled hyper-parameter
  // (a weight with role 'parameter') differs from one validation to the next
  const weightNames = Object.keys(weights).sort();
  const weightInputs = weightNames.map((k) => tf.scalar(weights[k]));
  const fed = (ws: tfc.Tensor[]): LossWeights => Object.fromEntries(weightNames.map((k, i) => [k, ws[i] as tfc.Scalar]));
  let sum: tfc.Tensor1D | null = null;
  for (let start = 0; start < split.n; start += batch) {
    const end = Math.min(split.n, start + batch);
    const next: tfc.Tensor1D = tf.tidy(() => {
      const x = rows(tf, split, dim, start, end);
      const y = split.y ? split.y.subarray(start, end) : null;
      const graph = evalGraph(
        tf,
        model,
        'loss terms',
        [x, ...weightInputs],
        ([xx, ...ws], r, second) => [terms(xx as tfc.Tensor2D, second && y ? y.slice().reverse() : y, r, fed(ws))],
        rng,
        {
          compile,
          names: () => names,
        },
      );
      if (graph) names = graph.names;
      const v = graph ? (graph.run([x, ...weightInputs], rng)[0] as tfc.Tensor1D) : terms(x, y, rng, weights);
      const weighted = tf.mul(v, end - start) as tfc.Tensor1D;
      return sum ? tf.add(sum, weighted) : weighted;
    });
    sum?.dispose();
    sum = next;
  }
  const values = sum ? sum.dataSync() : new Float32Array(0);
  sum?.dispose();
  weightInputs.forEach((t) => t.dispose());
  return termMeans(model, Object.fromEntries(names.map((k, i) => [k, values[i] / split.n])));
}

const elboOptions = {
  batch_size: Type.Integer({ minimum: 1, default: 500 }),
};
export type ElboEvalOptions = OptionsOf<typeof elboOptions>;

export const elboEvaluatorPlugin = definePlugin({
  kind: 'evaluator',
  name: 'elbo',
  description: 'Test-set ELBO in nats (every loss weight at 1) and its terms: test/elbo, test/recon, test/kl',
  options: elboOptions,
  // the model's loss terms but the weighted objective (evaluateTerms skips `loss`)
  metrics: (_o, { modelTerms }) => modelTerms?.filter((t) => t !== 'loss') ?? null,
  create: (o) => ({
    async run(ctx) {
      return evaluateTerms(ctx.tf, ctx.model, ctx.data.test, ctx.data.dim, o.batch_size, ctx.rng, ctx.unitWeights, ctx.compile);
    },
  }),
});
