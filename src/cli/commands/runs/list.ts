import { Flags } from '@oclif/core';
import { BaseCommand } from '../../base';
import { listRuns, keyMetricOf, shortNumber, fit } from '../../runs';

export default class RunsList extends BaseCommand {
  static summary = 'List the runs of the run store: status, epochs and a key metric, newest last';
  static description =
    'Reads every run.json under --runs-dir (sweep cells included). A RUNNING run whose process is gone is shown KILLED (elbo run --resume continues it). The metric column is test/elbo, else the first test metric, else train/loss (choose with --metric).';
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
    if (flags.json) {
      process.stdout.write(
        JSON.stringify(
          runs.map((r) => ({
            run_id: r.record.run_id,
            dir: r.dir,
            experiment: r.record.experiment,
            status: r.status,
            start_time: r.record.start_time,
            epochs_completed: r.record.epochs_completed,
            epochs_planned: r.record.epochs_planned,
            tags: r.record.tags ?? {},
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
    // 80 columns: run id 22, experiment 16, status 8, epochs 7, one metric 19, gaps of 2
    const metric = flags.metric ?? keyMetricOf(runs.map((r) => r.record));
    const w = [22, 16, 8, 7, 19];
    const line = (c: string[]) => c.map((v, i) => (i === c.length - 1 ? fit(v, w[i]) : fit(v, w[i]).padEnd(w[i]))).join('  ').trimEnd();
    const out = [line(['run', 'experiment', 'status', 'epochs', metric])];
    for (const r of runs) {
      const v = r.record.metrics?.[metric];
      out.push(line([r.record.run_id, r.record.experiment, r.status, `${r.record.epochs_completed}/${r.record.epochs_planned}`, typeof v === 'number' ? shortNumber(v) : '-']));
    }
    out.push(`${runs.length} run${runs.length === 1 ? '' : 's'}; details: elbo runs show RUN_ID`);
    process.stdout.write(out.join('\n') + '\n');
  }
}
