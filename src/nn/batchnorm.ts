import type * as tfc from '@tensorflow/tfjs-core';
import type * as tfjs from '@tensorflow/tfjs';
import { Enum, Type } from '../registry/define';
import { applyWithWeights } from './network';
import { batchNormTraining } from '../runtime/native-ops';
import type { Phase } from '../contracts';

/**
 * The network options of batch normalisation (mlp, conv). Optional, with no schema
 * default: a config that does not name them resolves to the same config (and sha256) as
 * before they existed, so finished runs are still found by their config hash (m1m2's M1).
 * Absent: norm none, momentum 0.9, epsilon 1e-5 (NORM_DEFAULTS).
 */
export const normOptions = {
  norm: Type.Optional(
    Enum(['none', 'batch'], {
      description:
        'batch: batch normalisation after every hidden layer, before its activation (learnable γ, β; running mean and variance for evaluation); absent: none',
    }),
  ),
  norm_momentum: Type.Optional(
    Type.Number({
      minimum: 0,
      maximum: 1,
      description:
        'Running-average decay m: running = m·running + (1 − m)·batch statistic (Keras convention; PyTorch momentum 0.1 is m = 0.9); absent: 0.9',
    }),
  ),
  norm_epsilon: Type.Optional(
    Type.Number({ exclusiveMinimum: 0, description: 'Added to the variance before its square root; absent: 1e-5 (PyTorch)' }),
  ),
};

/** What absent normalisation options mean. */
export const NORM_DEFAULTS = { norm: 'none', momentum: 0.9, epsilon: 1e-5 } as const;

/** The running-average settings of a network's options. */
export const normSettings = (o: { norm_momentum?: number; norm_epsilon?: number }): NormSettings => ({
  momentum: o.norm_momentum ?? NORM_DEFAULTS.momentum,
  epsilon: o.norm_epsilon ?? NORM_DEFAULTS.epsilon,
});

export interface NormSettings {
  momentum: number;
  epsilon: number;
  /**
   * false: no β (the input's normalisation: a shift of the input only shifts the next
   * dense layer's pre-activations by a constant, which its bias or batch normalisation
   * takes out, so β's gradient is zero or redundant).
   */
  center?: boolean;
}

/** One batch-normalisation layer over the last axis (features, or channels of an image). */
export interface BatchNorm {
  /** Normalise `z` ([..., C]): batch statistics (and a running-average update) while training, running averages otherwise. */
  apply<T extends tfc.Tensor>(z: T): T;
  /** The evaluation-mode layer as TensorFlow.js Layers, with the running averages. */
  layers(tfl: typeof tfjs, x: tfjs.SymbolicTensor): tfjs.SymbolicTensor;
}

/**
 * Batch normalisation (Ioffe & Szegedy 2015) of C features, registered as `name/gamma`,
 * `name/beta` (parameters, initialised to 1 and 0; no β without `center`) and `name/mean`, `name/var` (buffers,
 * the running averages, initialised to 0 and 1).
 *
 * While `phase.training`: y = γ·(z − μ_B)/√(σ²_B + ε) + β with the batch's mean μ_B and
 * biased variance σ²_B over every axis but the last (rows; rows, height and width of an
 * image), and the running averages move: mean ← m·mean + (1 − m)·μ_B,
 * var ← m·var + (1 − m)·σ²_B·n/(n − 1), the unbiased variance over the n values per
 * feature (as PyTorch; n = 1 keeps the biased one). With `phase.normSplit` = s (0 < s <
 * rows) the first s rows and the rest are two batches, each normalised by its own μ_B and
 * σ²_B, and only the second moves the running averages. Otherwise: the same with the running
 * mean and variance, which is what `layers` computes (tf.batchNorm: the same kernel).
 */
export function batchNorm(
  tf: typeof tfc,
  name: string,
  channels: number,
  o: NormSettings,
  phase: Phase,
  params: Map<string, tfc.Variable>,
  buffers: Map<string, tfc.Variable>,
): BatchNorm {
  const center = o.center ?? true;
  const gamma = tf.variable(tf.ones([channels]), true);
  const beta = center ? tf.variable(tf.zeros([channels]), true) : undefined;
  const mean = tf.variable(tf.zeros([channels]), false);
  const variance = tf.variable(tf.ones([channels]), false);
  params.set(`${name}/gamma`, gamma);
  if (beta) params.set(`${name}/beta`, beta);
  buffers.set(`${name}/mean`, mean);
  buffers.set(`${name}/var`, variance);
  const id = name.replace(/\//g, '_');
  return {
    apply<T extends tfc.Tensor>(z: T): T {
      // (an absent offset breaks tfjs's gradient of batchNorm: a zero one; + 0 changes no number)
      const offset = beta ?? tf.zeros([channels]);
      if (!phase.training) return tf.batchNorm(z, mean, variance, offset, gamma, o.epsilon) as T;
      /** t by its own batch statistics; the running averages move by them when `moveAverages` is set. */
      const normalise = (t: tfc.Tensor, moveAverages: boolean): tfc.Tensor => {
        const n = t.size / channels;
        const move = (batchMean: tfc.Tensor, unbiased: tfc.Tensor) => {
          if (!moveAverages) return;
          mean.assign(tf.add(tf.mul(mean, o.momentum), tf.mul(batchMean, 1 - o.momentum)));
          variance.assign(tf.add(tf.mul(variance, o.momentum), tf.mul(unbiased, 1 - o.momentum)));
        };
        // the native backend's fused kernels, forward and backward (runtime/native-ops.ts)
        const fused = batchNormTraining(tf, t, gamma, offset, o.epsilon);
        if (fused) {
          move(fused.mean, fused.unbiased);
          return fused.y;
        }
        const axes = t.shape.slice(0, -1).map((_, i) => i);
        const batch = tf.moments(t, axes);
        move(batch.mean, n > 1 ? tf.mul(batch.variance, n / (n - 1)) : batch.variance);
        return tf.batchNorm(t, batch.mean, batch.variance, offset, gamma, o.epsilon);
      };
      const split = phase.normSplit ?? 0;
      const rows = z.shape[0];
      if (split <= 0 || split >= rows) return normalise(z, true) as T;
      // two batches: rows [0, split) and [split, rows), the running averages by the second
      // (one split and one concat: their gradients are each other, where two slices' are pads)
      const [head, tail] = tf.split(z, [split, rows - split], 0);
      return tf.concat([normalise(head, false), normalise(tail, true)], 0) as T;
    },
    layers(tfl, x) {
      const layer = tfl.layers.batchNormalization({ axis: -1, epsilon: o.epsilon, momentum: o.momentum, center, name: id });
      return applyWithWeights(tfl, layer, x, beta ? [gamma, beta, mean, variance] : [gamma, mean, variance]);
    },
  };
}
