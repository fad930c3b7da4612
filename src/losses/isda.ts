import type * as tfc from '@tensorflow/tfjs-core';
import { getTf } from '../runtime/tf';

/**
 * G-VAE's class loss (SPEC.md "Model: G-VAE", seed 001): for a linear classifier
 * f(z) = Wᵀz + b read on z ~ N(μ, diag σ²), the ISDA upper bound of E_z[cross-entropy]
 *
 *   L = log Σ_j exp{ ½ (w_j − w_y)² · σ² + (w_j − w_y)ᵀ μ + b_j − b_y },
 *
 * per example. W [K, C], b [C], mu/sigma2 [B, K], y class indices [B]; returns [B].
 * The squares expand into matmuls, so no [B, C, K] tensor is formed:
 *   ½ Σ_k σ²_k (W_kj − W_ky)² = ½ (σ² W²)_j − (σ² ⊙ w_y) W)_j + ½ Σ_k σ²_k W_ky².
 */
export function isdaClassLoss(
  mu: tfc.Tensor2D,
  sigma2: tfc.Tensor2D,
  W: tfc.Tensor2D,
  b: tfc.Tensor1D,
  y: tfc.Tensor1D,
): tfc.Tensor1D {
  const tf = getTf();
  return tf.tidy(() => {
    // w_y and b_y through one-hot products, not gather: gather's gradient needs
    // UnsortedSegmentSum, which the wasm backend lacks
    const onehot = tf.oneHot(tf.cast(y, 'int32') as tfc.Tensor1D, W.shape[1]); // [B, C]
    const wy = tf.matMul(onehot, W, false, true) as tfc.Tensor2D; // [B, K]: w_y per example
    const by = tf.sum(tf.mul(onehot, b), 1); // [B]
    const lin = tf.sub(tf.matMul(mu, W), tf.sum(tf.mul(mu, wy), 1, true)); // (w_j − w_y)ᵀ μ
    const quad = tf.add(
      tf.sub(tf.mul(0.5, tf.matMul(sigma2, tf.square(W))), tf.matMul(tf.mul(sigma2, wy), W)),
      tf.mul(0.5, tf.sum(tf.mul(sigma2, tf.square(wy)), 1, true)),
    );
    const logits = tf.add(tf.add(quad, lin), tf.sub(tf.expandDims(b, 0), tf.expandDims(by, 1)));
    return tf.logSumExp(logits, 1);
  }) as tfc.Tensor1D;
}

/** Plain softmax cross-entropy of logits [B, C] against class indices [B]; returns [B]. */
export function softmaxCrossEntropy(logits: tfc.Tensor2D, y: tfc.Tensor1D): tfc.Tensor1D {
  const tf = getTf();
  return tf.tidy(() => {
    const picked = tf.sum(tf.mul(logits, tf.oneHot(tf.cast(y, 'int32') as tfc.Tensor1D, logits.shape[1])), 1);
    return tf.sub(tf.logSumExp(logits, 1), picked);
  }) as tfc.Tensor1D;
}
