import { definePlugin, Type, type OptionsOf } from '../registry/define';
import { writeImageGrid } from '../plot/figures';
import { UserError } from '../errors';

import type { ClassConditionalModel, Model } from '../contracts';

const classSamplesOptions = {
  n: Type.Integer({ minimum: 1, maximum: 100, default: 10, description: 'Latent codes (columns)' }),
};
export type ClassSamplesOptions = OptionsOf<typeof classSamplesOptions>;

export function isClassConditional(m: Model): m is ClassConditionalModel {
  return (
    typeof (m as Partial<ClassConditionalModel>).decodeClass === 'function' &&
    typeof (m as Partial<ClassConditionalModel>).classes === 'number'
  );
}

/**
 * Class-conditional samples (Kingma et al. 2014, Fig. 1): n codes z ~ p(z), held fixed,
 * each decoded with every class y. One row per class, one column per z, so a column
 * shows one "style" across the classes.
 */
export const classSamplesEvaluatorPlugin = definePlugin({
  kind: 'evaluator',
  name: 'class-samples',
  // decodeClass(z, y): m2 and m1m2, which classify (gvae classifies but is not class-conditional: refused when it runs)
  needs: ['latent', 'classify', 'class-conditional'],
  description:
    'Captioned grid of p(x|y,z) for fixed z ~ p(z) (columns) and every class y (rows, labelled): artifacts/class-samples.png and .svg (m2, m1m2)',
  options: classSamplesOptions,
  metrics: () => [],
  create: (o) => ({
    async run(ctx) {
      const { tf, model, data } = ctx;
      if (!isClassConditional(model)) {
        throw new UserError(
          'the class-samples evaluator needs a class-conditional model (decodeClass(z, y): m2, m1m2)',
          'eval: class-samples',
        );
      }
      const C = model.classes;
      const img = tf.tidy(() => {
        const z = model.sampleLatent(o.n, ctx.rng);
        // row c repeats the n codes with class c
        const zAll = tf.tile(z, [C, 1]);
        const y = Int32Array.from({ length: C * o.n }, (_, i) => Math.floor(i / o.n));
        return model.decodeClass(zAll as typeof z, y);
      });
      const values = img.dataSync() as Float32Array;
      img.dispose();
      const images = Array.from({ length: C * o.n }, (_, i) => values.subarray(i * data.dim, (i + 1) * data.dim));
      await writeImageGrid(ctx.artifact('class-samples.png'), images, data.shape, o.n, {
        title: 'Class-conditional samples p(x | y, z)',
        subtitle: `Each column one z ~ p(z) (${o.n} in all), held fixed; each row decoded with class y`,
        rowLabels: Array.from({ length: C }, (_, c) => `y = ${c}`),
      });
      return {};
    },
  }),
});
