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

type GaussianSplit = NonNullable<Prior['gaussianParams']>;

/**
 * Prior.importanceSample for a diagonal Gaussian posterior (μ, log σ² from `split`): the
 * noise ε [B, k, K] is drawn as `sample` draws it for enc repeated k times, z = μ + σ·ε
 * broadcasts μ and σ over the k draws of an example (σ computed once per example), and
 * log q(z|x) = −½ Σ_K (ε² + log σ² + log 2π) is read off ε rather than recomputed from z.
 * Without `logPrior` p(z) is N(0, I) and the log 2π terms cancel:
 * log p(z) − log q(z|x) = −½ Σ_K (z² − ε²) + ½ Σ_K log σ².
 */
export function gaussianImportanceSample(
  tf: typeof tfc,
  split: GaussianSplit,
  logPrior?: (z: tfc.Tensor2D) => tfc.Tensor1D,
): NonNullable<Prior['importanceSample']> {
  return (enc, K, k, rng) =>
    tf.tidy(() => {
      const { mu, logvar } = split(enc, K);
      const B = mu.shape[0];
      const eps = tf.tensor3d(rng.normals(B * k * K), [B, k, K]);
      const z3 = tf.add(tf.expandDims(mu, 1), tf.mul(tf.expandDims(tf.exp(tf.mul(0.5, logvar)), 1), eps));
      const z = tf.reshape(z3, [B * k, K]) as tfc.Tensor2D;
      const halfLogvar = tf.mul(0.5, tf.sum(logvar, 1, true)); // [B, 1]
      if (!logPrior)
        return { z, logRatio: tf.add(tf.mul(-0.5, tf.sum(tf.sub(tf.square(z3), tf.square(eps)), 2)), halfLogvar) as tfc.Tensor2D };
      const logq = tf.sub(tf.mul(-0.5, tf.sum(tf.square(eps), 2)), tf.add(halfLogvar, 0.5 * K * Math.log(2 * Math.PI)));
      return { z, logRatio: tf.sub(tf.reshape(logPrior(z), [B, k]), logq) as tfc.Tensor2D };
    });
}

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
    importanceSample: gaussianImportanceSample(tf, split),
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
