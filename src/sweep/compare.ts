import * as fs from 'fs';
import * as path from 'path';
import { readJsonFile, readStoredConfig, type StoredConfig } from '../track/run-store';
import { readSweepState, whyMissing, cellSettled, distinctLabels, commonestValues, COMMONEST_SETTING, type CellResult } from './state';
import { UserError, suggestion } from '../errors';
import { verdict, formatPublished } from '../config/metrics';
import { isMapping } from '../util/mapping';
import { compareSpec, type ComparePoint } from '../plot/figures';
import { writeFigure } from '../plot/render';
import { readMetricLines } from '../report/run';
import { type RunRecord, type PublishedEntry, Verdict } from '../contracts';

/** One run as the comparison sees it: its config flattened to dotted keys, and its final metrics. */
export interface ComparedRun {
  dir: string;
  status: string;
  seed: number;
  params: Record<string, string>;
  metrics: Record<string, number>;
  /** Epochs the run trained (fewer than planned: stopped early by the sweep's early_stop). */
  epochs: number;
  /** The config's `published:` entries (none for configs without the block). */
  published: PublishedEntry[];
  /** The metric its checkpoint is chosen by (the config's train.select.metric), if any. */
  selectedBy?: string;
}

export interface MetricStats {
  mean: number;
  std: number;
  /** How many of the row's runs have the metric (a run still training has no test metrics yet). */
  n: number;
}

export interface ComparisonRow {
  key: Record<string, string>;
  runs: number;
  seeds: number[];
  /** Per metric: mean and standard deviation over the row's runs that have it (n of them). */
  stats: Record<string, MetricStats>;
  /** Runs of the row stopped early (PAUSED at a rung of the sweep's early_stop), and the epochs each trained. */
  stopped: number;
  epochs: number[];
  /** Per published metric: the entry and the verdict of the row's mean (within: |mean − value| ≤ pm, else ≤ std). */
  published: Record<string, PublishedEntry & { verdict: Verdict }>;
}

/** A plugin block without nested blocks (a prior, a network, a data set): flatten's one value. */
function isLeafBlock(v: unknown, prefix: string): v is Record<string, unknown> {
  return isMapping(v) && 'kind' in v && !!prefix && !Object.values(v).some(isMapping);
}

/**
 * Config values as dotted keys. A plugin block without nested blocks (a prior, a
 * network) stays one value, written `kind(option=value, ...)`, so a swept prior is one
 * column, not one per option; but those at the paths in `open` are flattened option by option.
 */
export function flatten(obj: unknown, prefix = '', out: Record<string, string> = {}, open?: Set<string>): Record<string, string> {
  if (isLeafBlock(obj, prefix) && !open?.has(prefix)) {
    // a leaf plugin block (a prior, a network, a schedule): one value
    const { kind, ...rest } = obj;
    const opts = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`);
    out[prefix] = opts.length ? `${kind}(${opts.join(', ')})` : String(kind);
  } else if (isMapping(obj)) {
    for (const [k, v] of Object.entries(obj)) flatten(v, prefix ? `${prefix}.${k}` : k, out, open);
  } else {
    out[prefix] = typeof obj === 'object' ? JSON.stringify(obj) : String(obj);
  }
  return out;
}

/**
 * A run a model was built on (m1m2's M1) compares by what it is, however the config gave it:
 * `model.NAME_run` (a run directory) becomes `model.NAME`, the block a config would nest for
 * it ({model, train, loss, eval} of that run's config.yaml). So runs on one M1, trained first
 * from a nested block or named as a run, are one row, and a sweep's seeds, each training its
 * own M1 from the same block, too. A run that cannot be read stays as named.
 */
function byDependency(config: StoredConfig, dependsOn: RunRecord['depends_on']): Record<string, unknown> {
  if (!dependsOn || !isMapping(config.model)) return config;
  const m: Record<string, unknown> = { ...config.model };
  for (const [name, dep] of Object.entries(dependsOn)) {
    if (typeof m[`${name}_run`] !== 'string') continue;
    let given: StoredConfig;
    try {
      given = readStoredConfig(dep.run_dir);
    } catch {
      continue;
    }
    delete m[`${name}_run`];
    m[name] = { model: given.model, train: given.train, loss: given.loss, eval: given.eval };
  }
  return { ...config, model: m };
}

/**
 * Runs of a sweep directory (its cells' finished runs, from their records) or the given
 * run directories; `missing`: the sweep's cells with no finished run, each with why (never
 * started, running, killed, failed), left out of the comparison. A run's params are what
 * its rows are keyed by: when every run is a sweep cell that recorded its axes, those axes
 * (the base config as a name, the swept keys), as the sweep file states them; else its
 * config flattened (a run it was built on read as the block that made it, byDependency).
 */
export function collectRuns(paths: string[]): {
  runs: ComparedRun[];
  sweepDir: string | null;
  /** the sweep's name, when one of the paths is a sweep directory */
  sweepName?: string;
  missing: { cell: CellResult; why: string; label: string }[];
  rankBy?: { metric: string; mode: 'max' | 'min' };
} {
  const dirs: string[] = [];
  let sweepDir: string | null = null;
  let sweepName: string | undefined;
  let rankBy: { metric: string; mode: 'max' | 'min' } | undefined;
  const missing: { cell: CellResult; why: string; label: string }[] = [];
  // what each sweep cell varies (recorded since 2026-12-06; older sweeps' cells lack it)
  const axes = new Map<string, Record<string, unknown>>();
  for (const p of paths) {
    const abs = path.resolve(p);
    if (fs.existsSync(path.join(abs, 'sweep.json'))) {
      sweepDir = abs;
      const state = readSweepState(abs);
      sweepName = state.name;
      // a sweep with early stopping (its stopped cells too) or a search: ranked by the metric it ranks cells by
      const by = state.early_stop ?? state.search;
      if (by) rankBy = { metric: by.metric, mode: by.mode };
      const labels = distinctLabels(state.cells);
      for (const c of state.cells) {
        if (c.runDir && cellSettled(c)) {
          dirs.push(c.runDir);
          if (c.axes) axes.set(c.runDir, c.axes);
        } else missing.push({ cell: c, why: whyMissing(c), label: labels.get(c.index)! });
      }
    } else if (fs.existsSync(path.join(abs, 'run.json'))) dirs.push(abs);
    else throw new UserError('neither a sweep directory (sweep.json) nor a run directory (run.json)', p);
  }
  // runs that are all sweep cells compare by the sweep's axes; others by their configs
  const byAxes = dirs.length > 0 && dirs.every((d) => axes.has(d));
  const runs = dirs.map((dir) => {
    const rec = readJsonFile<RunRecord>(path.join(dir, 'run.json'), 'run.json');
    // published numbers are not a setting: never a swept key
    const { published, ...config } = readStoredConfig(dir);
    return {
      dir,
      status: rec.status,
      seed: rec.seed,
      config: byAxes ? axes.get(dir) : byDependency(config, rec.depends_on),
      metrics: rec.metrics ?? {},
      epochs: rec.epochs_completed,
      published: Array.isArray(published) ? published : [],
      ...(typeof config.train?.select?.metric === 'string' ? { selectedBy: config.train.select.metric } : {}),
    };
  });
  const open = sameKindBlocks(runs.map((r) => r.config));
  const compared = runs.map(({ config, ...r }) => ({ ...r, params: flatten(config, '', {}, open) }));
  if (!compared.length) {
    // a sweep under way: say where its cells are (one running, the rest not started, ...)
    const words: Record<string, string> = { PENDING: 'not started', RUNNING: 'running', KILLED: 'killed', FAILED: 'failed' };
    const tally = new Map<string, number>();
    for (const m of missing) {
      const w = words[m.cell.status] ?? m.cell.status.toLowerCase();
      tally.set(w, (tally.get(w) ?? 0) + 1);
    }
    throw new UserError(
      missing.length
        ? `no cell has a finished run yet (${[...tally].map(([w, n]) => `${n} ${w}`).join(', ')}): nothing to compare`
        : 'no runs to compare (has the sweep run yet?)',
      paths.join(' '),
    );
  }
  return { runs: compared, sweepDir, missing, ...(sweepName !== undefined ? { sweepName } : {}), ...(rankBy ? { rankBy } : {}) };
}

/**
 * The paths of the plugin blocks that every config has, of one kind, but not alike: those
 * compare option by option (`validation_as_unlabelled=true` against `-`, not the whole data
 * block twice); blocks of different kinds stay one value each (flatten).
 */
function sameKindBlocks(configs: unknown[]): Set<string> {
  const blocks = new Map<string, unknown[]>();
  const walk = (v: unknown, prefix: string) => {
    if (isLeafBlock(v, prefix)) blocks.set(prefix, [...(blocks.get(prefix) ?? []), v]);
    else if (isMapping(v)) for (const [k, x] of Object.entries(v)) walk(x, prefix ? `${prefix}.${k}` : k);
  };
  for (const c of configs) walk(c, '');
  const open = new Set<string>();
  for (const [prefix, list] of blocks) {
    const kinds = new Set(list.map((b) => JSON.stringify((b as Record<string, unknown>).kind)));
    if (list.length === configs.length && kinds.size === 1 && new Set(list.map((b) => JSON.stringify(b))).size > 1) open.add(prefix);
  }
  return open;
}

/** Keys whose values differ between runs (the seed is an axis of its own). */
export function sweptKeys(runs: ComparedRun[]): string[] {
  const keys = new Set(runs.flatMap((r) => Object.keys(r.params)));
  return [...keys].filter((k) => k !== 'seed' && k !== 'experiment' && new Set(runs.map((r) => r.params[k])).size > 1).sort();
}

/** Final metrics worth comparing: test/* and val/*, and the last training loss. */
export function comparedMetrics(runs: ComparedRun[]): string[] {
  const keys = new Set(runs.flatMap((r) => Object.keys(r.metrics)));
  return [...keys].filter((k) => /^(test|val)\//.test(k) || k === 'train/loss').sort();
}

/** Which setting a run is: its values of the swept keys (a row of compare, a column of --at). */
function settingOf(r: ComparedRun, keys: string[]): string {
  return JSON.stringify(keys.map((k) => r.params[k]));
}

/**
 * Group runs by their swept values; mean and (sample) standard deviation over seeds. With
 * `rankBy` (a sweep with early stopping, or a search), rows are ranked by that metric's mean, best first,
 * stopped runs by their last value (rows without it last).
 */
export function compare(
  runs: ComparedRun[],
  keys: string[],
  metrics: string[],
  rankBy?: { metric: string; mode: 'max' | 'min' },
): ComparisonRow[] {
  const groups = new Map<string, ComparedRun[]>();
  for (const r of runs) {
    const id = settingOf(r, keys);
    groups.set(id, [...(groups.get(id) ?? []), r]);
  }
  const rows = [...groups.values()].map((g) => {
    const stats: ComparisonRow['stats'] = {};
    for (const m of metrics) {
      const s = statsOf(g.map((r) => r.metrics[m]));
      if (s) stats[m] = s;
    }
    const published: ComparisonRow['published'] = {};
    for (const e of g[0].published) {
      const s = stats[e.metric] ?? statsOf(g.map((r) => r.metrics[e.metric]));
      published[e.metric] = { ...e, verdict: verdict(s?.mean, e, s?.std ?? 0) };
    }
    // a key another base config has and this one lacks (a sweep over base configs): '-'
    const stopped = g.filter((r) => r.status === 'PAUSED').length;
    return {
      key: Object.fromEntries(keys.map((k) => [k, g[0].params[k] ?? '-'])),
      runs: g.length,
      seeds: g.map((r) => r.seed).sort((a, b) => a - b),
      stats,
      stopped,
      epochs: g.map((r) => r.epochs),
      published,
    };
  });
  if (!rankBy) return rows;
  const value = (r: ComparisonRow) => r.stats[rankBy.metric]?.mean ?? (rankBy.mode === 'max' ? -Infinity : Infinity);
  return rows.sort((a, b) => (rankBy.mode === 'max' ? value(b) - value(a) : value(a) - value(b)) || 0);
}

/** The epochs column of rows with early-stopped runs: `1 (stopped)`, `9`, `1, 9 (1 stopped)` over seeds. */
export function epochsCell(r: ComparisonRow): string {
  const e = [...new Set(r.epochs)].join(', ');
  return r.stopped ? `${e} (${r.runs > 1 ? `${r.stopped} ` : ''}stopped)` : e;
}

function statsOf(values: number[]): MetricStats | undefined {
  const v = values.filter((x) => Number.isFinite(x));
  if (!v.length) return undefined;
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const std = v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1)) : 0;
  return { mean, std, n: v.length };
}

/**
 * A metric's cell in compare's tables and the sweep's report: the mean ± std over the runs
 * that have it, the mean alone for one, and how many of the row's runs those are when not
 * all (`0.971 (1 of 2)`: a run still training has no test metrics).
 */
export function statCell(s: MetricStats | undefined, runs: number, format = (x: number) => x.toFixed(3)): string {
  if (!s) return '-';
  const value = s.n > 1 ? `${format(s.mean)} ± ${format(s.std)}` : format(s.mean);
  return s.n < runs ? `${value} (${s.n} of ${runs})` : value;
}

/** Metrics with a published number in any row, in first-seen order. */
export function publishedMetrics(rows: ComparisonRow[]): string[] {
  return [...new Set(rows.flatMap((r) => Object.keys(r.published)))];
}

export function toCsv(rows: ComparisonRow[], keys: string[], metrics: string[]): string {
  const q = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  const pub = publishedMetrics(rows);
  const early = rows.some((r) => r.stopped);
  const head = [
    ...keys,
    'runs',
    'seeds',
    ...(early ? ['epochs', 'stopped'] : []),
    ...metrics.flatMap((m) => [`${m} mean`, `${m} std`]),
    ...pub.flatMap((m) => [`${m} published`, `${m} published pm`, `${m} mode`, `${m} verdict`, `${m} source`]),
  ];
  const lines = rows.map((r) => [
    ...keys.map((k) => r.key[k]),
    String(r.runs),
    r.seeds.join(' '),
    ...(early ? [r.epochs.join(' '), String(r.stopped)] : []),
    ...metrics.flatMap((m) => (r.stats[m] ? [String(r.stats[m].mean), String(r.stats[m].std)] : ['', ''])),
    ...pub.flatMap((m) => {
      const e = r.published[m];
      return e ? [String(e.value), e.pm === undefined ? '' : String(e.pm), e.mode, e.verdict, e.source] : ['', '', '', '', ''];
    }),
  ]);
  return [head, ...lines].map((l) => l.map(q).join(',')).join('\n') + '\n';
}

/** Every column: the swept keys, the seeds, every compared metric, and each published metric with its verdict (`elbo compare --wide`). */
export function toTable(rows: ComparisonRow[], keys: string[], metrics: string[]): string {
  const pub = publishedMetrics(rows);
  // runs stopped early: their epochs, marked
  const early = rows.some((r) => r.stopped);
  const head = [...keys, 'seeds', ...(early ? ['epochs'] : []), ...metrics, ...pub.flatMap((m) => [`${m} published`, 'verdict'])];
  const body = rows.map((r) => [
    ...keys.map((k) => r.key[k]),
    r.seeds.join(','),
    ...(early ? [epochsCell(r)] : []),
    ...metrics.map((m) => statCell(r.stats[m], r.runs)),
    ...pub.flatMap((m) => (r.published[m] ? [formatPublished(r.published[m]), r.published[m].verdict] : ['-', '-'])),
  ]);
  const width = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const fmt = (l: string[]) =>
    l
      .map((v, i) => v.padEnd(width[i]))
      .join('  ')
      .trimEnd();
  return [fmt(head), fmt(width.map((w) => '-'.repeat(w))), ...body.map(fmt)].join('\n') + '\n';
}

/** `--metric published`: each row shows the first metric of its own `published:` block. */
export const PUBLISHED = 'published';

/**
 * The metric the short table shows: the one asked for (PUBLISHED: each row's own), else the
 * one the sweep ranks its cells by (early stopping, a search), else test/elbo or the first
 * test metric, else the first.
 */
export function tableMetric(metrics: string[], asked?: string, rankBy?: { metric: string }): string | undefined {
  if (asked && (metrics.includes(asked) || asked === PUBLISHED)) return asked;
  if (rankBy && metrics.includes(rankBy.metric)) return rankBy.metric;
  return defaultPlotMetric(metrics) ?? metrics[0];
}

/**
 * The table `elbo compare` prints by default, in `width` columns: the swept keys, n (runs
 * over seeds), the epochs of early-stopped rows, one metric (mean ± std over seeds) and its
 * published number and verdict. A line under it names the metrics left out (--wide shows
 * every column; compare.csv has them all). Cells too wide for their share are wrapped
 * (fitTable); with more swept keys than fit as columns, each row's setting is written on the
 * lines under its numbers instead.
 */
export function toShortTable(rows: ComparisonRow[], keys: string[], metrics: string[], metric: string | undefined, width = 80): string {
  const early = rows.some((r) => r.stopped);
  // --metric published: each row's own published metric, named in a column of its own
  const own = metric === PUBLISHED;
  const metricOf = (r: ComparisonRow) => (own ? Object.keys(r.published)[0] : metric);
  const pub = metric !== undefined && rows.some((r) => r.published[metricOf(r) ?? '']);
  const head = [
    ...keys,
    'n',
    ...(early ? ['epochs'] : []),
    ...(own ? ['metric', 'measured'] : metric ? [metric] : []),
    ...(pub ? ['published', 'verdict'] : []),
  ];
  const body = rows.map((r) => {
    const m = metricOf(r);
    const e = m === undefined ? undefined : r.published[m];
    return [
      ...keys.map((k) => r.key[k]),
      String(r.runs),
      ...(early ? [epochsCell(r)] : []),
      ...(own ? [m ?? '-'] : []),
      ...(metric ? [m === undefined ? '-' : statCell(r.stats[m], r.runs)] : []),
      ...(pub ? (e ? [formatPublished(e), e.verdict] : ['-', '-']) : []),
    ];
  });
  // too many swept keys for columns (each would wrap to a sliver): the numbers as the table,
  // each row's setting (its keys with a value) on the lines under it
  // (a column is a sliver when its values wrap, not its header)
  const widths = tableWidths(head, body, width);
  const slivers = keys.some((_, i) => widths[i] < Math.min(cellsWidth(body, i), 16));
  const common = commonestValues(rows.map((r) => r.key));
  // what the settings under the rows leave out, said once
  const held = common.size
    ? `every row has, unless it says otherwise: ${[...common].map(([k, v]) => `${k}=${JSON.parse(v)}`).join('; ')}`
    : '';
  const out = !slivers
    ? fitTable(head, body, width)
    : fitTable(
        head.slice(keys.length),
        body.map((b) => b.slice(keys.length)),
        width,
      )
        .trimEnd()
        .split('\n')
        .flatMap((l, i) => {
          if (i === 1 && held) return [l, ...wrapWords(held, width - 3, true).map((s) => `  ${s}`), ''];
          if (i < 2) return [l];
          const r = rows[i - 2];
          // an ablation's rows by what each changes: the keys most rows share are left out
          const setting =
            changedKeys(keys, common, r.key)
              .map((k) => `${k}=${r.key[k]}`)
              .join('; ') || COMMONEST_SETTING;
          return [...(i > 2 ? [''] : []), l, ...wrapWords(setting, width - 3, true).map((s) => `  ${s}`)];
        })
        .join('\n') + '\n';
  const shown = new Set(rows.map(metricOf));
  const left = [...metrics.filter((m) => !shown.has(m)), ...publishedMetrics(rows).filter((m) => !shown.has(m) && !metrics.includes(m))];
  const what = own ? "measured: each row's published metric" : metric;
  const note = left.length
    ? `${metric ? `${what}: mean ± std over the n seeds. ` : ''}${left.length} more metric${left.length === 1 ? '' : 's'} (${left.join(', ')}): --metric NAME shows another, --wide every column`
    : metric && rows.some((r) => r.runs > 1)
      ? `${what}: mean ± std over the n seeds`
      : '';
  return out + (note ? wrapWords(note, width - 1, true).join('\n') + '\n' : '');
}

/**
 * `text` as lines of at most `width` characters, broken after spaces, commas, dots, = and /
 * (`spaces`: after spaces only); a piece longer than a line is cut.
 */
export function wrapWords(text: string, width: number, spaces = false): string[] {
  const w = Math.max(1, width);
  if (text.length <= w) return [text];
  const pieces = wordPieces(text, spaces);
  const lines: string[] = [];
  let cur = '';
  for (let p of pieces) {
    if ((cur + p).trimEnd().length <= w) {
      cur += p;
      continue;
    }
    if (cur.trim()) lines.push(cur.trimEnd());
    cur = '';
    while (p.trimEnd().length > w) {
      lines.push(p.slice(0, w));
      p = p.slice(w);
    }
    cur = p.trimStart();
  }
  if (cur.trim()) lines.push(cur.trimEnd());
  return lines;
}

/** `text` cut where wrapWords may break it: after spaces, commas, dots, = and / (`spaces`: after spaces only); each piece keeps its break. */
function wordPieces(text: string, spaces = false): string[] {
  return text.match(spaces ? /\S*\s*/g : /[^\s,./=]*[\s,./=]*/g)!.filter(Boolean);
}

/** The width of column `i`'s cells (not its header). */
function cellsWidth(body: string[][], i: number): number {
  return Math.max(0, ...body.map((b) => b[i].length));
}

/**
 * The column widths fitTable gives a table in `width` columns: first a header wider than its
 * cells wraps (data.labelled over two lines, rather than every row's value), then the widest
 * column is narrowed, none below `min`.
 */
export function tableWidths(head: string[], body: string[][], width = 80, min = 8): number[] {
  const max = width - 1;
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const total = () => w.reduce((a, b) => a + b, 0) + 2 * (w.length - 1);
  for (let i = 0; i < w.length && total() > max; i++) {
    // the header's longest piece between the places wrapWords breaks it
    const piece = Math.max(...wordPieces(head[i]).map((p) => p.trimEnd().length));
    const floor = Math.max(cellsWidth(body, i), piece, min);
    if (floor < w[i]) w[i] = Math.max(floor, w[i] - (total() - max));
  }
  while (total() > max) {
    let widest = -1;
    for (let i = 0; i < w.length; i++) if (w[i] > min && (widest < 0 || w[i] > w[widest])) widest = i;
    if (widest < 0) break;
    w[widest]--;
  }
  return w;
}

/**
 * A table of at most `width - 1` characters a line (as far as columns of `min` characters
 * allow): the widest column is narrowed first, and its cells (and header) wrap onto more
 * lines; rows that take more than one line are set apart by a blank line.
 */
export function fitTable(head: string[], body: string[][], width = 80, min = 8): string {
  const w = tableWidths(head, body, width, min);
  const wrapped = (cells: string[]) => cells.map((c, i) => wrapWords(c, w[i]));
  const lines = (cells: string[][]) =>
    Array.from({ length: Math.max(...cells.map((c) => c.length)) }, (_, k) =>
      cells
        .map((c, i) => (c[k] ?? '').padEnd(w[i]))
        .join('  ')
        .trimEnd(),
    );
  const headLines = lines(wrapped(head));
  const rowLines = body.map((b) => lines(wrapped(b)));
  const tall = rowLines.some((r) => r.length > 1);
  return (
    [...headLines, w.map((x) => '-'.repeat(x)).join('  '), ...rowLines.flatMap((r, i) => (tall && i > 0 ? ['', ...r] : r))].join('\n') +
    '\n'
  );
}

/**
 * A setting in words: each swept key by its last part (the whole key when two would read
 * alike) and its value, `latent=8, prior=vamp(components=50)`; `all` when nothing is swept.
 */
export function settingLabel(keys: string[], values: Record<string, string>): string {
  const last = (k: string) => k.split('.').pop()!;
  const twice = (k: string) => keys.filter((x) => last(x) === last(k)).length > 1;
  return keys.map((k) => `${twice(k) ? k : last(k)}=${values[k] ?? '-'}`).join(', ') || 'all';
}

/**
 * The keys whose value in `values` differs from an ablation's commonest one (commonestValues;
 * values compare as JSON); an unset key ('-') changes nothing. Compare's rows and the sweep's
 * figures name a setting by these.
 */
function changedKeys(keys: string[], common: Map<string, string>, values: Record<string, string>): string[] {
  return keys.filter((k) => (values[k] ?? '-') !== '-' && common.get(k) !== JSON.stringify(values[k]));
}

export interface FigureLabels {
  /** A setting's name from its values (a row's key, or a run's flattened params). */
  label: (values: Record<string, string>) => string;
  /** The legend's title. */
  title: string;
  /** What a setting's name says (the swept keys, or what it changes). */
  what: string;
  /** Whether the settings are an ablation's (named by what they change) rather than a grid's. */
  ablation: boolean;
  /** What an ablation's settings keep unless their names say otherwise ('' for a grid). */
  held: string;
}

/**
 * The settings' names in a sweep's figures: settingLabel, or, for an ablation (keys most
 * rows share: commonestValues), what each setting changes, with `held` saying once what the
 * rest keep (empty for a grid).
 */
export function figureLabels(keys: string[], rows: ComparisonRow[]): FigureLabels {
  const common = commonestValues(rows.map((r) => r.key));
  if (!common.size)
    return {
      label: (v) => settingLabel(keys, v),
      title: keys.join(', ') || 'setting',
      what: keys.join(', ') || 'the runs',
      ablation: false,
      held: '',
    };
  // train.clip.norm as clip.norm: without its section, unless two keys would then read alike
  const short = (k: string) => {
    const rest = k.replace(/^[^.]+\./, '');
    return keys.filter((x) => x.replace(/^[^.]+\./, '') === rest).length > 1 ? k : rest;
  };
  const kept = [...common].filter(([, v]) => JSON.parse(v) !== '-').map(([k, v]) => `${short(k)}=${JSON.parse(v)}`);
  return {
    label: (v) =>
      changedKeys(keys, common, v)
        .map((k) => `${short(k)}=${v[k]}`)
        .join(', ') || COMMONEST_SETTING,
    title: 'setting',
    what: 'what it changes',
    ablation: true,
    held: kept.length ? `every setting has, unless it says otherwise: ${kept.join('; ')}` : '',
  };
}

/** Whether every row has a number for swept key `k`. */
export function numericKey(rows: ComparisonRow[], k: string): boolean {
  return rows.every((r) => r.key[k] !== '-' && Number.isFinite(Number(r.key[k])));
}

/** The metric a compare plot shows by default: test/elbo, else the first test metric. */
export function defaultPlotMetric(metrics: string[]): string | undefined {
  return metrics.includes('test/elbo') ? 'test/elbo' : metrics.find((m) => m.startsWith('test/'));
}

/**
 * The learning-curve panel that leads (writeRunCurves): the validation curve of the metric
 * asked for (--metric), else the metric the sweep ranks by, else the one every run chooses
 * its checkpoint by (train.select: M2's and the SDGM's val/accuracy), else the validation
 * curve of the plotted test metric.
 */
export function leadingCurve(metrics: string[], rankBy?: { metric: string }, asked?: string, runs: ComparedRun[] = []): string | undefined {
  const val = (m?: string) => m?.replace(/^test\//, 'val/');
  const selected = new Set(runs.map((r) => r.selectedBy));
  const shared = selected.size === 1 ? [...selected][0] : undefined;
  return (asked && asked !== PUBLISHED ? val(asked) : undefined) ?? rankBy?.metric ?? shared ?? val(defaultPlotMetric(metrics));
}

/** The swept key on a compare plot's x axis by default: the first numeric one, else the first. */
export function defaultPlotKey(rows: ComparisonRow[], keys: string[]): string | undefined {
  return keys.find((k) => numericKey(rows, k)) ?? keys[0];
}

/**
 * `metric` against swept key `by` as FILE.png and FILE.svg: one series per value of the
 * other swept keys, mean ± std over seeds, and the published values as reference lines.
 * Returns the series names (none when no row has the metric: then nothing is written).
 */
export async function writeComparePlot(file: string, rows: ComparisonRow[], keys: string[], metric: string, by: string): Promise<string[]> {
  const others = keys.filter((k) => k !== by);
  const numeric = numericKey(rows, by);
  // a series by the other keys' values; a plugin block by its kind alone when that tells the series apart
  const seriesOf = (kindOnly: boolean) => (r: ComparisonRow) => {
    const value = (k: string) => (kindOnly ? r.key[k].replace(/\(.*$/, '') : r.key[k]);
    return others.length === 1 ? value(others[0]) : others.map((k) => `${k}=${value(k)}`).join(' ') || metric;
  };
  const distinct = (f: (r: ComparisonRow) => string) => new Set(rows.map(f)).size;
  const name = distinct(seriesOf(true)) === distinct(seriesOf(false)) ? seriesOf(true) : seriesOf(false);
  // one published value for the whole plot (or a few): reference lines; one per setting: dashed per series
  const values = new Set(rows.flatMap((r) => (r.published[metric] ? [r.published[metric].value] : [])));
  const perPoint = values.size > 3;
  const points: ComparePoint[] = [];
  for (const r of rows) {
    const s = r.stats[metric];
    if (!s) continue;
    const e = r.published[metric];
    points.push({
      x: numeric ? Number(r.key[by]) : r.key[by],
      series: name(r),
      mean: s.mean,
      std: s.std,
      runs: r.runs,
      ...(perPoint && e ? { published: e.value } : {}),
    });
  }
  if (!points.length) return [];
  const refs = new Map<string, { value: number; label: string }>();
  for (const r of rows) {
    const e = r.published[metric];
    if (e && !perPoint) refs.set(`${e.value} ${e.source}`, { value: e.value, label: `published ${formatPublished(e)} (${e.source})` });
  }
  const sources = [...new Set(rows.flatMap((r) => (r.published[metric] ? [r.published[metric].source.replace(/[:,].*$/, '')] : [])))];
  const seeds = Math.max(...rows.map((r) => r.runs));
  await writeFigure(
    file,
    compareSpec({
      metric,
      by,
      seriesTitle: others.join(', ') || 'metric',
      points,
      references: [...refs.values()],
      subtitle: `${rows.length} settings, up to ${seeds} seed${seeds === 1 ? '' : 's'} each; error bars: ± one standard deviation over seeds${perPoint ? `; dashed, hollow diamonds: the published value of each setting (${sources.join('; ')})` : ''}`,
    }),
  );
  return [...new Set(points.map((p) => p.series))];
}

/** The epochs --at names: a comma list of epochs and ranges (`1-10,20,30`), ascending, each once. */
export function parseEpochs(spec: string): number[] {
  const out = new Set<number>();
  for (const part of spec.split(',').map((s) => s.trim())) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    const from = Number(m?.[1] ?? 0);
    const to = m?.[2] !== undefined ? Number(m[2]) : from;
    if (!m || from < 1 || to < from || to - from >= 100000)
      throw new UserError(`'${part}' is not an epoch (from 1) or a range of them: e.g. --at 1-10,20,30`, '--at');
    for (let e = from; e <= to; e++) out.add(e);
  }
  return [...out].sort((a, b) => a - b);
}

/**
 * The runs' names in an epoch table: their setting's (`label`), with the seed where a
 * setting has several runs (the seed alone when all are one setting's), and the run's folder
 * where that still leaves two alike.
 */
export function runLabels(runs: ComparedRun[], label: (params: Record<string, string>) => string): string[] {
  const settings = runs.map((r) => label(r.params));
  const one = new Set(settings).size === 1;
  const named = runs.map((r, i) =>
    one && runs.length > 1
      ? `seed ${r.seed}`
      : settings.filter((s) => s === settings[i]).length > 1
        ? `${settings[i]}, seed ${r.seed}`
        : settings[i],
  );
  return named.map((n, i) => (named.filter((x) => x === n).length > 1 ? `${n} (${path.basename(runs[i].dir)})` : n));
}

/** A column of an epoch table: a run's curve, or the mean of a setting's runs (`runs` of them, `reached[i]` at epoch i). */
export interface EpochColumn {
  label: string;
  values: (number | null)[];
  runs?: number;
  reached?: number[];
}

/**
 * `metric`'s curve at `epochs`, a row per epoch and a column per run or setting; with two
 * columns a last one, the second minus the first. '–' where a column has no such epoch (not
 * reached yet, or stopped before it); a setting's mean that not all its runs reached says of
 * how many it is (`0.95 (2 of 3)`). Fits `width` columns (fitTable).
 */
export function toEpochTable(metric: string, epochs: number[], columns: EpochColumn[], width = 80): string {
  const values = columns.map((c) => c.values);
  // one number of decimals for the table: four significant digits of its largest value
  const largest = Math.max(...values.flat().map((v) => (v === null ? 0 : Math.abs(v))));
  const decimals = largest > 0 ? Math.min(8, Math.max(0, 3 - Math.floor(Math.log10(largest)))) : 0;
  const num = (c: EpochColumn, i: number) => {
    const v = c.values[i];
    if (v === null) return '–';
    const k = c.reached?.[i];
    return k !== undefined && c.runs !== undefined && k < c.runs ? `${v.toFixed(decimals)} (${k} of ${c.runs})` : v.toFixed(decimals);
  };
  const diff = columns.length === 2;
  const head = ['epoch', ...columns.map((c) => c.label), ...(diff ? ['second − first'] : [])];
  const body = epochs.map((e, i) => {
    const [a, b] = [values[0]?.[i] ?? null, values[1]?.[i] ?? null];
    const d = a === null || b === null ? '–' : `${b - a >= 0 ? '+' : '−'}${Math.abs(b - a).toFixed(decimals)}`;
    return [String(e), ...columns.map((c) => num(c, i)), ...(diff ? [d] : [])];
  });
  const means = columns.some((c) => c.runs !== undefined) ? ', the mean over each setting’s runs' : '';
  return `${metric} by epoch${means}\n` + fitTable(head, body, width);
}

/** `metric` at each of `epochs` in a run's metrics.jsonl lines (a resumed epoch's last line; null where none). */
function valuesAt(lines: Record<string, number>[], metric: string, epochs: number[]): (number | null)[] {
  const at = new Map<number, number>();
  for (const l of lines) if (typeof l.epoch === 'number' && Number.isFinite(l[metric])) at.set(l.epoch, l[metric]);
  return epochs.map((e) => at.get(e) ?? null);
}

/**
 * compare --at: the curve `metric` at `epochs` of every run, each named by runLabels, or,
 * when the runs are several settings (their values of `keys`, as compare's rows) and one of them has several runs (a sweep over seeds)
 * and not `perRun`, of every setting: the mean of its runs that reached the epoch (`runs`,
 * `reached`, `dirs`). Refused in one line when no run has such an epoch (the furthest one
 * reached) or logs no such curve (the curves they log).
 */
export function epochCurves(
  runs: ComparedRun[],
  metric: string | undefined,
  epochs: number[],
  keys: string[],
  label: (params: Record<string, string>) => string,
  perRun = false,
) {
  if (!metric) throw new UserError('the runs have no curve to show at epochs; name one with --metric', '--at');
  const lines = runs.map((r) => readMetricLines(r.dir));
  const curves = runs.map((r, i) => valuesAt(lines[i], metric, epochs));
  if (curves.every((values) => values.every((v) => v === null))) {
    const all = lines.flat();
    const reached = Math.max(0, ...all.filter((l) => Number.isFinite(l[metric])).map((l) => l.epoch ?? 0));
    if (reached) throw new UserError(`no run has reached epoch ${epochs[0]} (the furthest: ${reached})`, '--at');
    const logged = [...new Set(all.flatMap((l) => Object.keys(l)))].filter((k) => /^(train|val)\//.test(k));
    throw new UserError(`no run logs ${metric}${suggestion(metric, logged)}`, '--at');
  }
  // settings as compare's rows make them (the swept keys' values)
  const settings = runs.map((r) => settingOf(r, keys));
  const ids = [...new Set(settings)];
  if (perRun || ids.length === 1 || ids.length === runs.length) {
    const labels = runLabels(runs, label);
    return { metric, epochs, runs: runs.map((r, i) => ({ dir: r.dir, label: labels[i], values: curves[i] })) };
  }
  const settingsOut = ids.map((id) => {
    const of = settings.flatMap((s, j) => (s === id ? [j] : []));
    const reached = epochs.map((_, i) => of.filter((j) => curves[j][i] !== null).length);
    const values = epochs.map((_, i) => (reached[i] ? of.reduce((sum, j) => sum + (curves[j][i] ?? 0), 0) / reached[i] : null));
    return { label: label(runs[of[0]].params), dirs: of.map((j) => runs[j].dir), runs: of.length, reached, values };
  });
  return { metric, epochs, settings: settingsOut };
}
