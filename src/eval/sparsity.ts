import * as fs from 'fs';
import { PNG } from 'pngjs';
import type { Plugin } from '../registry/types';
import type { Evaluator } from './evaluator';
import { encodeMeans } from './latent-classifier';

export interface SparsityOptions {
  kind: 'sparsity';
  threshold: number;
  batch_size: number;
}

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

/** A bar plot of per-dimension activation rates (one bar per latent dimension, 0 … 1 high). */
function writeBarPlot(file: string, rates: number[]): void {
  const barW = Math.max(1, Math.min(8, Math.floor(800 / Math.max(1, rates.length))));
  const H = 120;
  const pad = 4;
  const W = rates.length * barW + 2 * pad;
  const png = new PNG({ width: W, height: H + 2 * pad });
  png.data.fill(255);
  const set = (x: number, y: number, rgb: [number, number, number]) => {
    const o = (y * W + x) * 4;
    png.data[o] = rgb[0];
    png.data[o + 1] = rgb[1];
    png.data[o + 2] = rgb[2];
    png.data[o + 3] = 255;
  };
  for (let x = 0; x < W; x++) set(x, pad + H - 1, [0, 0, 0]); // axis at rate 0
  rates.forEach((r, k) => {
    const h = Math.round(r * (H - 1));
    for (let dx = 0; dx < barW - (barW > 2 ? 1 : 0); dx++)
      for (let y = 0; y < h; y++) set(pad + k * barW + dx, pad + H - 1 - y, [40, 90, 200]);
  });
  fs.writeFileSync(file, PNG.sync.write(png));
}

/**
 * How sparse the latent means of the test split are (VSC's sparsity measure, SPEC.md
 * "Prior 2": the fraction of latent dimensions that are exactly or nearly zero). Works for
 * any model; with the spike-slab prior the means are γ⊙μ (see its `mean` option).
 */
export const sparsityEvaluator: Plugin<SparsityOptions, Evaluator> = {
  kind: 'evaluator',
  name: 'sparsity',
  needs: ['latent'],
  description:
    'Fraction of near-zero latent means (|z| < threshold) on the test split, active dims per example; artifacts/sparsity.json and sparsity.png (activation rate per dimension)',
  schema: {
    properties: {
      threshold: { type: 'number', minimum: 0, default: 0.01, description: 'A latent mean with |z| below this counts as zero' },
      batch_size: { type: 'integer', minimum: 1, default: 1000, description: 'Examples per encoder pass' },
    },
  },
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
      writeBarPlot(ctx.artifact('sparsity.png'), s.activationRate);
      return {
        sparsity_zero_fraction: s.zeroFraction,
        sparsity_active_dims_mean: s.activeDimsMean,
        sparsity_dead_dims: s.deadDims,
      };
    },
  }),
};
