import { PNG } from 'pngjs';
import { writeFigure, ZOOM, type VegaLiteSpec } from './render';

/**
 * The figures of elbo as Vega-Lite specs: learning curves, compare plots, the latent PCA
 * scatter, the sparsity bars and captioned image grids. Each builder takes plain data and
 * returns a spec; src/plot/render.ts draws it (writeFigure).
 */

/** A subtitle as lines of at most `width` characters, broken at spaces. */
export function wrap(text: string, width = 90): string[] {
  const lines: string[] = [];
  for (const word of text.split(' ')) {
    const last = lines.length ? lines[lines.length - 1] : null;
    if (last !== null && (last + ' ' + word).length <= width) lines[lines.length - 1] = last + ' ' + word;
    else lines.push(word);
  }
  return lines;
}

/** Colours of the splits, the same in every figure. */
/** Each split's colour, in legend order. */
const SPLIT_COLOURS: Record<string, string> = { train: '#1f77b4', validation: '#ff7f0e', 'test (final)': '#2ca02c' };

export interface CurvePoint {
  epoch: number;
  /** The loss term or metric, without its split prefix (loss, recon, kl, elbo, accuracy, ...). */
  term: string;
  split: 'train' | 'validation';
  value: number;
}

/** Per-epoch metrics that are not learning curves (speed, timing, schedule weights). */
const NOT_CURVES = /^(samples_per_sec|epoch_time_s)$/;

/** The panel of a scheduled learning rate (metrics `optimizer/lr`), drawn on a log scale. */
export const LR_TERM = 'learning rate';

/**
 * Learning-curve points from metrics.jsonl lines (those with an epoch): every train/ and
 * val/ metric, as (epoch, term, split, value), and a learning rate that moves (`optimizer/lr`,
 * as the term LR_TERM).
 */
export function curvePoints(lines: Record<string, number>[]): CurvePoint[] {
  const out: CurvePoint[] = [];
  const lr: CurvePoint[] = [];
  for (const l of lines) {
    if (typeof l.epoch !== 'number') continue;
    for (const [k, v] of Object.entries(l)) {
      const m = /^(train|val)\/(.+)$/.exec(k);
      if (k === 'optimizer/lr' && v > 0) lr.push({ epoch: l.epoch, term: LR_TERM, split: 'train', value: v });
      if (!m || NOT_CURVES.test(m[2]) || !Number.isFinite(v)) continue;
      out.push({ epoch: l.epoch, term: m[2], split: m[1] === 'train' ? 'train' : 'validation', value: v });
    }
  }
  return new Set(lr.map((p) => p.value)).size > 1 ? [...out, ...lr] : out;
}

/**
 * The first epoch a long run's panel shows, when its first epochs' values (an ELBO of −190
 * in epoch 1 against −92 at the end) would squeeze everything after them into a line: about
 * the 5th percent of the epochs. Null when the values from there on (and the test value)
 * span more than half of the whole range anyway: then every epoch is drawn.
 */
export function focusFrom(points: { epoch: number; value: number }[], test?: number): number | null {
  const last = Math.max(...points.map((p) => p.epoch));
  if (points.length < 2 || last < 20) return null;
  const from = Math.max(3, Math.ceil(last * 0.05));
  const late = points.filter((p) => p.epoch >= from).map((p) => p.value);
  if (test !== undefined && Number.isFinite(test)) late.push(test);
  const all = [...points.map((p) => p.value), ...late];
  const [lo, hi] = [Math.min(...late), Math.max(...late)];
  return hi > lo && Math.max(...all) - Math.min(...all) > 2 * (hi - lo) ? from : null;
}

/** Panels in this order: the loss, its terms as logged, then the ELBO and accuracy. */
function termOrder(terms: string[]): string[] {
  const last = ['elbo', 'accuracy', LR_TERM];
  const rank = (t: string) => (t === 'loss' ? -1 : last.includes(t) ? 1 + last.indexOf(t) : 0);
  return [...terms].sort((a, b) => rank(a) - rank(b) || terms.indexOf(a) - terms.indexOf(b));
}

/**
 * One panel per term (own y scale): train and validation per epoch, and the final test
 * value of the same term (`test`, e.g. {elbo: -95.1}) as a dashed line.
 */
export function curvesSpec(title: string, subtitle: string, points: CurvePoint[], test: Record<string, number> = {}): VegaLiteSpec {
  const terms = termOrder([...new Set(points.map((p) => p.term))]);
  const rules = terms.filter((t) => Number.isFinite(test[t])).map((t) => ({ term: t, split: 'test (final)', value: test[t] }));
  const epochs = new Set(points.map((p) => p.epoch)).size;
  // the legend names only the splits drawn (a run without validation data has no validation line)
  const drawn = new Set<string>([...points.map((p) => p.split), ...rules.map((r) => r.split)]);
  const domain = Object.keys(SPLIT_COLOURS).filter((split) => drawn.has(split));
  const splitScale = { domain, range: domain.map((split) => SPLIT_COLOURS[split]) };
  const colour = { field: 'split', type: 'nominal', title: null, scale: splitScale, legend: { orient: 'top', direction: 'horizontal' } };
  // a concat of panels, not a wrapped facet: that would draw axes for the empty cells of its last row
  return {
    title: { text: title, subtitle: wrap(subtitle) },
    data: { values: [...points, ...rules] },
    columns: Math.min(3, Math.max(1, terms.length)),
    concat: terms.map((term) => {
      const from =
        term === LR_TERM
          ? null
          : focusFrom(
              points.filter((p) => p.term === term),
              test[term],
            );
      const scale = term === LR_TERM ? { type: 'log' } : { zero: false };
      return {
        title: {
          text: term,
          anchor: 'middle',
          fontSize: 13,
          ...(from ? { subtitle: `from epoch ${from} (before: far off)`, subtitleFontSize: 10 } : {}),
        },
        width: 230,
        height: 140,
        transform: [{ filter: { field: 'term', equal: term } }],
        layer: [
          {
            // (a long run's first epochs are left out rather than clipped: Vega sizes the figure by every mark)
            transform: [{ filter: from ? `datum.split !== 'test (final)' && datum.epoch >= ${from}` : "datum.split !== 'test (final)'" }],
            mark: { type: 'line', point: epochs <= 40, strokeWidth: 1.8 },
            encoding: {
              x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1 } },
              y: { field: 'value', type: 'quantitative', title: null, scale },
              color: colour,
            },
          },
          {
            transform: [{ filter: "datum.split === 'test (final)'" }],
            mark: { type: 'rule', strokeDash: [5, 3], strokeWidth: 1.5 },
            encoding: { y: { field: 'value', type: 'quantitative' }, color: colour },
          },
        ],
      };
    }),
    resolve: { scale: { y: 'independent', color: 'shared' } },
  };
}

export interface ComparePoint {
  /** The swept key's value: a number on a numeric axis, else a label. */
  x: number | string;
  series: string;
  mean: number;
  std: number;
  runs: number;
  /** The published value this setting aims at, when it has its own (drawn dashed per series). */
  published?: number;
}

export interface ReferenceLine {
  value: number;
  label: string;
}

/**
 * A metric against a swept key: mean per setting, error bars ± one standard deviation
 * over seeds, one colour per series (the other swept keys), and each published value as
 * a labelled dashed reference line.
 */
export function compareSpec(o: {
  metric: string;
  by: string;
  seriesTitle: string;
  points: ComparePoint[];
  references: ReferenceLine[];
  subtitle?: string;
}): VegaLiteSpec {
  const numeric = o.points.every((p) => typeof p.x === 'number');
  const xs = o.points.map((p) => p.x as number);
  const logX = numeric && xs.every((v) => v > 0) && Math.max(...xs) / Math.min(...xs) >= 50;
  const values = o.points.map((p) => ({ ...p, lo: p.mean - p.std, hi: p.mean + p.std }));
  const x = numeric
    ? {
        field: 'x',
        type: 'quantitative',
        title: o.by,
        scale: { type: logX ? 'log' : 'linear', zero: false, nice: !logX },
        axis: { values: [...new Set(xs)].sort((a, b) => a - b) },
      }
    : // a long setting (a plugin block: kind(option=value, ...)) is a label of one option a line
      {
        field: 'x',
        type: 'nominal',
        title: o.by,
        axis: { labelAngle: 0, labelLimit: 900, labelExpr: "split(datum.label, ', ')" },
        sort: null,
      };
  const colour = {
    field: 'series',
    type: 'nominal',
    title: o.seriesTitle,
    legend: { orient: 'bottom', direction: 'vertical', columns: 1 },
  };
  const y = { type: 'quantitative', title: `${o.metric} (mean ± std over seeds)`, scale: { zero: false } };
  return {
    title: { text: `${o.metric} against ${o.by}`, subtitle: wrap(o.subtitle ?? '') },
    width: 520,
    height: 320,
    layer: [
      {
        data: { values },
        layer: [
          // categories are not joined by lines; their series sit side by side
          numeric
            ? { mark: { type: 'line', point: { size: 50, filled: true } }, encoding: { x, y: { ...y, field: 'mean' }, color: colour } }
            : {
                mark: { type: 'point', size: 60, filled: true, opacity: 1 },
                encoding: { x, xOffset: { field: 'series' }, y: { ...y, field: 'mean' }, color: colour },
              },
          {
            mark: { type: 'errorbar', ticks: { width: 8 }, thickness: 1.5 },
            encoding: {
              x,
              ...(numeric ? {} : { xOffset: { field: 'series' } }),
              y: { ...y, field: 'lo' },
              y2: { field: 'hi' },
              color: colour,
            },
          },
        ],
      },
      // published values that differ from setting to setting: a dashed line per series
      ...(o.points.some((p) => p.published !== undefined)
        ? [
            {
              data: { values: o.points.filter((p) => p.published !== undefined) },
              mark: numeric
                ? { type: 'line', strokeDash: [6, 4], strokeWidth: 1.5, point: { size: 40, filled: false, shape: 'diamond' } }
                : { type: 'point', size: 70, filled: false, shape: 'diamond' },
              encoding: { x, ...(numeric ? {} : { xOffset: { field: 'series' } }), y: { ...y, field: 'published' }, color: colour },
            },
          ]
        : []),
      ...(o.references.length
        ? [
            {
              data: { values: o.references },
              layer: [
                {
                  mark: { type: 'rule', strokeDash: [6, 4], color: '#222', strokeWidth: 1.2 },
                  encoding: { y: { field: 'value', type: 'quantitative' } },
                },
                {
                  mark: { type: 'text', align: 'left', baseline: 'bottom', dx: 4, dy: -3, color: '#222', fontSize: 11 },
                  encoding: { y: { field: 'value', type: 'quantitative' }, x: { value: 0 }, text: { field: 'label' } },
                },
              ],
            },
          ]
        : []),
    ],
  };
}

/**
 * A 2-D scatter coloured by class, with a class legend. Points are drawn in the order
 * given (the caller shuffles them so that no class covers the others).
 */
export function scatterSpec(o: {
  title: string;
  subtitle: string;
  xTitle: string;
  yTitle: string;
  points: { x: number; y: number; cls: string }[];
  /** The classes in legend order, each with its colour. */
  classes: { name: string; colour: string }[];
  /** Width and height of the plot area. */
  size?: number;
}): VegaLiteSpec {
  const size = o.points.length > 2000 ? 8 : o.points.length > 500 ? 14 : 24;
  return {
    title: { text: o.title, subtitle: wrap(o.subtitle) },
    width: o.size ?? 460,
    height: o.size ?? 460,
    data: { values: o.points },
    mark: { type: 'circle', size, opacity: 0.7 },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: o.xTitle, scale: { zero: false, nice: true } },
      y: { field: 'y', type: 'quantitative', title: o.yTitle, scale: { zero: false, nice: true } },
      color: {
        field: 'cls',
        type: 'nominal',
        title: 'class',
        scale: { domain: o.classes.map((c) => c.name), range: o.classes.map((c) => c.colour) },
        legend: { symbolOpacity: 1, symbolSize: 80 },
      },
    },
  };
}

/** One bar per category (e.g. per latent dimension) on a 0 … 1 axis. */
export function barsSpec(o: {
  title: string;
  subtitle: string;
  xTitle: string;
  yTitle: string;
  bars: { x: number; y: number }[];
}): VegaLiteSpec {
  const n = o.bars.length;
  const every = Math.max(1, Math.ceil(n / 32));
  return {
    title: { text: o.title, subtitle: wrap(o.subtitle) },
    width: Math.max(240, Math.min(900, n * 14)),
    height: 240,
    data: { values: o.bars },
    mark: { type: 'bar', color: '#3a6fc4' },
    encoding: {
      x: {
        field: 'x',
        type: 'ordinal',
        title: o.xTitle,
        axis: { labelAngle: 0, values: o.bars.map((b) => b.x).filter((v) => v % every === 0) },
      },
      y: { field: 'y', type: 'quantitative', title: o.yTitle, scale: { domain: [0, 1] } },
    },
  };
}

export interface GridCaption {
  title: string;
  /** What the rows and columns are (one line under the title). */
  subtitle: string;
  /** A label left of each row of images (optional). */
  rowLabels?: string[];
  /** A label above each column of images (optional). */
  colLabels?: string[];
}

/**
 * Images (values in [0,1], each h×w×c with c = 1 or 3) as one PNG grid with `cols`
 * columns and a 1-pixel gap, every pixel drawn as a `scale`×`scale` block (so no viewer
 * smooths it). `cell` is one image plus its gap, in output pixels.
 */
export function imageGridPng(
  images: Float32Array[],
  shape: number[],
  cols: number,
  scale = 1,
): { png: Buffer; width: number; height: number; cell: [number, number] } {
  const [h, w, c] = shape.length === 3 ? shape : [shape[0], shape[1] ?? 1, 1];
  const rows = Math.ceil(images.length / cols);
  const gap = 1;
  const W = (cols * (w + gap) + gap) * scale;
  const H = (rows * (h + gap) + gap) * scale;
  const png = new PNG({ width: W, height: H });
  png.data.fill(255);
  images.forEach((img, k) => {
    const r0 = gap + Math.floor(k / cols) * (h + gap);
    const c0 = gap + (k % cols) * (w + gap);
    for (let i = 0; i < h; i++)
      for (let j = 0; j < w; j++) {
        const rgb = [0, 1, 2].map((ch) => Math.max(0, Math.min(255, Math.round(img[(i * w + j) * c + (c === 3 ? ch : 0)] * 255))));
        for (let dy = 0; dy < scale; dy++)
          for (let dx = 0; dx < scale; dx++) {
            const o = (((r0 + i) * scale + dy) * W + (c0 + j) * scale + dx) * 4;
            png.data[o] = rgb[0];
            png.data[o + 1] = rgb[1];
            png.data[o + 2] = rgb[2];
            png.data[o + 3] = 255;
          }
      }
  });
  return { png: PNG.sync.write(png), width: W, height: H, cell: [(h + gap) * scale, (w + gap) * scale] };
}

/**
 * An image grid with a caption: the grid (drawn at `zoom` PNG pixels per SVG pixel), a
 * title and subtitle, and labels per row and per column.
 */
export function gridSpec(
  grid: { png: Buffer; width: number; height: number; cell: [number, number] },
  caption: GridCaption,
  zoom = 1,
): VegaLiteSpec {
  const W = grid.width / zoom;
  const H = grid.height / zoom;
  const [ch, cw] = grid.cell.map((v) => v / zoom);
  const rowLabels = (caption.rowLabels ?? []).map((t, i) => ({ t, y: (i + 0.5) * ch }));
  const colLabels = (caption.colLabels ?? []).map((t, i) => ({ t, x: (i + 0.5) * cw }));
  const text = { type: 'text', fontSize: Math.min(12, Math.max(9, Math.floor(cw / 4))), color: '#222' };
  return {
    title: { text: caption.title, subtitle: wrap(caption.subtitle, Math.max(60, Math.round(W / 7))) },
    width: W,
    height: H,
    layer: [
      {
        data: { values: [{ url: `data:image/png;base64,${grid.png.toString('base64')}` }] },
        mark: { type: 'image', width: W, height: H, align: 'left', baseline: 'top', aspect: false, smooth: false, aria: false },
        encoding: { x: { value: 0 }, y: { value: 0 }, url: { field: 'url', type: 'nominal' } },
      },
      ...(rowLabels.length
        ? [
            {
              data: { values: rowLabels },
              mark: { ...text, align: 'right', baseline: 'middle', dx: -6 },
              encoding: { x: { value: 0 }, y: { field: 'y', type: 'quantitative', scale: null }, text: { field: 't' } },
            },
          ]
        : []),
      ...(colLabels.length
        ? [
            {
              data: { values: colLabels },
              mark: { ...text, align: 'center', baseline: 'bottom', dy: -4 },
              encoding: { y: { value: 0 }, x: { field: 'x', type: 'quantitative', scale: null }, text: { field: 't' } },
            },
          ]
        : []),
    ],
    config: { view: { stroke: null } },
  };
}

/**
 * Write images as a captioned grid figure: FILE.png and FILE.svg (see gridSpec). Small
 * images are enlarged (up to 4×, to about 900 pixels across) and stored at the PNG's
 * resolution, so a digit stays sharp.
 */
export async function writeImageGrid(
  file: string,
  images: Float32Array[],
  shape: number[],
  cols: number,
  caption: GridCaption,
): Promise<void> {
  const base = imageGridPng([], shape, cols);
  const scale = Math.max(1, Math.min(4, Math.floor(900 / base.width)));
  await writeFigure(file, gridSpec(imageGridPng(images, shape, cols, scale * ZOOM), caption, ZOOM));
}

/** Colours of a sweep's settings, the same in each of its figures: Vega's category10, tableau20 beyond ten settings. */
function settingScale(settings: string[]): { domain: string[]; scheme: string } {
  return { domain: settings, scheme: settings.length > 10 ? 'tableau20' : 'category10' };
}

export interface SweepCurvePoint {
  epoch: number;
  /** The metric as logged: train/loss, val/elbo, ... */
  metric: string;
  /** The cell's setting (its swept values, without the seed): one colour each. */
  setting: string;
  /** The run (one line each; a setting's seeds share its colour). */
  run: string;
  value: number;
}

/**
 * A sweep's learning-curve panels, at most `max`: `first` (the metric the sweep ranks or
 * selects by) leads, then the loss, the other terms, the ELBO, the accuracy, train before
 * val. When there are more, the train/ curve of a term that also has a val/ curve goes
 * first (train/loss stays), then whatever comes last.
 */
export function sweepCurveMetrics(metrics: string[], first?: string, max = 12): string[] {
  const term = (m: string) => m.replace(/^(train|val)\//, '');
  const terms = termOrder([...new Set(metrics.map(term))]);
  const sorted = [...metrics].sort(
    (a, b) =>
      Number(b === first) - Number(a === first) ||
      terms.indexOf(term(a)) - terms.indexOf(term(b)) ||
      (a.startsWith('train/') ? 0 : 1) - (b.startsWith('train/') ? 0 : 1),
  );
  const shadowed = (m: string) => m !== first && m !== 'train/loss' && m.startsWith('train/') && metrics.includes(`val/${term(m)}`);
  const dropped = new Set(
    sorted
      .filter(shadowed)
      .reverse()
      .slice(0, Math.max(0, sorted.length - max)),
  );
  return sorted.filter((m) => !dropped.has(m)).slice(0, max);
}

/**
 * Every cell's learning curves overlaid: one panel per metric (own y scale), one line per
 * run, coloured by its setting (the seeds of a setting share a colour).
 */
export function sweepCurvesSpec(o: {
  title: string;
  subtitle: string;
  points: SweepCurvePoint[];
  settings: string[];
  settingTitle: string;
  metrics: string[];
}): VegaLiteSpec {
  const epochs = new Set(o.points.map((p) => p.epoch)).size;
  const colour = {
    field: 'setting',
    type: 'nominal',
    title: o.settingTitle,
    scale: settingScale(o.settings),
    // as many columns as fit the three panels' width (long names, fewer columns), the title whole
    legend: {
      orient: 'top',
      direction: 'horizontal',
      columns: Math.max(1, Math.min(4, o.settings.length, Math.floor(110 / Math.max(1, ...o.settings.map((x) => x.length))))),
      labelLimit: 720,
      titleLimit: 720,
    },
  };
  return {
    title: { text: o.title, subtitle: wrap(o.subtitle) },
    data: { values: o.points },
    columns: Math.min(3, Math.max(1, o.metrics.length)),
    concat: o.metrics.map((metric) => {
      const from = focusFrom(o.points.filter((p) => p.metric === metric));
      return {
        title: {
          text: metric,
          anchor: 'middle',
          fontSize: 13,
          ...(from ? { subtitle: `from epoch ${from} (before: far off)`, subtitleFontSize: 10 } : {}),
        },
        width: 230,
        height: 140,
        transform: [
          { filter: from ? `datum.metric === ${JSON.stringify(metric)} && datum.epoch >= ${from}` : { field: 'metric', equal: metric } },
        ],
        mark: { type: 'line', point: epochs <= 30 ? { size: 18 } : false, strokeWidth: 1.6, opacity: 0.9 },
        encoding: {
          x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1 } },
          y: { field: 'value', type: 'quantitative', title: null, scale: { zero: false } },
          color: colour,
          detail: { field: 'run', type: 'nominal' },
        },
      };
    }),
    resolve: { scale: { y: 'independent', color: 'shared' } },
  };
}

export interface SettingValue {
  metric: string;
  setting: string;
  run: string;
  value: number;
}

/**
 * A sweep's final test metrics, one panel per metric: each setting a row (in the order
 * given), every run's value as a dot, and the mean over seeds as a bar-shaped tick with ± one
 * standard deviation, coloured as in the sweep's curves.
 */
export function settingValuesSpec(o: {
  title: string;
  subtitle: string;
  values: SettingValue[];
  settings: string[];
  settingTitle: string;
  metrics: string[];
}): VegaLiteSpec {
  const columns = Math.min(3, Math.max(1, o.metrics.length));
  const colour = { field: 'setting', type: 'nominal', scale: settingScale(o.settings), legend: null };
  const height = Math.max(60, 22 * o.settings.length);
  return {
    title: { text: o.title, subtitle: wrap(o.subtitle) },
    columns,
    concat: o.metrics.map((metric, i) => {
      const runs = o.values.filter((v) => v.metric === metric);
      const stats = o.settings.flatMap((setting) => {
        const v = runs.filter((r) => r.setting === setting).map((r) => r.value);
        if (!v.length) return [];
        const mean = v.reduce((a, b) => a + b, 0) / v.length;
        const std = v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1)) : 0;
        return [{ setting, mean, lo: mean - std, hi: mean + std, n: v.length }];
      });
      // the settings down the left of each row of panels
      const y = {
        field: 'setting',
        type: 'nominal',
        title: null,
        sort: o.settings,
        scale: { domain: o.settings },
        axis: i % columns === 0 ? { labelLimit: 520 } : { labels: false, ticks: false },
      };
      const x = { type: 'quantitative', title: null, scale: { zero: false, nice: true } };
      return {
        title: { text: metric, anchor: 'middle', fontSize: 13 },
        width: 200,
        height,
        layer: [
          {
            data: { values: stats },
            mark: { type: 'rule', strokeWidth: 1.5 },
            encoding: { y, x: { ...x, field: 'lo' }, x2: { field: 'hi' }, color: colour },
          },
          {
            data: { values: stats },
            mark: { type: 'tick', thickness: 2.5, size: 16 },
            encoding: { y, x: { ...x, field: 'mean' }, color: colour },
          },
          {
            data: { values: runs },
            mark: { type: 'circle', size: 36, opacity: 0.55 },
            encoding: { y, x: { ...x, field: 'value' }, color: colour },
          },
        ],
      };
    }),
    resolve: { scale: { x: 'independent', color: 'shared' } },
  };
}
