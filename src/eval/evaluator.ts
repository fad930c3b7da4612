import type * as tfc from '@tensorflow/tfjs-core';
import type { Split } from '../contracts';

/** Rows [start, end) of a split as a [n, dim] tensor. */
export function rows(tf: typeof tfc, split: Split, dim: number, start: number, end: number): tfc.Tensor2D {
  return tf.tensor2d(split.x.subarray(start * dim, end * dim), [end - start, dim]);
}
