import { ConfigPath, definePlugin, Override, Enum, Type, type OptionsOf } from '../registry/define';
import { commonDataOptions } from './dataset';
import { CsvFormat, loadCsvDataSet, parseNumericCsv } from './csv';
import type { OwnDataSet } from './own';
import type { PluginContext } from '../contracts';

const hyperspectralOptions = {
  path: ConfigPath('CSV file: one row per pixel, the band values, then an integer class label (last column)'),
  test_path: Type.Optional(ConfigPath('A second CSV in the same format as the test split (default: test_fraction of path)')),
  test_fraction: Type.Number({
    exclusiveMinimum: 0,
    exclusiveMaximum: 1,
    default: 0.2,
    description: 'Without test_path: the fraction of rows held out as the test split, drawn with the run seed',
  }),
  header: Enum(['auto', true, false], {
    default: 'auto',
    description: 'Whether the first line is a header (auto: when it is not all numbers)',
  }),
  ...commonDataOptions,
  validation: Override(commonDataOptions.validation, { default: 0 }),
  binarize: Override(commonDataOptions.binarize, {
    default: 'none',
    description: 'none (spectra are real-valued); dynamic/training/fixed treat the scaled bands as Bernoulli probabilities',
  }),
};
export type HyperspectralOptions = OptionsOf<typeof hyperspectralOptions>;

/** The data set plus what the loader derived (kept for the record and for tests). */
export interface HyperspectralDataSet extends OwnDataSet {
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

/** The CSV layout of a hyperspectral file: the csv plugin's parser with the label in the last column, integers only. */
function spectraFormat(header: 'auto' | boolean): CsvFormat {
  return {
    header,
    delimiter: 'auto',
    decimal: '.',
    labelColumn: -1,
    labels: 'integer',
    valueWord: 'band',
    hint: GET_DATA,
    decimalCommaFix: "write decimal points, e.g. {example}, or export the CSV with '.' as the decimal separator",
  };
}

/**
 * Parse the CSV format: rows of numbers, the last column an integer label (parseNumericCsv,
 * shared with the csv plugin). With header 'auto' the first line is a header only when it
 * has no empty cell and some cell is a word (not a number, nor a NaN or inf); a first data
 * row with an empty or NaN cell is reported as such, not dropped as a header. One delimiter
 * per file, from the first data row (';' or a tab where it has one, else ','). Labels stay
 * exact (any safe integer: 2^32 and 10^12 are two classes, not wrapped through 32 bits).
 */
export function parseSpectraCsv(
  text: string,
  file: string,
  header: 'auto' | boolean,
): { x: Float32Array; labels: Float64Array; n: number; bands: number } {
  const p = parseNumericCsv(text, file, spectraFormat(header));
  return { x: p.x, labels: p.labels as Float64Array, n: p.n, bands: p.features };
}

/**
 * Hyperspectral pixels (seed 002): one spectrum (e.g. 268 bands) and a class label per row
 * of a CSV file; the csv plugin with its presets (label last, integers, scale: minmax).
 * Labels are remapped to 0..C−1 in sorted order. Without `test_path`, a `test_fraction` of
 * the rows (drawn with the run seed) is the test split. Then the common steps (class_cap,
 * validation, max_train, labelled), and every band is min-max scaled to [0, 1] with the min
 * and max of the final training split (applied to all splits).
 */
export function loadHyperspectral(o: HyperspectralOptions, ctx: PluginContext): HyperspectralDataSet {
  return loadCsvDataSet(
    {
      name: 'hyperspectral',
      where: WHERE,
      what: 'hyperspectral CSV',
      path: o.path,
      test_path: o.test_path,
      test_fraction: o.test_fraction,
      format: spectraFormat(o.header),
      scale: 'minmax',
      sourceNote: '; bands min-max scaled to [0,1] by the training split',
      opts: o,
    },
    ctx,
  ) as HyperspectralDataSet;
}

export const hyperspectralDatasetPlugin = definePlugin({
  kind: 'dataset',
  name: 'hyperspectral',
  description:
    'Hyperspectral pixels (seed 002) from a CSV file: band values then an integer label per row; bands min-max scaled to [0,1] by the training split',
  options: hyperspectralOptions,
  create: (o, ctx): HyperspectralDataSet => loadHyperspectral(o, ctx),
});
