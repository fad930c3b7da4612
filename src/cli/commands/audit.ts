import * as fs from 'fs';
import * as path from 'path';
import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../base';
import { reproduce, ReproReport } from '../../sweep/reproduce';
import { Rng } from '../../runtime/rng';
import { UserError } from '../../errors';
import { readSweepState } from '../../sweep/state';

export default class Audit extends BaseCommand {
  static summary = 'Reproduce every finished cell of a sweep (or a seeded sample of K) and summarise';
  static examples = [
    '<%= config.bin %> audit runs/sweeps/latent-prior',
    '<%= config.bin %> audit runs/sweeps/latent-prior --sample 2 --seed 1',
  ];
  static args = { sweep: Args.string({ description: 'A sweep directory (holds sweep.json)', required: true }) };
  static flags = {
    sample: Flags.integer({ description: 'Audit only K cells, drawn with --seed', min: 1 }),
    seed: Flags.integer({ description: 'Seed of the sample', default: 0 }),
    tolerance: Flags.string({ description: 'Relative tolerance (default: exact on the same backend)' }),
    json: Flags.boolean({ description: 'Print the summary as JSON on the last stdout line', default: false }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Audit);
    const dir = path.resolve(args.sweep);
    const index = path.join(dir, 'sweep.json');
    if (!fs.existsSync(index)) throw new UserError('not a sweep directory (no sweep.json); give runs/sweeps/<name>', args.sweep);
    const cells = readSweepState(dir).cells;
    let chosen = cells.filter((c) => c.runDir && (c.status === 'FINISHED' || c.status === 'CACHED'));
    if (!chosen.length) throw new UserError('the sweep has no finished cell to audit', args.sweep);
    if (flags.sample && flags.sample < chosen.length) {
      const perm = new Rng(flags.seed).permutation(chosen.length);
      chosen = Array.from(perm.subarray(0, flags.sample))
        .sort((a, b) => a - b)
        .map((i) => chosen[i]);
    }
    const tolerance = flags.tolerance === undefined ? undefined : Number(flags.tolerance);
    const results: { cell: number; label: string; report: ReproReport }[] = [];
    for (const c of chosen) {
      process.stderr.write(`audit: cell ${c.index} (${c.label}) ...\n`);
      const report = await reproduce(c.runDir!, { tolerance, runsDir: path.join(dir, 'audit'), progress: false });
      results.push({ cell: c.index, label: c.label, report });
      process.stderr.write(`audit: cell ${c.index}: ${report.passed ? 'reproduced' : `FAILED: ${report.causes.join('; ')}`}\n`);
    }
    const passed = results.filter((r) => r.report.passed).length;
    const summary = {
      sweep: dir,
      audited: results.length,
      passed,
      cells: results.map((r) => ({
        cell: r.cell,
        label: r.label,
        passed: r.report.passed,
        metrics_compared: r.report.metrics.length,
        max_abs_diff: Math.max(0, ...r.report.metrics.map((m) => Math.abs(m.diff ?? 0))),
        fingerprint_diffs: r.report.fingerprint.map((f) => f.field),
        causes: r.report.causes,
        rerun: r.report.rerun,
      })),
    };
    fs.writeFileSync(path.join(dir, 'audit.json'), JSON.stringify(summary, null, 2) + '\n');
    if (flags.json) process.stdout.write(JSON.stringify(summary) + '\n');
    else {
      process.stdout.write(`audit of ${dir}: ${passed}/${results.length} cells reproduced\n`);
      for (const c of summary.cells) {
        process.stdout.write(
          `  cell ${String(c.cell).padEnd(3)} ${c.passed ? 'ok  ' : 'FAIL'} ${c.metrics_compared} metrics, max |diff| ${c.max_abs_diff}${c.fingerprint_diffs.length ? `, fingerprint differs: ${c.fingerprint_diffs.join(', ')}` : ''}  ${c.label}\n`,
        );
        for (const cause of c.causes) process.stdout.write(`       ${cause}\n`);
      }
    }
    if (passed !== results.length) this.exit(1);
  }
}
