import { Flags } from '@oclif/core';
import { BaseCommand } from '../../base';
import { listRuns, keyMetricOf, shortNumber, fit, sweepCellOf } from '../../runs';

export default class RunsList extends BaseCommand {
  static summary = 'List the runs of the run store: status, epochs and a key metric, newest last';
  static description =
    'Reads every run.json under --runs-dir (sweep cells included, each with the setting it ran: latent=8,seed=0). A RUNNING run whose process is gone is shown KILLED (elbo run --resume continues it). The metric column is test/elbo, else the first test metric, else train/loss (choose with --metric).';
  static examples = [
    '<%= config.bin %> runs list',
    '<%= config.bin %> runs list --experiment quickstart --status finished',
    '<%= config.bin %> runs list --tag purpose=baseline --metric test/accuracy',
  ];
  static flags = {
    'runs-dir': Flags.string({ description: 'Root of the local run store', default: 'runs' }),
    experiment: Flags.string({ char: 'e', description: 'Only runs of this experiment' }),
    status: Flags.string({ description: 'Only runs with this status: running, finished, failed or killed' }),
    tag: Flags.string({ description: 'Only runs with this tag: KEY=VALUE, or KEY for any value; repeatable (all must match)', multiple: true, default: [] }),
    metric: Flags.string({ char: 'm', description: 'The metric column (default: test/elbo, else the first test metric, else train/loss)' }),
    limit: Flags.integer({ char: 'n', description: 'Only the last N runs', min: 1 }),
    json: Flags.boolean({ description: 'Print the runs as JSON (one array on the last line)', default: false }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(RunsList);
    const warn = (m: string) => process.stderr.write(`warning: ${m}\n`);
    let runs = listRuns(flags['runs-dir'], { experiment: flags.experiment, status: flags.status, tags: flags.tag }, warn);
    if (flags.limit) runs = runs.slice(-flags.limit);
    const sweeps = new Map();
    const cells = runs.map((r) => sweepCellOf(r, sweeps));
    if (flags.json) {
      process.stdout.write(
        JSON.stringify(
          runs.map((r, i) => ({
            run_id: r.record.run_id,
            dir: r.dir,
            experiment: r.record.experiment,
            status: r.status,
            start_time: r.record.start_time,
            epochs_completed: r.record.epochs_completed,
            epochs_planned: r.record.epochs_planned,
            tags: r.record.tags ?? {},
            ...(cells[i] ? { sweep: cells[i] } : {}),
            metrics: r.record.metrics,
          })),
        ) + '\n',
      );
      return;
    }
    if (!runs.length) {
      process.stdout.write('no runs match\n');
      return;
    }
    // 80 columns: run id 22, experiment 16, status 8, epochs 7, one metric 19, gaps of 2; with
    // sweep cells the experiment column also says the cell's setting (experiment: latent=8,seed=0),
    // taking what the metric column does not need
    const metric = flags.metric ?? keyMetricOf(runs.map((r) => r.record));
    const values = runs.map((r) => {
      const v = r.record.metrics?.[metric];
      return typeof v === 'number' ? shortNumber(v) : '-';
    });
    const anyCell = cells.some(Boolean);
    const mw = anyCell ? Math.min(19, Math.max(8, metric.length, ...values.map((v) => v.length))) : 19;
    const w = [22, 80 - 22 - 8 - 7 - mw - 8, 8, 7, mw];
    const line = (c: string[]) => c.map((v, i) => (i === c.length - 1 ? fit(v, w[i]) : fit(v, w[i]).padEnd(w[i]))).join('  ').trimEnd();
    const out = [line(['run', anyCell ? 'experiment: setting' : 'experiment', 'status', 'epochs', metric])];
    runs.forEach((r, i) => {
      const cell = cells[i];
      out.push(line([r.record.run_id, cell ? `${r.record.experiment}: ${cell.short}` : r.record.experiment, r.status, `${r.record.epochs_completed}/${r.record.epochs_planned}`, values[i]]));
    });
    out.push(`${runs.length} run${runs.length === 1 ? '' : 's'}; details: elbo runs show RUN_ID`);
    process.stdout.write(out.join('\n') + '\n');
  }
}
