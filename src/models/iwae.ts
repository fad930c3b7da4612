import type * as tfc from '@tensorflow/tfjs-core';
import { definePlugin, Type, type OptionsOf } from '../registry/define';
import { vaeWithImportance, latentModelOptions, latentModelCapabilities, VAE_TERMS } from './vae';
import { UserError } from '../errors';
import type { ModelBuildContext, Model } from '../contracts';

const iwaeModelOptions = {
  ...latentModelOptions,
  k: Type.Integer({ minimum: 1, default: 50, description: 'Importance samples per example in the training bound (k = 1 is the VAE)' }),
};
export type IwaeModelOptions = OptionsOf<typeof iwaeModelOptions>;

/**
 * The importance-weighted autoencoder (Burda et al. 2016): the VAE's networks and prior,
 * trained on the k-sample bound instead of the ELBO,
 *
 *   L_k(x) = E[ log (1/k) Σ_i w_i ],  w_i = p(x, z_i) / q(z_i|x),  z_1 … z_k ~ q(z|x),
 *
 * estimated with one set of k draws per example, per step; the loss is −L_k. L_1 is the
 * ELBO, and L_k ≤ L_{k+1} ≤ log p(x). The draws and log w are the VAE's own
 * (`importanceTerms` in vae.ts, the same code the iwae evaluator runs).
 *
 * Terms (train/, val/, test/), batch means in nats over the same k draws per example:
 *  - `iwae`: the k-sample bound L_k, k = model.k (what training maximises);
 *  - `elbo`: the ELBO estimated from those draws, the mean of log w_i (so val/elbo and
 *    test/elbo compare with the VAE's; its KL part is a Monte Carlo estimate);
 *  - `recon`: −mean log p(x|z_i); `kl`: mean of log q(z_i|x) − log p(z_i) (elbo = −recon − kl);
 *  - `loss` = −iwae.
 * The loss weights c1, c2 do not enter the bound. Needs a density for both the likelihood
 * (bernoulli) and the prior (gaussian).
 */
export function iwaeModel(o: IwaeModelOptions, ctx: ModelBuildContext): Model {
  const tf = ctx.tf;
  const { model, importance } = vaeWithImportance({ ...o, kind: 'vae' }, ctx);
  if (!importance) throw new UserError(`the iwae objective needs importance weights: ${model.noImportanceWeights}`, 'model.kind (iwae)');
  const logK = Math.log(o.k);
  return {
    ...model,
    terms(batch, _w, rng) {
      const { logpx, logpz, logqz } = importance(batch.x, o.k, rng);
      const logw = tf.sub(tf.add(logpx, logpz), logqz);
      const iwae = tf.mean(tf.sub(tf.logSumExp(logw, 1), logK)) as tfc.Scalar;
      const elbo = tf.mean(logw) as tfc.Scalar;
      const recon = tf.neg(tf.mean(logpx)) as tfc.Scalar;
      const kl = tf.mean(tf.sub(logqz, logpz)) as tfc.Scalar;
      return { loss: tf.neg(iwae) as tfc.Scalar, iwae, elbo, recon, kl };
    },
  };
}

export const iwaeModelPlugin = definePlugin({
  kind: 'model',
  name: 'iwae',
  capabilities: latentModelCapabilities,
  description:
    'IWAE (Burda et al.): the VAE trained on the k-sample importance-weighted bound L_k; terms iwae (L_k), elbo (L_1 from the same draws), recon, kl',
  options: iwaeModelOptions,
  termNames: () => [...VAE_TERMS, 'iwae'],
  // the bound L_k has no weights (c1 and c2 do not enter it)
  weights: {},
  create: iwaeModel,
});
