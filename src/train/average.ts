import type * as tfc from '@tensorflow/tfjs-core';
import { AVERAGE_PREFIX } from '../track/checkpoint';

/**
 * Stochastic weight averaging (train.swa; Izmailov et al. 2018, "Averaging weights leads to
 * wider optima and better generalization"; PyTorch's AveragedModel, Lightning's
 * StochasticWeightAveraging): from epoch `from` (1-based) on, the equal-weight mean of the
 * model's variables at the end of every epoch since. Training goes on from the raw
 * parameters; what is evaluated (validation, train.select, the test evaluators, export) is
 * the average. The buffers (batch normalisation's running statistics) are averaged as the
 * parameters are (AveragedModel with use_buffers), not recomputed.
 *
 * The average is a set of variables beside the model's, saved in every epoch checkpoint as
 * `average/model/...`, so a resumed run goes on averaging to the uninterrupted run's numbers.
 * The count of epochs averaged is a function of the epoch alone (epoch − from + 1).
 */
export class WeightAverage {
  /** The averages, by the model variable's checkpoint name (model/...). */
  readonly vars = new Map<string, tfc.Variable>();

  constructor(
    private readonly tf: typeof tfc,
    /** The model's variables, by checkpoint name (model/...). */
    private readonly model: Map<string, tfc.Variable>,
    /** The first epoch (1-based) averaged. */
    readonly from: number,
  ) {
    for (const [name, v] of model) this.vars.set(name, tf.variable(tf.zerosLike(v), false, undefined, v.dtype));
  }

  /** The averages under their checkpoint names (average/model/...), for the epoch checkpoint. */
  checkpointVars(): Map<string, tfc.Variable> {
    return new Map([...this.vars].map(([k, v]) => [`${AVERAGE_PREFIX}${k}`, v]));
  }

  /** Whether the parameters evaluated after `epoch` (1-based) are the average. */
  active(epoch: number): boolean {
    return epoch >= this.from;
  }

  /** How many epochs' ends the average holds after epoch `epoch` (1-based; 0 before it begins). */
  count(epoch: number): number {
    return Math.max(0, epoch - this.from + 1);
  }

  /** After epoch `epoch` (1-based): fold the model's current variables into the average. */
  update(epoch: number): void {
    if (!this.active(epoch)) return;
    const n = this.count(epoch) - 1; // epochs averaged before this one
    const tf = this.tf;
    tf.tidy(() => {
      for (const [name, v] of this.model) {
        const avg = this.vars.get(name)!;
        avg.assign(n === 0 ? v.clone() : tf.add(avg, tf.div(tf.sub(v, avg), n + 1)));
      }
    });
  }

  /**
   * The variables that hold what is evaluated after `epoch`, by the model's checkpoint names:
   * the averages once averaging has begun, else the model's own.
   */
  evaluated(epoch: number): Map<string, tfc.Variable> {
    return this.active(epoch) ? this.vars : this.model;
  }

  /** Run `fn` with the average in the model's variables (when active), then put the raw parameters back exactly. */
  with<T>(epoch: number, fn: () => T): T {
    if (!this.active(epoch)) return fn();
    const raw = new Map([...this.model].map(([k, v]) => [k, v.clone()]));
    try {
      for (const [k, v] of this.model) v.assign(this.vars.get(k)!);
      return fn();
    } finally {
      for (const [k, v] of this.model) {
        v.assign(raw.get(k)!);
        raw.get(k)!.dispose();
      }
    }
  }

  /** Put the average into the model's variables for good (the end of training, before the test evaluation). */
  install(epoch: number): void {
    if (!this.active(epoch)) return;
    for (const [k, v] of this.model) v.assign(this.vars.get(k)!);
  }

  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
  }
}
