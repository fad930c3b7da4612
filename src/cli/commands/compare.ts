import * as fs from 'fs';
import * as path from 'path';
import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../base';
import { collectRuns, sweptKeys, comparedMetrics, compare, toCsv, toTable } from '../../sweep/compare';
import { writeLinePlot, COLOUR_NAMES } from '../../util/plot';
import { UserError, suggestion } from '../../errors';

export default class Compare extends BaseCommand {
  static summary = 'Table of swept keys and final metrics (mean ± std over seeds), as CSV and a PNG plot';
  static examples = [
    '<%= config.bin %> compare runs/sweeps/latent-prior',
    '<%= config.bin %> compare runs/sweeps/latent-prior --metric test/elbo --by model.latent',
    '<%= config.bin %> compare runs/quickstart/RUN_A runs/quickstart/RUN_B',
  ];
  static strict = false;
  static args = { runs: Args.string({ description: 'A sweep directory, or run directories', required: true }) };
  static flags = {
    metric: Flags.string({ description: 'Metric to plot (default: test/elbo, or the first test metric)' }),
    by: Flags.string({ description: 'Swept key on the plot’s x axis (default: the first numeric swept key)' }),
    csv: Flags.string({ description: 'CSV file (default: compare.csv in the sweep directory, or ./compare.csv)' }),
    plot: Flags.string({ description: 'PNG file (default: compare-<metric>.png beside the CSV)' }),
    json: Flags.boolean({ description: 'Print the rows as JSON', default: false }),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Compare);
    const { runs, sweepDir, missing } = collectRuns(argv as string[]);
    const keys = sweptKeys(runs);
    const metrics = comparedMetrics(runs);
    const rows = compare(runs, keys, metrics);
    const outDir = sweepDir ?? process.cwd();
    const csv = flags.csv ?? path.join(outDir, 'compare.csv');
    fs.writeFileSync(csv, toCsv(rows, keys, metrics));
    if (flags.json) process.stdout.write(JSON.stringify({ keys, metrics, rows }) + '\n');
    else process.stdout.write(toTable(rows, keys, metrics));
    process.stderr.write(`wrote ${shown(csv)}\n`);
    if (missing.length) {
      process.stderr.write(`${missing.length} cell${missing.length === 1 ? ' has' : 's have'} no finished run (left out):\n`);
      for (const m of missing) process.stderr.write(`  cell ${m.cell.index} (${m.cell.label}): ${m.why}\n`);
    }

    const metric = flags.metric ?? (metrics.includes('test/elbo') ? 'test/elbo' : metrics.find((m) => m.startsWith('test/')));
    if (!metric) return;
    if (!metrics.includes(metric)) throw new UserError(`no metric '${metric}'${suggestion(metric, metrics)}`, '--metric');
    const numeric = (k: string) => rows.every((r) => Number.isFinite(Number(r.key[k])));
    const by = flags.by ?? keys.find(numeric);
    if (!by) return;
    if (!keys.includes(by)) throw new UserError(`'${by}' is not a swept key${suggestion(by, keys)}`, '--by');
    if (!numeric(by)) throw new UserError(`'${by}' has non-numeric values; plot against a numeric swept key`, '--by');
    const others = keys.filter((k) => k !== by);
    const series = new Map<string, { x: number; y: number; std: number }[]>();
    for (const r of rows) {
      const s = r.stats[metric];
      if (!s) continue;
      const name = others.map((k) => `${k}=${r.key[k]}`).join(' ') || metric;
      series.set(name, [...(series.get(name) ?? []), { x: Number(r.key[by]), y: s.mean, std: s.std }]);
    }
    const file = flags.plot ?? path.join(path.dirname(csv), `compare-${metric.replace(/\W+/g, '_')}.png`);
    writeLinePlot(file, [...series].map(([name, points]) => ({ name, points })));
    process.stderr.write(`wrote ${shown(file)}: ${metric} against ${by}\n`);
    [...series.keys()].forEach((name, i) => process.stderr.write(`  ${COLOUR_NAMES[i % COLOUR_NAMES.length]}: ${name}\n`));
  }
}

/** A path as the user would type it: relative below the current directory, else absolute. */
function shown(p: string): string {
  const rel = path.relative(process.cwd(), p);
  return rel && !rel.startsWith('..') ? rel : path.resolve(p);
}
