import * as fs from 'fs';
import * as path from 'path';
import { spawn, ChildProcess } from 'child_process';
import { SweepSpec, Cell, resolveCells, cellArgs, cellLabel, cellRunName, sweepDir } from './spec';
import { elboRoot } from '../runtime/fingerprint';
import { runsIn, readJsonFile, runLockHolder, effectiveStatus, type RunRecord, type RunStatus } from '../track/run-store';
import { takeLock, releaseLock } from '../util/lock';
import { formatDuration } from '../track/progress';
import { UserError } from '../errors';
import { sweepParentRun } from './mlflow-parent';
import { writeSweepReport } from '../report/report';

export interface SweepOptions {
  runsDir: string;
  parallel: number;
  failFast: boolean;
  /** Run only this cell (a SLURM array task). */
  cell?: number;
  backend?: string;
  /** MLflow server for the sweep's parent run and its cells (else the config's, or MLFLOW_TRACKING_URI). */
  trackingUri?: string;
  /** `--tag K=V` and `--note`: passed to every cell (run.json, MLflow) and to the MLflow parent run. */
  tags?: Record<string, string>;
  note?: string;
  log: (line: string) => void;
}

export interface CellResult {
  index: number;
  label: string;
  /** Short: the last part of each swept key (latent=8,prior=gaussian,seed=0); the cell's MLflow run name. */
  name: string;
  config_sha256: string;
  /** BUSY: another process (another elbo sweep, a SLURM task) is running this cell. */
  status: RunStatus | 'CACHED' | 'PENDING' | 'BUSY';
  runDir: string | null;
  metrics: Record<string, number>;
  seconds: number;
  error?: string;
}

/** Runs already in the sweep's store, by resolved-config hash (a run with a damaged run.json is reported to `warn` and left out). */
export function runsByConfig(dir: string, warn?: (m: string) => void): Map<string, { dir: string; record: RunRecord }[]> {
  const out = new Map<string, { dir: string; record: RunRecord }[]>();
  const root = path.join(dir, 'runs');
  if (!fs.existsSync(root)) return out;
  for (const exp of fs.readdirSync(root)) {
    for (const run of runsIn(path.join(root, exp), (d, e) => warn?.(`${e.line()}; that run is ignored`))) {
      const list = out.get(run.record.config_sha256) ?? [];
      list.push(run);
      out.set(run.record.config_sha256, list);
    }
  }
  return out;
}

/**
 * Run a sweep's cells, each as its own `elbo run` process, `parallel` at a time, into
 * <runs-dir>/sweeps/<name>/runs. A cell whose resolved config already has a FINISHED run
 * there is skipped (never overwritten); a FAILED or KILLED one is resumed from its
 * checkpoint. sweep.json records every cell and where its run is; report.html (with
 * compare.csv and compare plots) sums the sweep up at the end.
 */
export async function runSweep(spec: SweepSpec, o: SweepOptions): Promise<{ dir: string; cells: CellResult[] }> {
  const resolved = resolveCells(spec);
  if (o.cell !== undefined && (o.cell < 0 || o.cell >= resolved.length)) {
    throw new UserError(`the sweep has cells 0..${resolved.length - 1}`, `--cell ${o.cell}`);
  }
  const dir = sweepDir(o.runsDir, spec);
  fs.mkdirSync(path.join(dir, 'runs'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'locks'), { recursive: true });
  const existing = runsByConfig(dir, o.log);
  const results: CellResult[] = resolved.map(({ cell, loaded }) => ({
    index: cell.index,
    label: cellLabel(cell, spec),
    name: cellRunName(cell, spec),
    config_sha256: loaded.sha256,
    status: 'PENDING',
    runDir: null,
    metrics: {},
    seconds: 0,
  }));
  const selected = resolved.filter(({ cell }) => o.cell === undefined || cell.index === o.cell);
  /** Cells this process ran or found finished: the others are another process's to record. */
  const mine = new Set<number>();
  const writeIndex = () => {
    // several processes may share the sweep (SLURM tasks, a second elbo sweep): each records
    // the cells it handled, keeps the others' entries, and renames atomically
    const file = path.join(dir, 'sweep.json');
    let cells = results;
    if (fs.existsSync(file)) {
      const prev: CellResult[] = readJsonFile(file, 'sweep.json').cells ?? [];
      cells = results.map((r) => (mine.has(r.index) ? r : prev.find((p) => p.index === r.index && p.config_sha256 === r.config_sha256) ?? r));
    }
    const tmp = `${file}.tmp-${process.pid}`;
    const labels = { ...(o.tags && Object.keys(o.tags).length ? { tags: o.tags } : {}), ...(o.note ? { note: o.note } : {}) };
    fs.writeFileSync(tmp, JSON.stringify({ name: spec.name, file: spec.file, base: spec.base ?? [...new Set(resolved.map(({ cell }) => cell.base))], ...labels, cells }, null, 2) + '\n');
    fs.renameSync(tmp, file);
  };
  writeIndex();
  // MLflow on: one parent run, every cell nested under it
  const parent = await sweepParentRun(spec, resolved[0].loaded, dir, resolved.length, { trackingUri: o.trackingUri, warn: o.log, tags: o.tags, note: o.note });
  const env: Record<string, string> = {};
  if (parent) {
    env.ELBO_MLFLOW_PARENT_RUN_ID = parent.runId;
    if (o.trackingUri) env.MLFLOW_TRACKING_URI = o.trackingUri;
    o.log(`MLflow: cells nest under the sweep's run ${parent.runId}`);
  }

  const cached = (cell: Cell, runs: { dir: string; record: RunRecord }[]): boolean => {
    const r = results[cell.index];
    const done = runs.find((x) => x.record.status === 'FINISHED');
    if (!done) return false;
    Object.assign(r, { status: 'CACHED', runDir: done.dir, metrics: done.record.metrics });
    mine.add(cell.index);
    o.log(`cell ${cell.index} (${r.label}): already finished in ${path.relative(process.cwd(), done.dir)}, skipped`);
    return true;
  };
  const queue: { cell: Cell; resume?: string }[] = [];
  for (const { cell } of selected) if (!cached(cell, existing.get(results[cell.index].config_sha256) ?? [])) queue.push({ cell });
  writeIndex();
  /** One lock per cell (by its resolved config): two processes never run one cell at once. */
  const cellLock = (cell: Cell) => path.join(dir, 'locks', `cell-${results[cell.index].config_sha256.slice(0, 16)}.lock`);
  const busy = (cell: Cell, holder: { pid: number; host: string }, what: string) => {
    Object.assign(results[cell.index], { status: 'BUSY', error: `${what} by process ${holder.pid} on ${holder.host}` });
    o.log(`cell ${cell.index} (${results[cell.index].label}): ${what} by process ${holder.pid} on ${holder.host}; left to it`);
  };

  const bin = path.join(elboRoot(), 'bin', 'run.js');
  const running = new Set<ChildProcess>();
  let stopLaunching = false;
  let finished = 0;
  const total = queue.length;
  const startOne = async (job: { cell: Cell; resume?: string }): Promise<void> => {
    const lock = cellLock(job.cell);
    const holder = takeLock(lock);
    if (holder) return busy(job.cell, holder, 'being run');
    try {
      // what the store holds now (another process may have finished or started the cell meanwhile)
      const runs = runsByConfig(dir).get(results[job.cell.index].config_sha256) ?? [];
      if (cached(job.cell, runs)) return;
      // a run of the cell that a live process trains (an `elbo run --resume` by hand, a cell
      // whose sweep was killed and that has not noticed yet) is left to it
      for (const x of runs) {
        const h = runLockHolder(x.dir);
        if (h) return busy(job.cell, h, `its run ${path.relative(process.cwd(), x.dir)} is being trained`);
      }
      // KILLED, FAILED, or RUNNING with its process gone: resumed
      const unfinished = runs.find((x) => effectiveStatus(x.dir, x.record) !== 'FINISHED');
      mine.add(job.cell.index);
      await runCell({ ...job, resume: unfinished?.dir });
    } finally {
      releaseLock(lock);
    }
  };
  const runCell = (job: { cell: Cell; resume?: string }) =>
    new Promise<void>((resolve) => {
      const r = results[job.cell.index];
      const args = job.resume
        ? [bin, 'run', '--resume', job.resume, '--json', '--quiet']
        : [bin, 'run', job.cell.base, ...cellArgs(job.cell), '--runs-dir', path.join(dir, 'runs'), '--json', '--quiet'];
      if (o.backend && !job.resume) args.push('--backend', o.backend);
      for (const [k, v] of Object.entries(o.tags ?? {})) args.push('--tag', `${k}=${v}`);
      if (o.note) args.push('--note', o.note);
      const t0 = Date.now();
      r.status = 'RUNNING';
      o.log(`cell ${job.cell.index} (${r.label}): ${job.resume ? 'resuming' : 'started'}`);
      // ELBO_SWEEP_PID: the cell stops (KILLED, resumable) if this process dies without telling it;
      // ELBO_MLFLOW_RUN_NAME: in MLflow the cell's run is named by its cell (latent=8,prior=gaussian,seed=0)
      const cellEnv = { ...env, ELBO_SWEEP_PID: String(process.pid), ELBO_MLFLOW_RUN_NAME: results[job.cell.index].name };
      const child = spawn(process.execPath, args, { env: { ...process.env, ...cellEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
      running.add(child);
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (d) => (stdout += d));
      child.stderr!.on('data', (d) => (stderr += d));
      child.on('close', (code) => {
        running.delete(child);
        r.seconds = (Date.now() - t0) / 1000;
        const last = stdout.trim().split('\n').pop() ?? '';
        let parsed: any = null;
        try {
          parsed = last.startsWith('{') ? JSON.parse(last) : null;
        } catch {
          parsed = null;
        }
        if (parsed) Object.assign(r, { status: parsed.status, runDir: parsed.runDir, metrics: parsed.metrics, error: parsed.error });
        else Object.assign(r, { status: 'FAILED', error: stderr.trim().split('\n').pop() ?? `exit ${code}` });
        finished++;
        const key = Object.keys(r.metrics).find((k) => k === 'test/elbo') ?? Object.keys(r.metrics).find((k) => k.startsWith('test/'));
        const shown = key ? ` ${key} ${r.metrics[key].toFixed(3)}` : '';
        o.log(`[${finished}/${total}] cell ${job.cell.index} (${r.label}): ${r.status.toLowerCase()}${shown} (${formatDuration(r.seconds)})${r.error ? `: ${r.error}` : ''}`);
        if (r.status !== 'FINISHED' && o.failFast && !stopLaunching) {
          stopLaunching = true;
          o.log('--fail-fast: stopping the other cells (they are recorded KILLED and can be resumed)');
          for (const c of running) c.kill('SIGINT');
        }
        writeIndex();
        resolve();
      });
    });

  // Ctrl-C stops the sweep: children get it too and record KILLED
  const onSignal = () => {
    stopLaunching = true;
  };
  process.on('SIGINT', onSignal);
  try {
    const workers = Array.from({ length: Math.max(1, Math.min(o.parallel, queue.length)) }, async () => {
      while (queue.length && !stopLaunching) await startOne(queue.shift()!);
    });
    await Promise.all(workers);
  } finally {
    process.off('SIGINT', onSignal);
  }
  writeIndex();
  // report.html (with compare.csv and the compare plots) once the whole sweep has run, not per
  // SLURM task; the MLflow parent run carries it with sweep.json and the comparison, and ends
  if (o.cell === undefined) {
    try {
      const report = await writeSweepReport(dir);
      o.log(`report: ${path.relative(process.cwd(), report)}`);
    } catch (e: any) {
      o.log(`warning: could not write the sweep's report: ${e?.message ?? e}`);
    }
    if (parent) {
      const files = ['report.html', 'sweep.json', 'compare.csv', ...fs.readdirSync(dir).filter((f) => /^compare-.*\.(png|svg)$/.test(f)).sort()];
      const failed = results.filter((r) => r.status !== 'FINISHED' && r.status !== 'CACHED').length;
      const runDirs = results.flatMap((r) => (r.runDir ? [r.runDir] : []));
      await parent.finish(failed === 0 ? 'FINISHED' : stopLaunching ? 'KILLED' : 'FAILED', { cells: results.length, finished: results.length - failed, failed, files, runDirs });
    }
  }
  return { dir, cells: o.cell === undefined ? results : results.filter((r) => r.index === o.cell) };
}

/** A SLURM job-array script whose task i runs cell i; cells share only the run store. */
export function slurmScript(spec: SweepSpec, cells: number, o: { runsDir: string; parallel: number; tags?: Record<string, string>; note?: string }): string {
  const sq = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;
  const labels = [...Object.entries(o.tags ?? {}).map(([k, v]) => ` --tag ${sq(`${k}=${v}`)}`), ...(o.note ? [` --note ${sq(o.note)}`] : [])].join('');
  const bin = path.join(elboRoot(), 'bin', 'run.js');
  const dir = sweepDir(o.runsDir, spec);
  return `#!/bin/bash
# elbo sweep ${path.basename(spec.file)}: ${cells} cells, task i runs cell i.
# Submit with: sbatch ${path.join(dir, 'sweep.slurm')}
#SBATCH --job-name=elbo-${spec.name}
#SBATCH --array=0-${cells - 1}%${o.parallel}
#SBATCH --output=${dir}/slurm-%A_%a.out
#SBATCH --cpus-per-task=2
set -euo pipefail
cd ${JSON.stringify(process.cwd())}
exec ${JSON.stringify(process.execPath)} ${JSON.stringify(bin)} sweep ${JSON.stringify(spec.file)} --cell "$SLURM_ARRAY_TASK_ID" --runs-dir ${JSON.stringify(path.resolve(o.runsDir))}${labels}
`;
}
