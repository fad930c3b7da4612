import * as fs from 'fs';
import * as path from 'path';
import { Args, Flags } from '@oclif/core';
import { BaseCommand, tagFlag, noteFlag, parseTags } from '../base';
import { loadSweep, resolveCells, cellArgs, cellLabel, sweepDir } from '../../sweep/spec';
import { runSweep, slurmScript } from '../../sweep/runner';
import { UserError } from '../../errors';

export default class Sweep extends BaseCommand {
  static summary = 'Run a grid of configs (a sweep file), each cell as its own process';
  static description =
    'Validates every cell first, then runs them N at a time into <runs-dir>/sweeps/<name>/. Rerunning skips finished cells (same resolved config), resumes failed or killed ones, and never overwrites a finished run. Exit 0 only when every cell finished.';
  static examples = [
    '<%= config.bin %> sweep configs/sweeps/latent-prior.yaml --parallel 2',
    '<%= config.bin %> sweep configs/sweeps/latent-prior.yaml --dry-run',
    '<%= config.bin %> sweep configs/sweeps/latent-prior.yaml --emit slurm',
    '<%= config.bin %> sweep configs/sweeps/latent-prior.yaml --tag purpose=prior-study --note "does the slab help at K=32?"',
  ];
  static args = { file: Args.string({ description: 'Sweep file', required: true }) };
  static flags = {
    parallel: Flags.integer({ char: 'j', description: 'Cells run at once', default: 1, min: 1 }),
    'dry-run': Flags.boolean({ description: 'List the cells and their commands; run nothing', default: false }),
    'fail-fast': Flags.boolean({ description: 'Stop at the first failed cell', default: false, exclusive: ['keep-going'] }),
    'keep-going': Flags.boolean({ description: 'Run every cell even when some fail (default)', default: false }),
    cell: Flags.integer({ description: 'Run only cell i (what a SLURM array task runs)', min: 0 }),
    emit: Flags.string({ description: 'Write a job script instead of running', options: ['slurm'] }),
    'runs-dir': Flags.string({ description: 'Root of the local run store', default: 'runs' }),
    backend: Flags.string({ description: 'Backend for every cell' }),
    'tracking-uri': Flags.string({ description: 'MLflow server: a parent run for the sweep, every cell nested under it' }),
    json: Flags.boolean({ description: 'Print the result as JSON on the last stdout line', default: false }),
    tag: tagFlag('every cell (and the MLflow parent run)'),
    note: noteFlag('the sweep'),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Sweep);
    const tags = parseTags(flags.tag);
    const spec = loadSweep(args.file);
    const cells = resolveCells(spec);
    const dir = sweepDir(flags['runs-dir'], spec);
    if (flags.emit === 'slurm') {
      fs.mkdirSync(dir, { recursive: true });
      const file = path.join(dir, 'sweep.slurm');
      fs.writeFileSync(file, slurmScript(spec, cells.length, { runsDir: flags['runs-dir'], parallel: flags.parallel, tags, note: flags.note }), { mode: 0o755 });
      process.stdout.write(`${file}\n`);
      return;
    }
    if (flags['dry-run']) {
      const shown = cells.filter(({ cell }) => flags.cell === undefined || cell.index === flags.cell);
      if (flags.cell !== undefined && !shown.length) throw new UserError(`the sweep has cells 0..${cells.length - 1}`, `--cell ${flags.cell}`);
      if (flags.json) {
        process.stdout.write(JSON.stringify({ dir, cells: shown.map(({ cell, loaded }) => ({ index: cell.index, base: cell.base, overrides: cell.overrides, seed: cell.seed, config_sha256: loaded.sha256, args: cellArgs(cell) })) }) + '\n');
      } else {
        process.stdout.write(`${cells.length} cells → ${dir}\n`);
        for (const { cell } of shown) process.stdout.write(`  cell ${cell.index}: ${cellLabel(cell, spec)}\n`);
      }
      return;
    }
    const { cells: results } = await runSweep(spec, {
      runsDir: flags['runs-dir'],
      parallel: flags.parallel,
      failFast: flags['fail-fast'],
      cell: flags.cell,
      backend: flags.backend,
      trackingUri: flags['tracking-uri'],
      tags,
      note: flags.note,
      log: (l) => process.stderr.write(l + '\n'),
    });
    const ok = results.every((r) => r.status === 'FINISHED' || r.status === 'CACHED');
    if (flags.json) process.stdout.write(JSON.stringify({ dir, status: ok ? 'FINISHED' : 'FAILED', cells: results }) + '\n');
    else {
      process.stdout.write(`sweep ${spec.name}: ${results.filter((r) => r.status === 'FINISHED' || r.status === 'CACHED').length}/${results.length} cells finished → ${dir}\n`);
      const busy = results.filter((r) => r.status === 'BUSY');
      if (busy.length) process.stdout.write(`${busy.length} cell${busy.length === 1 ? ' is' : 's are'} being run by another process (${busy.map((r) => `cell ${r.index}: ${r.error}`).join('; ')}); rerun the sweep when it is done\n`);
      process.stdout.write(`compare with: elbo compare ${path.relative(process.cwd(), dir) || dir}\n`);
    }
    if (!ok) this.exit(1);
  }
}
