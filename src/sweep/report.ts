import * as fs from 'fs';
import * as path from 'path';
import { formatPublished } from '../config/metrics';
import { UserError } from '../errors';
import { esc, table, figure, num, verdictBadge, page } from '../report/html';
import { footer, writeRunReport, readMetricLines } from '../report/run';
import {
  collectRuns,
  sweptKeys,
  comparedMetrics,
  compare,
  epochsCell,
  toCsv,
  publishedMetrics,
  writeComparePlot,
  defaultPlotMetric,
  defaultPlotKey,
  figureLabels,
  leadingCurve,
  statCell,
  type MetricStats,
  type FigureLabels,
  type ComparisonRow,
  type ComparedRun,
} from './compare';
import { readSweepState, distinctLabels, commonestValues } from './state';
import {
  curvePoints,
  LR_TERM,
  sweepCurvesSpec,
  sweepCurveMetrics,
  settingValuesSpec,
  type SweepCurvePoint,
  type SettingValue,
} from '../plot/figures';
import { writeFigure } from '../plot/render';
import { Spool } from '../mlflow/spool';
import { isHttpUri } from '../util/uri';

/** The files a sweep's report draws beside it (the MLflow parent run carries them too). */
export const SWEEP_FIGURES = /^(compare-.*|curves|test-metrics)\.(png|svg)$/;

/**
 * A run's MLflow run as the report links it (from the spool of RUN_DIR, or of the sweep
 * directory for the sweep's parent run): a link to the run's page on an http(s) server, the
 * run id elsewhere, and what is not sent yet. Null when the run is not tracked in MLflow.
 */
export function mlflowLink(dir: string): string | null {
  if (!Spool.exists(dir)) return null;
  let s: Spool;
  try {
    s = Spool.open(dir);
  } catch {
    return null; // a damaged spool: elbo sync says what is wrong
  }
  const st = s.state;
  const pending = s.pending().length;
  const behind = pending ? ` <span class="sub">(${pending} events not sent: elbo sync)</span>` : '';
  if (!st.run_id) return `<span class="sub">not created yet on ${esc(st.tracking_uri)}: elbo sync</span>`;
  const url =
    isHttpUri(st.tracking_uri) && st.experiment_id
      ? `${st.tracking_uri.replace(/\/+$/, '')}/#/experiments/${encodeURIComponent(st.experiment_id)}/runs/${encodeURIComponent(st.run_id)}`
      : null;
  return (url ? `<a href="${esc(url)}">${esc(st.run_id.slice(0, 12))}</a>` : esc(st.run_id)) + behind;
}

/**
 * Every run's learning curves overlaid, as FILE (PNG) and its SVG beside it: a panel per
 * train/ and val/ metric that moves (at most 12; `first` leads), a colour per setting, a line
 * per run. Runs that are all one setting (its seeds) get a colour per seed instead. What a
 * sweep's report draws (SWEEP_DIR/curves.png), and `elbo compare` for any runs. Returns the
 * panels' metrics (none when no run has finished an epoch: then nothing is written).
 */
export async function writeRunCurves(
  file: string,
  title: string,
  runs: ComparedRun[],
  names: FigureLabels,
  settings: string[],
  first?: string,
): Promise<string[]> {
  const bySeed = settings.length === 1 && runs.length > 1;
  const colourOf = (r: ComparedRun) => (bySeed ? `seed=${r.seed}` : names.label(r.params));
  const colours = bySeed ? [...new Set(runs.map(colourOf))] : settings;
  const points: SweepCurvePoint[] = [];
  for (const r of runs) {
    const setting = colourOf(r);
    const run = path.basename(r.dir);
    for (const p of curvePoints(readMetricLines(r.dir))) {
      if (p.term !== LR_TERM)
        points.push({ epoch: p.epoch, metric: `${p.split === 'train' ? 'train' : 'val'}/${p.term}`, setting, run, value: p.value });
    }
  }
  if (!points.length) return [];
  // a metric that never changes (M2's val/unlabelled: every validation row is labelled) is no curve
  const values = new Map<string, Set<number>>();
  for (const p of points) values.set(p.metric, (values.get(p.metric) ?? new Set()).add(p.value));
  const metrics = sweepCurveMetrics(
    [...values].filter(([, v]) => v.size > 1).map(([m]) => m),
    first,
  );
  if (!metrics.length) return [];
  const seeds = Math.max(...colours.map((s) => new Set(points.filter((p) => p.setting === s).map((p) => p.run)).size));
  // one setting means no swept key differs between the runs: it has no name beyond 'all'
  const what = bySeed
    ? 'one setting, a colour per seed'
    : `${settings.length} setting${settings.length === 1 ? '' : 's'}${seeds > 1 ? `; a line per run (the seeds of a setting share its colour)` : ''}`;
  await writeFigure(
    file,
    sweepCurvesSpec({
      title,
      subtitle: `${runs.length} run${runs.length === 1 ? '' : 's'}, ${what}${names.held ? `; ${names.held}` : ''}`,
      points: points.filter((p) => metrics.includes(p.metric)),
      settings: colours,
      settingTitle: bySeed ? 'seed' : names.title,
      metrics,
    }),
  );
  return metrics;
}

/** The final test metrics by setting (SWEEP_DIR/test-metrics.png and .svg): a panel per test metric (at most 12). Null without test metrics. */
async function writeTestMetrics(
  dir: string,
  name: string,
  runs: ComparedRun[],
  names: FigureLabels,
  settings: string[],
  metrics: string[],
): Promise<string | null> {
  const first = defaultPlotMetric(metrics);
  const tested = [...(first ? [first] : []), ...metrics.filter((m) => m.startsWith('test/') && m !== first)].slice(0, 12);
  const values: SettingValue[] = runs.flatMap((r) =>
    tested
      .filter((m) => Number.isFinite(r.metrics[m]))
      .map((m) => ({ metric: m, setting: names.label(r.params), run: path.basename(r.dir), value: r.metrics[m] })),
  );
  if (!values.length) return null;
  const file = path.join(dir, 'test-metrics.png');
  await writeFigure(
    file,
    settingValuesSpec({
      title: `Test metrics of sweep ${name}, by setting`,
      subtitle: `a row per setting (${names.what}); dots: each run (seed); tick and line: the mean ± one standard deviation over seeds${names.held ? `; ${names.held}` : ''}`,
      values,
      settings,
      settingTitle: names.title,
      metrics: tested.filter((m) => values.some((v) => v.metric === m)),
    }),
  );
  return file;
}

/**
 * report.html of a sweep (SWEEP_DIR/report.html): one self-contained page, written at the
 * end of a sweep and by `elbo report`; each cell links its run's report (src/report/run.ts).
 */

/** The metrics a sweep report plots: those with published numbers, else the default one. */
function plottedMetrics(rows: ComparisonRow[], metrics: string[]): string[] {
  const pub = publishedMetrics(rows).filter((m) => metrics.includes(m));
  const first = defaultPlotMetric(metrics);
  return [...new Set([...(first ? [first] : []), ...pub])].slice(0, 6);
}

/**
 * Write SWEEP_DIR/report.html: the cells and their status, the comparison table
 * (compare.csv too) with the published numbers, and a compare plot per plotted metric.
 * Returns its path.
 */
export async function writeSweepReport(sweepDir: string): Promise<string> {
  const dir = path.resolve(sweepDir);
  const index = readSweepState(dir);
  const cells = index.cells;
  const withRuns = cells.filter((c) => c.runDir && fs.existsSync(path.join(c.runDir, 'run.json')));
  // the cells' MLflow runs (and the sweep's parent run), when tracked
  const mlflow = cells.map((c) => (c.runDir ? mlflowLink(c.runDir) : null));
  const parent = mlflowLink(dir);
  const tracked = mlflow.some(Boolean);
  // an ablation's cells by what each changes, what they keep said once (a grid's labels stay whole)
  const labels = distinctLabels(cells);
  const common = commonestValues(cells.map((c) => c.axes ?? {}));
  const held = common.size
    ? `Every cell has, unless its setting says otherwise: ${[...common].map(([k, v]) => `${k}=${v.startsWith('"') ? JSON.parse(v) : v}`).join('; ')}`
    : '';
  const parts: string[] = [
    `<h1>Sweep ${esc(index.name)}</h1>`,
    `<p class="sub">${esc(dir)} · sweep file ${esc(index.file)} · base ${esc([index.base].flat().join(', '))}${parent ? ` · MLflow: the sweep's run ${parent}` : ''}</p>`,
    '<h2>Cells</h2>',
    ...(held ? [`<p class="sub">${esc(held)}</p>`] : []),
    table(
      ['cell', held ? 'setting (what it changes)' : 'setting', 'status', 'seconds', 'run', ...(tracked ? ['MLflow'] : [])],
      cells.map((c, i) => {
        const report = c.runDir ? path.join(c.runDir, 'artifacts', 'report.html') : null;
        const link =
          report && fs.existsSync(report)
            ? `<a href="${esc(encodeURI(path.relative(dir, report).split(path.sep).join('/')))}">${esc(path.basename(c.runDir!))}</a>`
            : esc(c.runDir ? path.basename(c.runDir) : '–');
        return [
          String(c.index),
          esc(labels.get(c.index) ?? c.label),
          `<span class="status ${esc(c.status)}">${esc(c.status)}</span>${c.status === 'STOPPED' && c.rung ? ` at epoch ${c.rung.epoch}` : ''}${c.error ? ` ${esc(c.error)}` : ''}`,
          c.seconds ? c.seconds.toFixed(1) : '–',
          link,
          ...(tracked ? [mlflow[i] ?? '–'] : []),
        ];
      }),
    ),
  ];
  if (withRuns.length) {
    const { runs, rankBy } = collectRuns([dir]);
    const keys = sweptKeys(runs);
    const metrics = comparedMetrics(runs);
    const rows = compare(runs, keys, metrics, rankBy);
    fs.writeFileSync(path.join(dir, 'compare.csv'), toCsv(rows, keys, metrics));
    const pub = publishedMetrics(rows);
    const cell = (s: MetricStats | undefined, runs: number) => (s ? statCell(s, runs, num) : '–');
    // a sweep that ranks its cells (early stopping, a search): the metric it ranks by, and the epochs of stopped cells
    const shownMetrics = metrics.filter((m) => m.startsWith('test/') || pub.includes(m) || m === rankBy?.metric);
    const early = rows.some((r) => r.stopped);
    // an ablation's rows as one column of what each changes (a column per key would be mostly the same values)
    const names = figureLabels(keys, rows);
    const keyHead = names.ablation ? ['setting (what it changes)'] : keys;
    const keyCells = (r: ComparisonRow) => (names.ablation ? [esc(names.label(r.key))] : keys.map((k) => esc(r.key[k])));
    parts.push(
      '<h2>Comparison (mean ± std over seeds)</h2>',
      ...(names.held ? [`<p class="sub">${esc(names.held.replace(/^every/, 'Every'))}</p>`] : []),
      table(
        [...keyHead, 'seeds', ...(early ? ['epochs'] : []), ...shownMetrics, ...pub.flatMap((m) => [`${m} published`, 'verdict'])],
        rows.map((r) => [
          ...keyCells(r),
          esc(r.seeds.join(', ')),
          ...(early ? [esc(epochsCell(r))] : []),
          ...shownMetrics.map((m) => cell(r.stats[m], r.runs)),
          ...pub.flatMap((m) =>
            r.published[m]
              ? [esc(`${formatPublished(r.published[m])} (${r.published[m].source})`), verdictBadge(r.published[m].verdict)]
              : ['–', '–'],
          ),
        ]),
        'compare',
      ),
    );
    // a metric against one swept key: not for an ablation, whose keys each move in one or two cells
    const by = names.ablation ? undefined : defaultPlotKey(rows, keys);
    const figures: string[] = [];
    if (by) {
      for (const m of plottedMetrics(rows, metrics)) {
        const file = path.join(dir, `compare-${m.replace(/\W+/g, '_')}.png`);
        if ((await writeComparePlot(file, rows, keys, m, by)).length)
          figures.push(figure(file, `${path.basename(file)} (SVG beside it): ${m} against ${by}`));
      }
    }
    // every run's curves overlaid, and each test metric by setting (the settings in the table's order)
    const settings = rows.map((r) => names.label(r.key));
    // the panel that leads: the metric the sweep ranks by, else the one its runs select checkpoints by (leadingCurve)
    const lead = leadingCurve(metrics, rankBy, undefined, runs);
    const curves = path.join(dir, 'curves.png');
    if ((await writeRunCurves(curves, `Learning curves of sweep ${index.name}`, runs, names, settings, lead)).length)
      figures.push(
        figure(curves, `${path.basename(curves)} (SVG beside it): every run's learning curves, a panel per metric, a colour per setting`),
      );
    const tested = await writeTestMetrics(dir, index.name, runs, names, settings, metrics);
    if (tested) figures.push(figure(tested, `${path.basename(tested)} (SVG beside it): each test metric by setting`));
    parts.push('<h2>Figures</h2>', figures.length ? figures.join('\n') : '<p class="sub">No swept key to plot against.</p>');
  } else parts.push('<p class="sub">No cell has a run yet.</p>');
  const out = path.join(dir, 'report.html');
  fs.writeFileSync(out, page(`elbo sweep ${index.name}`, parts.join('\n'), footer()));
  return out;
}

/** `elbo report PATH`: a run directory (run.json) or a sweep directory (sweep.json). */
export async function writeReport(target: string): Promise<{ kind: 'run' | 'sweep'; file: string }> {
  const dir = path.resolve(target);
  if (fs.existsSync(path.join(dir, 'sweep.json'))) return { kind: 'sweep', file: await writeSweepReport(dir) };
  if (fs.existsSync(path.join(dir, 'run.json'))) return { kind: 'run', file: await writeRunReport(dir) };
  throw new UserError(
    fs.existsSync(dir) ? 'neither a run directory (run.json) nor a sweep directory (sweep.json)' : 'no such directory',
    target,
  );
}
