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
}
