import type * as tfc from '@tensorflow/tfjs-core';
import type { Model, LossWeights } from '../models/model';
import type { DataSet, Split } from '../data/dataset';
import type { Rng } from '../runtime/rng';
import type { CompileMode } from './compiled';

/** What an evaluator's `run` receives after training. */
export interface EvalContext {
  tf: typeof tfc;
  model: Model;
  data: DataSet;
  /** A stream forked for this evaluator from the run seed. */
  rng: Rng;
  /** train.compile: 'off' keeps evaluations kernel by kernel too (src/eval/compiled.ts). */
  compile?: CompileMode;
  /** Absolute path for an artifact file of this run. */
  artifact(name: string): string;
  log(message: string): void;
  /** Every loss weight the model reads, at 1 (for evaluators that call model.terms). */
  unitWeights: LossWeights;
}

/** An evaluator returns named metrics (logged as `test/<name>`) and may write artifacts. */
export interface Evaluator {
  run(ctx: EvalContext): Promise<Record<string, number>>;
}

/** Rows [start, end) of a split as a [n, dim] tensor. */
export function rows(tf: typeof tfc, split: Split, dim: number, start: number, end: number): tfc.Tensor2D {
  return tf.tensor2d(split.x.subarray(start * dim, end * dim), [end - start, dim]);
}
