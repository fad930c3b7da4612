import { definePlugin, Type, type OptionsOf } from '../registry/define';
import { rows } from './evaluator';
import { writeImageGrid } from '../plot/figures';

const reconstructionsOptions = {
  n: Type.Integer({ minimum: 1, maximum: 1000, default: 32, description: 'How many test images' }),
};
export type ReconstructionsOptions = OptionsOf<typeof reconstructionsOptions>;

/**
 * A grid of test images and their reconstructions: rows in pairs, a row of up to 16 test
 * images ("original") above their reconstructions ("reconstruction").
 */
export const reconstructionsEvaluatorPlugin = definePlugin({
  kind: 'evaluator',
  name: 'reconstructions',
  needs: ['latent'],
  description:
    'Captioned grid of test images (rows "original") above their reconstructions from the posterior mean (artifacts/reconstructions.png and .svg)',
  options: reconstructionsOptions,
  metrics: () => [],
  create: (o) => ({
    async run(ctx) {
      const { tf, model, data } = ctx;
      const n = Math.min(o.n, data.test.n);
      const x = rows(tf, data.test, data.dim, 0, n);
      const r = model.reconstruct(x);
      const recon = r.dataSync() as Float32Array;
      x.dispose();
      r.dispose();
      const cols = Math.min(16, n);
      const blank = new Float32Array(data.dim).fill(1);
      const images: Float32Array[] = [];
      const rowLabels: string[] = [];
      for (let s = 0; s < n; s += cols) {
        const row = (src: Float32Array) =>
          Array.from({ length: cols }, (_, j) => (s + j < n ? src.subarray((s + j) * data.dim, (s + j + 1) * data.dim) : blank));
        images.push(...row(data.test.x), ...row(recon));
        rowLabels.push('original', 'reconstruction');
      }
      await writeImageGrid(ctx.artifact('reconstructions.png'), images, data.shape, cols, {
        title: 'Reconstructions',
        subtitle: `The first ${n} test images (rows "original") and their reconstructions from the posterior mean, each below its original`,
        rowLabels,
      });
      return {};
    },
  }),
});
