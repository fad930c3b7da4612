import * as fs from 'fs';
import * as path from 'path';
import { spawn, ChildProcess } from 'child_process';
import { SweepSpec, Cell, resolveCells, cellArgs, cellLabel, cellRunName, sweepDir, sha256, cellOverrides, shownFile, earlyStopRungs } from './spec';
import { type CellResult, writeCellRecord, writeSweepIndex, cellLeaseFile, readSweepState, cellSettled } from './state';
import { Rungs } from './asha';
import { Study } from './optuna';
import { Rng } from '../runtime/rng';
import { createRegistry } from '../builtins';
import { elboRoot } from '../runtime/fingerprint';
import { loadConfig, type LoadedConfig } from '../config/load';
import { runsIn, runLockHolder, effectiveStatus } from '../track/run-store';
import { takeLock, releaseLock } from '../util/lock';
import { formatDuration } from '../track/progress';
import { UserError } from '../errors';
import { sweepParentRun } from './mlflow-parent';
import { writeSweepReport, SWEEP_FIGURES } from './report';
import type { RunRecord } from '../contracts';

export interface SweepOptions {
  runsDir: string;
  parallel: number;
  failFast: boolean;
  /** Run only this cell (a SLURM array task): its run's progress goes to this process's stderr. */
  cell?: number;
  /** The cells, when the caller has resolved them already (else resolved here). */
  resolved?: { cell: Cell; loaded: LoadedConfig }[];
  /** The cells' hash an emitted script was made for (sweep.json's cells_sha256): refused when the cells changed since. */
  cellsSha256?: string;
  backend?: string;
  /** `--device` for every cell (not a resumed one: it continues where it ran). */
  device?: string;
  /** MLflow server for the sweep's parent run and its cells (else the config's, or MLFLOW_TRACKING_URI). */
  trackingUri?: string;
  /** `--tag K=V` and `--note`: passed to every cell (run.json, MLflow) and to the MLflow parent run. */
  tags?: Record<string, string>;
  note?: string;
  log: (line: string) => void;
}

export type { CellResult } from './state';

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

/** The hash an emitted script checks: of every cell's resolved config, in order. */
export function cellsHash(configHashes: string[]): string {
  return sha256(configHashes.join('\n'));
}

/**
 * The cells' hash; with `expected` (an emitted script's), an error when the cells changed
 * since the script was emitted.
 */
export function checkCellsHash(spec: SweepSpec, resolved: { loaded: LoadedConfig }[], expected?: string): string {
  const hash = cellsHash(resolved.map((r) => r.loaded.sha256));
  if (expected !== undefined && expected !== hash) {
    throw new UserError(
      `the sweep's cells changed since this job script was emitted (the sweep file or a base config was edited; now ${resolved.length} cells, hash ${hash.slice(0, 12)}…): emit the script again (elbo sweep ${path.relative(process.cwd(), spec.file) || spec.file} --emit slurm) and submit that one`,
      `--cells-sha256 ${expected.slice(0, 12)}…`,
    );
  }
  return hash;
}

/** Signals that stop a sweep: its cells stop after their current step and record KILLED. */
const STOP_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * Run a sweep's cells, each as its own `elbo run` process, `parallel` at a time, into
 * <runs-dir>/sweeps/<name>/runs. A cell whose resolved config already has a FINISHED run
 * there is skipped (never overwritten); a FAILED or KILLED one is resumed from its
 * checkpoint. Each cell is run under a lease (one process at a time, on any host) and
 * recorded in cells/ (see state.ts); sweep.json is rebuilt from those records;
 * report.html (with compare.csv and compare plots) sums the sweep up at the end.
 */
/**
 * What a sweep process did. `unfinished`: it was stopped by a signal while a cell it was to
 * run (its own, or one it took from the rung table) had not finished: what a SLURM task asks
 * before it requeues itself (a signal that comes just after the cells ended requeues nothing).
 */
export interface SweepOutcome {
  dir: string;
  cells: CellResult[];
  stopped: NodeJS.Signals | null;
  unfinished: boolean;
}

export async function runSweep(spec: SweepSpec, o: SweepOptions): Promise<SweepOutcome> {
  const resolved = o.resolved ?? resolveCells(spec);
  if (o.cell !== undefined && (o.cell < 0 || o.cell >= resolved.length)) {
    throw new UserError(`the sweep has cells 0..${resolved.length - 1}`, `--cell ${o.cell}`);
  }
  const hash = checkCellsHash(spec, resolved, o.cellsSha256);
  const rungs = earlyStopRungs(spec, resolved);
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
  const labels = { ...(o.tags && Object.keys(o.tags).length ? { tags: o.tags } : {}), ...(o.note ? { note: o.note } : {}) };
  const search = spec.sweep.search;
  const es = {
    ...(spec.early_stop && rungs ? { early_stop: { metric: spec.early_stop.metric, mode: spec.early_stop.mode, rungs } } : {}),
    ...(search ? { search: { kind: search.kind, metric: search.metric, mode: search.mode, trials: search.trials } } : {}),
  };
  const index = { name: spec.name, file: spec.file, base: spec.base ?? [...new Set(resolved.map(({ cell }) => cell.base))], cells_sha256: hash, ...es, ...labels };
  // a search's cells are what their trials made, whichever process asked for them
  const study = spec.sweep.search ? new Study(dir, spec.name, spec.sweep.search, `${shownFile(spec.file)}: sweep.search`) : null;
  const fromTrials = () => {
    if (!study) return;
    for (const [i, t] of Object.entries(study.read())) if (t.cell && results[Number(i)]) Object.assign(results[Number(i)], t.cell);
  };
  const writeIndex = () => {
    fromTrials();
    writeSweepIndex(dir, { ...index, cells: results.map(({ index: i, label, name, config_sha256 }) => ({ index: i, label, name, config_sha256, status: 'PENDING' as const, runDir: null, metrics: {}, seconds: 0 })) });
  };
  /** Record a cell this process handles (it holds the cell's lease, or found it finished). */
  const handled = new Set<number>();
  const record = (r: CellResult) => {
    handled.add(r.index);
    writeCellRecord(dir, r);
    writeIndex();
  };
  if (study) await study.open(o.log);
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
    Object.assign(r, { status: 'CACHED', runDir: done.dir, metrics: done.record.metrics, error: undefined });
    writeCellRecord(dir, r); // sweep.json is rebuilt once the cells are looked at
    o.log(`cell ${cell.index} (${r.label}): already finished in ${path.relative(process.cwd(), done.dir)}, skipped`);
    return true;
  };
  const queue: { cell: Cell; resume?: string }[] = [];
  // with early_stop the rung table says what runs next (see runAsha below)
  // a search's cells are looked at once their trial says what they are (startOne)
  if (!rungs) for (const { cell } of selected) if (study || !cached(cell, existing.get(results[cell.index].config_sha256) ?? [])) queue.push({ cell });
  writeIndex();
  const busy = (cell: Cell, holder: { pid: number; host: string }, what: string) => {
    Object.assign(results[cell.index], { status: 'BUSY', error: `${what} by process ${holder.pid} on ${holder.host}` });
    o.log(`cell ${cell.index} (${results[cell.index].label}): ${what} by process ${holder.pid} on ${holder.host}; left to it`);
  };

  const bin = path.join(elboRoot(), 'bin', 'run.js');
  const running = new Set<ChildProcess>();
  let stopped: NodeJS.Signals | null = null;
  let failedFast = false;
  let finished = 0;
  const total = queue.length;
  const startOne = async (job: { cell: Cell; resume?: string }): Promise<void> => {
    if (study) {
      // its trial: asked for now (or earlier, by this cell); told how it ended
      const made = trialCell(job.cell);
      if (!made) return;
      job = { ...job, cell: made };
      await leased(job);
      const r = results[made.index];
      const value = r.metrics[spec.sweep.search!.metric];
      if (r.status === 'FINISHED' || r.status === 'CACHED' || r.status === 'FAILED') study.tell(made.index, r.status === 'FAILED' ? null : value ?? null);
      return;
    }
    return leased(job);
  };
  /** A search's cell: the overrides its trial proposes, resolved (a config they make invalid: the cell FAILED, the trial told so). */
  const trialCell = (cell: Cell): Cell | null => {
    const r = results[cell.index];
    const made: Cell = { ...cell, overrides: { ...cell.overrides, ...study!.trial(cell.index).params } };
    try {
      const loaded = loadConfig(made.base, cellOverrides(made), createRegistry());
      Object.assign(r, { label: cellLabel(made, spec), name: cellRunName(made, spec), config_sha256: loaded.sha256 });
      study!.describe(cell.index, { label: r.label, name: r.name!, config_sha256: r.config_sha256 });
      return made;
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      Object.assign(r, { status: 'FAILED', error: e.line() });
      record(r);
      study!.tell(cell.index, null);
      o.log(`cell ${cell.index}: the trial's values make an invalid config: ${e.line()}`);
      return null;
    }
  };
  const leased = async (job: { cell: Cell; resume?: string }): Promise<void> => {
    // the cell's lease: one process runs a cell at a time, on any host sharing the run store
    const lease = cellLeaseFile(dir, results[job.cell.index].config_sha256);
    const holder = takeLock(lease);
    if (holder) return busy(job.cell, holder, 'being run');
    try {
      // what the store holds now (another process may have finished or started the cell meanwhile)
      const runs = runsByConfig(dir).get(results[job.cell.index].config_sha256) ?? [];
      if (cached(job.cell, runs)) return writeIndex();
      // a run of the cell that a live process trains (an `elbo run --resume` by hand, a cell
      // whose sweep was killed and that has not noticed yet) is left to it
      for (const x of runs) {
        const h = runLockHolder(x.dir);
        if (h) return busy(job.cell, h, `its run ${path.relative(process.cwd(), x.dir)} is being trained`);
      }
      // KILLED, FAILED, or RUNNING with its process gone: resumed
      const unfinished = runs.find((x) => effectiveStatus(x.dir, x.record) !== 'FINISHED');
      await runCell({ ...job, resume: unfinished?.dir });
    } finally {
      releaseLock(lease);
    }
  };
  // one cell (a SLURM task): the run's progress is this process's log
  const stream = o.cell !== undefined;
  const runCell = (job: { cell: Cell; resume?: string; pauseAt?: number }) =>
    new Promise<void>((resolve) => {
      const r = results[job.cell.index];
      const args = job.resume
        ? [bin, 'run', '--resume', job.resume, '--json']
        : [bin, 'run', job.cell.base, ...cellArgs(job.cell), '--runs-dir', path.join(dir, 'runs'), '--json'];
      if (job.pauseAt !== undefined) args.push('--pause-at', String(job.pauseAt));
      if (!stream) args.push('--quiet');
      // a resumed run continues on the backend it ran on (elbo run --resume)
      if (o.backend && !job.resume) args.push('--backend', o.backend);
      if (o.device && !job.resume) args.push('--device', o.device);
      if (!job.resume) for (const [k, v] of Object.entries(o.tags ?? {})) args.push('--tag', `${k}=${v}`);
      if (!job.resume && o.note !== undefined) args.push('--note', o.note);
      const t0 = Date.now();
      Object.assign(r, { status: 'RUNNING', runDir: job.resume ?? null, error: undefined });
      record(r);
      const upTo = job.pauseAt !== undefined ? ` (up to epoch ${job.pauseAt})` : '';
      o.log(`cell ${job.cell.index} (${r.label}): ${job.resume ? `resuming ${path.relative(process.cwd(), job.resume)}` : 'started'}${upTo}`);
      // ELBO_SWEEP_PID: the cell stops (KILLED, resumable) if this process dies without telling it;
      // ELBO_MLFLOW_RUN_NAME: in MLflow the cell's run is named by its cell (latent=8,prior=gaussian,seed=0)
      // ELBO_SWEEP_CELL: the run records which cell it is (elbo runs list and show say its setting)
      const sweepCell = { name: spec.name, dir, cell: job.cell.index, label: r.label, short: r.name ?? r.label };
      const cellEnv = { ...env, ELBO_SWEEP_PID: String(process.pid), ELBO_MLFLOW_RUN_NAME: r.name ?? r.label, ELBO_SWEEP_CELL: JSON.stringify(sweepCell) };
      const child = spawn(process.execPath, args, { env: { ...process.env, ...cellEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
      running.add(child);
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (d) => (stdout += d));
      child.stderr!.on('data', (d) => {
        stderr = (stderr + d).slice(-20_000);
        if (stream) process.stderr.write(d);
      });
      child.on('close', (code, signal) => {
        running.delete(child);
        r.seconds = (Date.now() - t0) / 1000;
        const last = stdout.trim().split('\n').pop() ?? '';
        let parsed: any = null;
        try {
          parsed = last.startsWith('{') ? JSON.parse(last) : null;
        } catch {
          parsed = null;
        }
        if (parsed) Object.assign(r, { status: parsed.status, runDir: parsed.runDir, metrics: parsed.metrics, error: parsed.error ?? undefined });
        else {
          // no result line: its last words (a crash shows more than one line)
          const tail = stderr.trim().split('\n').slice(-5).join(' | ');
          Object.assign(r, { status: stopped || signal ? 'KILLED' : 'FAILED', error: tail || (signal ? `killed by ${signal}` : `exit ${code}`) });
        }
        finished++;
        const key = Object.keys(r.metrics).find((k) => k === 'test/elbo') ?? Object.keys(r.metrics).find((k) => k.startsWith('test/')) ?? (spec.early_stop && r.metrics[spec.early_stop.metric] !== undefined ? spec.early_stop.metric : undefined);
        const shown = key ? ` ${key} ${r.metrics[key].toFixed(3)}` : '';
        o.log(`[${finished}${rungs ? '' : `/${total}`}] cell ${job.cell.index} (${r.label}): ${r.status.toLowerCase()}${shown} (${formatDuration(r.seconds)})${r.error ? `: ${r.error}` : ''}`);
        if (r.status !== 'FINISHED' && o.failFast && !failedFast && !stopped) {
          failedFast = true;
          o.log('--fail-fast: stopping the other cells (they are recorded KILLED and can be resumed)');
          for (const c of running) c.kill('SIGINT');
        }
        record(r);
        resolve();
      });
    });

  // Ctrl-C, SIGTERM (kill, scancel, the time limit) or SIGHUP stops the sweep: the cells stop
  // after their current step and record KILLED, and so does this process, for its cells.
  // Ctrl-C reaches the cells from the terminal, and SLURM signals every process of a job
  // step; a SIGTERM or SIGHUP sent to this process alone is passed on to them.
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopped) return;
    stopped = sig;
    o.log(`${sig}: stopping ${running.size ? `the running cell${running.size === 1 ? '' : 's'} after ${running.size === 1 ? 'its' : 'their'} current step (recorded KILLED, resumed by the next sweep)` : 'the sweep'}`);
    if (sig !== 'SIGINT' && !process.env.SLURM_STEP_ID) for (const c of running) c.kill(sig);
  };
  for (const s of STOP_SIGNALS) process.on(s, onSignal);
  /**
   * Early stopping (asha.ts): each worker takes its next job from the rung table under its
   * lock (with the cell's lease): resume a cell whose process is gone, promote a paused cell,
   * or start one of this process's cells (all of them; one under SLURM, --cell); it runs
   * the cell up to the job's rung (--pause-at) and records the metric there. A worker with
   * nothing to do waits while this process runs other cells (their rungs may promote one).
   */
  const runAsha = async (rungs: number[]) => {
    const es = spec.early_stop!;
    const table = new Rungs(dir, { cells_sha256: hash, metric: es.metric, mode: es.mode, reduction_factor: es.reduction_factor, rungs, ...(es.kind === 'sha' ? { sync: { total: resolved.length } } : {}) });
    // this process's cells, in an order drawn with the early_stop seed
    const mine = selected.map(({ cell }) => cell.index);
    const fresh = Array.from(new Rng(es.seed).fork('early-stop-order').permutation(mine.length), (i) => mine[i]);
    const active = new Set<number>();
    // cells that failed in this process are not taken again by it (a rerun of the sweep retries them)
    const failedHere = new Set<number>();
    const leaseOf = (i: number) => cellLeaseFile(dir, results[i].config_sha256);
    let wake: () => void = () => {};
    let woken = new Promise<void>((r) => (wake = r));
    const settle = (i: number, runDir: string) => {
      const r = results[i];
      const at = table.record(i, runDir);
      if (at) r.rung = { index: at.rung, epoch: at.epochs, of: rungs.length };
      if (r.status === 'PAUSED' && at?.stopped) r.status = 'STOPPED';
    };
    const worker = async () => {
      while (!stopped && !failedFast) {
        const job = table.claim(
          fresh,
          (i) => active.has(i) || failedHere.has(i),
          (i) => !takeLock(leaseOf(i)),
        );
        if (!job) {
          if (!active.size) return;
          await woken;
          continue;
        }
        active.add(job.cell);
        const { cell } = resolved[job.cell];
        const r = results[job.cell];
        try {
          const runs = runsByConfig(dir).get(r.config_sha256) ?? [];
          const done = runs.find((x) => x.record.status === 'FINISHED');
          const live = runs.find((x) => runLockHolder(x.dir));
          if (done) {
            cached(cell, runs);
            settle(job.cell, done.dir);
          } else if (live) {
            busy(cell, runLockHolder(live.dir)!, `its run ${path.relative(process.cwd(), live.dir)} is being trained`);
            failedHere.add(job.cell);
          } else {
            const unfinished = runs.find((x) => effectiveStatus(x.dir, x.record) !== 'FINISHED');
            const top = job.rung === rungs.length - 1;
            if (job.rung > 0 && unfinished) o.log(`cell ${job.cell} (${r.label}): promoted, among the top 1/${spec.early_stop!.reduction_factor} at epoch ${rungs[job.rung - 1]}`);
            await runCell({ cell, resume: unfinished?.dir, pauseAt: top ? undefined : rungs[job.rung] });
            if ((r.status === 'PAUSED' || r.status === 'FINISHED') && r.runDir) {
              try {
                settle(job.cell, r.runDir);
              } catch (e) {
                if (!(e instanceof UserError)) throw e;
                Object.assign(r, { status: 'FAILED', error: e.line() });
              }
              if ((r.status as string) === 'STOPPED') o.log(`cell ${job.cell} (${r.label}): paused at epoch ${r.rung!.epoch} (rung ${r.rung!.index + 1} of ${rungs.length}), ${spec.early_stop!.metric} ${r.metrics[spec.early_stop!.metric]?.toFixed(3)}`);
            }
            if (r.status !== 'STOPPED' && r.status !== 'FINISHED') failedHere.add(job.cell);
          }
          writeCellRecord(dir, r);
          writeIndex();
        } finally {
          releaseLock(leaseOf(job.cell));
          active.delete(job.cell);
          wake();
          woken = new Promise<void>((res) => (wake = res));
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, o.parallel) }, worker));
  };
  try {
    if (rungs) await runAsha(rungs);
    const workers = Array.from({ length: Math.max(1, Math.min(o.parallel, queue.length)) }, async () => {
      while (queue.length && !stopped && !failedFast) await startOne(queue.shift()!);
    });
    await Promise.all(workers);
  } finally {
    for (const s of STOP_SIGNALS) process.off(s, onSignal);
  }
  writeIndex();
  // with early_stop a process runs whichever cells the rung table gives it: the records say how each stands
  const final = rungs ? readSweepState(dir).cells : results;
  // report.html (with compare.csv, the compare plots, the overlaid curves and the test metrics by setting) once the whole sweep has run, not per
  // SLURM task (elbo report SWEEP_DIR writes it then); the MLflow parent run carries it with
  // sweep.json and the comparison, and ends (a SLURM task does not end the shared parent run)
  if (o.cell === undefined) {
    try {
      const report = await writeSweepReport(dir);
      o.log(`report: ${path.relative(process.cwd(), report)}`);
    } catch (e: any) {
      o.log(`warning: could not write the sweep's report: ${e?.message ?? e}`);
    }
    if (parent) {
      const files = ['report.html', 'sweep.json', 'compare.csv', ...fs.readdirSync(dir).filter((f) => SWEEP_FIGURES.test(f)).sort()];
      const failed = final.filter((r) => !cellSettled(r)).length;
      const runDirs = final.flatMap((r) => (r.runDir ? [r.runDir] : []));
      await parent.finish(failed === 0 ? 'FINISHED' : stopped || failedFast ? 'KILLED' : 'FAILED', { cells: final.length, finished: final.length - failed, failed, files, runDirs });
    }
  }
  for (const { cell } of selected) handled.add(cell.index);
  const unfinished = stopped !== null && final.some((r) => handled.has(r.index) && !cellSettled(r) && r.status !== 'BUSY');
  return { dir, cells: o.cell === undefined ? final : final.filter((r) => r.index === o.cell), stopped, unfinished };
}
