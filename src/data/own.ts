import { Enum, Override, Type } from '../registry/define';
import { binarizeDescription, commonDataOptions, finishDataSet, type CommonDataOptions } from './dataset';
import { binarizeSplits, subset } from './splits';
import { UserError } from '../errors';
import { type PluginContext, DataSet, Split } from '../contracts';

/**
 * What the "your own data" loaders (npy, csv, image-folder, and hyperspectral, a preset of
 * csv) share: the test split by fraction, label remapping, the [0, 1] scaling and its check,
 * and the common finishing steps.
 */

/** How stored values become the [0, 1] values a model sees. */
export type Scale = 'none' | 'max' | 'minmax';

/** The common options of the own-data plugins: validation 0 and binarize none by default (the data's size and values are unknown). */
export const ownDataOptions = {
  test_fraction: Type.Number({
    exclusiveMinimum: 0,
    exclusiveMaximum: 1,
    default: 0.2,
    description: 'Without a test file: the fraction of the examples held out as the test split, drawn with the run seed (not stratified)',
  }),
  ...commonDataOptions,
  validation: Override(commonDataOptions.validation, { default: 0 }),
  binarize: Override(commonDataOptions.binarize, {
    default: 'none',
    description: binarizeDescription('values as scaled, in [0,1]'),
  }),
};

export function scaleOption<const T extends readonly ('auto' | Scale)[]>(values: T, defaultValue: T[number], what: string) {
  return Enum(values, {
    default: defaultValue,
    description:
      `How ${what} become values in [0,1]: none = as stored (each must lie in [0,1], checked); max = divided by 255 ` +
      '(65535 for <u2 arrays; checked to land in [0,1]); minmax = each feature scaled by the min and max of the final training split ' +
      '(applied to every split, clipped)' +
      (values.includes('auto') ? '; auto = max for |u1 and <u2 arrays, none for the others' : ''),
  });
}

/** One file's examples as read: values (already divided for scale none/max) and raw labels. */
export interface RawPart {
  x: Float32Array;
  /** Label values as stored (numbers, or class names); null when unlabelled. */
  labels: ArrayLike<number> | string[] | null;
  n: number;
  /** The file the labels came from (for messages). */
  labelFile?: string;
}

/** A data set plus what the loader derived (kept for the record and for tests). */
export interface OwnDataSet extends DataSet {
  /** Original label value (or class name) of each class index 0..C−1 (sorted); [] when unlabelled. */
  labelValues: (number | string)[];
  /** Per-feature min and max of the final training split (scale: minmax only). */
  normalisation: { min: number[]; max: number[] } | null;
}

/**
 * Divide the values by `divisor` and check that each lands in [0, 1] (and is finite); the
 * error names the entry through `locate(row, column)` (0-based) and what to do.
 */
export function scaleAndCheck(
  x: Float32Array,
  dim: number,
  divisor: number,
  scaleName: string,
  file: string,
  locate: (row: number, col: number) => string,
): Float32Array {
  const out = divisor === 1 ? x : new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const raw = x[i];
    const v = divisor === 1 ? raw : raw / divisor;
    if (!(v >= 0 && v <= 1)) {
      const row = Math.floor(i / dim);
      const col = i % dim;
      if (!Number.isFinite(raw)) throw new UserError(`${locate(row, col)}: ${raw} is not a finite number; remove or impute it`, file);
      const fix =
        divisor === 1
          ? 'use scale: max (÷255 for 8-bit values) or scale: minmax'
          : 'use scale: minmax (per feature, by the training split)';
      throw new UserError(
        `${locate(row, col)}: ${raw} is outside [0, 1] after scale: ${scaleName}${divisor === 1 ? '' : ` (÷${divisor})`}; ${fix}`,
        file,
      );
    }
    if (divisor !== 1) out[i] = v;
  }
  return out;
}

/** Sorted distinct label values: numerically when every one is a number, else as strings. */
function sortedValues(parts: (ArrayLike<number> | string[])[]): (number | string)[] {
  const set = new Set<number | string>();
  for (const p of parts) for (let i = 0; i < p.length; i++) set.add(p[i]);
  const values = [...set];
  return values.every((v) => typeof v === 'number') ? (values as number[]).sort((a, b) => a - b) : values.map(String).sort();
}

/** Scale every feature to [0, 1] with the given per-feature min/max (values outside are clipped; a constant feature is 0). */
export function normaliseMinMax(split: Split, dim: number, min: number[], max: number[]): Split {
  const x = new Float32Array(split.x.length);
  for (let i = 0; i < split.n; i++)
    for (let j = 0; j < dim; j++) {
      const range = max[j] - min[j];
      const v = range > 0 ? (split.x[i * dim + j] - min[j]) / range : 0;
      x[i * dim + j] = Math.min(1, Math.max(0, v));
    }
  return { ...split, x };
}

export interface OwnParts {
  name: string;
  /** e.g. 'data (npy)', where split errors are reported. */
  where: string;
  shape: number[];
  dim: number;
  train: RawPart;
  /** null: the test split is `testFraction` of train, drawn with the run seed (fork 'test-split'). */
  test: RawPart | null;
  testFraction: number;
  /** What the examples are called in messages ('rows', 'images', 'examples'). */
  noun: string;
  sha256: string;
  source: string;
  minmax: boolean;
  opts: CommonDataOptions;
  ctx: PluginContext;
}

/**
 * The common path of every own-data loader: the test split (file or fraction), labels
 * remapped to 0..C−1 in sorted order (numbers numerically, names as strings), the common
 * steps of finishDataSet (class_cap, validation, max_train, labelled), then scale: minmax by
 * the final training split, then binarisation (the same draws as finishDataSet's).
 */
export function finishOwnDataSet(p: OwnParts): OwnDataSet {
  const { dim, ctx } = p;
  let trainRaw: Split;
  let testRaw: Split;
  let trainLabels: ArrayLike<number> | string[] | null;
  let testLabels: ArrayLike<number> | string[] | null;
  if (p.test) {
    trainRaw = { x: p.train.x, y: null, n: p.train.n };
    testRaw = { x: p.test.x, y: null, n: p.test.n };
    trainLabels = p.train.labels;
    testLabels = p.test.labels;
  } else {
    const all = p.train;
    const nTest = Math.round(p.testFraction * all.n);
    if (nTest < 1 || nTest >= all.n)
      throw new UserError(`test_fraction ${p.testFraction} of ${all.n} ${p.noun} leaves an empty split`, p.where);
    const perm = ctx.rng.fork('test-split').permutation(all.n);
    const testIdx = Int32Array.from(perm.subarray(0, nTest)).sort();
    const trainIdx = Int32Array.from(perm.subarray(nTest)).sort();
    trainRaw = subset({ x: all.x, y: null, n: all.n }, dim, trainIdx);
    testRaw = subset({ x: all.x, y: null, n: all.n }, dim, testIdx);
    const pick = (idx: Int32Array) => {
      const l = all.labels!;
      return Array.isArray(l) ? Array.from(idx, (i) => l[i]) : Float64Array.from(idx, (i) => (l as ArrayLike<number>)[i]);
    };
    trainLabels = all.labels ? pick(trainIdx) : null;
    testLabels = all.labels ? pick(testIdx) : null;
  }
  const labelValues = trainLabels && testLabels ? sortedValues([trainLabels, testLabels]) : [];
  const index = new Map<number | string, number>(labelValues.map((v, i) => [v, i]));
  const remap = (l: ArrayLike<number> | string[] | null) => {
    if (!l) return null;
    const numeric = typeof labelValues[0] === 'number';
    return Int32Array.from({ length: l.length }, (_, i) => index.get(numeric ? l[i] : String(l[i]))!);
  };
  const data = finishDataSet(
    {
      name: p.name,
      shape: p.shape,
      dim,
      classes: labelValues.length,
      train: { ...trainRaw, y: remap(trainLabels) },
      test: { ...testRaw, y: remap(testLabels) },
      sha256: p.sha256,
      source: p.source,
    },
    { ...p.opts, binarize: 'none' },
    ctx.rng,
    p.where,
  );
  let normalisation: OwnDataSet['normalisation'] = null;
  let { train, val, test } = data;
  if (p.minmax) {
    const min = new Array(dim).fill(Infinity);
    const max = new Array(dim).fill(-Infinity);
    for (let i = 0; i < train.n; i++)
      for (let j = 0; j < dim; j++) {
        const v = train.x[i * dim + j];
        if (v < min[j]) min[j] = v;
        if (v > max[j]) max[j] = v;
      }
    train = normaliseMinMax(train, dim, min, max);
    val = val ? normaliseMinMax(val, dim, min, max) : null;
    test = normaliseMinMax(test, dim, min, max);
    normalisation = { min, max };
  }
  // as finishDataSet does (the same streams), but after scaling: the draws need values in [0, 1]
  ({ train, val, test } = binarizeSplits({ train, val, test }, p.opts.binarize, ctx.rng.fork('binarize')));
  return { ...data, binarize: p.opts.binarize, train, val, test, labelValues, normalisation };
}

/**
 * Training and test labels both present or both absent: a model that reads labels would
 * otherwise train on classes it is never tested on (or the reverse).
 */
export function checkLabelsPaired(train: RawPart, test: RawPart | null, trainWhat: string, testWhat: string, testFile: string): void {
  if (!test) return;
  if (train.labels && !test.labels)
    throw new UserError(`the training data has labels (${trainWhat}) but the test data has none; give ${testWhat}`, testFile);
  if (!train.labels && test.labels)
    throw new UserError(`the test data has labels but the training data has none; give ${trainWhat}, or drop the test labels`, testFile);
}
