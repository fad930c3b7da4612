import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../base';
import { shownPath } from '../../util/shown-path';
import { writeReport } from '../../sweep/report';

export default class Report extends BaseCommand {
  static summary = 'Write report.html of a run or a sweep: config, fingerprint, metrics against published, figures';
  static description =
    'A run: RUN_DIR/artifacts/report.html, with the learning curves (artifacts/curves.png and .svg) drawn anew from metrics.jsonl. A sweep: SWEEP_DIR/report.html, with compare.csv and a compare plot per published metric. One self-contained file each (images embedded, no scripts, no network): open it from disk. Runs and sweeps write it themselves when they end; this rewrites it.';
  static examples = [
    '<%= config.bin %> report runs/quickstart/20261122-101500-a1b2c3',
    '<%= config.bin %> report runs/sweeps/latent-prior',
  ];
  static args = { dir: Args.string({ description: 'A run directory (run.json) or a sweep directory (sweep.json)', required: true }) };
  static flags = {
    json: Flags.boolean({ description: 'Print {kind, file} as JSON', default: false }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Report);
    const r = await writeReport(args.dir);
    if (flags.json) process.stdout.write(JSON.stringify(r) + '\n');
    else process.stdout.write(`wrote ${shownPath(r.file)}\n`);
  }
}
