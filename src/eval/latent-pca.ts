import * as fs from 'fs';
import { definePlugin, Type, type OptionsOf } from '../registry/define';
import { scatterSpec } from '../plot/figures';
import { writeFigure } from '../plot/render';
import { encodeMeans } from './latent-classifier';

const latentPcaOptions = {
  max_examples: Type.Integer({ minimum: 2, default: 5000, description: 'Test examples to project (the first N)' }),
  size: Type.Integer({
    minimum: 64,
    maximum: 4096,
    default: 460,
    description: 'Width and height of the plot area in SVG pixels (the PNG has twice as many)',
  }),
  batch_size: Type.Integer({ minimum: 1, default: 1000 }),
};
export type LatentPcaOptions = OptionsOf<typeof latentPcaOptions>;

/** Ten distinguishable colours (Tableau 10), then hues around the wheel for more classes. */
export function classColour(c: number): [number, number, number] {
  const base: [number, number, number][] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
  ];
  if (c < base.length) return base[c];
  const h = ((c * 0.618033988749895) % 1) * 6;
  const x = 1 - Math.abs((h % 2) - 1);
  const [r, g, b] = h < 1 ? [1, x, 0] : h < 2 ? [x, 1, 0] : h < 3 ? [0, 1, x] : h < 4 ? [0, x, 1] : h < 5 ? [x, 0, 1] : [1, 0, x];
  return [Math.round(40 + 180 * r), Math.round(40 + 180 * g), Math.round(40 + 180 * b)];
}

/**
 * The top `k` principal components of n points in d dimensions (row-major), by power
 * iteration with deflation on the d×d covariance (plain TS, float64). Returns the
 * components (unit vectors), their variances, the total variance and the mean.
 */
export function pca(
  x: Float32Array | Float64Array,
  n: number,
  d: number,
  k = 2,
  iterations = 500,
): { components: number[][]; variances: number[]; total: number; mean: number[] } {
  const mean = new Array(d).fill(0);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += x[i * d + j] / n;
  const cov = Array.from({ length: d }, () => new Float64Array(d));
  for (let i = 0; i < n; i++)
    for (let a = 0; a < d; a++) {
      const va = x[i * d + a] - mean[a];
      if (va === 0) continue;
      const row = cov[a];
      for (let b = a; b < d; b++) row[b] += va * (x[i * d + b] - mean[b]);
    }
  for (let a = 0; a < d; a++)
    for (let b = a; b < d; b++) {
      cov[a][b] /= Math.max(1, n - 1);
      cov[b][a] = cov[a][b];
    }
  const total = cov.reduce((s, row, a) => s + row[a], 0);
  const components: number[][] = [];
  const variances: number[] = [];
  for (let c = 0; c < Math.min(k, d); c++) {
    // deterministic start, not orthogonal to any axis
    let v = Array.from({ length: d }, (_, j) => 1 + 0.1 * Math.sin(j + 1 + c));
    let lambda = 0;
    for (let it = 0; it < iterations; it++) {
      const w = cov.map((row) => row.reduce((s, r, j) => s + r * v[j], 0));
      // deflate: remove the components found so far
      for (const u of components) {
        const dot = w.reduce((s, wi, j) => s + wi * u[j], 0);
        for (let j = 0; j < d; j++) w[j] -= dot * u[j];
      }
      const norm = Math.sqrt(w.reduce((s, wi) => s + wi * wi, 0));
      if (norm === 0) break;
      const next = w.map((wi) => wi / norm);
      const change = next.reduce((s, ni, j) => s + Math.abs(ni - v[j]), 0);
      v = next;
      lambda = norm;
      if (change < 1e-10) break;
    }
    components.push(v);
    variances.push(lambda);
  }
  return { components, variances, total, mean };
}

/** A colour as #rrggbb. */
function hex(rgb: [number, number, number]): string {
  return '#' + rgb.map((v) => v.toString(16).padStart(2, '0')).join('');
}

/**
 * A 2-D PCA projection of the test set's latent means (`model.encodeMean`), drawn as a
 * scatter plot coloured by class with a class legend, the points in an order drawn from
 * the run seed so that no class is drawn over all the others: artifacts/latent-pca.png
 * (and .svg), with the components, their explained variance and the class colours in
 * artifacts/latent-pca.json.
 */
export const latentPcaEvaluatorPlugin = definePlugin({
  kind: 'evaluator',
  name: 'latent-pca',
  needs: ['latent'],
  description:
    'Scatter plot of the test latent means projected on their first 2 principal components, coloured by class (artifacts/latent-pca.png and .svg)',
  options: latentPcaOptions,
  metrics: () => ['pca_explained_1', 'pca_explained_2'],
  create: (o) => ({
    async run(ctx) {
      const { tf, model, data } = ctx;
      const n = Math.min(o.max_examples, data.test.n);
      const K = model.latent;
      const mu = encodeMeans(tf, model, data.test.x, n, data.dim, o.batch_size, 'mean', ctx.compile);
      const { components, variances, total, mean } = pca(mu, n, K, 2);
      const proj = Array.from({ length: n }, (_, i) =>
        components.map((u) => u.reduce((acc, uj, j) => acc + uj * (mu[i * K + j] - mean[j]), 0)),
      );
      if (components.length < 2) proj.forEach((p) => p.push(0));
      const explained = variances.map((v) => (total > 0 ? v / total : 0));
      const classes = data.classes || 0;
      const y = data.test.y;
      const order = ctx.rng.permutation(n);
      const pct = (i: number) => (explained[i] === undefined ? '' : ` (${(100 * explained[i]).toFixed(1)} % of the variance)`);
      await writeFigure(
        ctx.artifact('latent-pca.png'),
        scatterSpec({
          title: 'Latent means on their first two principal components',
          subtitle: `${n} test examples, ${K} latent dimensions`,
          xTitle: `PC 1${pct(0)}`,
          yTitle: `PC 2${pct(1)}`,
          points: Array.from(order, (i) => ({ x: proj[i][0], y: proj[i][1], cls: y ? String(y[i]) : 'unlabelled' })),
          classes: y
            ? Array.from({ length: classes }, (_, c) => ({ name: String(c), colour: hex(classColour(c)) }))
            : [{ name: 'unlabelled', colour: '#3c3c3c' }],
          size: o.size,
        }),
      );
      fs.writeFileSync(
        ctx.artifact('latent-pca.json'),
        JSON.stringify(
          {
            examples: n,
            latent: K,
            explained_variance_ratio: explained,
            components,
            mean,
            colours: Object.fromEntries(Array.from({ length: classes }, (_, c) => [c, hex(classColour(c))])),
          },
          null,
          1,
        ),
      );
      return { pca_explained_1: explained[0] ?? 0, pca_explained_2: explained[1] ?? 0 };
    },
  }),
});
