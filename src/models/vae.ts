import type * as tfc from '@tensorflow/tfjs-core';
import { definePlugin, Enum, slot, Type, type OptionsOf } from '../registry/define';
import { collectVariables } from '../nn/network';
import { standardWeights } from '../registry/weights';
import { likelihoodOf, NOT_A_DENSITY } from '../losses/likelihood';
import { importanceTerms, importanceWeightsOf, type ImportanceTerms } from './importance';
import {
  type CapabilitiesOf,
  type ModelBuildContext,
  type PluginOptions,
  type Model,
  type Network,
  LIKELIHOODS,
  type LikelihoodName,
  type LatentParts,
  type LatentPartsOptions,
} from '../contracts';

export type { ImportanceTerms };

/** Model options every model with a latent z shares. */
export const latentModelOptions = {
  latent: Type.Integer({ minimum: 1, default: 20, description: 'Latent size K' }),
  prior: slot('prior', { default: { kind: 'gaussian' } }),
  encoder: slot('network', { default: { kind: 'mlp' } }),
  decoder: slot('network', { default: { kind: 'mlp' } }),
  likelihood: Enum(LIKELIHOODS, {
    default: 'bernoulli',
    description:
      'bernoulli: −log p(x|z) = Σ BCE (x in [0,1]); gaussian: the image loss ‖x − x̂‖² (fixed variance, no density); gaussian_learned: −log N(x; μ, σ²) with μ and log σ² from the decoder',
  }),
};

export type VaeOptions = OptionsOf<typeof latentModelOptions>;

/**
 * The prior, encoder, decoder and likelihood of an encoder → z → decoder model, created
 * through the registry with `ctx` (what every model context's `latentParts` calls).
 */
export function latentParts(o: LatentPartsOptions, ctx: ModelBuildContext): LatentParts {
  const data = ctx.data;
  const K = o.latent;
  const likelihoodName = o.likelihood ?? 'bernoulli';
  const likelihood = likelihoodOf(likelihoodName, data.dim);
  // the prior comes first (the encoder's size depends on it); a prior that reads the encoder gets it when it computes
  let built: Network | null = null;
  const prior = ctx.registry.create('prior', o.prior, {
    ...ctx,
    rng: ctx.rng.fork('prior'),
    latent: K,
    inDim: data.dim,
    inShape: data.shape,
    encoder: () => built!,
  });
  const encoder = ctx.registry.create('network', o.encoder, {
    ...ctx,
    rng: ctx.rng.fork('encoder'),
    shape: { inDim: data.dim, outDim: prior.paramsPerLatent * K, inShape: data.shape },
  });
  const decoder = ctx.registry.create('network', o.decoder, {
    ...ctx,
    rng: ctx.rng.fork('decoder'),
    shape: { inDim: K, outDim: likelihood.outPerDim * data.dim, ...(likelihood.outPerDim > 1 ? {} : { outShape: data.shape }) },
  });
  built = encoder;
  const { params, buffers } = collectVariables({ encoder, decoder, prior });
  return {
    K,
    prior,
    encoder,
    decoder,
    params,
    buffers,
    likelihood,
    nll: likelihood.nll,
    toData: likelihood.mean,
    exportable: {
      latent: K,
      encoder,
      decoder,
      prior,
      output: likelihoodName === 'bernoulli' ? 'sigmoid' : likelihoodName === 'gaussian' ? 'identity' : 'gaussian-mean',
    },
  };
}

/**
 * The plain VAE: L = c1·KL(q(z|x) ‖ p(z)) + c2·(−log p(x|z)), docs/models.md "Model: VAE and M1".
 * Any prior plugin works (a VSC is this model with the spike-slab prior).
 */
export function vae(o: VaeOptions, ctx: ModelBuildContext): Model {
  return vaeWithImportance(o, ctx).model;
}

/**
 * The VAE and, when its likelihood and prior are densities, the parts of its importance
 * weights (`importance`, null otherwise): what the IWAE model (models/iwae.ts) trains on.
 */
export function vaeWithImportance(o: VaeOptions, ctx: ModelBuildContext): { model: Model; importance: ImportanceTerms | null } {
  const tf = ctx.tf;
  const parts = latentParts(o, ctx);
  const { K, prior, encoder, decoder, params, buffers, nll, toData, exportable } = parts;

  const model: Model = {
    params,
    buffers,
    latent: K,
    scheduled: prior.scheduled,
    terms(batch, w, rng, progress) {
      const enc = encoder.apply(batch.x);
      const z = prior.sample(enc, K, rng, progress);
      const recon = tf.mean(nll(batch.x, decoder.apply(z))) as tfc.Scalar;
      const kl = tf.mean(prior.kl(enc, K, progress, z)) as tfc.Scalar;
      const loss = tf.add(tf.mul(w.c1, kl), tf.mul(w.c2, recon)) as tfc.Scalar;
      const elbo = tf.neg(tf.add(kl, recon)) as tfc.Scalar;
      return { loss, recon, kl, elbo };
    },
    encodeMean: (x) => tf.tidy(() => prior.mean(encoder.apply(x), K)),
    encodeGaussian: prior.gaussianParams ? (x) => tf.tidy(() => prior.gaussianParams!(encoder.apply(x), K)) : undefined,
    encodeMu: prior.mu ? (x) => tf.tidy(() => prior.mu!(encoder.apply(x), K)) : undefined,
    reconstruct: (x) => tf.tidy(() => toData(decoder.apply(prior.mean(encoder.apply(x), K)))),
    decode: (z) => tf.tidy(() => toData(decoder.apply(z))),
    sampleLatent: (n, rng) => prior.sampleFromPrior(n, K, rng),
    exportable,
  };
  const importance = importanceTerms(tf, parts, o.prior.kind);
  Object.assign(model, importanceWeightsOf(tf, importance, parts));
  return { model, importance: typeof importance === 'string' ? null : importance };
}

/**
 * What vae and m1 offer: a latent space, and a density for importance weighting when the
 * likelihood is one (bernoulli, gaussian_learned) and the prior declares one (gaussian,
 * vamp; not spike-slab).
 */
export const latentModelCapabilities: CapabilitiesOf<{ prior: PluginOptions; likelihood: string }> = (o, { registry }) => {
  const prior = o.prior && registry.has('prior', o.prior.kind) ? registry.get('prior', o.prior.kind) : null;
  const priorCaps = Array.isArray(prior?.provides) ? prior!.provides : [];
  const noDensity = NOT_A_DENSITY[o.likelihood as LikelihoodName];
  if (noDensity)
    return {
      provides: ['latent'],
      why: { density: `its likelihood '${o.likelihood}' is ${noDensity} (use likelihood: bernoulli or gaussian_learned)` },
    };
  if (!priorCaps.includes('density'))
    return {
      provides: ['latent'],
      why: { density: `its prior '${o.prior?.kind}' has no density (a spike at 0 has none; use prior: gaussian)` },
    };
  return { provides: ['latent', 'density'] };
};

/** The loss terms `terms` returns (vae, m1). */
export const VAE_TERMS = ['loss', 'recon', 'kl', 'elbo'];

export const vaeModelPlugin = definePlugin({
  kind: 'model',
  name: 'vae',
  capabilities: latentModelCapabilities,
  description: 'Variational autoencoder: L = c1·KL + c2·recon; any prior (gaussian → VAE, spike-slab → VSC)',
  options: latentModelOptions,
  termNames: () => VAE_TERMS,
  weights: standardWeights('c1', 'c2'),
  create: vae,
});
