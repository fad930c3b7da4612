import * as path from 'path';
import * as crypto from 'crypto';
import { definePlugin, Override, Enum, Type, type OptionsOf, type PluginContext } from '../registry/types';
import { DataSet, Split, commonDataOptions, finishDataSet } from './dataset';
import { binarizeOnce, subset } from './splits';
import { UserError } from '../errors';
import { readDataFile } from './files';

const hyperspectralOptions = {
  path: Type.String({ description: 'CSV file: one row per pixel, the band values, then an integer class label (last column); relative to the config file' }),
  test_path: Type.Optional(Type.String({ description: 'A second CSV in the same format as the test split (default: test_fraction of path)' })),
  test_fraction: Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1, default: 0.2, description: 'Without test_path: the fraction of rows held out as the test split, drawn with the run seed' }),
  header: Enum(['auto', true, false], { default: 'auto', description: 'Whether the first line is a header (auto: when it is not all numbers)' }),
  ...commonDataOptions,
  validation: Override(commonDataOptions.validation, { default: 0 }),
  binarize: Override(commonDataOptions.binarize, { default: 'none', description: 'none (spectra are real-valued); dynamic/fixed treat the scaled bands as Bernoulli probabilities' }),
};
export type HyperspectralOptions = OptionsOf<typeof hyperspectralOptions>;

/** The data set plus what the loader derived (kept for the record and for tests). */
export interface HyperspectralDataSet extends DataSet {
  /** Original label value of each class index 0..C−1 (labels are remapped, sorted). */
  labelValues: number[];
  /** Per-band min and max of the final training split (the [0,1] normalisation). */
  normalisation: { min: number[]; max: number[] };
}

const WHERE = 'data (hyperspectral)';
const GET_DATA =
  'export labelled pixels as CSV, one row per pixel: the band values, then an integer class label as the last column (optional header line); ' +
  'public scenes with ground truth (Indian Pines, Salinas, Pavia: https://www.ehu.eus/ccwintco/index.php/Hyperspectral_Remote_Sensing_Scenes) ' +
  'come as .mat files: write the labelled pixels with e.g. numpy.savetxt(f, np.c_[X, y], delimiter=",")';

/** The largest finite float32. */
const FLOAT32_MAX = 3.4028234663852886e38;
/** A plain decimal number as CSV files write them (not 0x1F, 0b1, Infinity or an empty cell). */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
/** Cells that are numbers gone wrong (NaN, inf): a data row, never a header word. */
const NUMBER_LIKE = /^[+-]?(nan|inf(inity)?|0[xob][0-9a-f]+)$/i;

/**
 * Parse the CSV format: rows of numbers, the last column an integer label. With header
 * 'auto' the first line is a header only when it has no empty cell and some cell is a word
 * (not a number, nor a NaN or inf); a first data row with an empty or NaN cell is reported
 * as such, not dropped as a header. Labels stay exact (any safe integer: 2^32 and 10^12 are
 * two classes, not wrapped through 32 bits).
 */
export function parseSpectraCsv(text: string, file: string, header: 'auto' | boolean): { x: Float32Array; labels: Float64Array; n: number; bands: number } {
  const lines = text.split(/\r?\n/);
  let first = 0;
  while (first < lines.length && !lines[first].trim()) first++;
  const isHeader = (l: string) => {
    const cells = l.split(/[,;\t]/).map((c) => c.trim());
    return cells.every((c) => c !== '') && cells.some((c) => !DECIMAL.test(c) && !NUMBER_LIKE.test(c));
  };
  if (header === true || (header === 'auto' && first < lines.length && isHeader(lines[first]))) first++;
  // one delimiter for the file, from its first data row: ';' or a tab where it has one, else
  // ',' (so '0,5;0,25;1' is three cells with decimal commas, refused below, not six numbers)
  let start = first;
  while (start < lines.length && !lines[start].trim()) start++;
  const firstRow = lines[start] ?? '';
  const delimiter = firstRow.includes(';') ? ';' : firstRow.includes('\t') ? '\t' : ',';
  const rowsOut: number[][] = [];
  let bands = -1;
  for (let i = first; i < lines.length; i++) {
    const l = lines[i].trim();
    if (!l) continue;
    const cells = l.split(delimiter).map((c) => c.trim());
    if (bands < 0) {
      bands = cells.length - 1;
      if (bands < 1) throw new UserError(`line ${i + 1}: need at least one band value and a label per row`, file);
    }
    if (cells.length !== bands + 1) throw new UserError(`line ${i + 1}: ${cells.length} columns, but the first row has ${bands + 1} (bands + label)`, file);
    const bad = cells.findIndex((c) => !DECIMAL.test(c) || !Number.isFinite(Number(c)));
    if (bad >= 0) {
      const c = cells[bad];
      const why = c === '' ? ' (an empty cell)' : /^[+-]?\d*,\d+$/.test(c) ? ` (a decimal comma: write decimal points, e.g. ${c.replace(',', '.')}, or export the CSV with '.' as the decimal separator)` : '';
      throw new UserError(`line ${i + 1}, column ${bad + 1}: '${c}' is not a number${why}`, file);
    }
    const v = cells.map(Number);
    // band values are stored as float32: beyond its range a value would become Infinity
    const huge = v.findIndex((x, j) => j < bands && Math.abs(x) > FLOAT32_MAX);
    if (huge >= 0) throw new UserError(`line ${i + 1}, column ${huge + 1}: ${cells[huge]} is beyond float32's range (±3.4e38); rescale the band values`, file);
    if (!Number.isSafeInteger(v[bands])) throw new UserError(`line ${i + 1}: the label (last column) must be an integer, got ${cells[bands]}`, file);
    rowsOut.push(v);
  }
  if (!rowsOut.length) throw new UserError(`no data rows; ${GET_DATA}`, file);
  const n = rowsOut.length;
  const x = new Float32Array(n * bands);
  const labels = new Float64Array(n);
  rowsOut.forEach((r, i) => {
    for (let j = 0; j < bands; j++) x[i * bands + j] = r[j];
    labels[i] = r[bands];
  });
  return { x, labels, n, bands };
}

function readCsv(file: string, header: 'auto' | boolean, hash: crypto.Hash) {
  const buf = readDataFile(file, 'hyperspectral CSV', GET_DATA);
  hash.update(buf);
  return parseSpectraCsv(buf.toString('utf8'), file, header);
}

/** Scale every band to [0, 1] with the given per-band min/max (values outside are clipped). */
function normalise(split: Split, dim: number, min: number[], max: number[]): Split {
  const x = new Float32Array(split.x.length);
  for (let i = 0; i < split.n; i++)
    for (let j = 0; j < dim; j++) {
      const range = max[j] - min[j];
      const v = range > 0 ? (split.x[i * dim + j] - min[j]) / range : 0;
      x[i * dim + j] = Math.min(1, Math.max(0, v));
    }
  return { ...split, x };
}

/**
 * Hyperspectral pixels (seed 002): one spectrum (e.g. 268 bands) and a class label per row
 * of a CSV file. Labels are remapped to 0..C−1 in sorted order. Without `test_path`, a
 * `test_fraction` of the rows (drawn with the run seed) is the test split. Then the common
 * steps (class_cap, validation, max_train, labelled), and every band is min-max scaled to
 * [0, 1] with the min and max of the final training split (applied to all splits).
 */
export function loadHyperspectral(o: HyperspectralOptions, ctx: PluginContext): HyperspectralDataSet {
  const hash = crypto.createHash('sha256');
  const file = path.resolve(ctx.baseDir, o.path);
  const all = readCsv(file, o.header, hash);
  let trainRaw: Split;
  let testRaw: Split;
  let testLabels: Float64Array;
  let trainLabels: Float64Array;
  if (o.test_path) {
    const testFile = path.resolve(ctx.baseDir, o.test_path);
    const t = readCsv(testFile, o.header, hash);
    if (t.bands !== all.bands) throw new UserError(`test file has ${t.bands} bands, the training file ${all.bands}`, testFile);
    trainRaw = { x: all.x, y: null, n: all.n };
    trainLabels = all.labels;
    testRaw = { x: t.x, y: null, n: t.n };
    testLabels = t.labels;
  } else {
    const nTest = Math.round(o.test_fraction * all.n);
    if (nTest < 1 || nTest >= all.n) throw new UserError(`test_fraction ${o.test_fraction} of ${all.n} rows leaves an empty split`, WHERE);
    const perm = ctx.rng.fork('test-split').permutation(all.n);
    const testIdx = Int32Array.from(perm.subarray(0, nTest)).sort();
    const trainIdx = Int32Array.from(perm.subarray(nTest)).sort();
    trainRaw = subset({ x: all.x, y: null, n: all.n }, all.bands, trainIdx);
    testRaw = subset({ x: all.x, y: null, n: all.n }, all.bands, testIdx);
    trainLabels = Float64Array.from(trainIdx, (i) => all.labels[i]);
    testLabels = Float64Array.from(testIdx, (i) => all.labels[i]);
  }
  const labelValues = [...new Set([...trainLabels, ...testLabels])].sort((a, b) => a - b);
  const index = new Map(labelValues.map((v, i) => [v, i]));
  const remap = (l: Float64Array) => Int32Array.from(l, (v) => index.get(v)!);
  const dim = all.bands;
  const data = finishDataSet(
    {
      name: 'hyperspectral',
      shape: [1, dim, 1],
      dim,
      classes: labelValues.length,
      train: { ...trainRaw, y: remap(trainLabels) },
      test: { ...testRaw, y: remap(testLabels) },
      sha256: hash.digest('hex'),
      source: o.test_path ? `${file} + ${path.resolve(ctx.baseDir, o.test_path)}` : `${file} (test: ${o.test_fraction} of the rows)`,
    },
    { ...o, binarize: 'none' },
    ctx.rng,
    WHERE,
  );
  const min = new Array(dim).fill(Infinity);
  const max = new Array(dim).fill(-Infinity);
  for (let i = 0; i < data.train.n; i++)
    for (let j = 0; j < dim; j++) {
      const v = data.train.x[i * dim + j];
      if (v < min[j]) min[j] = v;
      if (v > max[j]) max[j] = v;
    }
  let train = normalise(data.train, dim, min, max);
  let val = data.val ? normalise(data.val, dim, min, max) : null;
  let test = normalise(data.test, dim, min, max);
  if (o.binarize !== 'none') {
    // as finishDataSet does, but after scaling (the draws need values in [0, 1])
    const r = ctx.rng.fork('binarize');
    if (val) val = { ...val, x: binarizeOnce(val.x, r.fork('val')) };
    test = { ...test, x: binarizeOnce(test.x, r.fork('test')) };
    if (o.binarize === 'fixed') train = { ...train, x: binarizeOnce(train.x, r.fork('train')) };
  }
  return {
    ...data,
    binarize: o.binarize,
    train,
    val,
    test,
    source: `${data.source}; bands min-max scaled to [0,1] by the training split`,
    labelValues,
    normalisation: { min, max },
  };
}

export const hyperspectralDataset = definePlugin({
  kind: 'dataset',
  name: 'hyperspectral',
  description: 'Hyperspectral pixels (seed 002) from a CSV file: band values then an integer label per row; bands min-max scaled to [0,1] by the training split',
  options: hyperspectralOptions,
  create: (o, ctx): HyperspectralDataSet => loadHyperspectral(o, ctx),
});
