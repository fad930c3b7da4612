import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../base';
import * as fs from 'fs';
import * as path from 'path';
import { reproduce, reportText, fetchMlflowRun } from '../../sweep/reproduce';
import { UserError } from '../../errors';

export default class Reproduce extends BaseCommand {
  static summary = 'Rerun a finished run (a run directory or an MLflow run id) from its record and compare metrics and fingerprint';
  static description =
    'Reruns the recorded config with its seed, then reports every final metric old vs new and every fingerprint field that differs (elbo version, git commit and dirty flag, package versions, backend, Node version, data sha256). Exit 0 only when the metrics match: exactly on the same backend by default, within --tolerance (relative) otherwise. The report is written into the new run (artifacts/reproduce-report.md and .json).';
  static examples = [
    '<%= config.bin %> reproduce runs/quickstart/20261122-101500-a1b2c3',
    '<%= config.bin %> reproduce RUN_DIR --tolerance 1e-5 --backend wasm',
  ];
  static args = {
    run: Args.string({
      description: 'A finished run directory, or an MLflow run id (with --tracking-uri or MLFLOW_TRACKING_URI)',
      required: true,
    }),
  };
  static flags = {
    tolerance: Flags.string({
      description: 'Relative tolerance for metric differences (default: exact on the same backend, 1e-4 across backends)',
    }),
    backend: Flags.string({ description: 'Backend for the rerun (default: the recorded one)' }),
    'runs-dir': Flags.string({ description: 'Where the rerun is stored (default: beside the original)' }),
    'tracking-uri': Flags.string({
      description: 'MLflow server to fetch an MLflow run id from, and to track the rerun and its report in (default: MLFLOW_TRACKING_URI)',
    }),
    json: Flags.boolean({ description: 'Print the report as JSON on the last stdout line', default: false }),
    quiet: Flags.boolean({ char: 'q', description: 'No training progress', default: false }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Reproduce);
    const tolerance = flags.tolerance === undefined ? undefined : Number(flags.tolerance);
    if (tolerance !== undefined && !(tolerance >= 0)) this.error('--tolerance must be a number ≥ 0', { exit: 2 });
    let runDir = args.run;
    let runsDir = flags['runs-dir'];
    if (!fs.existsSync(runDir) && /^[0-9a-f]{32}$/.test(runDir)) {
      // an MLflow run id: fetch its record, rerun into the local store
      const uri = flags['tracking-uri'] ?? process.env.MLFLOW_TRACKING_URI;
      if (!uri) throw new UserError('an MLflow run id needs a server: pass --tracking-uri URI or set MLFLOW_TRACKING_URI', args.run);
      runsDir = runsDir ?? 'runs';
      runDir = await fetchMlflowRun(args.run, uri, path.join(runsDir, 'mlflow-records'));
    }
    const report = await reproduce(runDir, {
      tolerance,
      backend: flags.backend,
      runsDir,
      progress: !flags.quiet,
      trackingUri: flags['tracking-uri'],
    });
    process.stdout.write(flags.json ? JSON.stringify(report) + '\n' : reportText(report));
    if (!report.passed) this.exit(1);
  }
}
