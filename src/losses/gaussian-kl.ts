import type * as tfc from '@tensorflow/tfjs-core';
import { getTf } from '../runtime/tf';

/**
 * KL(N(μ, σ²) ‖ N(0, I)) per example, docs/models.md "Shared pieces":
 * ½ Σ_k (μ_k² + σ_k² − log σ_k² − 1). Inputs [B, K]; output [B].
 */
export function gaussianKl(mu: tfc.Tensor2D, logvar: tfc.Tensor2D): tfc.Tensor1D {
  const tf = getTf();
  return tf.tidy(() => tf.mul(0.5, tf.sum(tf.sub(tf.add(tf.square(mu), tf.exp(logvar)), tf.add(logvar, 1)), 1))) as tfc.Tensor1D;
}

/** log N(z; μ, σ²) summed over the last axis; [B, K] → [B] (or [B, k, K] → [B, k]). */
export function gaussianLogDensity(z: tfc.Tensor2D, mu: tfc.Tensor2D | number, logvar: tfc.Tensor2D | number): tfc.Tensor1D;
export function gaussianLogDensity(z: tfc.Tensor3D, mu: tfc.Tensor3D | number, logvar: tfc.Tensor3D | number): tfc.Tensor2D;
export function gaussianLogDensity(z: tfc.Tensor, mu: tfc.Tensor | number, logvar: tfc.Tensor | number): tfc.Tensor {
  const tf = getTf();
  return tf.tidy(() => {
    const d = tf.sub(z, mu);
    const quad = tf.div(tf.square(d), tf.exp(logvar));
    const perDim = tf.mul(-0.5, tf.add(tf.add(quad, logvar), Math.log(2 * Math.PI)));
    return tf.sum(perDim, -1);
  });
}
