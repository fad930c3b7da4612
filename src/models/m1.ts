import { definePlugin, Override, type OptionsOf } from '../registry/define';
import { vae, latentModelOptions, latentModelCapabilities, VAE_TERMS } from './vae';
import { standardWeights } from '../registry/weights';
import type { ModelBuildContext, Model } from '../contracts';

const M1_NETWORK = { kind: 'mlp', hidden: [500, 500], activation: 'softplus' };

const m1Options = {
  ...latentModelOptions,
  latent: Override(latentModelOptions.latent, { default: 50 }),
  encoder: Override(latentModelOptions.encoder, { default: M1_NETWORK }),
  decoder: Override(latentModelOptions.decoder, { default: M1_NETWORK }),
};
export type M1Options = OptionsOf<typeof m1Options>;

/**
 * M1 of Kingma et al. 2014 (docs/models.md "Model: VAE and M1"): a VAE trained on all
 * training images with their labels unused. It is the `vae` model with M1's reference
 * defaults (MLP 784-500-500-z50, softplus, Bernoulli likelihood); its classifier is the
 * `latent-classifier` evaluator, which fits a transductive SVM (the paper's: the N labelled
 * latent means plus unlabelled ones) or an inductive classifier (SVM / logistic regression /
 * k-NN, the labelled latent means only) and reports the test error.
 */
export function m1(o: M1Options, ctx: ModelBuildContext): Model {
  return vae({ ...o, kind: 'vae' }, ctx);
}

export const m1ModelPlugin = definePlugin({
  kind: 'model',
  name: 'm1',
  capabilities: latentModelCapabilities,
  description:
    'M1 (Kingma et al. 2014): a VAE on all images, labels unused (defaults 784-500-500-z50 softplus); pair it with the latent-classifier evaluator on the N labelled examples',
  options: m1Options,
  termNames: () => VAE_TERMS,
  weights: standardWeights('c1', 'c2'),
  create: m1,
});
