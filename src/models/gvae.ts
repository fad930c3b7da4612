import type * as tfc from '@tensorflow/tfjs-core';
import { definePlugin, Override, type OptionsOf } from '../registry/define';
import { latentParts, latentModelOptions, latentModelCapabilities } from './vae';
import { importanceTerms, importanceWeightsOf } from './importance';
import { standardWeights } from '../registry/weights';
import { glorotUniform } from '../nn/mlp';
import { isdaClassLoss } from '../losses/isda';
import { UserError } from '../errors';
import type { ModelBuildContext, Model } from '../contracts';

const gvaeOptions = { ...latentModelOptions, likelihood: Override(latentModelOptions.likelihood, { default: 'gaussian' }) };
export type GvaeOptions = OptionsOf<typeof gvaeOptions>;

/**
 * G-VAE (seed 001): a VAE whose latent distribution is read by a linear classifier
 * f(z) = Wᵀz + b through the ISDA bound of E_z[cross-entropy] (losses/isda.ts):
 *
 *   L = c1·KL + c2·recon + alpha·L_class.
 *
 * The write-up's weights are c1 = 2.5e-3, c2 = 20, alpha = 1; the author's code puts
 * 20 on the class term (CIFAR-10/CelebA) and 1 on the image term: both are just loss
 * weights in the config. Rows whose label is unknown (y = −1) skip the class term.
 */
export function gvae(o: GvaeOptions, ctx: ModelBuildContext): Model {
  const tf = ctx.tf;
  const data = ctx.data;
  if (!data.classes) throw new UserError(`gvae needs a labelled data set; '${data.name}' has no labels`, 'model.kind');
  const parts = latentParts(o, ctx);
  const { K, prior, encoder, decoder, params, buffers, nll, toData, exportable } = parts;
  if (!prior.gaussianParams) {
    throw new UserError(
      `gvae reads μ and σ² of a Gaussian posterior; prior '${o.prior.kind}' has none (use prior: {kind: gaussian})`,
      'model.prior',
    );
  }
  const gaussian = prior.gaussianParams;
  const C = data.classes;
  const W = glorotUniform(tf, ctx.rng.fork('head'), K, C);
  const b = tf.variable(tf.zeros([C]), true);
  params.set('head/w', W);
  params.set('head/b', b);

  return {
    params,
    buffers,
    latent: K,
    scheduled: prior.scheduled,
    terms(batch, w, rng, progress) {
      const enc = encoder.apply(batch.x);
      const { mu, logvar } = gaussian(enc, K);
      const z = prior.sample(enc, K, rng, progress);
      const recon = tf.mean(nll(batch.x, decoder.apply(z))) as tfc.Scalar;
      const kl = tf.mean(prior.kl(enc, K, progress, z)) as tfc.Scalar;
      // rows with an unknown label (y = −1) are masked out of the class term; the labels
      // stay on the device, so a compiled step takes them as an input
      let cls = tf.scalar(0) as tfc.Scalar;
      const labels = batch.labels ?? (batch.y ? tf.tensor1d(batch.y, 'int32') : null);
      if (labels) {
        const mask = tf.cast(tf.greaterEqual(labels, 0), 'float32') as tfc.Tensor1D;
        const perRow = isdaClassLoss(
          mu,
          tf.exp(logvar) as tfc.Tensor2D,
          W as tfc.Tensor2D,
          b as tfc.Tensor1D,
          tf.maximum(labels, 0) as tfc.Tensor1D,
        );
        cls = tf.div(tf.sum(tf.mul(perRow, mask)), tf.maximum(tf.sum(mask), 1)) as tfc.Scalar;
      }
      const loss = tf.addN([tf.mul(w.c1, kl), tf.mul(w.c2, recon), tf.mul(w.alpha, cls)]) as tfc.Scalar;
      return { loss, recon, kl, class: cls, elbo: tf.neg(tf.add(kl, recon)) as tfc.Scalar };
    },
    encodeMean: (x) => tf.tidy(() => prior.mean(encoder.apply(x), K)),
    encodeGaussian: (x) => tf.tidy(() => gaussian(encoder.apply(x), K)),
    reconstruct: (x) => tf.tidy(() => toData(decoder.apply(prior.mean(encoder.apply(x), K)))),
    decode: (z) => tf.tidy(() => toData(decoder.apply(z))),
    sampleLatent: (n, rng) => prior.sampleFromPrior(n, K, rng),
    // the head on the posterior mean
    classify: (x) => tf.tidy(() => tf.softmax(tf.add(tf.matMul(prior.mean(encoder.apply(x), K), W), b)) as tfc.Tensor2D),
    // with a likelihood and a prior that are densities (gaussian_learned, gaussian)
    ...importanceWeightsOf(tf, importanceTerms(tf, parts, o.prior.kind), parts),
    exportable,
  };
}

export const gvaeModelPlugin = definePlugin({
  kind: 'model',
  name: 'gvae',
  // a density as vae's: with a likelihood and a prior that have one
  capabilities: (o, info) => {
    const latent = latentModelCapabilities(o, info);
    return { provides: [...latent.provides, 'classify'], why: latent.why };
  },
  description: 'G-VAE: VAE + linear head on (μ, σ²) with the ISDA class bound; L = c1·KL + c2·recon + alpha·class',
  options: gvaeOptions,
  termNames: () => ['loss', 'recon', 'kl', 'class', 'elbo'],
  weights: standardWeights('c1', 'c2', 'alpha'),
  create: gvae,
});
