import type * as tfc from '@tensorflow/tfjs-core';
import type { Model, LossWeights } from '../models/model';
import type { Optimizer } from './optimizer';
import type { Rng } from '../runtime/rng';
import type { TrainProgress } from '../priors/prior';

export type TrainStep = (x: tfc.Tensor2D, y: Int32Array | null, w: LossWeights, rng: Rng, progress: TrainProgress) => Record<string, tfc.Scalar>;

/**
 * One optimisation step: gradients of the model's `loss` term, then the optimizer's
 * update. Returns every loss term as a scalar still on the device (nothing is read
 * back here); the caller owns and disposes them. Used by the training loop and the
 * benchmark, so the benchmark measures exactly what training does.
 */
export function makeTrainStep(tf: typeof tfc, model: Model, optimizer: Optimizer): TrainStep {
  const names = [...model.params.keys()];
  const vars = names.map((n) => model.params.get(n)!);
  const byTfName = new Map(vars.map((v, i) => [v.name, names[i]]));
  return (x, y, w, rng, progress) => {
    let terms: Record<string, tfc.Scalar> = {};
    tf.tidy(() => {
      const { grads } = tf.variableGrads(() => {
        terms = model.terms({ x, y }, w, rng, progress);
        Object.values(terms).forEach((t) => tf.keep(t));
        return terms.loss;
      }, vars);
      const named: Record<string, tfc.Tensor> = {};
      for (const [k, g] of Object.entries(grads)) named[byTfName.get(k)!] = g;
      optimizer.apply(named);
    });
    return terms;
  };
}
