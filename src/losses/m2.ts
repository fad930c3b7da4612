import type * as tfc from '@tensorflow/tfjs-core';
import { getTf } from '../runtime/tf';

/**
 * The per-example pieces of the M2 objective (Kingma et al. 2014; docs/models.md "Model: M2"),
 * tensors in, per-example terms out, so that they can be checked by hand.
 */

/** −log q(y|x) per example from classifier logits [B, C] and labels (y ≥ 0); → [B]. */
export function categoricalNll(logits: tfc.Tensor2D, y: tfc.Tensor1D | Int32Array | number[]): tfc.Tensor1D {
  const tf = getTf();
  return tf.tidy(() => {
    const C = logits.shape[1];
    const labels = ArrayBuffer.isView(y) || Array.isArray(y) ? tf.tensor1d(Array.from(y as ArrayLike<number>), 'int32') : (y as tfc.Tensor1D);
    const logp = tf.logSoftmax(logits);
    return tf.neg(tf.sum(tf.mul(logp, tf.oneHot(labels, C)), 1));
  }) as tfc.Tensor1D;
}

/** Entropy H(q(y|x)) = −Σ_y q log q per example, from logits [B, C]; → [B] (nats). */
export function categoricalEntropy(logits: tfc.Tensor2D): tfc.Tensor1D {
  const tf = getTf();
  return tf.tidy(() => {
    const logp = tf.logSoftmax(logits);
    return tf.neg(tf.sum(tf.mul(tf.exp(logp), logp), 1));
  }) as tfc.Tensor1D;
}

/**
 * The labelled bound L(x, y) = −E_q(z|x,y)[log p(x|y,z)] + KL(q(z|x,y) ‖ p(z)) − log p(y)
 * with p(y) uniform over C classes (−log p(y) = log C), per example:
 * c2·recon + c1·kl + log C. recon and kl are [B] (one draw of z per row); → [B].
 */
export function m2Labelled(recon: tfc.Tensor1D, kl: tfc.Tensor1D, classes: number, c1 = 1, c2 = 1): tfc.Tensor1D {
  const tf = getTf();
  return tf.tidy(() => tf.add(tf.add(tf.mul(c2, recon), tf.mul(c1, kl)), Math.log(classes))) as tfc.Tensor1D;
}

/**
 * The unlabelled bound with y summed out exactly over the C classes:
 * U(x) = Σ_y q(y|x)·L(x, y) − H(q(y|x)). logitsY [B, C] are q(y|x)'s logits, perClass
 * [B, C] holds L(x, y) for every class y; → [B].
 */
export function m2Unlabelled(logitsY: tfc.Tensor2D, perClass: tfc.Tensor2D): tfc.Tensor1D {
  const tf = getTf();
  return tf.tidy(() => {
    const q = tf.softmax(logitsY);
    return tf.sub(tf.sum(tf.mul(q, perClass), 1), categoricalEntropy(logitsY));
  }) as tfc.Tensor1D;
}
