import * as fs from 'fs';
import * as path from 'path';
import { allRuns, effectiveStatus, readJsonFile } from '../track/run-store';
import { readSweepState } from '../sweep/state';
import { readMetricLines } from '../report/run';
import { Spool } from '../mlflow/spool';
import { UserError, suggestion } from '../errors';
import type { RunRecord, RunStatus, SweepCellLabel } from '../contracts';

/** What `elbo runs list` and `elbo runs show` know of one run. */
export interface ListedRun {
  dir: string;
  record: RunRecord;
  /** A RUNNING record whose process is gone reads KILLED. */
  status: RunStatus;
}

const STATUSES: RunStatus[] = ['RUNNING', 'FINISHED', 'FAILED', 'KILLED', 'PAUSED'];

export interface RunFilter {
  experiment?: string;
  status?: string;
  /** KEY=VALUE (the tag has this value) or KEY (the run has the tag). */
  tags: string[];
}

/** The runs of the store that pass every filter, oldest first; damaged records are reported to `warn`. */
export function listRuns(runsDir: string, f: RunFilter, warn: (m: string) => void): ListedRun[] {
  if (!fs.existsSync(runsDir) || !fs.statSync(runsDir).isDirectory())
    throw new UserError('no run store here; give the runs directory with --runs-dir', runsDir);
  const runs = allRuns(runsDir, (_dir, e) => warn(`${e.line()}; left out`)).map(({ dir, record }) => ({
    dir,
    record,
    status: effectiveStatus(dir, record),
  }));
  let status: RunStatus | undefined;
  if (f.status !== undefined) {
    status = f.status.toUpperCase() as RunStatus;
    if (!STATUSES.includes(status))
      throw new UserError(`no status '${f.status}'${suggestion(f.status.toUpperCase(), STATUSES)}`, '--status');
  }
  if (f.experiment !== undefined) {
    const names = [...new Set(runs.map((r) => r.record.experiment))].sort();
    if (!names.includes(f.experiment))
      throw new UserError(`no experiment '${f.experiment}' in ${runsDir}${suggestion(f.experiment, names)}`, '--experiment');
  }
  const tagTests = f.tags.map((t) => {
    const eq = t.indexOf('=');
    if (eq === 0 || !t.trim()) throw new UserError('a tag filter is KEY=VALUE or KEY', `--tag ${t}`);
    return eq < 0 ? (r: RunRecord) => !!r.tags && t in r.tags : (r: RunRecord) => r.tags?.[t.slice(0, eq)] === t.slice(eq + 1);
  });
  return runs.filter(
    (r) =>
      (f.experiment === undefined || r.record.experiment === f.experiment) &&
      (!status || r.status === status) &&
      tagTests.every((test) => test(r.record)),
  );
}

/** A run given as its directory or its id (found in the store). */
export function findRun(runsDir: string, given: string, warn: (m: string) => void): ListedRun {
  if (fs.existsSync(path.join(given, 'run.json'))) {
    const record = readJsonFile<RunRecord>(path.join(given, 'run.json'), 'run.json');
    return { dir: path.resolve(given), record, status: effectiveStatus(given, record) };
  }
  if (!fs.existsSync(runsDir))
    throw new UserError(`not a run directory, and there is no run store at ${runsDir} to look the id up in (give --runs-dir)`, given);
  const runs = listRuns(runsDir, { tags: [] }, warn);
  const hits = runs.filter((r) => r.record.run_id === given || r.record.run_id.endsWith(given));
  if (hits.length === 1) return hits[0];
  if (hits.length > 1)
    throw new UserError(
      `${hits.length} runs end with '${given}' (${hits.map((h) => h.record.run_id).join(', ')}); give more of the id`,
      given,
    );
  throw new UserError(
    `no run with this id or directory in ${runsDir}${suggestion(
      given,
      runs.map((r) => r.record.run_id),
    ).replace(/ \(allowed: .*\)$/, '')}`,
    given,
  );
}

/** The metric a listing shows: test/elbo when any run has it, else the first test metric, else train/loss. */
export function keyMetricOf(records: RunRecord[]): string {
  const keys = new Set(records.flatMap((r) => Object.keys(r.metrics ?? {})));
  return keys.has('test/elbo') ? 'test/elbo' : ([...keys].filter((k) => k.startsWith('test/')).sort()[0] ?? 'train/loss');
}

/** The run's MLflow side, from its spool: where it goes, its run id, and what is not sent yet. */
export function mlflowState(
  dir: string,
): { tracking_uri: string; experiment: string; run_id: string | null; pending: number; waiting: string | null } | null {
  if (!Spool.exists(dir)) return null;
  const s = Spool.open(dir);
  // waiting: why files wait for their artifact location (they are part of pending)
  return {
    tracking_uri: s.state.tracking_uri,
    experiment: s.state.experiment_name,
    run_id: s.state.run_id ?? null,
    pending: s.pending().length,
    waiting: s.state.deferred?.[0]?.error ?? null,
  };
}

/** A number as a listing shows it: 4 decimals, or 4 significant digits when small. */
export function shortNumber(v: number): string {
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(3) : v.toFixed(4);
}

/** `s` cut to `n` characters (… at the end). */
export function fit(s: string, n: number): string {
  return s.length <= n ? s : s.slice(0, Math.max(0, n - 1)) + '…';
}

/**
 * `  cell I (LABEL): WHY` within `width` columns where it can: a long label (a zip of many
 * keys) is cut (…), never below 24 characters, and the why is kept whole (`elbo sweep
 * --dry-run` lists the labels in full).
 */
export function cellLine(index: number, label: string, why: string, width = 80): string {
  const rest = `  cell ${index} (): ${why}`.length;
  return `  cell ${index} (${fit(label, Math.max(24, width - rest))}): ${why}`;
}

/**
 * The sweep cell a run is: from its run.json (`sweep`, recorded since elbo sweep passes it),
 * else, for a run of an older sweep, from the sweep directory it lies in
 * (SWEEP/runs/EXPERIMENT/RUN_ID, with SWEEP/sweep.json naming it as a cell's run). Null for
 * a run that is no sweep's cell. `cache`: sweep states already read, by directory.
 */
export function sweepCellOf(
  run: { dir: string; record: RunRecord },
  cache = new Map<string, ReturnType<typeof readSweepState> | null>(),
): SweepCellLabel | null {
  if (run.record.sweep) return run.record.sweep;
  const dir = path.resolve(run.dir);
  const sweepDir = path.dirname(path.dirname(path.dirname(dir)));
  if (path.basename(path.dirname(path.dirname(dir))) !== 'runs' || !fs.existsSync(path.join(sweepDir, 'sweep.json'))) return null;
  if (!cache.has(sweepDir)) {
    try {
      cache.set(sweepDir, readSweepState(sweepDir));
    } catch {
      cache.set(sweepDir, null); // a damaged sweep.json: the run is listed without its cell
    }
  }
  const state = cache.get(sweepDir);
  const cell = state?.cells.find((c) => c.runDir && path.resolve(c.runDir) === dir);
  return state && cell ? { name: state.name, dir: sweepDir, cell: cell.index, label: cell.label, short: cell.name ?? cell.label } : null;
}

/**
 * A training run's pace from its metrics.jsonl: the (lower) median time between the ends of its last
 * (up to 10) consecutive epochs (a resume's gap falls out as an outlier), and the epochs left
 * at that pace. Null before two epochs have ended.
 */
export function runPace(
  dir: string,
  record: Pick<RunRecord, 'epochs_completed' | 'epochs_planned'>,
): { epochS: number; leftS: number } | null {
  const ends = new Map<number, number>();
  for (const l of readMetricLines(dir)) if (typeof l.epoch === 'number' && typeof l.timestamp === 'number') ends.set(l.epoch, l.timestamp);
  const gaps: number[] = [];
  for (const [epoch, t] of ends) {
    const before = ends.get(epoch - 1);
    if (before !== undefined && t > before) gaps.push((t - before) / 1000);
  }
  const last = gaps.slice(-10).sort((a, b) => a - b);
  if (!last.length) return null;
  const epochS = last[Math.floor((last.length - 1) / 2)];
  return { epochS, leftS: epochS * Math.max(0, record.epochs_planned - record.epochs_completed) };
}
