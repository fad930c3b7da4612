// A third-party elbo prior written from docs/plugins.md: p(z) = Π_k Laplace(z_k; 0, b), a
// heavier-tailed prior than N(0, I), with a diagonal Gaussian posterior q(z|x) = N(μ, σ²).
// KL(q ‖ p) has no closed form here, so it is estimated with the z the model sampled:
// KL ≈ log q(z|x) − log p(z) (unbiased, one draw per example). Both are densities, so
// importance weighting (the iwae evaluator) works.
//   plugins: [./plugins/laplace-prior]
//   model: { kind: vae, prior: { kind: laplace, scale: 1 } }
'use strict';

const LOG_2PI = Math.log(2 * Math.PI);

module.exports = {
  kind: 'prior',
  name: 'laplace',
  description: 'Laplace prior Π Laplace(0, b) with a Gaussian posterior; KL estimated with the sampled z; has a density',
  provides: ['density'],
  schema: {
    properties: {
      scale: { type: 'number', exclusiveMinimum: 0, default: 1, description: 'Scale b of each Laplace(0, b) (variance 2b²)' },
      logvar_min: { type: 'number', default: -12, description: 'Clamp of the posterior log σ² from below' },
      logvar_max: { type: 'number', default: 8, description: 'Clamp of the posterior log σ² from above' },
    },
  },
  create(o, ctx) {
    const tf = ctx.tf;
    const split = (enc, K) => ({
      mu: tf.slice(enc, [0, 0], [-1, K]),
      logvar: tf.clipByValue(tf.slice(enc, [0, K], [-1, K]), o.logvar_min, o.logvar_max),
    });
    const logPrior = (z) => tf.sum(tf.sub(tf.neg(tf.div(tf.abs(z), o.scale)), Math.log(2 * o.scale)), 1);
    const logPosterior = (z, enc, K) => {
      const { mu, logvar } = split(enc, K);
      const quad = tf.div(tf.square(tf.sub(z, mu)), tf.exp(logvar));
      return tf.mul(-0.5, tf.sum(tf.add(tf.add(quad, logvar), LOG_2PI), 1));
    };
    return {
      paramsPerLatent: 2,
      kl(enc, K, _progress, z) {
        if (!z) throw new Error('the laplace prior estimates the KL with the sampled z; pass it to prior.kl');
        return tf.sub(logPosterior(z, enc, K), logPrior(z));
      },
      sample(enc, K, rng) {
        const { mu, logvar } = split(enc, K);
        const eps = tf.tensor2d(rng.normals(mu.shape[0] * K), [mu.shape[0], K]);
        return tf.add(mu, tf.mul(tf.exp(tf.mul(0.5, logvar)), eps));
      },
      mean: (enc, K) => tf.slice(enc, [0, 0], [-1, K]),
      sampleFromPrior(n, K, rng) {
        // inverse CDF: z = −b·sign(u − ½)·log(1 − 2|u − ½|), u ~ U(0, 1)
        const u = rng.uniforms(n * K);
        const z = Float32Array.from(u, (v) => {
          const d = Math.min(Math.max(v, 1e-7), 1 - 1e-7) - 0.5;
          return -o.scale * Math.sign(d) * Math.log(1 - 2 * Math.abs(d));
        });
        return tf.tensor2d(z, [n, K]);
      },
      logPrior,
      logPosterior,
    };
  },
};
