import * as fs from 'fs';
import * as path from 'path';
import { Args, Flags } from '@oclif/core';
import { cellLine, fit } from '../runs';
import { BaseCommand } from '../base';
import { shownPath as shown } from '../../util/shown-path';
import {
  collectRuns,
  sweptKeys,
  comparedMetrics,
  compare,
  toCsv,
  toTable,
  toShortTable,
  tableMetric,
  writeComparePlot,
  defaultPlotMetric,
  defaultPlotKey,
  figureLabels,
  leadingCurve,
  PUBLISHED,
  parseEpochs,
  epochCurves,
  toEpochTable,
} from '../../sweep/compare';
import { writeRunCurves } from '../../sweep/report';
import { UserError, suggestion } from '../../errors';

export default class Compare extends BaseCommand {
  static summary =
    "Table of swept keys and final metrics (mean ± std over seeds), as CSV, a plot and the runs' learning curves overlaid (PNG and SVG)";
  static description =
    "The table fits 80 columns: the swept keys, n (runs over seeds), one metric (mean ± std; --metric, default: the metric the sweep ranks by, else test/elbo) with its published number and verdict; long values wrap. --wide prints every column; compare.csv always has them all. curves.png overlays every run's learning curves (a panel per train/ and val/ metric, the validation curve of --metric first; a colour per setting, or per seed when the runs are one setting's seeds), runs still training included.";
  static examples = [
    '<%= config.bin %> compare runs/sweeps/latent-prior',
    '<%= config.bin %> compare runs/sweeps/latent-prior --metric test/elbo --by model.latent',
    '<%= config.bin %> compare runs/sweeps/latent-prior --wide',
    '<%= config.bin %> compare runs/quickstart/RUN_A runs/quickstart/RUN_B',
    '<%= config.bin %> compare runs/mnist-sdgm/RUN_A runs/mnist-sdgm/RUN_B --metric test/accuracy --curves sdgm-seeds.png',
    '<%= config.bin %> compare runs/mnist-sdgm/RUN_A runs/mnist-sdgm/RUN_B --at 1-10,20,30',
  ];
  static strict = false;
  static args = { runs: Args.string({ description: 'A sweep directory, or run directories', required: true }) };
  static flags = {
    metric: Flags.string({
      description:
        "Metric to show in the table and plot (default: test/elbo, or the first test metric; the table: the metric a sweep ranks by first); 'published': each row's own published metric in the table (models that publish different metrics side by side)",
    }),
    wide: Flags.boolean({
      description: 'Print every column (the seeds, every metric, each published number), however wide',
      default: false,
    }),
    by: Flags.string({ description: 'Swept key on the plot’s x axis (default: the first numeric swept key, else the first)' }),
    csv: Flags.string({ description: 'CSV file (default: compare.csv in the sweep directory, or ./compare.csv)' }),
    plot: Flags.string({ description: 'PNG file, with the SVG beside it (default: compare-<metric>.png beside the CSV)' }),
    curves: Flags.string({
      description: "The runs' learning curves overlaid: PNG file, with the SVG beside it (default: curves.png beside the CSV)",
    }),
    at: Flags.string({
      description:
        "The runs' learning curve at these epochs, a row per epoch and a column per run (two: and their difference), after the table: a comma list of epochs and ranges (1-10,20,30); the curve is the validation curve of --metric, else the one the learning curves lead with. Runs of several settings, one with several seeds (a sweep): a column per setting, the mean over its seeds (--wide: per run)",
    }),
    json: Flags.boolean({ description: 'Print the rows as JSON', default: false }),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Compare);
    const { runs, sweepDir, sweepName, missing, rankBy } = collectRuns(argv as string[]);
    const keys = sweptKeys(runs);
    const metrics = comparedMetrics(runs);
    const rows = compare(runs, keys, metrics, rankBy);
    const outDir = sweepDir ?? process.cwd();
    const csv = flags.csv ?? path.join(outDir, 'compare.csv');
    // its folder made as the figures make theirs
    fs.mkdirSync(path.dirname(csv), { recursive: true });
    fs.writeFileSync(csv, toCsv(rows, keys, metrics));
    if (flags.metric !== undefined && !metrics.includes(flags.metric) && flags.metric !== PUBLISHED)
      throw new UserError(`no metric '${flags.metric}'${suggestion(flags.metric, [...metrics, PUBLISHED])}`, '--metric');
    const names = figureLabels(keys, rows);
    const lead = leadingCurve(metrics, rankBy, flags.metric, runs);
    const at = flags.at === undefined ? undefined : epochCurves(runs, lead, parseEpochs(flags.at), keys, names.label, flags.wide);
    if (flags.json) process.stdout.write(JSON.stringify({ keys, metrics, rows, ...(at ? { at } : {}) }) + '\n');
    else if (flags.wide) process.stdout.write(toTable(rows, keys, metrics));
    else process.stdout.write(toShortTable(rows, keys, metrics, tableMetric(metrics, flags.metric, rankBy)));
    if (at && !flags.json) process.stdout.write('\n' + toEpochTable(at.metric, at.epochs, at.runs ?? at.settings));
    process.stderr.write(`wrote ${shown(csv)}\n`);
    if (missing.length) {
      process.stderr.write(`${missing.length} cell${missing.length === 1 ? ' has' : 's have'} no finished run (left out):\n`);
      for (const m of missing) process.stderr.write(`${cellLine(m.cell.index, m.label, m.why)}\n`);
    }

    // every run's learning curves overlaid (what a sweep's report draws), whatever the keys
    const curves = flags.curves ?? path.join(path.dirname(csv), 'curves.png');
    // the experiments by name while they are few (a run's folder is its experiment's)
    const experiments = [...new Set(runs.map((r) => path.basename(path.dirname(r.dir))))];
    const title =
      sweepName !== undefined
        ? `Learning curves of sweep ${sweepName}`
        : experiments.length <= 3
          ? `Learning curves of ${experiments.join(', ')}`
          : `Learning curves of ${runs.length} runs of ${experiments.length} experiments`;
    const panels = await writeRunCurves(
      curves,
      title,
      runs,
      names,
      rows.map((r) => names.label(r.key)),
      lead,
    );
    if (panels.length) process.stderr.write(`wrote ${shown(curves)} and .svg: learning curves, ${panels.length} panels\n`);

    // the plot has one metric on its y axis: with --metric published, the default one
    const metric = (flags.metric === PUBLISHED ? undefined : flags.metric) ?? defaultPlotMetric(metrics);
    if (!metric) return;
    if (!metrics.includes(metric)) throw new UserError(`no metric '${metric}'${suggestion(metric, metrics)}`, '--metric');
    const by = flags.by ?? defaultPlotKey(rows, keys);
    if (!by) return;
    if (!keys.includes(by)) throw new UserError(`'${by}' is not a swept key${suggestion(by, keys)}`, '--by');
    const file = flags.plot ?? path.join(path.dirname(csv), `compare-${metric.replace(/\W+/g, '_')}.png`);
    const series = await writeComparePlot(file, rows, keys, metric, by);
    // the series by name: on the line where they fit in 80 columns, else one a line under it
    const line = `wrote ${shown(file)} and .svg: ${metric} against ${by}, ${series.length} series`;
    const named = `${line} (${series.join('; ')})`;
    process.stderr.write(named.length <= 80 ? `${named}\n` : [`${line}:`, ...series.map((x) => `  ${fit(x, 78)}`)].join('\n') + '\n');
  }
}
