import { definePlugin, Type, type OptionsOf } from '../registry/define';
import { writeImageGrid } from '../plot/figures';

const samplesOptions = {
  n: Type.Integer({ minimum: 1, maximum: 1000, default: 64 }),
};
export type SamplesOptions = OptionsOf<typeof samplesOptions>;

/** A captioned grid of decoded draws from the prior. */
export const samplesEvaluatorPlugin = definePlugin({
  kind: 'evaluator',
  name: 'samples',
  needs: ['latent'],
  description: 'Captioned grid of images decoded from prior draws z ~ p(z) (artifacts/samples.png and .svg)',
  options: samplesOptions,
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
});
