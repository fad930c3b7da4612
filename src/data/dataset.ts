import type { Rng } from '../runtime/rng';
import { UserError } from '../errors';
import type { JsonSchema } from '../registry/types';

/** One split of a data set: n examples of `dim` values in [0, 1], and labels if known. */
export interface Split {
  x: Float32Array;
  y: Int32Array | null;
  n: number;
}

/** What a dataset plugin's `create` resolves to. */
export interface DataSet {
  name: string;
  /** Shape of one example, e.g. [28, 28, 1]. */
  shape: number[];
  dim: number;
  /** Number of classes (0 when unlabelled). */
  classes: number;
  train: Split;
  val: Split | null;
  test: Split;
  /** sha256 over the raw data the set was built from (files, or generator parameters). */
  sha256: string;
  /** Where it came from, for the run record. */
  source: string;
  /** 'dynamic': training batches are re-binarised every draw (eval splits were binarised once). */
  binarize: Binarize;
}

export type Binarize = 'none' | 'dynamic' | 'fixed';

/** Options every image data set shares. */
export const commonDataOptions: Record<string, JsonSchema> = {
  validation: {
    type: 'integer',
    minimum: 0,
    default: 10000,
    description: 'Examples held out of the training split for validation, drawn with the run seed',
  },
  binarize: {
    enum: ['none', 'dynamic', 'fixed'],
    default: 'dynamic',
    description:
      'none: grey values in [0,1]; dynamic: a fresh Bernoulli draw per training batch (eval splits drawn once); fixed: one draw for all splits',
  },
  max_train: {
    type: 'integer',
    minimum: 1,
    description: 'Use only the first N training examples (after the validation split), for quick runs',
  },
};

/** Hold out `nVal` examples of `split`, chosen with `rng`. */
export function holdOut(split: Split, dim: number, nVal: number, rng: Rng, where: string): { train: Split; val: Split | null } {
  if (nVal === 0) return { train: split, val: null };
  if (nVal >= split.n) {
    throw new UserError(`validation (${nVal}) must be smaller than the training split (${split.n} examples)`, where);
  }
  const perm = rng.permutation(split.n);
  const pick = (idx: Int32Array): Split => subset(split, dim, idx);
  return { val: pick(perm.subarray(0, nVal)), train: pick(perm.subarray(nVal)) };
}

export function subset(split: Split, dim: number, idx: Int32Array | number[]): Split {
  const n = idx.length;
  const x = new Float32Array(n * dim);
  const y = split.y ? new Int32Array(n) : null;
  for (let i = 0; i < n; i++) {
    const j = idx[i];
    x.set(split.x.subarray(j * dim, (j + 1) * dim), i * dim);
    if (y) y[i] = split.y![j];
  }
  return { x, y, n };
}

/** One Bernoulli draw per pixel (in place on a copy). */
export function binarizeOnce(x: Float32Array, rng: Rng): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = rng.uniform() < x[i] ? 1 : 0;
  return out;
}

/**
 * Finish a data set: validation split, max_train, and binarisation of the splits that
 * are drawn once. All draws come from `rng` (forked from the run seed).
 */
export function finishDataSet(
  base: Omit<DataSet, 'val' | 'binarize'>,
  opts: { validation: number; binarize: Binarize; max_train?: number },
  rng: Rng,
  where: string,
): DataSet {
  let { train, val } = holdOut(base.train, base.dim, opts.validation, rng.fork('validation'), where);
  if (opts.max_train && opts.max_train < train.n) {
    train = subset(train, base.dim, Array.from({ length: opts.max_train }, (_, i) => i));
  }
  let test = base.test;
  if (opts.binarize !== 'none') {
    const r = rng.fork('binarize');
    if (val) val = { ...val, x: binarizeOnce(val.x, r.fork('val')) };
    test = { ...test, x: binarizeOnce(test.x, r.fork('test')) };
    if (opts.binarize === 'fixed') train = { ...train, x: binarizeOnce(train.x, r.fork('train')) };
  }
  return { ...base, train, val, test, binarize: opts.binarize };
}
