import type { Plugin } from '../registry/types';
import type { Evaluator } from './evaluator';
import { writeImageGrid } from '../plot/figures';

export interface SamplesOptions {
  kind: 'samples';
  n: number;
}

/** PNG grid of decoded draws from the prior. */
export const samplesEvaluator: Plugin<SamplesOptions, Evaluator> = {
  kind: 'evaluator',
  name: 'samples',
  needs: ['latent'],
  description: 'PNG grid of images decoded from prior draws z ~ p(z) (artifacts/samples.png)',
  schema: { properties: { n: { type: 'integer', minimum: 1, maximum: 1000, default: 64 } } },
  metrics: () => [],
  create: (o) => ({
    async run(ctx) {
      const { tf, model, data } = ctx;
      const img = tf.tidy(() => model.decode(model.sampleLatent(o.n, ctx.rng)));
      const values = img.dataSync() as Float32Array;
      img.dispose();
      const images = Array.from({ length: o.n }, (_, i) => values.subarray(i * data.dim, (i + 1) * data.dim));
      await writeImageGrid(ctx.artifact('samples.png'), images, data.shape, Math.min(16, o.n), {
        title: 'Samples from the prior',
        subtitle: `${o.n} images decoded from independent draws z ~ p(z)`,
      });
      return {};
    },
  }),
};
