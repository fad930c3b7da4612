import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../base';
import { reproduce, reportText } from '../../sweep/reproduce';

export default class Reproduce extends BaseCommand {
  static summary = 'Rerun a finished run from its record and compare metrics and fingerprint';
  static description =
    'Reruns the recorded config with its seed, then reports every final metric old vs new and every fingerprint field that differs (elbo version, git commit and dirty flag, package versions, backend, Node version, data sha256). Exit 0 only when the metrics match: exactly on the same backend by default, within --tolerance (relative) otherwise. The report is written into the new run (artifacts/reproduce-report.md and .json).';
  static examples = ['<%= config.bin %> reproduce runs/quickstart/20261122-101500-a1b2c3', '<%= config.bin %> reproduce RUN_DIR --tolerance 1e-5 --backend wasm'];
  static args = { run: Args.string({ description: 'A finished run directory', required: true }) };
  static flags = {
    tolerance: Flags.string({ description: 'Relative tolerance for metric differences (default: exact on the same backend, 1e-4 across backends)' }),
    backend: Flags.string({ description: 'Backend for the rerun (default: the recorded one)' }),
    'runs-dir': Flags.string({ description: 'Where the rerun is stored (default: beside the original)' }),
    json: Flags.boolean({ description: 'Print the report as JSON on the last stdout line', default: false }),
    quiet: Flags.boolean({ char: 'q', description: 'No training progress', default: false }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Reproduce);
    const tolerance = flags.tolerance === undefined ? undefined : Number(flags.tolerance);
    if (tolerance !== undefined && !(tolerance >= 0)) this.error('--tolerance must be a number ≥ 0', { exit: 2 });
    const report = await reproduce(args.run, { tolerance, backend: flags.backend, runsDir: flags['runs-dir'], progress: !flags.quiet });
    process.stdout.write(flags.json ? JSON.stringify(report) + '\n' : reportText(report));
    if (!report.passed) this.exit(1);
  }
}
