import type { Rng } from '../runtime/rng';
import { binarizeSplits, capPerClass, concatSplits, holdOut, labelledSubset, subset } from './splits';
import { Enum, Type, type OptionsOf } from '../registry/define';
import { UserError } from '../errors';
import type { DataSet, Split } from '../contracts';

/** What `binarize` does; `none` is the values as the data set has them. */
export function binarizeDescription(none: string): string {
  return (
    `none: ${none}; dynamic: a fresh Bernoulli draw per training batch, the validation and test splits drawn once; ` +
    'training: the same draws per training batch, the validation and test splits kept grey (classifiers read the grey ' +
    'values; a Bernoulli likelihood of them is a cross-entropy, not a log-likelihood); fixed: one draw for every split'
  );
}

/** Options every image data set shares. */
export const commonDataOptions = {
  validation: Type.Integer({
    minimum: 0,
    default: 10000,
    description: 'Examples held out of the training split for validation, drawn with the run seed',
  }),
  binarize: Enum(['none', 'dynamic', 'training', 'fixed'], {
    default: 'dynamic',
    description: binarizeDescription('grey values in [0,1]'),
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
  validation_as_unlabelled: Type.Optional(
    Type.Boolean({
      description:
        'Semi-supervised (with labelled): the validation images also train as unlabelled rows, their labels never used in ' +
        'training (the ADGM authors train on all 60,000 MNIST images so); the labelled subset is drawn before they join, ' +
        'from the same rows as without them (a nested M1 trains without them). Validation metrics then read images the model has seen without labels',
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
  const capped = opts.class_cap
    ? capPerClass(base.train, base.dim, base.classes, opts.class_cap, rng.fork('class-cap'), where)
    : base.train;
  const held = holdOut(capped, base.dim, opts.validation, rng.fork('validation'), where);
  let train = held.train;
  const val: Split | null = held.val;
  if (opts.max_train && opts.max_train < train.n) {
    train = subset(
      train,
      base.dim,
      Array.from({ length: opts.max_train }, (_, i) => i),
    );
  }
  const labelled = opts.labelled ? labelledSubset(train, base.classes, opts.labelled, rng.fork('labelled'), where) : null;
  if (opts.validation_as_unlabelled) {
    // after the labelled draw (the same labels as without them), before binarisation (the
    // validation split is drawn once, its copy in training per batch as every training row)
    if (!labelled)
      throw new UserError(
        'validation_as_unlabelled needs labelled: N (unlabelled rows exist only in a semi-supervised run); to train a model on every image, set validation: 0',
        where,
      );
    if (!val)
      throw new UserError(
        'validation_as_unlabelled needs validation images (validation > 0); with validation: 0 they are training rows already',
        where,
      );
    train = concatSplits(train, val, base.dim);
  }
  const splits = binarizeSplits({ train, val, test: base.test }, opts.binarize, rng.fork('binarize'));
  return { ...base, ...splits, binarize: opts.binarize, labelled };
}
