import type * as tfc from '@tensorflow/tfjs-core';
import { getTf } from '../runtime/tf';

/** γ and the prior spike probability a are clamped to [EPS, 1 − EPS] (docs/models.md "Prior 2"). */
export const SPIKE_EPS = 1e-6;

/**
 * KL(q(z|x) ‖ p_s(z)) of the spike-and-slab prior, per example, exactly as the reference
 * implementation of docs/models.md "Prior 2" (seed 004, `prior_loss`):
 *
 *   KL = −½ Σ_k γ_k (1 + log σ_k² − μ_k² − σ_k²)
 *        + Σ_k [ (1 − γ_k) log((1 − γ_k)/(1 − a)) + γ_k log(γ_k / a) ]
 *
 * with γ = exp(logGamma) clamped to [1e-6, 1 − 1e-6]. `a` (the prior spike probability,
 * "alpha" in the paper) is clamped to the same interval, so that a = 1 (the Gaussian VAE
 * limit) stays finite: with γ = 1 and a = 1 the result equals gaussianKl up to a relative 1e-6.
 * Inputs [B, K]; output [B].
 */
export function spikeSlabKl(mu: tfc.Tensor2D, logvar: tfc.Tensor2D, logGamma: tfc.Tensor2D, a: number): tfc.Tensor1D {
  const tf = getTf();
  const ac = Math.min(1 - SPIKE_EPS, Math.max(SPIKE_EPS, a));
  return tf.tidy(() => {
    const gamma = tf.clipByValue(tf.exp(logGamma), SPIKE_EPS, 1 - SPIKE_EPS);
    const oneMinus = tf.sub(1, gamma);
    // slab: γ-weighted Gaussian KL
    const slab = tf.mul(-0.5, tf.mul(gamma, tf.sub(tf.sub(tf.add(1, logvar), tf.square(mu)), tf.exp(logvar))));
    // spike: KL(Bernoulli(γ) ‖ Bernoulli(a))
    const spike = tf.add(tf.mul(oneMinus, tf.sub(tf.log(oneMinus), Math.log(1 - ac))), tf.mul(gamma, tf.sub(tf.log(gamma), Math.log(ac))));
    return tf.sum(tf.add(slab, spike), 1);
  }) as tfc.Tensor1D;
}
