import * as fs from 'fs';
import { definePlugin, Type, type OptionsOf } from '../registry/define';
import { encodeMeans } from './latent-classifier';
import { barsSpec } from '../plot/figures';
import { writeFigure } from '../plot/render';

const sparsityOptions = {
  threshold: Type.Number({ minimum: 0, default: 0.01, description: 'A latent mean with |z| below this counts as zero' }),
  batch_size: Type.Integer({ minimum: 1, default: 1000, description: 'Examples per encoder pass' }),
};
export type SparsityOptions = OptionsOf<typeof sparsityOptions>;

export interface SparsityStats {
  /** Fraction of (example, dimension) entries with |z_mean| < threshold. */
  zeroFraction: number;
  /** Mean number of dimensions with |z_mean| ≥ threshold per example. */
  activeDimsMean: number;
  /** Per dimension: fraction of examples where it is active. */
  activationRate: number[];
  /** Dimensions active in no example. */
  deadDims: number;
}

/** Sparsity of latent codes z [n·K]: a dimension is active where |z| ≥ threshold. */
export function sparsityStats(z: Float32Array, n: number, K: number, threshold: number): SparsityStats {
  const active = new Float64Array(K);
  let total = 0;
  for (let i = 0; i < n; i++)
    for (let k = 0; k < K; k++)
      if (Math.abs(z[i * K + k]) >= threshold) {
        active[k]++;
        total++;
      }
  const activationRate = Array.from(active, (a) => a / Math.max(1, n));
  return {
    zeroFraction: 1 - total / Math.max(1, n * K),
    activeDimsMean: total / Math.max(1, n),
    activationRate,
    deadDims: activationRate.filter((r) => r === 0).length,
  };
}

/**
 * How sparse the latent means of the test split are (VSC's sparsity measure, docs/models.md
 * "Prior 2": the fraction of latent dimensions that are exactly or nearly zero). Works for
 * any model; with the spike-slab prior the means are γ⊙μ (see its `mean` option).
 */
export const sparsityEvaluatorPlugin = definePlugin({
  kind: 'evaluator',
  name: 'sparsity',
  needs: ['latent'],
  description:
    'Fraction of near-zero latent means (|z| < threshold) on the test split, active dims per example; artifacts/sparsity.json and sparsity.png/.svg (activation rate per dimension)',
  options: sparsityOptions,
  metrics: () => ['sparsity_zero_fraction', 'sparsity_active_dims_mean', 'sparsity_dead_dims'],
  create: (o) => ({
    async run(ctx) {
      const { tf, model, data } = ctx;
      const K = model.latent;
      const z = encodeMeans(tf, model, data.test.x, data.test.n, data.dim, o.batch_size, 'mean', ctx.compile);
      const s = sparsityStats(z, data.test.n, K, o.threshold);
      fs.writeFileSync(
        ctx.artifact('sparsity.json'),
        JSON.stringify(
          {
            threshold: o.threshold,
            latent: K,
            examples: data.test.n,
            zero_fraction: s.zeroFraction,
            active_dims_mean: s.activeDimsMean,
            dead_dims: s.deadDims,
            activation_rate: s.activationRate,
          },
          null,
          1,
        ),
      );
      await writeFigure(
        ctx.artifact('sparsity.png'),
        barsSpec({
          title: 'Activation rate per latent dimension',
          subtitle: `Share of ${data.test.n} test examples with |mean| ≥ ${o.threshold}; ${(100 * s.zeroFraction).toFixed(1)} % of entries near zero, ${s.activeDimsMean.toFixed(2)} active dims per example, ${s.deadDims} dead of ${K}`,
          xTitle: 'latent dimension',
          yTitle: 'activation rate',
          bars: s.activationRate.map((y, x) => ({ x, y })),
        }),
      );
      return {
        sparsity_zero_fraction: s.zeroFraction,
        sparsity_active_dims_mean: s.activeDimsMean,
        sparsity_dead_dims: s.deadDims,
      };
    },
  }),
});
