import type * as tfc from '@tensorflow/tfjs-core';

/** Where training is, for priors and weights that follow a schedule. */
export interface TrainProgress {
  epoch: number;
  /** Global step (0-based). */
  step: number;
  /** Fraction of training done, in [0, 1]. */
  fraction: number;
  /**
   * Epochs done as a fraction (epoch + step within epoch / steps per epoch), when the
   * caller knows it; priors that follow a schedule in epochs (spike-slab's c) read it.
   */
  epochFloat?: number;
  /** The prior's `scheduled` values for this step, as numbers or device scalars. */
  scheduled?: Record<string, number | tfc.Scalar>;
}

/**
 * The end of training: every schedule at its end value. What evaluation computes with, and
 * what a prior created through the registry receives when its caller omits `progress`.
 */
export const END_OF_TRAINING: Readonly<TrainProgress> = Object.freeze({ epoch: 0, step: 0, fraction: 1 });
