import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { readJsonFile } from '../track/run-store';
import { readLock, withLockSync } from '../util/lock';
import { writeFileAtomic } from '../util/write-atomic';
import type { RunStatus } from '../contracts';

/**
 * A sweep's state on disk, shared by every process that runs its cells (a local
 * `elbo sweep`, SLURM array tasks on several nodes):
 *
 *   sweep.json             the cells (index, label, resolved-config hash) and, for reading,
 *                          each cell's latest record; rebuilt from cells/ under a lock
 *   cells/cell-NNNN.json   one record per cell, written (atomically) only by the process
 *                          that holds the cell's lease: no process overwrites another's
 *   locks/cell-HASH.lock   the cell's lease (host, pid, heartbeat; see util/lock)
 */
/** STOPPED: stopped early by the sweep's early_stop at a rung (its run PAUSED there; promoted, it resumes). */
export type CellStatus = RunStatus | 'CACHED' | 'PENDING' | 'BUSY' | 'STOPPED';

export interface CellResult {
  index: number;
  label: string;
  /** Short: the last part of each swept key (latent=8,prior=gaussian,seed=0); the cell's MLflow run name. */
  name?: string;
  /** What the cell varies (cellAxes: base when it is an axis, the swept keys; not the seed): the keys `elbo compare` gives a sweep's rows. */
  axes?: Record<string, unknown>;
  config_sha256: string;
  /** BUSY: another process (another elbo sweep, a SLURM task) is running this cell. */
  status: CellStatus;
  runDir: string | null;
  metrics: Record<string, number>;
  seconds: number;
  error?: string;
  /** With early_stop: the highest rung the cell's run has reached (index, its epoch) and the rungs there are. */
  rung?: { index: number; epoch: number; of: number };
  /** Who ran (or runs) the cell: host, process, SLURM task; and when the record was written. */
  host?: string;
  pid?: number;
  slurm_task?: string;
  updated?: string;
}

export interface SweepIndex {
  name: string;
  file: string;
  base: string | string[];
  /** sha256 of the cells' resolved-config hashes, in order: what an emitted SLURM script checks. */
  cells_sha256: string;
  /** The sweep's early stopping (see asha.ts): what compare ranks stopped cells by. */
  early_stop?: { metric: string; mode: 'max' | 'min'; rungs: number[] };
  /** The sweep's search (see optuna.ts): the metric its trials are told, which compare ranks by. */
  search?: { kind: string; metric: string; mode: 'max' | 'min'; trials: number };
  cells: CellResult[];
}

const recordFile = (dir: string, index: number) => path.join(dir, 'cells', `cell-${String(index).padStart(4, '0')}.json`);
export const cellLeaseFile = (dir: string, configSha256: string) => path.join(dir, 'locks', `cell-${configSha256.slice(0, 16)}.lock`);

/** The SLURM array task this process is, if any (JOB_TASK). */
export function slurmTask(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.SLURM_ARRAY_JOB_ID && env.SLURM_ARRAY_TASK_ID) return `${env.SLURM_ARRAY_JOB_ID}_${env.SLURM_ARRAY_TASK_ID}`;
  return env.SLURM_JOB_ID || undefined;
}

/** Write a cell's record (the caller holds the cell's lease, or found the cell finished). */
export function writeCellRecord(dir: string, r: CellResult): void {
  const file = recordFile(dir, r.index);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const rec: CellResult = { ...r, host: os.hostname(), pid: process.pid, slurm_task: slurmTask(), updated: new Date().toISOString() };
  if (!rec.slurm_task) delete rec.slurm_task;
  writeFileAtomic(file, JSON.stringify(rec, null, 2) + '\n');
}

/** A cell's record, when it is of this cell (same resolved config). */
function readCellRecord(dir: string, cell: CellResult): CellResult | null {
  const file = recordFile(dir, cell.index);
  if (!fs.existsSync(file)) return null;
  let rec: CellResult;
  try {
    rec = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return null; // never half-written (renamed into place); unreadable means damaged: the cell shows as never run
  }
  return rec.config_sha256 === cell.config_sha256 ? rec : null;
}

/**
 * Each cell as its latest record says, or PENDING when it has none. A RUNNING record whose
 * lease nobody holds any more (the process, or its node, is gone) reads KILLED.
 */
export function mergeRecords(dir: string, cells: CellResult[]): CellResult[] {
  return cells.map((c) => {
    const rec = readCellRecord(dir, c);
    if (!rec) return { ...c, status: 'PENDING', runDir: null, metrics: {}, seconds: 0 };
    if (rec.status === 'RUNNING' && !readLock(cellLeaseFile(dir, c.config_sha256))) {
      return {
        ...rec,
        status: 'KILLED',
        error: `the process that ran it (${rec.pid} on ${rec.host}${rec.slurm_task ? `, SLURM task ${rec.slurm_task}` : ''}) is gone`,
      };
    }
    return { ...c, ...rec, label: c.label };
  });
}

/** Rewrite sweep.json from the cell records, under its lock (several processes may write it at once). */
export function writeSweepIndex(dir: string, index: Omit<SweepIndex, 'cells'> & { cells: CellResult[] }): void {
  const file = path.join(dir, 'sweep.json');
  fs.mkdirSync(path.join(dir, 'locks'), { recursive: true });
  withLockSync(path.join(dir, 'locks', 'sweep.json.lock'), () => {
    const out: SweepIndex = { ...index, cells: mergeRecords(dir, index.cells) };
    writeFileAtomic(file, JSON.stringify(out, null, 2) + '\n');
  });
}

/** A sweep directory's index with every cell's latest record (the records win over sweep.json's copy). */
export function readSweepState(dir: string): SweepIndex {
  const index = readJsonFile<SweepIndex>(path.join(dir, 'sweep.json'), 'sweep.json');
  const cells = Array.isArray(index.cells) ? index.cells : [];
  return { ...index, cells: fs.existsSync(path.join(dir, 'cells')) ? mergeRecords(dir, cells) : cells };
}

/** Whether a cell needs nothing more: finished (now or before), or stopped early by the sweep's early_stop. */
export function cellSettled(c: CellResult): boolean {
  return c.status === 'FINISHED' || c.status === 'CACHED' || c.status === 'STOPPED';
}

/**
 * The value of each key that most of `rows` have, strictly more than any other value and by
 * more than one row, when the rows have many keys (ABLATION_KEYS or more): what an ablation
 * (a zip in which each cell changes one or two of many keys) holds fixed. A full grid's
 * values are equally common, so it has none; a sweep of a few keys keeps them all (a grid
 * run in part must not lose its base config). Values compare as JSON.
 */
export function commonestValues(rows: Record<string, unknown>[]): Map<string, string> {
  if (new Set(rows.flatMap((r) => Object.keys(r))).size < ABLATION_KEYS) return new Map();
  const counts = new Map<string, Map<string, number>>();
  for (const r of rows)
    for (const [k, v] of Object.entries(r)) {
      const byValue = counts.get(k) ?? new Map<string, number>();
      const value = JSON.stringify(v);
      byValue.set(value, (byValue.get(value) ?? 0) + 1);
      counts.set(k, byValue);
    }
  const common = new Map<string, string>();
  for (const [k, byValue] of counts) {
    const [first, second] = [...byValue].sort((a, b) => b[1] - a[1]);
    if (first[1] > 1 && (!second || first[1] > second[1])) common.set(k, first[0]);
  }
  return common;
}

/** How many swept keys make a sweep read as an ablation (commonestValues). */
export const ABLATION_KEYS = 6;

/** What a sweep's list names a cell or row by when it has nothing but the commonest values. */
export const COMMONEST_SETTING = 'the commonest setting';

/**
 * Each cell's label as it differs from the sweep's commonest setting (commonestValues of the
 * cells' axes), for lists of cells (compare's and the sweep's summary): an ablation's cell
 * reads as what it changes, a grid's label stays whole. Its seed stays; cells recorded
 * without axes keep their labels.
 */
export function distinctLabels(cells: CellResult[]): Map<number, string> {
  const common = commonestValues(cells.map((c) => c.axes ?? {}));
  return new Map(
    cells.map((c) => {
      if (!c.axes) return [c.index, c.label];
      const parts = Object.entries(c.axes)
        .filter(([k, v]) => common.get(k) !== JSON.stringify(v))
        .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`);
      const seed = / (seed=\d+)$|^(seed=\d+)$/.exec(c.label);
      if (seed) parts.push(seed[1] ?? seed[2]);
      return [c.index, parts.length ? parts.join(' ') : COMMONEST_SETTING];
    }),
  );
}

/** Why a cell has no finished run, in words (for compare and the sweep's summary). */
export function whyMissing(c: CellResult): string {
  switch (c.status) {
    case 'PENDING':
      return 'never started';
    case 'RUNNING':
      return `running (process ${c.pid} on ${c.host}${c.slurm_task ? `, SLURM task ${c.slurm_task}` : ''})`;
    case 'KILLED':
      return `killed${c.error ? `: ${c.error}` : ''}; rerun the sweep to resume it`;
    case 'FAILED':
      return `failed${c.error ? `: ${c.error}` : ''}`;
    case 'STOPPED':
      return `stopped early at epoch ${c.rung?.epoch ?? '?'} (rung ${(c.rung?.index ?? 0) + 1} of ${c.rung?.of ?? '?'})`;
    default:
      return c.status.toLowerCase();
  }
}
