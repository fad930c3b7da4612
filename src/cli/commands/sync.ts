import * as path from 'path';
import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../base';
import { UserError } from '../../errors';
import { runsWithSpool, syncRun, SyncReport } from '../../mlflow/tracker';

export default class Sync extends BaseCommand {
  static summary = 'Send to MLflow what runs spooled while the server was away';
  static description =
    'Every MLflow event of a run is first written to RUN_DIR/mlflow/spool.jsonl. This sends the events the server does not have, exactly once: running it again sends nothing twice. A run started while the server was down gets its MLflow run now, with its original times. Files that waited because this machine could not write their artifact location (a shared file system not mounted) are written now if it can. A run made with MLflow off is sent in full when --tracking-uri (or MLFLOW_TRACKING_URI) is given. Without RUN_DIR: every run under --runs-dir with unsent events. Exit 0 when every run is up to date.';
  static examples = [
    '<%= config.bin %> sync runs/quickstart/20261122-101500-a1b2c3',
    '<%= config.bin %> sync                       # every run under runs/ with unsent events',
    '<%= config.bin %> sync RUN_DIR --tracking-uri http://127.0.0.1:5000 --json',
  ];
  static strict = false;
  static args = {
    runDir: Args.string({
      description:
        'Run directories, or sweep directories (their MLflow parent run) (default: every run under --runs-dir with unsent events)',
      required: false,
    }),
  };
  static flags = {
    'tracking-uri': Flags.string({
      description: 'Send to this MLflow server instead of the one the run recorded (all of the run is sent there)',
    }),
    'runs-dir': Flags.string({ description: 'Root of the local run store, searched when no RUN_DIR is given', default: 'runs' }),
    'timeout-s': Flags.integer({ description: "Deadline of one HTTP request, seconds (default: the run's timeout_s)", min: 1 }),
    json: Flags.boolean({ description: 'Print the result as one JSON object on the last line of stdout', default: false }),
    quiet: Flags.boolean({ char: 'q', description: 'No warnings on stderr', default: false }),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Sync);
    const given = (argv as string[]).filter((a) => typeof a === 'string');
    const dirs = given.length ? given : runsWithSpool(path.resolve(flags['runs-dir']));
    const reports: SyncReport[] = [];
    const warn = (m: string) => {
      if (!flags.quiet) process.stderr.write(`warning: ${m}\n`);
    };
    let failed = 0;
    for (const dir of dirs) {
      try {
        const r = await syncRun(dir, { trackingUri: flags['tracking-uri'], warn, timeoutS: flags['timeout-s'] });
        reports.push(r);
        if (r.status === 'failed') failed++;
        if (!flags.json) process.stdout.write(line(r) + '\n');
      } catch (e) {
        if (!(e instanceof UserError) || given.length <= 1) throw e;
        // several runs: one bad directory does not stop the others
        failed++;
        process.stderr.write(e.line() + '\n');
      }
    }
    if (!dirs.length && !flags.json) process.stdout.write(`nothing to send: no run under ${flags['runs-dir']} has unsent MLflow events\n`);
    if (flags.json) process.stdout.write(JSON.stringify({ runs: reports }) + '\n');
    if (failed) this.exit(1);
  }
}

function line(r: SyncReport): string {
  const where = `MLflow run ${r.mlflowRunId ?? '(not created)'} in experiment '${r.experiment}' at ${r.trackingUri}`;
  const skipped = r.skipped ? `; ${r.skipped} refused by the server (see mlflow/state.json)` : '';
  switch (r.status) {
    case 'up-to-date':
      return `${r.runDir}: up to date (${where})`;
    case 'synced':
      return `${r.runDir}: ${r.imported ? 'imported, ' : ''}sent ${r.sent} event${r.sent === 1 ? '' : 's'} to ${where}${skipped}`;
    case 'busy':
      return `${r.runDir}: ${r.error}; it sends its own events (${r.pending} pending)`;
    case 'failed':
      if (!r.error) return `${r.runDir}: sent ${r.sent} event${r.sent === 1 ? '' : 's'} to ${where}${skipped}; ${r.waiting}`;
      return `${r.runDir}: ${r.error}; ${r.pending} event${r.pending === 1 ? '' : 's'} still pending (sent ${r.sent}${skipped}), nothing lost: run elbo sync again later`;
  }
}
