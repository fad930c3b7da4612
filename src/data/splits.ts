import type { Rng } from '../runtime/rng';
import { UserError } from '../errors';
import type { Binarize, Split } from '../contracts';

/** Rows `idx` of a split, copied. */
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

/** The rows of `a` then those of `b`, copied (labels where both have them). */
export function concatSplits(a: Split, b: Split, dim: number): Split {
  const x = new Float32Array((a.n + b.n) * dim);
  x.set(a.x.subarray(0, a.n * dim));
  x.set(b.x.subarray(0, b.n * dim), a.n * dim);
  let y: Int32Array | null = null;
  if (a.y && b.y) {
    y = new Int32Array(a.n + b.n);
    y.set(a.y.subarray(0, a.n));
    y.set(b.y.subarray(0, b.n), a.n);
  }
  return { x, y, n: a.n + b.n };
}

/** Hold out `nVal` examples of `split`, chosen with `rng`. */
export function holdOut(split: Split, dim: number, nVal: number, rng: Rng, where: string): { train: Split; val: Split | null } {
  if (nVal === 0) return { train: split, val: null };
  if (nVal >= split.n) {
    throw new UserError(`validation (${nVal}) must be smaller than the training split (${split.n} examples)`, where);
  }
  const perm = rng.permutation(split.n);
  return { val: subset(split, dim, perm.subarray(0, nVal)), train: subset(split, dim, perm.subarray(nVal)) };
}

function byClass(split: Split, classes: number, where: string, what: string): number[][] {
  if (!split.y) throw new UserError(`${what} needs labels, but this data set has none`, where);
  const rows: number[][] = Array.from({ length: classes }, () => []);
  for (let i = 0; i < split.n; i++) rows[split.y[i]].push(i);
  return rows;
}

/** Keep at most `cap` examples of each class (chosen with `rng`), in their original order. */
export function capPerClass(split: Split, dim: number, classes: number, cap: number, rng: Rng, where: string): Split {
  const keep: number[] = [];
  for (const rows of byClass(split, classes, where, 'class_cap')) {
    const perm = rng.permutation(rows.length);
    for (let i = 0; i < Math.min(cap, rows.length); i++) keep.push(rows[perm[i]]);
  }
  keep.sort((a, b) => a - b);
  return subset(split, dim, keep);
}

/**
 * A class-balanced labelled subset: N/C rows of each class, drawn with `rng`
 * (Kingma et al.: N = 100 means 10 per digit). Returns row indices into `split`, sorted.
 */
export function labelledSubset(split: Split, classes: number, n: number, rng: Rng, where: string): Int32Array {
  if (!split.y || !classes) throw new UserError('labelled needs labels, but this data set has none', where);
  if (n % classes !== 0) {
    throw new UserError(`labelled (${n}) must be a multiple of the number of classes (${classes}) for a class-balanced subset`, where);
  }
  const per = n / classes;
  const out: number[] = [];
  byClass(split, classes, where, 'labelled').forEach((rows, c) => {
    if (rows.length < per)
      throw new UserError(`labelled needs ${per} examples of class ${c}, but the training split has ${rows.length}`, where);
    const perm = rng.permutation(rows.length);
    for (let i = 0; i < per; i++) out.push(rows[perm[i]]);
  });
  return Int32Array.from(out.sort((a, b) => a - b));
}

/** Examples per class: [count of class 0, count of class 1, ...]. */
export function classHistogram(y: Int32Array, classes: number, rows?: Int32Array): number[] {
  const h = new Array(classes).fill(0);
  if (rows) for (const i of rows) h[y[i]]++;
  else for (const c of y) h[c]++;
  return h;
}

/** One Bernoulli draw per pixel, on a copy. */
export function binarizeOnce(x: Float32Array, rng: Rng): Float32Array {
  return rng.bernoulli(x);
}

/** Whether every training batch is a fresh Bernoulli draw of its grey values. */
export function drawsEveryBatch(binarize: Binarize): boolean {
  return binarize === 'dynamic' || binarize === 'training';
}

/**
 * The splits as `binarize` has them before training: the validation and test splits drawn
 * once ('dynamic', 'fixed'), the training split too ('fixed'); 'training' and 'none' leave
 * them grey. Each split from its own stream of `rng` (the caller's 'binarize' fork).
 */
export function binarizeSplits<S extends { train: Split; val: Split | null; test: Split }>(splits: S, binarize: Binarize, rng: Rng): S {
  if (binarize !== 'dynamic' && binarize !== 'fixed') return splits;
  const { train, val, test } = splits;
  return {
    ...splits,
    val: val ? { ...val, x: binarizeOnce(val.x, rng.fork('val')) } : null,
    test: { ...test, x: binarizeOnce(test.x, rng.fork('test')) },
    train: binarize === 'fixed' ? { ...train, x: binarizeOnce(train.x, rng.fork('train')) } : train,
  };
}
