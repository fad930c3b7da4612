import type * as tfc from '@tensorflow/tfjs-core';
import { definePlugin, NumberRelative, Type, type OptionsOf } from '../registry/define';
import { blockLayers, noiseRows } from './prior';
import { gaussianKl, gaussianLogDensity } from '../losses/gaussian-kl';
import type { Prior } from '../contracts';

/** log σ² clamps (numerical safety), shared by the priors whose posterior is Gaussian. */
export const logvarClampOptions = {
  logvar_min: NumberRelative({
    exclusiveMaximum: { $data: '1/logvar_max' },
    default: -30,
    description: 'Clamp of log σ² from below (numerical safety); below logvar_max',
  }),
  logvar_max: Type.Number({ default: 20, description: 'Clamp of log σ² from above (numerical safety)' }),
};

export type GaussianPriorOptions = OptionsOf<typeof logvarClampOptions>;

/** Prior N(0, I) with a diagonal Gaussian posterior (μ, log σ²). docs/models.md "Prior 1". */
export function gaussianPrior(tf: typeof tfc, o: GaussianPriorOptions): Prior {
  const split = (enc: tfc.Tensor2D, K: number) => {
    const mu = tf.slice(enc, [0, 0], [-1, K]) as tfc.Tensor2D;
    const logvar = tf.clipByValue(tf.slice(enc, [0, K], [-1, K]), o.logvar_min, o.logvar_max) as tfc.Tensor2D;
    return { mu, logvar };
  };
  return {
    paramsPerLatent: 2,
    kl(enc, K) {
      return tf.tidy(() => {
        const { mu, logvar } = split(enc, K);
        return gaussianKl(mu, logvar);
      });
    },
    sample(enc, K, rng, _progress, share) {
      return tf.tidy(() => {
        const { mu, logvar } = split(enc, K);
        const B = mu.shape[0];
        const eps = noiseRows(tf, rng.normals((share?.rows ?? B) * K), B, K, share);
        return tf.add(mu, tf.mul(tf.exp(tf.mul(0.5, logvar)), eps)) as tfc.Tensor2D;
      });
    },
    mean: (enc, K) => tf.slice(enc, [0, 0], [-1, K]) as tfc.Tensor2D,
    mu: (enc, K) => tf.slice(enc, [0, 0], [-1, K]) as tfc.Tensor2D,
    sampleFromPrior: (n, K, rng) => tf.tensor2d(rng.normals(n * K), [n, K]),
    gaussianParams: split,
    exported: { meanLayers: (tfl, enc, K) => blockLayers(tfl, enc, 2, K, 0, 'mean'), prior: { kind: 'normal' } },
    logPrior: (z) => gaussianLogDensity(z, 0, 0),
    logPosterior(z, enc, K) {
      return tf.tidy(() => {
        const { mu, logvar } = split(enc, K);
        return gaussianLogDensity(z, mu, logvar);
      });
    },
  };
}

export const gaussianPriorPlugin = definePlugin({
  kind: 'prior',
  name: 'gaussian',
  // logPrior and logPosterior: importance weighting (iwae) works
  provides: ['density'],
  description: 'p(z) = N(0, I), diagonal Gaussian posterior; closed-form KL',
  options: logvarClampOptions,
  create: (o, ctx) => gaussianPrior(ctx.tf, o),
});
