import type * as tfc from '@tensorflow/tfjs-core';
import { definePlugin, Type, type OptionsOf } from '../registry/define';
import { UserError } from '../errors';
import { gaussianImportanceSample, gaussianPrior, logvarClampOptions } from './gaussian';
import type { PriorContext, Network, Prior } from '../contracts';

const vampOptions = {
  components: Type.Integer({
    minimum: 1,
    default: 500,
    description: 'Number J of pseudo-inputs (mixture components); the paper uses 500 on MNIST',
  }),
  init_mean: Type.Number({
    minimum: 0,
    maximum: 1,
    default: 0.05,
    description: 'Pseudo-inputs start as N(init_mean, init_std²) per input value (the reference code: 0.05, 0.01)',
  }),
  init_std: Type.Number({ minimum: 0, default: 0.01, description: 'Spread of the pseudo-inputs at the start' }),
  ...logvarClampOptions,
};
export type VampPriorOptions = OptionsOf<typeof vampOptions>;

/**
 * The VampPrior (Tomczak & Welling 2018; docs/models.md "Prior 3"): p(z) = (1/J) Σ_j q(z|u_j),
 * the model's own encoder applied to J learned pseudo-inputs u_j (clipped to [0, 1] as the
 * data are, the reference code's hardtanh), with the diagonal Gaussian posterior of the
 * gaussian prior. Its parameters are the pseudo-inputs; it reads the encoder when it
 * computes (PriorContext.encoder) and estimates the KL with the sampled z:
 * KL ≈ log q(z|x) − log p(z).
 *
 * log p(z) over all pairs (row b, component j) is Σ_k of
 *   −½ [(z_k − μ_jk)² / σ²_jk + log σ²_jk + log 2π],
 * expanded into matrix products (z² · (1/σ²)ᵀ − 2 z · (μ/σ²)ᵀ + Σ μ²/σ²) so that no
 * [rows, J, K] tensor is made (importance weighting scores thousands of rows), then a
 * logSumExp over j minus log J.
 */
export function vampPrior(tf: typeof tfc, o: VampPriorOptions, ctx: PriorContext): Prior {
  const K = ctx.latent;
  const J = o.components;
  const base = gaussianPrior(tf, o);
  const rng = ctx.rng.fork('pseudo-inputs');
  const init = Float32Array.from(rng.normals(J * ctx.inDim), (e) => o.init_mean + o.init_std * e);
  const pseudo = tf.variable(tf.tensor2d(init, [J, ctx.inDim]), true);
  const encoder = (): Network => {
    if (!ctx.encoder)
      throw new UserError('the vamp prior needs a model with an encoder (it passes its pseudo-inputs through it)', 'model.prior');
    return ctx.encoder();
  };
  /** μ and log σ² of q(z|u_j) for every pseudo-input: [J, K] each. */
  const components = () => base.gaussianParams!(encoder().apply(tf.clipByValue(pseudo, 0, 1) as tfc.Tensor2D), K);
  const logPrior = (z: tfc.Tensor2D): tfc.Tensor1D =>
    tf.tidy(() => {
      const { mu, logvar } = components();
      const prec = tf.exp(tf.neg(logvar)); // 1/σ² [J, K]
      const quad = tf.add(
        tf.sub(tf.matMul(tf.square(z), prec, false, true), tf.mul(2, tf.matMul(z, tf.mul(mu, prec), false, true))),
        tf.sum(tf.mul(tf.square(mu), prec), 1),
      ); // [rows, J]
      const logN = tf.mul(-0.5, tf.add(tf.add(quad, tf.sum(logvar, 1)), K * Math.log(2 * Math.PI)));
      return tf.sub(tf.logSumExp(logN, 1), Math.log(J)) as tfc.Tensor1D;
    });
  // the Gaussian posterior's pieces, named one by one: whatever else the gaussian prior says of
  // itself (its N(0, I)) is not true of this one
  const { paramsPerLatent, sample, mean, mu, gaussianParams, logPosterior } = base;
  return {
    paramsPerLatent,
    sample,
    mean,
    mu,
    gaussianParams,
    logPosterior,
    params: new Map([['pseudo_inputs', pseudo]]),
    kl(enc, K2, _progress, z) {
      if (!z) throw new UserError('the vamp prior estimates the KL with the sampled z: the model must pass it to prior.kl', 'model.prior');
      return tf.tidy(() => tf.sub(logPosterior!(z, enc, K2), logPrior(z)) as tfc.Tensor1D);
    },
    logPrior,
    importanceSample: gaussianImportanceSample(tf, gaussianParams!, logPrior),
    sampleFromPrior(n, K2, rng2) {
      return tf.tidy(() => {
        const { mu, logvar } = components();
        const pick = tf.tensor1d(
          Int32Array.from(rng2.uniforms(n), (u) => Math.min(J - 1, Math.floor(u * J))),
          'int32',
        );
        const eps = tf.tensor2d(rng2.normals(n * K2), [n, K2]);
        return tf.add(tf.gather(mu, pick), tf.mul(tf.exp(tf.mul(0.5, tf.gather(logvar, pick))), eps)) as tfc.Tensor2D;
      });
    },
  };
}

export const vampPriorPlugin = definePlugin({
  kind: 'prior',
  name: 'vamp',
  // logPrior (the mixture) and logPosterior (the Gaussian): importance weighting works
  provides: ['density'],
  description:
    'VampPrior (Tomczak & Welling 2018): p(z) = mean over J learned pseudo-inputs u_j of q(z|u_j); Gaussian posterior; KL estimated with the sampled z',
  options: vampOptions,
  create: (o, ctx) => vampPrior(ctx.tf, o, ctx),
});
