import type * as tfc from '@tensorflow/tfjs-core';
import type { TrainProgress } from './progress';

/**
 * An optimizer owns its state as named variables, so a checkpoint can save and
 * restore it exactly (resume must reach the same numbers as an uninterrupted run).
 */
export interface Optimizer {
  /**
   * One update; grads by parameter name. `at` holds the scheduled hyper-parameters for this
   * step (`scheduled`'s names), as numbers or, in a compiled step, as fed device scalars.
   * Runs inside the caller's tidy.
   */
  apply(grads: Record<string, tfc.Tensor>, at: Record<string, number | tfc.Scalar>): void;
  /**
   * The hyper-parameters that move during training (a learning-rate schedule), by name, at
   * `progress`; absent or empty when none does (then they are constants of a compiled step).
   */
  scheduled?(progress: TrainProgress): Record<string, number>;
  state: Map<string, tfc.Variable>;
  /**
   * Present when `apply` is Adam's update in the form TensorFlow's fused kernel computes
   * (ResourceApplyAdam): a compiled step whose state stays in its TensorFlow session then
   * updates each parameter in one pass (src/train/step.ts).
   */
  fused?: FusedAdam;
}

/** What a compiled step needs to run Adam's update as ResourceApplyAdam on its session's variables. */
export interface FusedAdam {
  kind: 'adam';
  beta1: number;
  beta2: number;
  epsilon: number;
  /** A constant learning rate, or the name of the scheduled one (a key of `scheduled`). */
  lr: number | string;
  /** The update count (advanced by one before β1^t, β2^t are taken), and the moments as flat vectors. */
  t: tfc.Variable;
  m: tfc.Variable;
  v: tfc.Variable;
  /** The parameters in the moments' order (each one's moments follow the previous one's). */
  slots: { name: string; size: number }[];
}
