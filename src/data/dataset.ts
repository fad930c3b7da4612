import type { Rng } from '../runtime/rng';
import { binarizeOnce, capPerClass, holdOut, labelledSubset, subset } from './splits';
import { Enum, Type, type OptionsOf } from '../registry/define';
import { UserError } from '../errors';
import type { DataSet, Split } from '../contracts';

/** Options every image data set shares. */
export const commonDataOptions = {
  validation: Type.Integer({
    minimum: 0,
    default: 10000,
    description: 'Examples held out of the training split for validation, drawn with the run seed',
  }),
  binarize: Enum(['none', 'dynamic', 'fixed'], {
    default: 'dynamic',
    description:
      'none: grey values in [0,1]; dynamic: a fresh Bernoulli draw per training batch (eval splits drawn once); fixed: one draw for all splits',
  }),
  max_train: Type.Optional(
    Type.Integer({
      minimum: 1,
      description: 'Use only the first N training examples (after the validation split), for quick runs',
    }),
  ),
  labelled: Type.Optional(
    Type.Integer({
      minimum: 1,
      description: 'Semi-supervised: only N training labels are known, N/C per class, drawn with the run seed (the rest is unlabelled)',
    }),
  ),
  class_cap: Type.Optional(
    Type.Integer({
      minimum: 1,
      description: 'At most this many training examples per class (drawn with the run seed), for heavily imbalanced data',
    }),
  ),
};

/** The options of commonDataOptions, as a plugin receives them. */
export type CommonDataOptions = Omit<OptionsOf<typeof commonDataOptions>, 'kind'>;

/**
 * Finish a data set the same way for every loader: per-class cap, validation split,
 * max_train, labelled subset, and binarisation of the splits that are drawn once. Every
 * draw comes from `rng` (forked from the run seed), each from its own stream.
 */
export function finishDataSet(
  base: Omit<DataSet, 'val' | 'binarize' | 'labelled'>,
  opts: CommonDataOptions,
  rng: Rng,
  where: string,
): DataSet {
  // a run on an empty split would train on nothing or report metrics of nothing
  if (base.train.n === 0) throw new UserError(`the training split is empty (0 examples in ${base.source}); check the data files`, where);
  if (base.test.n === 0) throw new UserError(`the test split is empty (0 examples in ${base.source}); check the data files`, where);
  let train = opts.class_cap ? capPerClass(base.train, base.dim, base.classes, opts.class_cap, rng.fork('class-cap'), where) : base.train;
  let val: Split | null;
  ({ train, val } = holdOut(train, base.dim, opts.validation, rng.fork('validation'), where));
  if (opts.max_train && opts.max_train < train.n) {
    train = subset(
      train,
      base.dim,
      Array.from({ length: opts.max_train }, (_, i) => i),
    );
  }
  const labelled = opts.labelled ? labelledSubset(train, base.classes, opts.labelled, rng.fork('labelled'), where) : null;
  let test = base.test;
  if (opts.binarize !== 'none') {
    const r = rng.fork('binarize');
    if (val) val = { ...val, x: binarizeOnce(val.x, r.fork('val')) };
    test = { ...test, x: binarizeOnce(test.x, r.fork('test')) };
    if (opts.binarize === 'fixed') train = { ...train, x: binarizeOnce(train.x, r.fork('train')) };
  }
  return { ...base, train, val, test, binarize: opts.binarize, labelled };
}
