import * as fs from 'fs';
import * as path from 'path';
import { spawn, ChildProcess } from 'child_process';
import {
  SweepSpec,
  Cell,
  resolveCells,
  cellArgs,
  cellAxes,
  cellLabel,
  cellRunName,
  sweepDir,
  sha256,
  cellOverrides,
  earlyStopRungs,
} from './spec';
import { shownPath } from '../util/shown-path';
import {
  type CellResult,
  type SweepIndex,
  writeCellRecord,
  writeSweepIndex,
  cellLeaseFile,
  readSweepState,
  cellSettled,
  distinctLabels,
} from './state';
import { Rungs, type AshaJob } from './asha';
import { Study } from './optuna';
import { Rng } from '../runtime/rng';
import { createRegistry } from '../builtins';
import { elboRoot } from '../runtime/fingerprint';
import { loadConfig, type LoadedConfig } from '../config/load';
import { runsIn, runLockHolder, effectiveStatus } from '../track/run-store';
import { takeLock, releaseLock } from '../util/lock';
import { formatDuration } from '../track/progress';
import { UserError, type Caught } from '../errors';
import { sweepParentRun, type ParentRun } from './mlflow-parent';
import { writeSweepReport, SWEEP_FIGURES } from './report';
import type { RunRecord, RunResult } from '../contracts';

export interface SweepOptions {
  runsDir: string;
  parallel: number;
  failFast: boolean;
  /**
   * Run only these cells (`--cell 3` as a SLURM array task runs it, or a list, `--cell 3,4,6-7`);
   * their runs' progress goes to this process's stderr when they run one at a time.
   */
  cells?: number[];
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

/**
 * A run's progress on stderr (its header, a resume's line, a nested M1's lines, epoch and
 * evaluation lines): not why a cell ended. A run that ends well prints nothing else (a test
 * runs real runs against it: a new kind of progress line belongs here).
 */
const PROGRESS_LINE =
  /^(epoch \d+\/\d+ |train step |eval \S+: |run \d{8}-\d{6}-|resuming \S+ from epoch |M1: |classes in |labelled subset |latent classifier )/;

/**
 * Why a cell's process ended without a result line: the last lines of its stderr (a crash
 * shows more than one), joined by ' | ', without the progress a run prints as it trains
 * (a stopped cell's stderr ends in epoch lines).
 */
export function lastWords(stderr: string): string {
  return stderr
    .trim()
    .split('\n')
    .filter((l) => l.trim() && !PROGRESS_LINE.test(l))
    .slice(-5)
    .join(' | ');
}

/** Signals that stop a sweep: its cells stop after their current step and record KILLED. */
const STOP_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * What a sweep process did. `unfinished`: it was stopped by a signal while a cell it was to
 * run (its own, or one it took from the rung table) had not finished: what a SLURM task asks
 * before it requeues itself (a signal that comes just after the cells ended requeues nothing).
 */
export interface SweepOutcome {
  dir: string;
  cells: CellResult[];
  /** Each of those cells as the progress lines named it (SweepRun.shown: an ablation's by what it changes). */
  shown: Map<number, string>;
  stopped: NodeJS.Signals | null;
  unfinished: boolean;
}

/**
 * Run a sweep's cells, each as its own `elbo run` process, `parallel` at a time, into
 * <runs-dir>/sweeps/<name>/runs. A cell whose resolved config already has a FINISHED run
 * there is skipped (never overwritten); a FAILED or KILLED one is resumed from its
 * checkpoint. Each cell is run under a lease (one process at a time, on any host) and
 * recorded in cells/ (see state.ts); sweep.json is rebuilt from those records;
 * report.html (with compare.csv and compare plots) sums the sweep up at the end.
 *
 * Its parts: SweepRun (the state they share, and one cell: its trial, its lease, its
 * process), runQueue (the cells in turn), AshaWorkers (with early_stop: the rung table's
 * jobs), catchStopSignals, and finishSweep (sweep.json, report.html, the MLflow parent run).
 */
export async function runSweep(spec: SweepSpec, o: SweepOptions): Promise<SweepOutcome> {
  const resolved = o.resolved ?? resolveCells(spec);
  checkCells(o.cells, resolved.length);
  const hash = checkCellsHash(spec, resolved, o.cellsSha256);
  const sweep = new SweepRun(spec, o, resolved, hash);
  if (sweep.study) await sweep.study.open(o.log);
  sweep.writeIndex();
  await sweep.openParent();
  const queue = sweep.queue();
  const release = catchStopSignals(sweep);
  try {
    if (sweep.rungs) await new AshaWorkers(sweep, sweep.rungs).run();
    await runQueue(sweep, queue);
  } finally {
    release();
  }
  return finishSweep(sweep);
}

/** A cell to run: resumed from a run directory, and (early_stop) paused at an epoch. */
type CellJob = { cell: Cell; resume?: string; pauseAt?: number };

/**
 * One `runSweep` call: the cells' results and the records it writes, the MLflow parent run,
 * the cell processes running, and whether a signal or --fail-fast stopped the sweep; and
 * what is done to one cell (its trial, its lease, its `elbo run` process).
 */
class SweepRun {
  readonly rungs: number[] | null;
  readonly dir: string;
  /** Runs already in the sweep's store when it started, by resolved-config hash. */
  readonly existing: Map<string, { dir: string; record: RunRecord }[]>;
  readonly results: CellResult[];
  /** The cells' labels as the progress lines give them (an ablation's by what each cell changes). */
  private readonly distinct: Map<number, string>;
  /** This process's cells: all of them, or those of --cell (one: a SLURM task). */
  readonly selected: { cell: Cell; loaded: LoadedConfig }[];
  /** sweep.json's fields besides the cells. */
  private readonly index: Omit<SweepIndex, 'cells'> & { tags?: Record<string, string>; note?: string };
  /** A search's cells are what their trials made, whichever process asked for them. */
  readonly study: Study | null;
  /** The cells this process handles (it holds the cell's lease, or found it finished). */
  readonly handled = new Set<number>();
  parent: ParentRun | null = null;
  /** What every cell process gets in its environment besides this process's (the MLflow parent run). */
  private readonly env: Record<string, string> = {};
  private readonly bin = path.join(elboRoot(), 'bin', 'run.js');
  readonly running = new Set<ChildProcess>();
  stopped: NodeJS.Signals | null = null;
  failedFast = false;
  /** Cells ended, and the cells queued (without early_stop): the [n/total] of the log lines. */
  private finished = 0;
  private total = 0;
  /** One cell (a SLURM task): the run's progress is this process's log. */
  private readonly stream: boolean;

  constructor(
    readonly spec: SweepSpec,
    readonly o: SweepOptions,
    readonly resolved: { cell: Cell; loaded: LoadedConfig }[],
    readonly hash: string,
  ) {
    this.rungs = earlyStopRungs(spec, resolved);
    this.dir = sweepDir(o.runsDir, spec);
    fs.mkdirSync(path.join(this.dir, 'runs'), { recursive: true });
    fs.mkdirSync(path.join(this.dir, 'locks'), { recursive: true });
    this.existing = runsByConfig(this.dir, o.log);
    this.results = resolved.map(({ cell, loaded }) => ({
      index: cell.index,
      label: cellLabel(cell, spec),
      name: cellRunName(cell, spec),
      axes: cellAxes(cell, spec),
      config_sha256: loaded.sha256,
      status: 'PENDING',
      runDir: null,
      metrics: {},
      seconds: 0,
    }));
    this.distinct = distinctLabels(this.results);
    this.selected = resolved.filter(({ cell }) => !o.cells || o.cells.includes(cell.index));
    const labels = { ...(o.tags && Object.keys(o.tags).length ? { tags: o.tags } : {}), ...(o.note ? { note: o.note } : {}) };
    const search = spec.sweep.search;
    const es = {
      ...(spec.early_stop && this.rungs
        ? { early_stop: { metric: spec.early_stop.metric, mode: spec.early_stop.mode, rungs: this.rungs } }
        : {}),
      ...(search ? { search: { kind: search.kind, metric: search.metric, mode: search.mode, trials: search.trials } } : {}),
    };
    this.index = {
      name: spec.name,
      file: spec.file,
      base: spec.base ?? [...new Set(resolved.map(({ cell }) => cell.base))],
      cells_sha256: hash,
      ...es,
      ...labels,
    };
    this.study = search ? new Study(this.dir, spec.name, search, `${shownPath(spec.file)}: sweep.search`) : null;
    this.stream = !!o.cells && (o.cells.length === 1 || o.parallel <= 1);
  }

  /** Cell i as the progress lines name it: what it changes in an ablation, its whole label else (a search's as its trial made it). */
  shown(i: number): string {
    return this.study ? this.results[i].label : (this.distinct.get(i) ?? this.results[i].label);
  }

  writeIndex(): void {
    if (this.study) {
      for (const [i, t] of Object.entries(this.study.read()))
        if (t.cell && this.results[Number(i)]) Object.assign(this.results[Number(i)], t.cell);
    }
    const cells = this.results.map(({ index: i, label, name, axes, config_sha256 }) => ({
      index: i,
      label,
      name,
      axes,
      config_sha256,
      status: 'PENDING' as const,
      runDir: null,
      metrics: {},
      seconds: 0,
    }));
    writeSweepIndex(this.dir, { ...this.index, cells });
  }

  /** Record a cell this process handles (it holds the cell's lease, or found it finished). */
  private record(r: CellResult): void {
    this.handled.add(r.index);
    writeCellRecord(this.dir, r);
    this.writeIndex();
  }

  /** MLflow on: one parent run, every cell nested under it. */
  async openParent(): Promise<void> {
    const { spec, o } = this;
    this.parent = await sweepParentRun(spec, this.resolved[0].loaded, this.dir, this.resolved.length, {
      trackingUri: o.trackingUri,
      warn: o.log,
      tags: o.tags,
      note: o.note,
    });
    if (this.parent) {
      this.env.ELBO_MLFLOW_PARENT_RUN_ID = this.parent.runId;
      if (o.trackingUri) this.env.MLFLOW_TRACKING_URI = o.trackingUri;
      o.log(`MLflow: cells nest under the sweep's run ${this.parent.runId}`);
    }
  }

  /**
   * The cells the queue runs: this process's, less those already finished. With early_stop
   * the rung table says what runs next (AshaWorkers), and a search's cells are looked at once
   * their trial says what they are (startOne).
   */
  queue(): CellJob[] {
    const queue: CellJob[] = [];
    if (!this.rungs) {
      for (const { cell } of this.selected)
        if (this.study || !this.cached(cell, this.existing.get(this.results[cell.index].config_sha256) ?? [])) queue.push({ cell });
    }
    this.writeIndex();
    this.total = queue.length;
    return queue;
  }

  /** A FINISHED run among `runs`: the cell is recorded CACHED (true), else false. */
  cached(cell: Cell, runs: { dir: string; record: RunRecord }[]): boolean {
    const r = this.results[cell.index];
    const done = runs.find((x) => x.record.status === 'FINISHED');
    if (!done) return false;
    Object.assign(r, { status: 'CACHED', runDir: done.dir, metrics: done.record.metrics, error: undefined });
    writeCellRecord(this.dir, r); // sweep.json is rebuilt once the cells are looked at
    this.o.log(`cell ${cell.index} (${this.shown(cell.index)}): already finished in ${path.relative(process.cwd(), done.dir)}, skipped`);
    return true;
  }

  busy(cell: Cell, holder: { pid: number; host: string }, what: string): void {
    Object.assign(this.results[cell.index], { status: 'BUSY', error: `${what} by process ${holder.pid} on ${holder.host}` });
    this.o.log(`cell ${cell.index} (${this.shown(cell.index)}): ${what} by process ${holder.pid} on ${holder.host}; left to it`);
  }

  /** A queued cell; a search's: its trial, asked for now (or earlier, by this cell), told how it ended. */
  async startOne(job: CellJob): Promise<void> {
    if (!this.study) return this.leased(job);
    const made = this.trialCell(job.cell);
    if (!made) return;
    await this.leased({ ...job, cell: made });
    const r = this.results[made.index];
    const value = r.metrics[this.spec.sweep.search!.metric];
    if (r.status === 'FINISHED' || r.status === 'CACHED' || r.status === 'FAILED')
      this.study.tell(made.index, r.status === 'FAILED' ? null : (value ?? null));
  }

  /** A search's cell: the overrides its trial proposes, resolved (a config they make invalid: the cell FAILED, the trial told so). */
  private trialCell(cell: Cell): Cell | null {
    const r = this.results[cell.index];
    const study = this.study!;
    const made: Cell = { ...cell, overrides: { ...cell.overrides, ...study.trial(cell.index).params } };
    try {
      const loaded = loadConfig(made.base, cellOverrides(made), createRegistry());
      Object.assign(r, {
        label: cellLabel(made, this.spec),
        name: cellRunName(made, this.spec),
        axes: cellAxes(made, this.spec),
        config_sha256: loaded.sha256,
      });
      study.describe(cell.index, { label: r.label, name: r.name!, config_sha256: r.config_sha256 });
      return made;
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      Object.assign(r, { status: 'FAILED', error: e.line() });
      this.record(r);
      study.tell(cell.index, null);
      this.o.log(`cell ${cell.index}: the trial's values make an invalid config: ${e.line()}`);
      return null;
    }
  }

  /** The cell under its lease: one process runs a cell at a time, on any host sharing the run store. */
  private async leased(job: CellJob): Promise<void> {
    const { dir } = this;
    const lease = cellLeaseFile(dir, this.results[job.cell.index].config_sha256);
    const holder = takeLock(lease);
    if (holder) return this.busy(job.cell, holder, 'being run');
    try {
      // what the store holds now (another process may have finished or started the cell meanwhile)
      const runs = runsByConfig(dir).get(this.results[job.cell.index].config_sha256) ?? [];
      if (this.cached(job.cell, runs)) return this.writeIndex();
      // a run of the cell that a live process trains (an `elbo run --resume` by hand, a cell
      // whose sweep was killed and that has not noticed yet) is left to it
      for (const x of runs) {
        const h = runLockHolder(x.dir);
        if (h) return this.busy(job.cell, h, `its run ${path.relative(process.cwd(), x.dir)} is being trained`);
      }
      // KILLED, FAILED, or RUNNING with its process gone: resumed
      const unfinished = runs.find((x) => effectiveStatus(x.dir, x.record) !== 'FINISHED');
      await this.runCell({ ...job, resume: unfinished?.dir });
    } finally {
      releaseLock(lease);
    }
  }

  /** The `elbo run` command line of a cell. */
  private cellCommand(job: CellJob): string[] {
    const { o } = this;
    const args = job.resume
      ? [this.bin, 'run', '--resume', job.resume, '--json']
      : [this.bin, 'run', job.cell.base, ...cellArgs(job.cell), '--runs-dir', path.join(this.dir, 'runs'), '--json'];
    if (job.pauseAt !== undefined) args.push('--pause-at', String(job.pauseAt));
    if (!this.stream) args.push('--quiet');
    // a resumed run continues on the backend it ran on (elbo run --resume)
    if (o.backend && !job.resume) args.push('--backend', o.backend);
    if (o.device && !job.resume) args.push('--device', o.device);
    if (!job.resume) for (const [k, v] of Object.entries(o.tags ?? {})) args.push('--tag', `${k}=${v}`);
    if (!job.resume && o.note !== undefined) args.push('--note', o.note);
    return args;
  }

  /** Run one cell as its own `elbo run` process; its result line (or its last words) says how it ended. */
  runCell(job: CellJob): Promise<void> {
    return new Promise<void>((resolve) => {
      const r = this.results[job.cell.index];
      const args = this.cellCommand(job);
      const t0 = Date.now();
      Object.assign(r, { status: 'RUNNING', runDir: job.resume ?? null, error: undefined });
      this.record(r);
      const upTo = job.pauseAt !== undefined ? ` (up to epoch ${job.pauseAt})` : '';
      this.o.log(
        `cell ${job.cell.index} (${this.shown(job.cell.index)}): ${job.resume ? `resuming ${path.relative(process.cwd(), job.resume)}` : 'started'}${upTo}`,
      );
      // ELBO_SWEEP_PID: the cell stops (KILLED, resumable) if this process dies without telling it;
      // ELBO_MLFLOW_RUN_NAME: in MLflow the cell's run is named by its cell (latent=8,prior=gaussian,seed=0)
      // ELBO_SWEEP_CELL: the run records which cell it is (elbo runs list and show say its setting)
      const sweepCell = { name: this.spec.name, dir: this.dir, cell: job.cell.index, label: r.label, short: r.name ?? r.label };
      const cellEnv = {
        ...this.env,
        ELBO_SWEEP_PID: String(process.pid),
        ELBO_MLFLOW_RUN_NAME: r.name ?? r.label,
        ELBO_SWEEP_CELL: JSON.stringify(sweepCell),
      };
      const child = spawn(process.execPath, args, { env: { ...process.env, ...cellEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
      this.running.add(child);
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (d) => (stdout += d));
      child.stderr!.on('data', (d) => {
        stderr = (stderr + d).slice(-20_000);
        if (this.stream) process.stderr.write(d);
      });
      child.on('close', (code, signal) => {
        this.running.delete(child);
        r.seconds = (Date.now() - t0) / 1000;
        this.cellEnded(job, r, { code, signal, stdout, stderr });
        resolve();
      });
    });
  }

  /** A cell's process has ended: its result, the log line, --fail-fast, the record. */
  private cellEnded(
    job: CellJob,
    r: CellResult,
    end: { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string },
  ): void {
    const { o, spec } = this;
    const last = end.stdout.trim().split('\n').pop() ?? '';
    // the cell's `elbo run --json` prints its result as its last line
    let parsed: Partial<RunResult> | null = null;
    try {
      parsed = last.startsWith('{') ? JSON.parse(last) : null;
    } catch {
      parsed = null;
    }
    if (parsed)
      Object.assign(r, { status: parsed.status, runDir: parsed.runDir, metrics: parsed.metrics, error: parsed.error ?? undefined });
    else {
      const tail = lastWords(end.stderr);
      Object.assign(r, {
        status: this.stopped || end.signal ? 'KILLED' : 'FAILED',
        error: tail || (end.signal ? `killed by ${end.signal}` : `exit ${end.code}`),
      });
    }
    this.finished++;
    const key =
      Object.keys(r.metrics).find((k) => k === 'test/elbo') ??
      Object.keys(r.metrics).find((k) => k.startsWith('test/')) ??
      (spec.early_stop && r.metrics[spec.early_stop.metric] !== undefined ? spec.early_stop.metric : undefined);
    const shown = key ? ` ${key} ${r.metrics[key].toFixed(3)}` : '';
    o.log(
      `[${this.finished}${this.rungs ? '' : `/${this.total}`}] cell ${job.cell.index} (${this.shown(job.cell.index)}): ${r.status.toLowerCase()}${shown} (${formatDuration(r.seconds)})${r.error ? `: ${r.error}` : ''}`,
    );
    if (r.status !== 'FINISHED' && o.failFast && !this.failedFast && !this.stopped) {
      this.failedFast = true;
      o.log('--fail-fast: stopping the other cells (they are recorded KILLED and can be resumed)');
      for (const c of this.running) c.kill('SIGINT');
    }
    this.record(r);
  }
}

/** The queued cells, `parallel` at a time, until the queue is empty or the sweep is stopped. */
async function runQueue(sweep: SweepRun, queue: CellJob[]): Promise<void> {
  const workers = Array.from({ length: Math.max(1, Math.min(sweep.o.parallel, queue.length)) }, async () => {
    while (queue.length && !sweep.stopped && !sweep.failedFast) await sweep.startOne(queue.shift()!);
  });
  await Promise.all(workers);
}

/**
 * Ctrl-C, SIGTERM (kill, scancel, the time limit) or SIGHUP stops the sweep: the cells stop
 * after their current step and record KILLED, and so does this process, for its cells.
 * Ctrl-C reaches the cells from the terminal, and SLURM signals every process of a job
 * step; a SIGTERM or SIGHUP sent to this process alone is passed on to them. Returns what
 * removes the handlers.
 */
function catchStopSignals(sweep: SweepRun): () => void {
  const onSignal = (sig: NodeJS.Signals) => {
    if (sweep.stopped) return;
    sweep.stopped = sig;
    const n = sweep.running.size;
    sweep.o.log(
      `${sig}: stopping ${n ? `the running cell${n === 1 ? '' : 's'} after ${n === 1 ? 'its' : 'their'} current step (recorded KILLED, resumed by the next sweep)` : 'the sweep'}`,
    );
    if (sig !== 'SIGINT' && !process.env.SLURM_STEP_ID) for (const c of sweep.running) c.kill(sig);
  };
  for (const s of STOP_SIGNALS) process.on(s, onSignal);
  return () => {
    for (const s of STOP_SIGNALS) process.off(s, onSignal);
  };
}

/**
 * Early stopping (asha.ts): each worker takes its next job from the rung table under its
 * lock (with the cell's lease): resume a cell whose process is gone, promote a paused cell,
 * or start one of this process's cells (all of them, or --cell's; one under SLURM); it runs
 * the cell up to the job's rung (--pause-at) and records the metric there. A worker with
 * nothing to do waits while this process runs other cells (their rungs may promote one).
 */
class AshaWorkers {
  private readonly table: Rungs;
  /** This process's cells, in an order drawn with the early_stop seed. */
  private readonly fresh: number[];
  private readonly active = new Set<number>();
  /** Cells that failed in this process are not taken again by it (a rerun of the sweep retries them). */
  private readonly failedHere = new Set<number>();
  private wake: () => void = () => {};
  private woken: Promise<void>;

  constructor(
    private readonly sweep: SweepRun,
    private readonly rungs: number[],
  ) {
    const es = sweep.spec.early_stop!;
    this.table = new Rungs(sweep.dir, {
      cells_sha256: sweep.hash,
      metric: es.metric,
      mode: es.mode,
      reduction_factor: es.reduction_factor,
      rungs,
      ...(es.kind === 'sha' ? { sync: { total: sweep.resolved.length } } : {}),
    });
    const mine = sweep.selected.map(({ cell }) => cell.index);
    this.fresh = Array.from(new Rng(es.seed).fork('early-stop-order').permutation(mine.length), (i) => mine[i]);
    this.woken = new Promise<void>((r) => (this.wake = r));
  }

  async run(): Promise<void> {
    await Promise.all(Array.from({ length: Math.max(1, this.sweep.o.parallel) }, () => this.worker()));
  }

  private leaseOf(i: number): string {
    return cellLeaseFile(this.sweep.dir, this.sweep.results[i].config_sha256);
  }

  /** The cell's metric at the rung its run reached, into the table (and the cell's result). */
  private settle(i: number, runDir: string): void {
    const r = this.sweep.results[i];
    const at = this.table.record(i, runDir);
    if (at) r.rung = { index: at.rung, epoch: at.epochs, of: this.rungs.length };
    if (r.status === 'PAUSED' && at?.stopped) r.status = 'STOPPED';
  }

  private async worker(): Promise<void> {
    const { sweep } = this;
    while (!sweep.stopped && !sweep.failedFast) {
      const job = this.table.claim(
        this.fresh,
        (i) => this.active.has(i) || this.failedHere.has(i),
        (i) => !takeLock(this.leaseOf(i)),
      );
      if (!job) {
        if (!this.active.size) return;
        await this.woken;
        continue;
      }
      this.active.add(job.cell);
      try {
        await this.runJob(job);
        writeCellRecord(sweep.dir, sweep.results[job.cell]);
        sweep.writeIndex();
      } finally {
        releaseLock(this.leaseOf(job.cell));
        this.active.delete(job.cell);
        this.wake();
        this.woken = new Promise<void>((res) => (this.wake = res));
      }
    }
  }

  /** One job of the rung table, under the cell's lease: a cell already finished, one a live process trains, or its run up to the job's rung. */
  private async runJob(job: AshaJob): Promise<void> {
    const { sweep, rungs } = this;
    const es = sweep.spec.early_stop!;
    const { cell } = sweep.resolved[job.cell];
    const r = sweep.results[job.cell];
    const runs = runsByConfig(sweep.dir).get(r.config_sha256) ?? [];
    const done = runs.find((x) => x.record.status === 'FINISHED');
    const live = runs.find((x) => runLockHolder(x.dir));
    if (done) {
      sweep.cached(cell, runs);
      this.settle(job.cell, done.dir);
      return;
    }
    if (live) {
      sweep.busy(cell, runLockHolder(live.dir)!, `its run ${path.relative(process.cwd(), live.dir)} is being trained`);
      this.failedHere.add(job.cell);
      return;
    }
    const unfinished = runs.find((x) => effectiveStatus(x.dir, x.record) !== 'FINISHED');
    const top = job.rung === rungs.length - 1;
    if (job.rung > 0 && unfinished)
      sweep.o.log(
        `cell ${job.cell} (${sweep.shown(job.cell)}): promoted, among the top 1/${es.reduction_factor} at epoch ${rungs[job.rung - 1]}`,
      );
    await sweep.runCell({ cell, resume: unfinished?.dir, pauseAt: top ? undefined : rungs[job.rung] });
    if ((r.status === 'PAUSED' || r.status === 'FINISHED') && r.runDir) {
      try {
        this.settle(job.cell, r.runDir);
      } catch (e) {
        if (!(e instanceof UserError)) throw e;
        Object.assign(r, { status: 'FAILED', error: e.line() });
      }
      if ((r.status as string) === 'STOPPED')
        sweep.o.log(
          `cell ${job.cell} (${sweep.shown(job.cell)}): paused at epoch ${r.rung!.epoch} (rung ${r.rung!.index + 1} of ${rungs.length}), ${es.metric} ${r.metrics[es.metric]?.toFixed(3)}`,
        );
    }
    if (r.status !== 'STOPPED' && r.status !== 'FINISHED') this.failedHere.add(job.cell);
  }
}

/**
 * The sweep's end: sweep.json rebuilt; once the whole sweep has run (not per SLURM task:
 * elbo report SWEEP_DIR writes it then), report.html (with compare.csv, the compare plots,
 * the overlaid curves and the test metrics by setting), and the MLflow parent run, which
 * carries it with sweep.json and the comparison and ends (a SLURM task does not end the
 * shared parent run).
 */
async function finishSweep(sweep: SweepRun): Promise<SweepOutcome> {
  const { o, dir, parent, stopped } = sweep;
  sweep.writeIndex();
  // with early_stop a process runs whichever cells the rung table gives it: the records say how each stands
  const final = sweep.rungs ? readSweepState(dir).cells : sweep.results;
  if (!o.cells) {
    try {
      const report = await writeSweepReport(dir);
      o.log(`report: ${path.relative(process.cwd(), report)}`);
    } catch (e) {
      o.log(`warning: could not write the sweep's report: ${(e as Caught)?.message ?? e}`);
    }
    if (parent) {
      const files = [
        'report.html',
        'sweep.json',
        'compare.csv',
        ...fs
          .readdirSync(dir)
          .filter((f) => SWEEP_FIGURES.test(f))
          .sort(),
      ];
      const failed = final.filter((r) => !cellSettled(r)).length;
      const runDirs = final.flatMap((r) => (r.runDir ? [r.runDir] : []));
      await parent.finish(failed === 0 ? 'FINISHED' : stopped || sweep.failedFast ? 'KILLED' : 'FAILED', {
        cells: final.length,
        finished: final.length - failed,
        failed,
        files,
        runDirs,
      });
    }
  }
  for (const { cell } of sweep.selected) sweep.handled.add(cell.index);
  const unfinished = stopped !== null && final.some((r) => sweep.handled.has(r.index) && !cellSettled(r) && r.status !== 'BUSY');
  const cells = o.cells ? final.filter((r) => o.cells!.includes(r.index)) : final;
  return { dir, cells, shown: new Map(cells.map((r) => [r.index, sweep.shown(r.index)])), stopped, unfinished };
}

/**
 * `--cell`'s cells: an index, or a list of indices and ranges as SLURM's `--array` takes them
 * (`3,4,6-7`), in the order given, each once. One line naming the flag otherwise.
 */
export function parseCells(text: string): number[] {
  const flag = `--cell ${text}`;
  const out: number[] = [];
  for (const part of text.split(',')) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m) throw new UserError(`'${part}' is not a cell index or range; give e.g. 3, or 3,4,6-7`, flag);
    const [a, b] = [Number(m[1]), Number(m[2] ?? m[1])];
    if (b < a) throw new UserError(`the range ${a}-${b} runs backwards; give ${b}-${a}`, flag);
    for (let i = a; i <= b; i++) if (!out.includes(i)) out.push(i);
  }
  return out;
}

/** Every cell of `cells` is one of the sweep's `count`. */
export function checkCells(cells: number[] | undefined, count: number): void {
  const bad = cells?.filter((i) => i < 0 || i >= count) ?? [];
  if (bad.length) throw new UserError(`the sweep has cells 0..${count - 1} (not ${bad.join(', ')})`, `--cell ${cells!.join(',')}`);
}
