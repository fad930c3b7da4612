import * as fs from 'fs';
import * as path from 'path';
import { formatPublished } from '../config/metrics';
import { UserError } from '../errors';
import { esc, table, figure, num, verdictBadge, page } from '../report/html';
import { footer, writeRunReport } from '../report/run';
import { collectRuns, sweptKeys, comparedMetrics, compare, epochsCell, toCsv, publishedMetrics, writeComparePlot, defaultPlotMetric, defaultPlotKey, type ComparisonRow } from './compare';
import { readSweepState } from './state';

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
  const parts: string[] = [
    `<h1>Sweep ${esc(index.name)}</h1>`,
    `<p class="sub">${esc(dir)} · sweep file ${esc(index.file)} · base ${esc([index.base].flat().join(', '))}</p>`,
    '<h2>Cells</h2>',
    table(
      ['cell', 'setting', 'status', 'seconds', 'run'],
      cells.map((c) => {
        const report = c.runDir ? path.join(c.runDir, 'artifacts', 'report.html') : null;
        const link = report && fs.existsSync(report) ? `<a href="${esc(encodeURI(path.relative(dir, report).split(path.sep).join('/')))}">${esc(path.basename(c.runDir!))}</a>` : esc(c.runDir ? path.basename(c.runDir) : '–');
        return [String(c.index), esc(c.label), `<span class="status ${esc(c.status)}">${esc(c.status)}</span>${c.status === 'STOPPED' && c.rung ? ` at epoch ${c.rung.epoch}` : ''}${c.error ? ` ${esc(c.error)}` : ''}`, c.seconds ? c.seconds.toFixed(1) : '–', link];
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
    const cell = (s: { mean: number; std: number } | undefined, n: number) => (!s ? '–' : n > 1 ? `${num(s.mean)} ± ${num(s.std)}` : num(s.mean));
    // a sweep that ranks its cells (early stopping, a search): the metric it ranks by, and the epochs of stopped cells
    const shownMetrics = metrics.filter((m) => m.startsWith('test/') || pub.includes(m) || m === rankBy?.metric);
    const early = rows.some((r) => r.stopped);
    parts.push(
      '<h2>Comparison (mean ± std over seeds)</h2>',
      table(
        [...keys, 'seeds', ...(early ? ['epochs'] : []), ...shownMetrics, ...pub.flatMap((m) => [`${m} published`, 'verdict'])],
        rows.map((r) => [
          ...keys.map((k) => esc(r.key[k])),
          esc(r.seeds.join(', ')),
          ...(early ? [esc(epochsCell(r))] : []),
          ...shownMetrics.map((m) => cell(r.stats[m], r.runs)),
          ...pub.flatMap((m) => (r.published[m] ? [esc(`${formatPublished(r.published[m])} (${r.published[m].source})`), verdictBadge(r.published[m].verdict)] : ['–', '–'])),
        ]),
        'compare',
      ),
    );
    const by = defaultPlotKey(rows, keys);
    const figures: string[] = [];
    if (by) {
      for (const m of plottedMetrics(rows, metrics)) {
        const file = path.join(dir, `compare-${m.replace(/\W+/g, '_')}.png`);
        if ((await writeComparePlot(file, rows, keys, m, by)).length) figures.push(figure(file, `${path.basename(file)} (SVG beside it): ${m} against ${by}`));
      }
    }
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
  throw new UserError(fs.existsSync(dir) ? 'neither a run directory (run.json) nor a sweep directory (sweep.json)' : 'no such directory', target);
}
