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
    const labels =
      ArrayBuffer.isView(y) || Array.isArray(y) ? tf.tensor1d(Array.from(y as ArrayLike<number>), 'int32') : (y as tfc.Tensor1D);
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

/** The rows of a semi-supervised batch on the device (m2Rows' arrays, uploaded). */
export interface SemiSupervisedRows {
  /** Labelled rows and their labels. */
  lab: tfc.Tensor1D;
  labY: tfc.Tensor1D;
  /** Unlabelled rows. */
  unl: tfc.Tensor1D;
}

/**
 * The whole semi-supervised objective of a batch of B rows, from per-pass terms: passes are
 * the nl labelled rows with their label, then the nu unlabelled rows once per class (block c =
 * class c), as m2Rows lays them out. Shared by M2 (and M1+M2) and the auxiliary models:
 *   L(x,y)  = c2·recon + c1·kl + log C per labelled pass (kl: the model's KL-like term);
 *   U(x)    = Σ_y q(y|x)·L(x,y) − λ_H·H(q(y|x)), y summed out exactly;
 *   loss    = (Σ_lab L + Σ_unlab U + class term) / B, the class term α·Σ_lab −log q(y|x)
 *             (classLoss 'sum') or α·B·mean_lab −log q(y|x) ('mean');
 *   labelled, unlabelled = Σ_lab L / B, Σ_unlab U / B with c1 = c2 = λ_H = 1; elbo = −(their sum);
 *   class, entropy, accuracy = Σ_lab −log q, Σ_unlab H, Σ_lab [argmax = y], each / B,
 *             and _labelled = n_lab / B (SEMI_SUPERVISED_RATIOS: over many batches the
 *             accuracy is read as accuracy / _labelled, the labelled rows' accuracy);
 *   recon and every `report` term: Σ_lab t + Σ_unlab Σ_y q(y|x)·t(x,y), / B.
 * `accuracyLogits` are the labelled rows' logits the accuracy reads (default: theirs in `logits`).
 */
export function semiSupervisedTerms(o: {
  B: number;
  C: number;
  rows: SemiSupervisedRows;
  recon: tfc.Tensor1D;
  kl: tfc.Tensor1D;
  logits: tfc.Tensor2D;
  w: { c1: number | tfc.Scalar; c2: number | tfc.Scalar };
  alpha: number | tfc.Scalar;
  classLoss: 'sum' | 'mean';
  lambdaH: number | tfc.Scalar;
  report: Record<string, tfc.Tensor1D>;
  accuracyLogits?: tfc.Tensor2D;
}): Record<string, tfc.Scalar> & { loss: tfc.Scalar } {
  const tf = getTf();
  const { B, C, rows: r } = o;
  const nl = r.lab.shape[0];
  const nu = r.unl.shape[0];
  const zero = tf.scalar(0);
  let labW: tfc.Scalar = zero,
    lab1: tfc.Scalar = zero,
    cls: tfc.Scalar = zero,
    correct: tfc.Scalar = zero;
  const names = ['recon', ...Object.keys(o.report)];
  const per: Record<string, tfc.Tensor1D> = { recon: o.recon, ...o.report };
  const sums: Record<string, tfc.Scalar> = Object.fromEntries(names.map((n) => [n, zero]));
  if (nl > 0) {
    const head = (t: tfc.Tensor1D) => tf.slice(t, [0], [nl]) as tfc.Tensor1D;
    const rl = head(o.recon);
    const kll = head(o.kl);
    const logitsL = tf.gather(o.logits, r.lab) as tfc.Tensor2D;
    labW = tf.sum(m2Labelled(rl, kll, C, o.w.c1 as number, o.w.c2 as number)) as tfc.Scalar;
    lab1 = tf.sum(m2Labelled(rl, kll, C)) as tfc.Scalar;
    cls = tf.sum(categoricalNll(logitsL, r.labY)) as tfc.Scalar;
    correct = tf.sum(tf.cast(tf.equal(tf.argMax(o.accuracyLogits ?? logitsL, 1), r.labY), 'float32')) as tfc.Scalar;
    for (const n of names) sums[n] = tf.sum(head(per[n])) as tfc.Scalar;
  }
  let unlW: tfc.Scalar = zero,
    unl1: tfc.Scalar = zero,
    ent: tfc.Scalar = zero;
  if (nu > 0) {
    // [C·nu] → [nu, C]: row i, column c is the pass of unlabelled row i with class c
    const perClass = (t: tfc.Tensor1D) => tf.transpose(tf.reshape(tf.slice(t, [nl], [C * nu]), [C, nu])) as tfc.Tensor2D;
    const ru = perClass(o.recon);
    const ku = perClass(o.kl);
    const logitsU = tf.gather(o.logits, r.unl) as tfc.Tensor2D;
    const q = tf.softmax(logitsU);
    const logC = Math.log(C);
    const lw = tf.add(tf.add(tf.mul(o.w.c2, ru), tf.mul(o.w.c1, ku)), logC) as tfc.Tensor2D;
    unlW =
      o.lambdaH === 1
        ? (tf.sum(m2Unlabelled(logitsU, lw)) as tfc.Scalar)
        : (tf.sub(tf.sum(tf.mul(q, lw)), tf.mul(o.lambdaH, tf.sum(categoricalEntropy(logitsU)))) as tfc.Scalar);
    unl1 = tf.sum(m2Unlabelled(logitsU, tf.add(tf.add(ru, ku), logC) as tfc.Tensor2D)) as tfc.Scalar;
    ent = tf.sum(categoricalEntropy(logitsU)) as tfc.Scalar;
    for (const n of names) sums[n] = tf.add(sums[n], tf.sum(tf.mul(q, n === 'recon' ? ru : perClass(per[n])))) as tfc.Scalar;
  }
  const mean = (t: tfc.Scalar) => tf.div(t, B) as tfc.Scalar;
  // α per labelled row (sum), or on the labelled rows' mean −log q(y|x) (mean)
  const classTerm = o.classLoss === 'mean' ? (nl > 0 ? tf.mul(o.alpha, tf.div(cls, nl / B)) : zero) : tf.mul(o.alpha, cls);
  const loss = mean(tf.add(tf.add(labW, unlW), classTerm) as tfc.Scalar);
  const labelled = mean(lab1);
  const unlabelled = mean(unl1);
  return {
    loss,
    ...Object.fromEntries(names.map((n) => [n, mean(sums[n])])),
    labelled,
    unlabelled,
    class: mean(cls),
    entropy: mean(ent),
    accuracy: mean(correct),
    [LABELLED_SHARE]: tf.scalar(nl / B),
    elbo: tf.neg(tf.add(labelled, unlabelled)) as tfc.Scalar,
  };
}

/** The share of labelled rows in a batch (n_lab / B): the denominator of the semi-supervised accuracy, never logged. */
export const LABELLED_SHARE = '_labelled';

/**
 * The semi-supervised models' ratios (Model.ratios): an epoch's train/accuracy is the
 * accuracy on the labelled rows it saw (Σ correct / Σ n_lab), not their share of the batch.
 */
export const SEMI_SUPERVISED_RATIOS: Record<string, string> = { accuracy: LABELLED_SHARE };
