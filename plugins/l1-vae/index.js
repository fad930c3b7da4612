// A third-party elbo model written from docs/plugins.md: a VAE whose objective adds a new,
// schedulable loss weight, declared in this file only (docs/plugins.md "Models: terms and
// weights"):
//   L = c1·KL + c2·recon + l1_mu·mean_k |μ_k|
// an L1 penalty on the posterior means, which pushes unused latent dimensions to exactly 0
// (sparse codes). The config sets it like the built-in weights: loss: { l1_mu: 0.05 } or a
// schedule; it is logged as weight/l1_mu. Any prior works: ctx.latentParts creates it
// through the registry, before the encoder, which it sees; the likelihood is Bernoulli.
//   plugins: [./plugins/l1-vae]
//   model: { kind: l1-vae, latent: 8 }
'use strict';

module.exports = {
  kind: 'model',
  name: 'l1-vae',
  description: 'VAE with an L1 penalty on the posterior means: L = c1·KL + c2·recon + l1_mu·mean|μ| (a new, schedulable weight)',
  schema: {
    properties: {
      latent: { type: 'integer', minimum: 1, default: 8, description: 'Latent size K' },
      prior: { $ref: '#/definitions/prior', default: { kind: 'gaussian' } },
      encoder: { $ref: '#/definitions/network', default: { kind: 'mlp', hidden: [64] } },
      decoder: { $ref: '#/definitions/network', default: { kind: 'mlp', hidden: [64] } },
    },
  },
  weights: {
    c1: { default: 1, description: 'Weight of the KL term (beta in a beta-VAE)' },
    c2: { default: 1, description: 'Weight of the reconstruction term' },
    l1_mu: { default: 0.1, description: 'Weight of the mean |μ| of the posterior means (sparse codes)' },
  },
  termNames: () => ['loss', 'recon', 'kl', 'l1', 'elbo'],
  provides: ['latent'],
  create(o, ctx) {
    const tf = ctx.tf;
    // the prior, then the encoder sized for it, the decoder and the likelihood, their
    // parameters collected as encoder/…, decoder/…, prior/…
    const { K, prior, encoder, decoder, params, buffers, nll, toData } = ctx.latentParts(o);
    return {
      params,
      buffers,
      latent: K,
      terms(batch, w, rng, progress) {
        const enc = encoder.apply(batch.x);
        const z = prior.sample(enc, K, rng, progress);
        const recon = tf.mean(nll(batch.x, decoder.apply(z)));
        const kl = tf.mean(prior.kl(enc, K, progress, z));
        const l1 = tf.mean(tf.abs(prior.mean(enc, K)));
        const loss = tf.addN([tf.mul(w.c1, kl), tf.mul(w.c2, recon), tf.mul(w.l1_mu, l1)]);
        return { loss, recon, kl, l1, elbo: tf.neg(tf.add(kl, recon)) };
      },
      encodeMean: (x) => tf.tidy(() => prior.mean(encoder.apply(x), K)),
      reconstruct: (x) => tf.tidy(() => toData(decoder.apply(prior.mean(encoder.apply(x), K)))),
      decode: (z) => tf.tidy(() => toData(decoder.apply(z))),
      sampleLatent: (n, rng) => prior.sampleFromPrior(n, K, rng),
    };
  },
};
