import type * as tfc from '@tensorflow/tfjs-core';
import { definePlugin, Type, type OptionsOf } from '../registry/define';
import { writeImageGrid } from '../plot/figures';
import { subset } from '../data/splits';
import { loadRunModel, openFinishedRun } from '../models/load-run';
import { UserError } from '../errors';
import type { PluginContext, EvalContext, Model } from '../contracts';

const augmentOptions = {
  lambda_clip: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 0.1, description: 'Fraction of latent dims (largest σ) moved' }),
  steps: Type.Integer({ minimum: 1, default: 6, description: 'Steps of 0.5σ each way (6: to 3σ)' }),
  per_class: Type.Integer({ minimum: 1, default: 2, description: 'Test images per class in the grid' }),
  kept_per_class: Type.Optional(
    Type.Integer({ minimum: 1, description: 'Test images per class the class-kept rates are measured on (default: per_class)' }),
  ),
  compare_run: Type.Optional(
    Type.String({
      description:
        'A finished plain-VAE run on the same data (or a directory of runs: its latest finished one), drawn beside and, with judge_run, judged too',
    }),
  ),
  judge_run: Type.Optional(
    Type.String({
      description:
        'A finished classifier run on the same data (or a directory of runs: its latest finished one), e.g. of configs/mnist/cnn-judge.yaml, that judges the decoded augmentations: augment_judge_i<i>_kept',
    }),
  ),
  batch_size: Type.Integer({ minimum: 1, default: 50, description: 'Test images per encode/decode pass (each gives 2·steps + 1 images)' }),
};
export type AugmentOptions = OptionsOf<typeof augmentOptions>;

const WHERE = 'eval: augment';
const JUDGE_HINT =
  'train the judge first, e.g. elbo run configs/mnist/cnn-judge.yaml (judge_run then names its run, or runs/mnist-cnn-judge for the latest)';

/**
 * The decoded augmentations of the images x [B, D]: row b, column c (c = 0 … 2·steps) is
 * μ_b + 0.5·(c − steps)·δ_b, with δ = σ on the top λ_clip fraction of latent dimensions by
 * σ (0 elsewhere). Returned flat, [B·cols·D]. Encoded and decoded `batch` images at a time.
 */
function augmentImages(tf: typeof tfc, model: Model, x: Float32Array, B: number, D: number, o: AugmentOptions): Float32Array {
  if (!model.encodeGaussian) throw new UserError('augment needs a model with a Gaussian posterior (μ, σ²)', WHERE);
  const cols = 2 * o.steps + 1;
  const out = new Float32Array(B * cols * D);
  for (let start = 0; start < B; start += o.batch_size) {
    const n = Math.min(B, start + o.batch_size) - start;
    const images = tf.tidy(() => {
      const { mu, logvar } = model.encodeGaussian!(tf.tensor2d(x.subarray(start * D, (start + n) * D), [n, D]));
      const K = mu.shape[1];
      const sigma = tf.exp(tf.mul(0.5, logvar)).arraySync() as number[][];
      const keep = Math.max(1, Math.ceil(o.lambda_clip * K));
      const offsets = new Float32Array(n * cols * K);
      sigma.forEach((s, b) => {
        const top = s
          .map((v, k) => [v, k])
          .sort((p, q) => q[0] - p[0])
          .slice(0, keep)
          .map(([, k]) => k);
        for (let c = 0; c < cols; c++) for (const k of top) offsets[(b * cols + c) * K + k] = 0.5 * (c - o.steps) * s[k];
      });
      const muRep = tf.reshape(tf.add(tf.expandDims(mu, 1), tf.zeros([1, cols, 1])), [n * cols, K]);
      return model.decode(tf.add(muRep, tf.tensor2d(offsets, [n * cols, K])) as tfc.Tensor2D).dataSync() as Float32Array;
    });
    out.set(images, start * cols * D);
  }
  return out;
}

/**
 * Share of the augmentations a classifier still gives the image's class: per step
 * i = 0 … steps (the columns −i and +i together; i = 0 is the decoded μ) and over all
 * columns. `labels` holds one class per image.
 */
function keptRates(
  tf: typeof tfc,
  classifier: Model,
  images: Float32Array,
  labels: number[],
  D: number,
  o: AugmentOptions,
): { perStep: number[]; all: number; moved: number } {
  const cols = 2 * o.steps + 1;
  const rows = images.length / D;
  const hits = new Array(o.steps + 1).fill(0);
  const counts = new Array(o.steps + 1).fill(0);
  const chunk = o.batch_size * cols;
  for (let start = 0; start < rows; start += chunk) {
    const n = Math.min(rows, start + chunk) - start;
    const pred = tf.tidy(() =>
      tf.argMax(classifier.classify!(tf.tensor2d(images.subarray(start * D, (start + n) * D), [n, D])), 1).dataSync(),
    );
    for (let r = 0; r < n; r++) {
      const row = start + r;
      const i = Math.abs((row % cols) - o.steps);
      counts[i]++;
      if (pred[r] === labels[Math.floor(row / cols)]) hits[i]++;
    }
  }
  const sum = (a: number[]) => a.reduce((s, v) => s + v, 0);
  return {
    perStep: hits.map((h, i) => h / counts[i]),
    all: sum(hits) / sum(counts),
    moved: sum(hits.slice(1)) / sum(counts.slice(1)),
  };
}

/** The metrics of one classifier's rates, `<name>_kept` (over `which`) and `<name>_i<i>_kept`. */
function rateMetrics(name: string, r: { perStep: number[]; all: number; moved: number }, which: 'all' | 'moved'): Record<string, number> {
  const out: Record<string, number> = { [`${name}_kept`]: r[which] };
  r.perStep.forEach((v, i) => (out[`${name}_i${i}_kept`] = v));
  return out;
}

/**
 * G-VAE's augmentation (the G-VAE write-up): for a test image, sort σ descending,
 * keep the top λ_clip fraction (δ = σ there, 0 elsewhere) and decode μ + 0.5·i·δ for
 * i = −steps … steps (to 3σ with steps = 6). The grid has one row per image (per_class
 * images per class; centre column μ); with compare_run (a finished plain-VAE run on the
 * same data) that run's row is drawn beside.
 *
 * Class-kept rates, on kept_per_class test images per class (default per_class):
 *  - the model's own classifier, when it has one (G-VAE's head on μ): augment_class_kept
 *    over every column, augment_class_i<i>_kept per step i (−i and +i together; i = 0 is
 *    the decoded μ);
 *  - judge_run: an independent classifier, a finished `classifier` run on the same data
 *    (configs/mnist/cnn-judge.yaml), judges the decoded images instead of the model's own
 *    head: augment_judge_i<i>_kept per step i = 0 … steps, and augment_judge_kept over the
 *    moved images (i = 1 … steps);
 *  - judge_run and compare_run: the same judge on the plain VAE's augmentations,
 *    augment_compare_judge_i<i>_kept and augment_compare_judge_kept.
 */
export const augmentEvaluatorPlugin = definePlugin({
  kind: 'evaluator',
  name: 'augment',
  needs: ['latent'],
  description:
    'G-VAE augmentation: decode μ ± 0.5·i·δ (top λ_clip σ dims) per test image (artifacts/augment.png); class-kept rates per i by the model’s head and by an independent judge run',
  options: augmentOptions,
  metrics: (o) => {
    const steps = Array.from({ length: o.steps + 1 }, (_, i) => i);
    const rates = (name: string) => [`${name}_kept`, ...steps.map((i) => `${name}_i${i}_kept`)];
    // augment_class_* only when the model classifies
    return [
      ...rates('augment_class'),
      ...(o.judge_run ? rates('augment_judge') : []),
      ...(o.judge_run && o.compare_run ? rates('augment_compare_judge') : []),
    ];
  },
  create: (o, pctx: PluginContext) => {
    // the runs must exist before training starts, not after it
    if (o.judge_run) openFinishedRun(o.judge_run, pctx.baseDir, `${WHERE}.judge_run`, JUDGE_HINT);
    if (o.compare_run) openFinishedRun(o.compare_run, pctx.baseDir, `${WHERE}.compare_run`);
    return {
      async run(ctx: EvalContext) {
        const { tf, model, data } = ctx;
        if (!data.test.y) throw new UserError('augment picks test images per class and needs labels', WHERE);
        const D = data.dim;
        const cols = 2 * o.steps + 1;
        const measured = Math.max(o.per_class, o.kept_per_class ?? o.per_class);
        const picks: number[] = [];
        const inGrid: boolean[] = [];
        for (let c = 0; c < data.classes; c++) {
          let found = 0;
          for (let i = 0; i < data.test.n && found < measured; i++)
            if (data.test.y[i] === c) {
              picks.push(i);
              inGrid.push(found < o.per_class);
              found++;
            }
        }
        const labels = picks.map((i) => data.test.y![i]);
        const x = subset(data.test, D, picks).x;
        const images = augmentImages(tf, model, x, picks.length, D, o);
        let other: Float32Array | null = null;
        if (o.compare_run) {
          const { model: vae } = await loadRunModel(o.compare_run, tf, pctx.registry, data, `${WHERE}.compare_run`, {
            baseDir: pctx.baseDir,
          });
          other = augmentImages(tf, vae, x, picks.length, D, o);
        }
        // the grid: per_class images per class, the compared run's row beside
        const row = (imgs: Float32Array, b: number) =>
          Array.from({ length: cols }, (_, c) => imgs.slice((b * cols + c) * D, (b * cols + c + 1) * D));
        const blank = new Float32Array(D).fill(1);
        const grid = picks.flatMap((_, b) => (!inGrid[b] ? [] : other ? [...row(images, b), blank, ...row(other, b)] : row(images, b)));
        // columns: the step in σ, labelled at whole σ (the centre column is the decoded μ)
        const stepLabels = Array.from({ length: cols }, (_, c) => {
          const s = 0.5 * (c - o.steps);
          return s === 0 ? 'μ' : Number.isInteger(s) ? `${s > 0 ? '+' : '−'}${Math.abs(s)}σ` : '';
        });
        await writeImageGrid(ctx.artifact('augment.png'), grid, data.shape, other ? 2 * cols + 1 : cols, {
          title: 'Augmentations (as G-VAE makes them): decoded μ + 0.5·i·δ',
          subtitle: `δ = σ on the top ${o.lambda_clip} of latent dimensions by σ, i = −${o.steps} … ${o.steps}; one row per test image${
            other ? `; left: this run, right: ${o.compare_run}` : ''
          }`,
          rowLabels: picks.filter((_, b) => inGrid[b]).map((i) => `class ${data.test.y![i]}`),
          colLabels: other ? [...stepLabels, '', ...stepLabels] : stepLabels,
        });

        const out: Record<string, number> = {};
        if (model.classify) Object.assign(out, rateMetrics('augment_class', keptRates(tf, model, images, labels, D, o), 'all'));
        if (o.judge_run) {
          const { model: judge, runDir } = await loadRunModel(o.judge_run, tf, pctx.registry, data, `${WHERE}.judge_run`, {
            baseDir: pctx.baseDir,
            hint: JUDGE_HINT,
          });
          if (!judge.classify)
            throw new UserError(
              `the judge run ${runDir} has no classifier (its model must classify, e.g. kind: classifier)`,
              `${WHERE}.judge_run`,
            );
          const rates = keptRates(tf, judge, images, labels, D, o);
          Object.assign(out, rateMetrics('augment_judge', rates, 'moved'));
          let line = `augment: the judge (${runDir}) keeps the class of ${(100 * rates.perStep[0]).toFixed(1)}% of the decoded μ and ${rates.perStep
            .slice(1)
            .map((v, i) => `${(100 * v).toFixed(1)}% at ±${i + 1}`)
            .join(', ')}`;
          if (other) {
            const cmp = keptRates(tf, judge, other, labels, D, o);
            Object.assign(out, rateMetrics('augment_compare_judge', cmp, 'moved'));
            line += `; of the compared run's: ${cmp.perStep.map((v, i) => `${(100 * v).toFixed(1)}% at ±${i}`).join(', ')}`;
          }
          ctx.log(`${line} (${picks.length} test images)`);
        }
        return out;
      },
    };
  },
});
