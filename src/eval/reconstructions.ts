import { definePlugin, Type, type OptionsOf } from '../registry/types';
import { rows } from './evaluator';
import { writeImageGrid } from '../util/png';

const reconstructionsOptions = {
  n: Type.Integer({ minimum: 1, maximum: 1000, default: 32, description: 'How many test images' }),
};
export type ReconstructionsOptions = OptionsOf<typeof reconstructionsOptions>;

/** PNG grid of test images (odd columns) beside their reconstructions (even columns). */
export const reconstructionsEvaluator = definePlugin({
  kind: 'evaluator',
  name: 'reconstructions',
  needs: ['latent'],
  description: 'PNG grid of test images beside their reconstructions from the posterior mean (artifacts/reconstructions.png)',
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
      const images: Float32Array[] = [];
      for (let i = 0; i < n; i++) {
        images.push(data.test.x.subarray(i * data.dim, (i + 1) * data.dim));
        images.push(recon.subarray(i * data.dim, (i + 1) * data.dim));
      }
      writeImageGrid(ctx.artifact('reconstructions.png'), images, data.shape, 16);
      return {};
    },
  }),
});
