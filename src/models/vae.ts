import type * as tfc from '@tensorflow/tfjs-core';
import type { Plugin, PluginContext, CapabilitiesOf } from '../registry/types';
import { slot } from '../registry/types';
import type { Model } from './model';
import type { Network } from '../nn/network';
import type { Prior } from '../priors/prior';
import type { PluginOptions } from '../config/types';
import type { DataSet } from '../data/dataset';
import { bernoulliNll, squaredError } from '../losses/likelihood';

export interface VaeOptions {
  kind: 'vae';
  latent: number;
  prior: PluginOptions;
  encoder: PluginOptions;
  decoder: PluginOptions;
  likelihood: 'bernoulli' | 'gaussian';
}

/** Model options every model with a latent z shares. */
export const latentModelOptions = {
  latent: { type: 'integer', minimum: 1, default: 20, description: 'Latent size K' },
  prior: slot('prior', { default: { kind: 'gaussian' } }),
  encoder: slot('network', { default: { kind: 'mlp' } }),
  decoder: slot('network', { default: { kind: 'mlp' } }),
  likelihood: {
    enum: ['bernoulli', 'gaussian'],
    default: 'bernoulli',
    description: 'bernoulli: −log p(x|z) = Σ BCE (x in [0,1]); gaussian: the image loss ‖x − x̂‖²',
  },
};

/** What every model with an encoder → z → decoder path is built from. */
export interface LatentParts {
  K: number;
  prior: Prior;
  encoder: Network;
  decoder: Network;
  params: Map<string, tfc.Variable>;
  /** −log p(x|z) per example from decoder outputs. */
  nll(x: tfc.Tensor2D, out: tfc.Tensor2D): tfc.Tensor1D;
  /** Decoder outputs in data space (probabilities for Bernoulli). */
  toData(out: tfc.Tensor2D): tfc.Tensor2D;
}

export function latentParts(o: VaeOptions, ctx: PluginContext): LatentParts {
  const tf = ctx.tf;
  const data = ctx.data as DataSet;
  const K = o.latent;
  const prior = ctx.registry.create<Prior>('prior', o.prior, ctx);
  const encoder = ctx.registry.create<Network>('network', o.encoder, {
    ...ctx,
    rng: ctx.rng.fork('encoder'),
    shape: { inDim: data.dim, outDim: prior.paramsPerLatent * K, inShape: data.shape },
  });
  const decoder = ctx.registry.create<Network>('network', o.decoder, {
    ...ctx,
    rng: ctx.rng.fork('decoder'),
    shape: { inDim: K, outDim: data.dim, outShape: data.shape },
  });
  const params = new Map<string, tfc.Variable>();
  for (const [n, v] of encoder.params) params.set(`encoder/${n}`, v);
  for (const [n, v] of decoder.params) params.set(`decoder/${n}`, v);
  return {
    K,
    prior,
    encoder,
    decoder,
    params,
    nll: (x, out) => (o.likelihood === 'bernoulli' ? bernoulliNll(x, out) : squaredError(x, out)),
    toData: (out) => (o.likelihood === 'bernoulli' ? (tf.sigmoid(out) as tfc.Tensor2D) : out),
  };
}

/**
 * The plain VAE: L = c1·KL(q(z|x) ‖ p(z)) + c2·(−log p(x|z)), SPEC.md "Model: VAE".
 * Any prior plugin works (a VSC is this model with the spike-slab prior).
 */
export function vae(o: VaeOptions, ctx: PluginContext): Model {
  const tf = ctx.tf;
  const { K, prior, encoder, decoder, params, nll, toData } = latentParts(o, ctx);

  const model: Model = {
    params,
    latent: K,
    scheduled: prior.scheduled,
    terms(batch, w, rng, progress) {
      const enc = encoder.apply(batch.x);
      const z = prior.sample(enc, K, rng, progress);
      const recon = tf.mean(nll(batch.x, decoder.apply(z))) as tfc.Scalar;
      const kl = tf.mean(prior.kl(enc, K, progress)) as tfc.Scalar;
      const loss = tf.add(tf.mul(w.c1, kl), tf.mul(w.c2, recon)) as tfc.Scalar;
      const elbo = tf.neg(tf.add(kl, recon)) as tfc.Scalar;
      return { loss, recon, kl, elbo };
    },
    encodeMean: (x) => tf.tidy(() => prior.mean(encoder.apply(x), K)),
    encodeGaussian: prior.gaussianParams ? (x) => tf.tidy(() => prior.gaussianParams!(encoder.apply(x), K)) : undefined,
    reconstruct: (x) => tf.tidy(() => toData(decoder.apply(prior.mean(encoder.apply(x), K)))),
    decode: (z) => tf.tidy(() => toData(decoder.apply(z))),
    sampleLatent: (n, rng) => prior.sampleFromPrior(n, K, rng),
  };
  addImportanceWeights(model, o, ctx.tf, { K, prior, encoder, decoder });
  return model;
}

/** log p(x, z) − log q(z|x) for k posterior draws, when the likelihood and prior are densities. */
function addImportanceWeights(model: Model, o: VaeOptions, tf: typeof tfc, p: Pick<LatentParts, 'K' | 'prior' | 'encoder' | 'decoder'>): void {
  const { K, prior, encoder, decoder } = p;
  if (o.likelihood !== 'bernoulli') {
    model.noImportanceWeights = 'the gaussian likelihood here is the unnormalised image loss ‖x − x̂‖², not a density';
    return;
  }
  if (!prior.logPrior || !prior.logPosterior) {
    model.noImportanceWeights = `prior '${o.prior.kind}' has no density (needed for log p(z) − log q(z|x))`;
    return;
  }
  const logPrior = prior.logPrior;
  const logPosterior = prior.logPosterior;
  model.logImportanceWeights = (x, k, rng) =>
    tf.tidy(() => {
      const B = x.shape[0];
      const enc = encoder.apply(x);
      // repeat each example k times: rows b*k .. b*k+k-1 belong to example b
      const encK = tf.reshape(tf.tile(tf.expandDims(enc, 1), [1, k, 1]), [B * k, enc.shape[1]]) as tfc.Tensor2D;
      const xK = tf.reshape(tf.tile(tf.expandDims(x, 1), [1, k, 1]), [B * k, x.shape[1]]) as tfc.Tensor2D;
      const z = prior.sample(encK, K, rng, { epoch: 0, step: 0, fraction: 1 });
      const logpx = tf.neg(bernoulliNll(xK, decoder.apply(z)));
      const logw = tf.sub(tf.add(logpx, logPrior(z)), logPosterior(z, encK, K));
      return tf.reshape(logw, [B, k]) as tfc.Tensor2D;
    });
}

/**
 * What vae and m1 offer: a latent space, and a density for importance weighting when the
 * likelihood is one (bernoulli) and the prior declares one (gaussian; not spike-slab).
 */
export const latentModelProvides: CapabilitiesOf<Pick<VaeOptions, 'prior' | 'likelihood'>> = (o, { registry }) => {
  const prior = o.prior && registry.has('prior', o.prior.kind) ? registry.get('prior', o.prior.kind) : null;
  const priorCaps = Array.isArray(prior?.provides) ? prior!.provides : [];
  if (o.likelihood !== 'bernoulli') return { provides: ['latent'], why: { density: `its likelihood '${o.likelihood}' is the unnormalised image loss ‖x − x̂‖², not a density (use likelihood: bernoulli)` } };
  if (!priorCaps.includes('density')) return { provides: ['latent'], why: { density: `its prior '${o.prior?.kind}' has no density (a spike at 0 has none; use prior: gaussian)` } };
  return { provides: ['latent', 'density'] };
};

/** The loss terms `terms` returns (vae, m1). */
export const VAE_TERMS = ['loss', 'recon', 'kl', 'elbo'];

export const vaePlugin: Plugin<VaeOptions, Model> = {
  kind: 'model',
  name: 'vae',
  provides: latentModelProvides,
  description: 'Variational autoencoder: L = c1·KL + c2·recon; any prior (gaussian → VAE, spike-slab → VSC)',
  schema: { properties: latentModelOptions },
  terms: () => VAE_TERMS,
  create: vae,
};
