import type * as tfc from '@tensorflow/tfjs-core';
import { getTf } from '../runtime/tf';
import { gaussianLogDensity } from './gaussian-kl';
import type { LikelihoodName, Likelihood } from '../contracts';

/**
 * −log p(x|z) for a Bernoulli decoder, per example: Σ_i BCE(x_i, logit_i), computed
 * stably as max(l, 0) − x·l + log(1 + exp(−|l|)). x in [0, 1]; [B, D] → [B].
 *
 * The gradient is given in closed form, ∂/∂l = σ(l) − x (three elementwise kernels,
 * where differentiating the stable formula kernel by kernel takes a dozen: max and |·|
 * each go through tfjs's Step). x is the data: no gradient flows into it.
 */
export function bernoulliNll(x: tfc.Tensor2D, logits: tfc.Tensor2D): tfc.Tensor1D {
  const tf = getTf();
  // (tfjs-core types a custom gradient's arguments as one list of tensors and save functions
  // alike: they are the tensors, then save)
  const nll = tf.customGrad(((l: tfc.Tensor, save: tfc.GradSaveFunc) => {
    // x is kept with l: the backward pass may run after x's own scope has ended
    save([l, x]);
    const perPixel = tf.add(tf.sub(tf.relu(l), tf.mul(x, l)), tf.log1p(tf.exp(tf.neg(tf.abs(l)))));
    return {
      value: tf.sum(perPixel, 1),
      gradFunc: (dy: tfc.Tensor, saved: tfc.Tensor[]) => tf.mul(tf.sub(tf.sigmoid(saved[0]), saved[1]), tf.expandDims(dy, 1)),
    };
  }) as Parameters<typeof tf.customGrad>[0]);
  return nll(logits) as tfc.Tensor1D;
}

/**
 * Σ_d log(2·cosh(l_d / 2)) per row of logits l [N, D] → [N]: the log-normaliser of the
 * Bernoulli likelihood written around ½, so that
 *
 *   log p(x|l) = Σ_d (x_d − ½)·l_d − Σ_d log 2cosh(l_d / 2)
 *
 * (= −Σ_d BCE(x_d, l_d), exact for any x in [0, 1]); the first sum is a matrix product
 * with x, so a caller that scores many rows against one x never repeats x.
 *
 * Computed as ½|l| − log σ(|l|) summed, with the logs taken of products over groups of up
 * to 32 pixels (each factor σ(|l|) is in [½, 1], so a product stays above 2⁻³²): one log per
 * group instead of one per pixel. Transcendentals dominate this sum (softplus per pixel is
 * 10 times slower on the wasm backend); the rounding of the products adds below 1e-5 nats
 * per group. The gradient is written out: ∂/∂l = σ(l) − ½.
 */
export function bernoulliLogNormalizer(logits: tfc.Tensor2D): tfc.Tensor1D {
  const tf = getTf();
  const [N, D] = logits.shape;
  let g = 1;
  for (let d = Math.min(32, D); d >= 1; d--)
    if (D % d === 0) {
      g = d;
      break;
    }
  // (the arguments are the tensors, then save: see bernoulliNll)
  const f = tf.customGrad(((l: tfc.Tensor, save: tfc.GradSaveFunc) => {
    save([l]);
    const a = tf.abs(l);
    const logSig = tf.log(tf.prod(tf.reshape(tf.sigmoid(a), [N, D / g, g]), 2));
    return {
      value: tf.sub(tf.mul(0.5, tf.sum(a, 1)), tf.sum(logSig, 1)),
      gradFunc: (dy: tfc.Tensor, saved: tfc.Tensor[]) => tf.mul(tf.sub(tf.sigmoid(saved[0]), 0.5), tf.expandDims(dy, 1)),
    };
  }) as Parameters<typeof tf.customGrad>[0]);
  return f(logits) as tfc.Tensor1D;
}

/**
 * The Bernoulli log p(x_b | l) for k rows of logits per example given as l = h·w + b (a
 * decoder's affine head, Network.affineHead), for the importance weights of thousands of
 * rows per example: [B, k]. The formula of logDensityK, Σ_d (x_d − ½)·l_d − Σ_d log 2cosh(l_d/2),
 * with less work over the [B·k, D] logits:
 *  - the first sum is linear in l, so it is [h, 1]·([w; b]·(x − ½)): a product of w with x
 *    per example, then one with h's rows ([B·k, H + 1] read instead of [B·k, D]);
 *  - the bias is a last row of w against a column of ones appended to h, so the logits
 *    the normaliser needs are one matrix product, without a pass over them to add b.
 * Equal to logDensityK(x, h·w + b, k) to float rounding (the sums run in another order).
 */
export function bernoulliLogDensityAffineK(x: tfc.Tensor2D, h: tfc.Tensor2D, w: tfc.Tensor2D, b: tfc.Tensor1D, k: number): tfc.Tensor2D {
  const tf = getTf();
  const [B, D] = x.shape;
  const [N, H] = h.shape;
  const ha = tf.concat([h, tf.ones([N, 1])], 1);
  const wa = tf.concat([w, tf.reshape(b, [1, D])], 0);
  // [w; b]·(x_b − ½) of each example: [B, H + 1]
  const v = tf.matMul(tf.sub(x, 0.5), wa, false, true);
  const xl = tf.matMul(tf.reshape(ha, [B, k, H + 1]) as tfc.Tensor3D, tf.reshape(v, [B, H + 1, 1]) as tfc.Tensor3D);
  return tf.sub(tf.reshape(xl, [B, k]), tf.reshape(bernoulliLogNormalizer(tf.matMul(ha, wa)), [B, k])) as tfc.Tensor2D;
}

/** The "image loss" (docs/models.md "Shared pieces"): ‖x − x̂‖² per example; [B, D] → [B]. */
export function squaredError(x: tfc.Tensor2D, xhat: tfc.Tensor2D): tfc.Tensor1D {
  const tf = getTf();
  return tf.tidy(() => tf.sum(tf.square(tf.sub(x, xhat)), 1)) as tfc.Tensor1D;
}

/** Stable log Σ exp along `axis` (docs/models.md "Shared pieces": every log-sum-exp goes through this). */
export function logSumExp(t: tfc.Tensor, axis: number): tfc.Tensor {
  return getTf().logSumExp(t, axis);
}

/**
 * What a likelihood that is not a density is instead (null: it is one). Read without
 * TensorFlow (validation checks capabilities before anything loads it).
 */
export const NOT_A_DENSITY: Record<LikelihoodName, string | null> = {
  bernoulli: null,
  gaussian: 'the unnormalised image loss ‖x − x̂‖², not a density',
  gaussian_learned: null,
};

/** log σ² clamp of the learned-variance Gaussian (numerical safety). */
export const LEARNED_LOGVAR_CLAMP: [number, number] = [-12, 10];

/** The likelihood of that name, for data of D dimensions. */
export function likelihoodOf(name: LikelihoodName, D: number): Likelihood {
  const tf = getTf();
  if (name === 'bernoulli') {
    return {
      name,
      outPerDim: 1,
      nll: bernoulliNll,
      mean: (out) => tf.sigmoid(out) as tfc.Tensor2D,
      // log p(x|l) = Σ_d (x_d − ½)·l_d − Σ_d log 2cosh(l_d/2): the first sum is one batched
      // matrix product per example [k, D] × [D, 1], so x is never repeated k times
      logDensityK: (x, out, k) => {
        const B = x.shape[0];
        const xl = tf.matMul(tf.reshape(out, [B, k, D]) as tfc.Tensor3D, tf.reshape(tf.sub(x, 0.5), [B, D, 1]) as tfc.Tensor3D);
        return tf.sub(tf.reshape(xl, [B, k]), tf.reshape(bernoulliLogNormalizer(out), [B, k])) as tfc.Tensor2D;
      },
      logDensityAffineK: bernoulliLogDensityAffineK,
    };
  }
  if (name === 'gaussian') {
    return {
      name,
      outPerDim: 1,
      nll: squaredError,
      mean: (out) => out,
      noDensity: NOT_A_DENSITY.gaussian!,
    };
  }
  const split = (out: tfc.Tensor2D) => ({
    mu: tf.slice(out, [0, 0], [-1, D]) as tfc.Tensor2D,
    logvar: tf.clipByValue(tf.slice(out, [0, D], [-1, D]), ...LEARNED_LOGVAR_CLAMP) as tfc.Tensor2D,
  });
  return {
    name,
    outPerDim: 2,
    nll: (x, out) => {
      const { mu, logvar } = split(out);
      return tf.neg(gaussianLogDensity(x, mu, logvar)) as tfc.Tensor1D;
    },
    mean: (out) => split(out).mu,
    logDensityK: (x, out, k) => {
      const B = x.shape[0];
      const { mu, logvar } = split(out);
      // x broadcast over the k rows of its example: [B, 1, D] against [B, k, D], summed over D
      const x3 = tf.expandDims<tfc.Tensor3D>(x, 1);
      return gaussianLogDensity(x3, tf.reshape<tfc.Rank.R3>(mu, [B, k, D]), tf.reshape<tfc.Rank.R3>(logvar, [B, k, D]));
    },
  };
}
