import type * as tfc from '@tensorflow/tfjs-core';
import { getTf } from '../runtime/tf';

/**
 * G-VAE's class loss (the G-VAE write-up): for a linear classifier
 * f(z) = Wᵀz + b read on z ~ N(μ, diag σ²), the ISDA upper bound of E_z[cross-entropy]
 *
 *   L = log Σ_j exp{ ½ (w_j − w_y)² · σ² + (w_j − w_y)ᵀ μ + b_j − b_y },
 *
 * per example. W [K, C], b [C], mu/sigma2 [B, K], y class indices [B]; returns [B].
 *
 * The class differences Δ_y = W − w_y·1ᵀ are formed directly, for every class y
 * ([K, C·C], independent of the batch), and the exponent of every (y, j) pair is one
 * matrix product, [σ², μ] [B, 2K] × [½Δ²; Δ] [2K, C·C], from which each example takes the
 * block of its own y. Expanding the square into products of W instead
 * (½σ²·W² − (σ²⊙w_y)·W + ½σ²·w_y²) cancels catastrophically when σ² and |W| are large and
 * the class vectors close: relative errors of 0.26 (cpu) and 0.60 (wasm) were measured
 * on such inputs, against 5e-7 for the differences. The product costs B·2K·C² multiply-adds,
 * small for the G-VAE's class counts (10 for MNIST and CIFAR-10, 4 for CelebA).
 */
export function isdaClassLoss(mu: tfc.Tensor2D, sigma2: tfc.Tensor2D, W: tfc.Tensor2D, b: tfc.Tensor1D, y: tfc.Tensor1D): tfc.Tensor1D {
  const tf = getTf();
  const [K, C] = W.shape;
  const B = mu.shape[0];
  return tf.tidy(() => {
    // b_y and the block of y through one-hot products, not gather: gather's gradient needs
    // UnsortedSegmentSum, which the wasm backend lacks. The products are exact (one term
    // is 1·v, the others 0·v).
    const onehot = tf.oneHot(tf.cast(y, 'int32') as tfc.Tensor1D, C); // [B, C]
    const by = tf.sum(tf.mul(onehot, b), 1); // [B]
    const delta = tf.reshape(tf.sub(tf.expandDims(W, 1), tf.expandDims(W, 2)), [K, C * C]); // [k, y·C + j] = W_kj − W_ky
    const pairs = plainMatMul(
      tf.concat([sigma2, mu], 1) as tfc.Tensor2D,
      tf.concat([tf.mul(0.5, tf.square(delta)), delta], 0) as tfc.Tensor2D,
    ); // [B, C·C]
    const exponent = tf.sum(tf.mul(tf.reshape(pairs, [B, C, C]), tf.expandDims(onehot, 2)), 1); // [B, C]: row y_b
    const logits = tf.add(exponent, tf.sub(tf.expandDims(b, 0), tf.expandDims(by, 1)));
    return tf.logSumExp(logits, 1);
  }) as tfc.Tensor1D;
}

/**
 * a·b whose gradients transpose their operands explicitly (aᵀ·dy as transpose(a)·dy):
 * the wasm backend's matrix product with a transposed operand is 8–18 times slower than a
 * transpose followed by a plain product at these sizes.
 */
function plainMatMul(a: tfc.Tensor2D, b: tfc.Tensor2D): tfc.Tensor2D {
  const tf = getTf();
  // (tfjs-core types a custom gradient's arguments as one list of tensors and save functions
  // alike: they are the tensors, then save)
  const f = tf.customGrad(((x: tfc.Tensor2D, w: tfc.Tensor2D, save: tfc.GradSaveFunc) => {
    save([x, w]);
    return {
      value: tf.matMul(x, w),
      gradFunc: (dy: tfc.Tensor2D, [xs, ws]: tfc.Tensor2D[]) => [tf.matMul(dy, tf.transpose(ws)), tf.matMul(tf.transpose(xs), dy)],
    };
  }) as Parameters<typeof tf.customGrad>[0]);
  return f(a, b) as tfc.Tensor2D;
}

/** Plain softmax cross-entropy of logits [B, C] against class indices [B]; returns [B]. */
export function softmaxCrossEntropy(logits: tfc.Tensor2D, y: tfc.Tensor1D): tfc.Tensor1D {
  const tf = getTf();
  return tf.tidy(() => {
    const picked = tf.sum(tf.mul(logits, tf.oneHot(tf.cast(y, 'int32') as tfc.Tensor1D, logits.shape[1])), 1);
    return tf.sub(tf.logSumExp(logits, 1), picked);
  }) as tfc.Tensor1D;
}
