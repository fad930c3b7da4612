import * as fs from 'fs';
import * as path from 'path';
import { Args, Flags } from '@oclif/core';
import { cellLine } from '../runs';
import { BaseCommand, tagFlag, noteFlag, parseTags } from '../base';
import { loadSweep, resolveCells, cellArgs, cellLabel, sweepDir, isSweepFile, sweepFromFlags, earlyStopRungs } from '../../sweep/spec';
import { runSweep, checkCellsHash, checkCells, parseCells } from '../../sweep/runner';
import { slurmScript, slurmOptions } from '../../sweep/slurm';
import { whyMissing, cellSettled } from '../../sweep/state';
import { elboRoot } from '../../runtime/fingerprint';
import { UserError } from '../../errors';
import { faultPoint } from '../../util/fault';

export default class Sweep extends BaseCommand {
  static summary = 'Run a grid of configs (a sweep file, or --grid on a config), each cell as its own process';
  static description =
    'Validates every cell first, then runs them N at a time into <runs-dir>/sweeps/<name>/. Rerunning skips finished cells (same resolved config), resumes failed or killed ones, and never overwrites a finished run. Exit 0 only when every cell finished.';
  static examples = [
    '<%= config.bin %> sweep configs/sweeps/latent-prior.yaml --parallel 2',
    '<%= config.bin %> sweep configs/sweeps/latent-prior.yaml --dry-run',
    '<%= config.bin %> sweep configs/quickstart.yaml --grid model.latent=8,32 --grid train.optimizer.lr=1e-3,3e-4 --seeds 0,1 --set train.epochs=2',
    '<%= config.bin %> sweep configs/sweeps/latent-prior.yaml --emit slurm',
    '<%= config.bin %> sweep configs/sweeps/latent-prior.yaml --tag purpose=prior-study --note "does the slab help at K=32?"',
    '<%= config.bin %> sweep configs/sweeps/latent-prior.yaml --emit slurm --slurm time=4:00:00 --slurm partition=gpu --slurm gpus=1',
  ];
  static args = { file: Args.string({ description: 'Sweep file, or a config with --grid / --seeds', required: true }) };
  static flags = {
    grid: Flags.string({
      description: 'With a config: sweep KEY over the values V1,V2,... (YAML, comma-separated; repeatable: the grid is their product)',
      multiple: true,
      default: [],
    }),
    seeds: Flags.string({ description: 'With a config: run every cell with each of these seeds (e.g. 0,1,2)' }),
    set: Flags.string({
      char: 's',
      description: 'With a config: an override every cell shares, key.path=value (YAML); repeatable',
      multiple: true,
      default: [],
    }),
    name: Flags.string({ description: "With a config: the sweep's name (default: the config's name and a hash of the axes)" }),
    parallel: Flags.integer({
      char: 'j',
      description: 'Cells run at once (default 1; with --emit slurm: at most this many array tasks at once, default no limit)',
      min: 1,
    }),
    'dry-run': Flags.boolean({ description: 'List the cells and their commands; run nothing', default: false }),
    'fail-fast': Flags.boolean({ description: 'Stop at the first failed cell', default: false, exclusive: ['keep-going'] }),
    'keep-going': Flags.boolean({ description: 'Run every cell even when some fail (default)', default: false }),
    cell: Flags.string({
      description: "Run only cell i (what a SLURM array task runs), or a list of cells and ranges as SLURM's --array takes them: 3,4,6-7",
    }),
    emit: Flags.string({ description: 'Write a job script instead of running', options: ['slurm'] }),
    slurm: Flags.string({
      description:
        "With --emit slurm: KEY=VALUE over the sweep file's slurm block (cpus_per_task, mem, time, partition, account, qos, gpus, constraint, throttle, signal_before, sbatch); repeatable",
      multiple: true,
      default: [],
    }),
    'cells-sha256': Flags.string({
      description: 'Refuse to run unless the cells hash to this (what an emitted script checks)',
      hidden: true,
    }),
    'runs-dir': Flags.string({ description: 'Root of the local run store', default: 'runs' }),
    backend: Flags.string({ description: 'Backend for every cell' }),
    device: Flags.string({ description: 'Device for every cell: auto, cpu or gpu (elbo run --device)', options: ['auto', 'cpu', 'gpu'] }),
    'tracking-uri': Flags.string({ description: 'MLflow server: a parent run for the sweep, every cell nested under it' }),
    json: Flags.boolean({ description: 'Print the result as JSON on the last stdout line', default: false }),
    tag: tagFlag('every cell (and the MLflow parent run)'),
    note: noteFlag('the sweep'),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Sweep);
    const tags = parseTags(flags.tag);
    const only = flags.cell === undefined ? undefined : parseCells(flags.cell);
    const fromFlags = flags.grid.length || flags.seeds !== undefined || flags.set.length || flags.name !== undefined;
    if (fromFlags && isSweepFile(args.file))
      throw new UserError(
        '--grid, --seeds, --set and --name make a sweep of a config; this is a sweep file already: put them in it',
        args.file,
      );
    const spec =
      fromFlags || (fs.existsSync(args.file) && !isSweepFile(args.file))
        ? sweepFromFlags(args.file, { grid: flags.grid, seeds: flags.seeds, set: flags.set, name: flags.name, runsDir: flags['runs-dir'] })
        : loadSweep(args.file);
    const cells = resolveCells(spec);
    const hash = checkCellsHash(spec, cells, flags['cells-sha256']);
    const rungs = earlyStopRungs(spec, cells);
    const dir = sweepDir(flags['runs-dir'], spec);
    if (flags.slurm.length && flags.emit !== 'slurm')
      throw new UserError('--slurm sets what an emitted SLURM script asks for: give it with --emit slurm', `--slurm ${flags.slurm[0]}`);
    if (flags.emit === 'slurm') {
      const slurm = slurmOptions(spec.slurm, [...flags.slurm, ...(flags.parallel ? [`throttle=${flags.parallel}`] : [])]);
      const forward = [
        ...(flags.backend ? ['--backend', flags.backend] : []),
        ...(flags.device ? ['--device', flags.device] : []),
        ...(flags['tracking-uri'] ? ['--tracking-uri', flags['tracking-uri']] : []),
        ...Object.entries(tags).flatMap(([k, v]) => ['--tag', `${k}=${v}`]),
        ...(flags.note !== undefined ? ['--note', flags.note] : []),
      ];
      fs.mkdirSync(dir, { recursive: true });
      const file = path.join(dir, 'sweep.slurm');
      const script = slurmScript({
        name: spec.name,
        sweepFile: spec.file,
        dir,
        runsDir: path.resolve(flags['runs-dir']),
        cells: cells.length,
        cellsSha256: hash,
        slurm,
        forward,
        node: process.execPath,
        bin: path.join(elboRoot(), 'bin', 'run.js'),
      });
      fs.writeFileSync(file, script, { mode: 0o755 });
      process.stdout.write(`${file}\n`);
      return;
    }
    if (flags['dry-run']) {
      checkCells(only, cells.length);
      const shown = cells.filter(({ cell }) => !only || only.includes(cell.index));
      if (flags.json) {
        process.stdout.write(
          JSON.stringify({
            dir,
            cells: shown.map(({ cell, loaded }) => ({
              index: cell.index,
              base: cell.base,
              overrides: cell.overrides,
              seed: cell.seed,
              config_sha256: loaded.sha256,
              args: cellArgs(cell),
            })),
          }) + '\n',
        );
      } else {
        process.stdout.write(`${cells.length} cells → ${dir}\n`);
        for (const { cell } of shown) process.stdout.write(`  cell ${cell.index}: ${cellLabel(cell, spec)}\n`);
      }
      return;
    }
    const {
      cells: results,
      shown,
      stopped,
      unfinished,
    } = await runSweep(spec, {
      runsDir: flags['runs-dir'],
      parallel: flags.parallel ?? 1,
      failFast: flags['fail-fast'],
      cells: only,
      resolved: cells,
      backend: flags.backend,
      device: flags.device,
      trackingUri: flags['tracking-uri'],
      tags,
      note: flags.note,
      log: (l) => process.stderr.write(l + '\n'),
    });
    // a SLURM task (sweep.slurm) requeues itself on its time limit only while this file is there
    if (process.env.ELBO_UNFINISHED_FILE && !unfinished) fs.rmSync(process.env.ELBO_UNFINISHED_FILE, { force: true });
    await faultPoint('sweep-end', 0, () => false); // (tests: a signal that comes as the sweep ends)
    const ok = results.every(cellSettled);
    if (flags.json) process.stdout.write(JSON.stringify({ dir, status: ok ? 'FINISHED' : 'FAILED', cells: results }) + '\n');
    else {
      const early = results.filter((r) => r.status === 'STOPPED').length;
      const epochs = rungs ? results.reduce((n, r) => n + (r.rung?.epoch ?? 0), 0) : 0;
      process.stdout.write(
        `sweep ${spec.name}: ${results.filter((r) => r.status === 'FINISHED' || r.status === 'CACHED').length}/${results.length} cells finished${rungs ? `, ${early} stopped early (rungs at epochs ${rungs.join(', ')}; ${epochs} epochs in all, the full grid: ${rungs.at(-1)! * results.length})` : ''} → ${dir}\n`,
      );
      const busy = results.filter((r) => r.status === 'BUSY');
      if (busy.length)
        process.stdout.write(
          `${busy.length} cell${busy.length === 1 ? ' is' : 's are'} being run by another process (${busy.map((r) => `cell ${r.index}: ${r.error}`).join('; ')}); rerun the sweep when it is done\n`,
        );
      for (const r of results.filter((x) => x.status !== 'BUSY' && !cellSettled(x)))
        process.stdout.write(`${cellLine(r.index, shown.get(r.index) ?? r.label, whyMissing(r))}\n`);
      if (!only) process.stdout.write(`compare with: elbo compare ${path.relative(process.cwd(), dir) || dir}\n`);
    }
    if (stopped) this.exit(130);
    if (!ok) this.exit(1);
  }
}
