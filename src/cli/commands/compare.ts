import * as path from 'path';
import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../base';
import { collectRuns, writeComparison, toTable } from '../../sweep/compare';
import { COLOUR_NAMES } from '../../util/plot';

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
    const { runs, sweepDir } = collectRuns(argv as string[]);
    const c = writeComparison(runs, sweepDir ?? process.cwd(), { metric: flags.metric, by: flags.by, csv: flags.csv, plot: flags.plot });
    if (flags.json) process.stdout.write(JSON.stringify({ keys: c.keys, metrics: c.metrics, rows: c.rows }) + '\n');
    else process.stdout.write(toTable(c.rows, c.keys, c.metrics));
    process.stderr.write(`wrote ${shown(c.csv)}\n`);
    if (!c.plot) return;
    process.stderr.write(`wrote ${shown(c.plot.file)}: ${c.plot.metric} against ${c.plot.by}\n`);
    c.plot.series.forEach((name, i) => process.stderr.write(`  ${COLOUR_NAMES[i % COLOUR_NAMES.length]}: ${name}\n`));
  }
}

/** A path as the user would type it: relative below the current directory, else absolute. */
function shown(p: string): string {
  const rel = path.relative(process.cwd(), p);
  return rel && !rel.startsWith('..') ? rel : path.resolve(p);
}
