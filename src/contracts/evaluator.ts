import type * as tfc from '@tensorflow/tfjs-core';
import type { Rng } from '../runtime/rng';
import type { Model, WeightValues } from './model';
import type { DataSet } from './dataset';

/** train.compile: 'auto' (and 'xla', which XLA-compiles the training step only) compiles evaluations into TensorFlow graphs where exact, 'off' keeps them kernel by kernel. */
export type CompileMode = 'auto' | 'off' | 'xla';

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
  unitWeights: WeightValues;
}

/** An evaluator returns named metrics (logged as `test/<name>`) and may write artifacts. */
export interface Evaluator {
  run(ctx: EvalContext): Promise<Record<string, number>>;
}
