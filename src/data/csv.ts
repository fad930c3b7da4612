import * as path from 'path';
import * as crypto from 'crypto';
import { ConfigPath, definePlugin, Enum, Type, type OptionsOf } from '../registry/define';
import type { CommonDataOptions } from './dataset';
import { UserError, suggestion } from '../errors';
import { readDataFile } from './files';
import { OwnDataSet, RawPart, Scale, finishOwnDataSet, ownDataOptions, scaleAndCheck, scaleOption } from './own';
import type { PluginContext } from '../contracts';

/** The largest finite float32. */
const FLOAT32_MAX = 3.4028234663852886e38;
/** A plain decimal number as CSV files write them (not 0x1F, 0b1, Infinity or an empty cell). */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
/** The same with a decimal comma (0,5). */
const DECIMAL_COMMA = /^[+-]?(\d+,?\d*|,\d+)([eE][+-]?\d+)?$/;
/** Cells that are numbers gone wrong (NaN, inf): a data row, never a header word. */
const NUMBER_LIKE = /^[+-]?(nan|inf(inity)?|0[xob][0-9a-f]+)$/i;

export type Delimiter = ',' | ';' | '\t';

/** How a numeric CSV is laid out, and the words its messages use. */
export interface CsvFormat {
  header: 'auto' | boolean;
  delimiter: 'auto' | Delimiter;
  decimal: '.' | ',';
  /** Column of the labels: an index from 0 (negative: from the end), a header name, or null (no labels). */
  labelColumn: number | string | null;
  /** integer: labels must be integers (hyperspectral); any: integers, or else class names. */
  labels: 'integer' | 'any';
  /** What a value column is called in messages: 'band', 'feature'. */
  valueWord: string;
  /** Where to get such a file (the message for a file without data rows). */
  hint: string;
  /** The fix that the message for a decimal comma suggests. */
  decimalCommaFix: string;
}

export interface ParsedCsv {
  /** n × features values as stored (not scaled). */
  x: Float32Array;
  /** Label of each row: numbers, or class names when some label is not a number; null without a label column. */
  labels: Float64Array | string[] | null;
  n: number;
  features: number;
  /** 1-based line of each row, and the 1-based column of each feature (for messages). */
  lineOf: Int32Array;
  columnOf: number[];
}

const unquote = (c: string) => (c.length >= 2 && c.startsWith('"') && c.endsWith('"') ? c.slice(1, -1).trim() : c);

/** Where the data starts: the header line (when there is one, per `f.header`) and the index of the line after it. */
function findHeader(lines: string[], f: CsvFormat): { headerLine: string | null; first: number } {
  // a header word is neither kind of decimal number (0.5 under decimal ',' is a wrong number, not a name)
  const isWord = (c: string) => c !== '' && !DECIMAL.test(c) && !DECIMAL_COMMA.test(c) && !NUMBER_LIKE.test(c);
  const headerSplit = f.delimiter === 'auto' ? /[;\t]/ : f.delimiter;
  const splitHeader = (l: string) => l.split(f.delimiter === 'auto' && f.decimal === '.' ? /[,;\t]/ : headerSplit).map((c) => c.trim());
  let first = 0;
  while (first < lines.length && !lines[first].trim()) first++;
  let next = first + 1;
  while (next < lines.length && !lines[next].trim()) next++;
  const isHeader = (l: string) => {
    const cells = splitHeader(l);
    const below = f.labels === 'any' && next < lines.length ? splitHeader(lines[next]) : null;
    // with a next line, a header word stands above a number there (a word above a word or a gap is a class name)
    return (
      cells.every((c) => c !== '') &&
      cells.some((c, j) => isWord(c) && (!below || (below[j] !== undefined && below[j] !== '' && !isWord(below[j]))))
    );
  };
  let headerLine: string | null = null;
  if (first < lines.length && (f.header === true || (f.header === 'auto' && isHeader(lines[first])))) {
    headerLine = lines[first].trim();
    first++;
  }
  return { headerLine, first };
}

/** The file's one delimiter: the given one, or (auto) from the first data row. */
function chooseDelimiter(lines: string[], first: number, f: CsvFormat, file: string): Delimiter {
  let start = first;
  while (start < lines.length && !lines[start].trim()) start++;
  const firstRow = lines[start] ?? '';
  let delimiter: Delimiter;
  if (f.delimiter !== 'auto') delimiter = f.delimiter;
  else delimiter = firstRow.includes(';') ? ';' : firstRow.includes('\t') ? '\t' : ',';
  if (f.decimal === ',' && delimiter === ',' && firstRow.trim()) {
    throw new UserError(`line ${start + 1}: with decimal: ',' the cells must be separated by ';' or tabs (set delimiter)`, file);
  }
  return delimiter;
}

/** The label's column index (-1 without one), from `f.labelColumn` and the first data row (line `i` + 1, `cols` columns). */
function labelIndex(f: CsvFormat, cols: number, header: string[] | null, i: number, first: number, file: string): number {
  let label = -1;
  if (typeof f.labelColumn === 'number') {
    label = f.labelColumn < 0 ? cols + f.labelColumn : f.labelColumn;
    if (label < 0 || label >= cols) {
      throw new UserError(
        `label_column ${f.labelColumn} is out of range: line ${i + 1} has ${cols} columns (label_column counts from 0, or from -1 at the end: 0..${cols - 1} or -${cols}..-1)`,
        file,
      );
    }
  } else if (typeof f.labelColumn === 'string') {
    if (!header)
      throw new UserError(
        `label_column '${f.labelColumn}' names a column, but the file has no header line (set header: true, or give the column's index from 0)`,
        file,
      );
    label = header.indexOf(f.labelColumn);
    if (label < 0)
      throw new UserError(`line ${first}: no column named '${f.labelColumn}' in the header${suggestion(f.labelColumn, header)}`, file);
  }
  return label;
}

/** The numbers of one row's cells (line `i` + 1); a label cell under labels 'any' is left unset. */
function rowValues(cells: string[], cols: number, label: number, i: number, f: CsvFormat, file: string): number[] {
  const isNumber = (c: string) => (f.decimal === ',' ? DECIMAL_COMMA : DECIMAL).test(c);
  const v = new Array<number>(cols);
  for (let j = 0; j < cols; j++) {
    const c = cells[j];
    if (j === label && f.labels === 'any') continue;
    if (!isNumber(c) || !Number.isFinite(Number(f.decimal === ',' ? c.replace(',', '.') : c))) {
      const why =
        c === ''
          ? ' (an empty cell)'
          : f.decimal === '.' && /^[+-]?\d*,\d+$/.test(c)
            ? ` (a decimal comma: ${f.decimalCommaFix.replace('{example}', c.replace(',', '.'))})`
            : f.decimal === ',' && DECIMAL.test(c) && c.includes('.')
              ? " (a decimal point, but decimal is ','; set decimal: '.')"
              : '';
      throw new UserError(`line ${i + 1}, column ${j + 1}: '${c}' is not a number${why}`, file);
    }
    v[j] = Number(f.decimal === ',' ? c.replace(',', '.') : c);
  }
  // values are stored as float32: beyond its range a value would become Infinity
  const huge = v.findIndex((x, j) => j !== label && Math.abs(x) > FLOAT32_MAX);
  if (huge >= 0)
    throw new UserError(
      `line ${i + 1}, column ${huge + 1}: ${cells[huge]} is beyond float32's range (±3.4e38); rescale the ${f.valueWord} values`,
      file,
    );
  return v;
}

/** The labels of the rows: integers by value, or class names when some label cell is not an integer-like number. */
function rowLabels(
  rows: number[][],
  names: string[],
  lineOf: number[],
  label: number,
  labelWhere: () => string,
  f: CsvFormat,
  file: string,
): Float64Array | string[] | null {
  let labels: Float64Array | string[] | null = null;
  if (label >= 0 && f.labels === 'integer') labels = Float64Array.from(rows, (r) => r[label]);
  else if (label >= 0) {
    // integers are labels by value; any other cell makes every label a class name
    const numeric = names.every((s) => DECIMAL.test(s) && Number.isFinite(Number(s)));
    if (numeric) {
      const bad = names.findIndex((s) => !Number.isSafeInteger(Number(s)));
      if (bad >= 0)
        throw new UserError(`line ${lineOf[bad]}: the label (${labelWhere()}) must be an integer or a class name, got ${names[bad]}`, file);
      labels = Float64Array.from(names, Number);
    } else labels = names;
  }
  return labels;
}

/**
 * Parse a CSV of numbers, one example per row, with an optional label column. One delimiter
 * per file: the given one, or (auto) from the first data row: ';' or a tab where it has
 * one, else ',' (so '0,5;0,25;1' is three cells with decimal commas, never six numbers).
 * With header 'auto' the first line is a header only when it has no empty cell and some
 * cell is a word (not a number, nor a NaN or inf); with labels 'any', a word whose column
 * also holds a word on the next line is a class name, not a header. A first data row with
 * an empty or NaN cell is reported as such, not dropped as a header. Integer labels stay
 * exact (any safe integer: 2^32 and 10^12 are two classes, not wrapped through 32 bits).
 */
export function parseNumericCsv(text: string, file: string, f: CsvFormat): ParsedCsv {
  const lines = text.split(/\r?\n/);
  const { headerLine, first } = findHeader(lines, f);
  const delimiter = chooseDelimiter(lines, first, f, file);
  const header = headerLine !== null ? headerLine.split(delimiter).map((c) => unquote(c.trim())) : null;
  const rows: number[][] = [];
  const names: string[] = [];
  const lineOf: number[] = [];
  let cols = -1;
  let label = -1;
  let features = -1;
  const labelled = f.labelColumn !== null;
  const labelWhere = () => (label === cols - 1 ? 'last column' : `column ${label + 1}`);
  for (let i = first; i < lines.length; i++) {
    const l = lines[i].trim();
    if (!l) continue;
    const cells = l.split(delimiter).map((c) => c.trim());
    if (cols < 0) {
      cols = cells.length;
      features = cols - (labelled ? 1 : 0);
      if (features < 1)
        throw new UserError(`line ${i + 1}: need at least one ${f.valueWord} value${labelled ? ' and a label' : ''} per row`, file);
      label = labelIndex(f, cols, header, i, first, file);
    }
    if (cells.length !== cols) {
      throw new UserError(
        `line ${i + 1}: ${cells.length} columns, but the first row has ${cols} (${f.valueWord}s${labelled ? ' + label' : ''})`,
        file,
      );
    }
    const v = rowValues(cells, cols, label, i, f, file);
    if (label >= 0) {
      if (f.labels === 'integer') {
        if (!Number.isSafeInteger(v[label]))
          throw new UserError(`line ${i + 1}: the label (${labelWhere()}) must be an integer, got ${cells[label]}`, file);
      } else {
        const name = unquote(cells[label]);
        if (name === '') throw new UserError(`line ${i + 1}, column ${label + 1}: the label is empty`, file);
        names.push(name);
      }
    }
    rows.push(v);
    lineOf.push(i + 1);
  }
  if (!rows.length) throw new UserError(`no data rows; ${f.hint}`, file);
  const n = rows.length;
  const x = new Float32Array(n * features);
  const columnOf = Array.from({ length: cols }, (_, j) => j + 1).filter((j) => j - 1 !== label);
  rows.forEach((r, i) => {
    for (let k = 0; k < features; k++) x[i * features + k] = r[columnOf[k] - 1];
  });
  const labels = rowLabels(rows, names, lineOf, label, labelWhere, f, file);
  return { x, labels, n, features, lineOf: Int32Array.from(lineOf), columnOf };
}

const csvOptions = {
  path: ConfigPath('CSV file: one example per row, numbers (and a label column)'),
  test_path: Type.Optional(ConfigPath('A second CSV in the same format as the test split (default: test_fraction of path)')),
  label_column: Type.Union([Type.Integer(), Type.String()], {
    default: -1,
    description:
      "Column of the integer labels or class names: an index from 0 (negative: from the end; -1 = last), a header name, or 'none' (no labels)",
  }),
  delimiter: Enum(['auto', ',', ';', 'tab'], {
    default: 'auto',
    description: "Between cells; auto: ';' or tab where the first data row has one, else ','",
  }),
  decimal: Enum(['.', ','], { default: '.', description: "Decimal separator; ',' needs ';' or tab between cells" }),
  header: Enum(['auto', true, false], {
    default: 'auto',
    description: 'Whether the first line is a header (auto: when it holds a word where the data has numbers)',
  }),
  shape: Type.Optional(
    Type.Array(Type.Integer({ minimum: 1 }), {
      minItems: 1,
      maxItems: 3,
      description:
        'Shape of one example, e.g. [28, 28, 1] for pixel rows (default [1, features, 1]); its product must be the number of features',
    }),
  ),
  scale: scaleOption(['none', 'max', 'minmax'], 'minmax', 'the values'),
  ...ownDataOptions,
};
export type CsvOptions = OptionsOf<typeof csvOptions>;

const CSV_HINT = 'write one example per row: the feature values and a label column (e.g. pandas: df.to_csv(f, index=False))';

/** What loadCsvDataSet needs besides the files: the plugin's name, words and presets. */
export interface CsvLoad {
  name: string;
  where: string;
  /** e.g. 'hyperspectral CSV' (file messages). */
  what: string;
  path: string;
  test_path?: string;
  test_fraction: number;
  format: CsvFormat;
  scale: Scale;
  shape?: number[];
  /** Appended to the source (e.g. how the values were scaled). */
  sourceNote?: string;
  opts: CommonDataOptions;
}

/** Load a CSV data set (the csv plugin, and hyperspectral as a preset of it). */
export function loadCsvDataSet(c: CsvLoad, ctx: PluginContext): OwnDataSet {
  const hash = crypto.createHash('sha256');
  const divisor = c.scale === 'max' ? 255 : 1;
  const read = (file: string): RawPart & { features: number } => {
    const buf = readDataFile(file, c.what, c.format.hint);
    hash.update(buf);
    const p = parseNumericCsv(buf.toString('utf8'), file, c.format);
    const x =
      c.scale === 'minmax'
        ? p.x
        : scaleAndCheck(p.x, p.features, divisor, c.scale, file, (r, col) => `line ${p.lineOf[r]}, column ${p.columnOf[col]}`);
    return { x, labels: p.labels, n: p.n, features: p.features };
  };
  const file = path.resolve(ctx.baseDir, c.path);
  const all = read(file);
  let test: (RawPart & { features: number }) | null = null;
  let testFile = '';
  if (c.test_path) {
    testFile = path.resolve(ctx.baseDir, c.test_path);
    test = read(testFile);
    if (test.features !== all.features)
      throw new UserError(`test file has ${test.features} ${c.format.valueWord}s, the training file ${all.features}`, testFile);
  }
  const dim = all.features;
  if (c.shape && c.shape.reduce((a, b) => a * b, 1) !== dim) {
    throw new UserError(
      `data.shape ${c.shape.join('×')} = ${c.shape.reduce((a, b) => a * b, 1)} values, but each row has ${dim} ${c.format.valueWord}s`,
      file,
    );
  }
  const shape = c.shape ? (c.shape.length === 1 ? [1, c.shape[0], 1] : c.shape.length === 2 ? [...c.shape, 1] : c.shape) : [1, dim, 1];
  const source = (c.test_path ? `${file} + ${testFile}` : `${file} (test: ${c.test_fraction} of the rows)`) + (c.sourceNote ?? '');
  return finishOwnDataSet({
    name: c.name,
    where: c.where,
    shape,
    dim,
    train: all,
    test,
    testFraction: c.test_fraction,
    noun: 'rows',
    sha256: hash.digest('hex'),
    source,
    minmax: c.scale === 'minmax',
    opts: c.opts,
    ctx,
  });
}

export const csvDatasetPlugin = definePlugin({
  kind: 'dataset',
  name: 'csv',
  description:
    'Your own data from a CSV file: one example per row, numbers and an optional label column (integers or class names); scaled to [0,1] (default: min-max per feature by the training split)',
  options: csvOptions,
  create(o, ctx): OwnDataSet {
    const labelColumn =
      o.label_column === 'none'
        ? null
        : typeof o.label_column === 'string' && /^-?\d+$/.test(o.label_column)
          ? Number(o.label_column)
          : o.label_column;
    return loadCsvDataSet(
      {
        name: 'csv',
        where: 'data (csv)',
        what: 'CSV file',
        path: o.path,
        test_path: o.test_path,
        test_fraction: o.test_fraction,
        format: {
          header: o.header,
          delimiter: o.delimiter === 'tab' ? '\t' : o.delimiter,
          decimal: o.decimal,
          labelColumn,
          labels: 'any',
          valueWord: 'feature',
          hint: CSV_HINT,
          decimalCommaFix: "set decimal: ',' (with ';' or tabs between cells), or write decimal points, e.g. {example}",
        },
        scale: o.scale,
        shape: o.shape,
        sourceNote:
          o.scale === 'minmax' ? '; features min-max scaled to [0,1] by the training split' : o.scale === 'max' ? '; values ÷255' : '',
        opts: o,
      },
      ctx,
    );
  },
});
