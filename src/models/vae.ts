import type * as tfc from '@tensorflow/tfjs-core';
import { definePlugin, Enum, slot, Type, type CapabilitiesOf, type ModelContext, type OptionsOf, type PluginOptions } from '../registry/types';
import type { Model } from './model';
import type { Network } from '../nn/network';
import type { Prior } from '../priors/prior';
import type { Rng } from '../runtime/rng';
import { standardWeights } from './objective';
import { bernoulliNll, bernoulliLogNormalizer, squaredError } from '../losses/likelihood';

/** Model options every model with a latent z shares. */
export const latentModelOptions = {
  latent: Type.Integer({ minimum: 1, default: 20, description: 'Latent size K' }),
  prior: slot('prior', { default: { kind: 'gaussian' } }),
  encoder: slot('network', { default: { kind: 'mlp' } }),
  decoder: slot('network', { default: { kind: 'mlp' } }),
  likelihood: Enum(['bernoulli', 'gaussian'], {
    default: 'bernoulli',
    description: 'bernoulli: −log p(x|z) = Σ BCE (x in [0,1]); gaussian: the image loss ‖x − x̂‖²',
  }),
};

export type VaeOptions = OptionsOf<typeof latentModelOptions>;

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

export function latentParts(o: VaeOptions, ctx: ModelContext): LatentParts {
  const tf = ctx.tf;
  const data = ctx.data;
  const K = o.latent;
  const prior = ctx.registry.create('prior', o.prior, { ...ctx, rng: ctx.rng.fork('prior'), latent: K, inDim: data.dim, inShape: data.shape });
  const encoder = ctx.registry.create('network', o.encoder, {
    ...ctx,
    rng: ctx.rng.fork('encoder'),
    shape: { inDim: data.dim, outDim: prior.paramsPerLatent * K, inShape: data.shape },
  });
  const decoder = ctx.registry.create('network', o.decoder, {
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
 * The plain VAE: L = c1·KL(q(z|x) ‖ p(z)) + c2·(−log p(x|z)), docs/models.md "Model: VAE and M1".
 * Any prior plugin works (a VSC is this model with the spike-slab prior).
 */
export function vae(o: VaeOptions, ctx: ModelContext): Model {
  return vaeWithImportance(o, ctx).model;
}

/**
 * The VAE and, when its likelihood and prior are densities, the parts of its importance
 * weights (`importance`, null otherwise): what the IWAE model (models/iwae.ts) trains on.
 */
export function vaeWithImportance(o: VaeOptions, ctx: ModelContext): { model: Model; importance: ImportanceTerms | null } {
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
    encodeMu: prior.mu ? (x) => tf.tidy(() => prior.mu!(encoder.apply(x), K)) : undefined,
    reconstruct: (x) => tf.tidy(() => toData(decoder.apply(prior.mean(encoder.apply(x), K)))),
    decode: (z) => tf.tidy(() => toData(decoder.apply(z))),
    sampleLatent: (n, rng) => prior.sampleFromPrior(n, K, rng),
  };
  const importance = importanceTerms(o, tf, { K, prior, encoder, decoder });
  if (typeof importance === 'string') {
    model.noImportanceWeights = importance;
    return { model, importance: null };
  }
  model.logImportanceWeights = (x, k, rng) =>
    tf.tidy(() => {
      const t = importance(x, k, rng);
      return tf.sub(tf.add(t.logpx, t.logpz), t.logqz) as tfc.Tensor2D;
    });
  return { model, importance };
}

/**
 * log p(x|z_i), log p(z_i) and log q(z_i|x) for k draws z_i ~ q(z|x) per example, each
 * [B, k] (draw i of example b in row b, column i). The draws are taken from `rng` example
 * by example, so splitting a test set into passes of any size gives the same numbers.
 */
export type ImportanceTerms = (x: tfc.Tensor2D, k: number, rng: Rng) => { logpx: tfc.Tensor2D; logpz: tfc.Tensor2D; logqz: tfc.Tensor2D };

/**
 * The parts of log w = log p(x, z) − log q(z|x), when the likelihood and the prior are
 * densities; otherwise why not (a sentence for the error message).
 *
 * Built for k in the thousands (the IWAE paper evaluates with k = 5000), where the
 * decoder runs on B·k rows and everything that touches a [B·k, D] tensor counts:
 *  - the encoder output is repeated k times by a broadcast add, not tf.tile (tile is
 *    about 20 times slower on the wasm backend, and its gradient is a loop of slices);
 *  - x is never repeated: log p(x|z) = Σ_d (x_d − ½)·l_d − Σ_d log 2cosh(l_d/2) (the
 *    Bernoulli likelihood, exact for any x in [0, 1]), whose first sum over the k rows of
 *    one example is one batched matrix product [B, k, D] × [B, D, 1], and whose second
 *    takes one log per group of pixels (bernoulliLogNormalizer), not a softplus per pixel.
 */
export function importanceTerms(o: VaeOptions, tf: typeof tfc, p: Pick<LatentParts, 'K' | 'prior' | 'encoder' | 'decoder'>): ImportanceTerms | string {
  const { K, prior, encoder, decoder } = p;
  if (o.likelihood !== 'bernoulli') return 'the gaussian likelihood here is the unnormalised image loss ‖x − x̂‖², not a density';
  if (!prior.logPrior || !prior.logPosterior) return `prior '${o.prior.kind}' has no density (needed for log p(z) − log q(z|x))`;
  const logPrior = prior.logPrior;
  const logPosterior = prior.logPosterior;
  return (x, k, rng) => {
    const B = x.shape[0];
    const D = x.shape[1];
    const enc = encoder.apply(x);
    const P = enc.shape[1];
    // rows b*k .. b*k+k-1 belong to example b
    const encK = tf.reshape(tf.add(tf.expandDims(enc, 1), tf.zeros([1, k, 1])), [B * k, P]) as tfc.Tensor2D;
    const z = prior.sample(encK, K, rng, { epoch: 0, step: 0, fraction: 1 });
    const logits = decoder.apply(z);
    const xl = tf.matMul(tf.reshape(logits, [B, k, D]) as tfc.Tensor3D, tf.reshape(tf.sub(x, 0.5), [B, D, 1]) as tfc.Tensor3D);
    const logpx = tf.sub(tf.reshape(xl, [B, k]), tf.reshape(bernoulliLogNormalizer(logits), [B, k])) as tfc.Tensor2D;
    const logpz = tf.reshape(logPrior(z), [B, k]) as tfc.Tensor2D;
    const logqz = tf.reshape(logPosterior(z, encK, K), [B, k]) as tfc.Tensor2D;
    return { logpx, logpz, logqz };
  };
}

/**
 * What vae and m1 offer: a latent space, and a density for importance weighting when the
 * likelihood is one (bernoulli) and the prior declares one (gaussian; not spike-slab).
 */
export const latentModelProvides: CapabilitiesOf<{ prior: PluginOptions; likelihood: string }> = (o, { registry }) => {
  const prior = o.prior && registry.has('prior', o.prior.kind) ? registry.get('prior', o.prior.kind) : null;
  const priorCaps = Array.isArray(prior?.provides) ? prior!.provides : [];
  if (o.likelihood !== 'bernoulli') return { provides: ['latent'], why: { density: `its likelihood '${o.likelihood}' is the unnormalised image loss ‖x − x̂‖², not a density (use likelihood: bernoulli)` } };
  if (!priorCaps.includes('density')) return { provides: ['latent'], why: { density: `its prior '${o.prior?.kind}' has no density (a spike at 0 has none; use prior: gaussian)` } };
  return { provides: ['latent', 'density'] };
};

/** The loss terms `terms` returns (vae, m1). */
export const VAE_TERMS = ['loss', 'recon', 'kl', 'elbo'];

export const vaePlugin = definePlugin({
  kind: 'model',
  name: 'vae',
  provides: latentModelProvides,
  description: 'Variational autoencoder: L = c1·KL + c2·recon; any prior (gaussian → VAE, spike-slab → VSC)',
  options: latentModelOptions,
  terms: () => VAE_TERMS,
  weights: standardWeights('c1', 'c2'),
  create: vae,
});
