import * as fs from 'fs';
import * as path from 'path';
import type * as tfc from '@tensorflow/tfjs-core';
import { UserError } from '../errors';
import { RunStore } from '../track/run-store';
import { loadCheckpoint } from '../track/checkpoint';
import type { BackendInfo } from '../runtime/backend';
import type { ActiveRun } from './interrupt';
import { RunRecord, Selected } from '../contracts';
import { restrictOverrides } from '../config/load';
import { runDuration } from './duration';

/**
 * Resuming a run (`elbo run --resume RUN_DIR`): the run directory is locked before anything
 * is read, its record is checked, and training goes on from its last complete checkpoint
 * exactly as an uninterrupted run would (the loop's draws are forked by epoch).
 */

/**
 * Lock a run directory to resume it and read its record: refused when it is not a run, when
 * it already finished and is not trained on (--set train.epochs=N), or when --set / --seed
 * would change anything else of its config.
 */
export function openResumedRun(dir: string, o: { overrides?: string[]; seed?: number }, run: ActiveRun): RunRecord {
  const runJson = path.join(dir, 'run.json');
  if (!fs.existsSync(runJson)) throw new UserError('not a run directory (no run.json); give runs/<experiment>/<runId>', dir);
  const trainOn = checkResumeOverrides(o.overrides, o.seed);
  // one process at a time resumes (or trains) a run: the lock comes before anything is read
  const store = RunStore.open(dir);
  store.lock();
  run.store = store;
  const record = store.readRecord();
  if (record.status === 'FINISHED' && !trainOn)
    throw new UserError(
      `this run already finished (${record.epochs_completed} epochs); to train it on, add --set train.epochs=N with N > ${record.epochs_completed}`,
      dir,
    );
  return record;
}

/**
 * The one change --resume takes to the recorded config: `--set train.epochs=N`, training the
 * run on to epoch N (a FINISHED run too). Nothing of the training before depends on
 * train.epochs (schedules are written in epochs; the draws are forked by epoch), so the run
 * reaches the numbers of one trained for N epochs from the start. Returns whether it is given.
 */
export function checkResumeOverrides(overrides: string[] | undefined, seed: number | undefined): boolean {
  if (seed !== undefined) throw new UserError('--resume continues the recorded config and seed; --seed cannot change it', '--seed');
  restrictOverrides(
    overrides ?? [],
    (key, remove) => !remove && key === 'train.epochs',
    () => '--resume continues the recorded config; the one --set it takes is train.epochs=N (train on to epoch N)',
  );
  return !!overrides?.length;
}

/** With --set train.epochs=N on --resume: N against the epochs the run has trained (it must train on). */
export function checkEpochsPlanned(record: RunRecord, epochs: number): { from: number; to: number } {
  const done = record.epochs_completed;
  if (epochs < done || (record.status === 'FINISHED' && epochs === done))
    throw new UserError(
      `train.epochs=${epochs} is not past the ${done} epochs this run has trained; give N > ${done}`,
      '--set train.epochs',
    );
  return { from: record.epochs_planned, to: epochs };
}

/** Where training starts: epoch and step, the best epoch so far under train.select. */
export interface StartPoint {
  epoch: number;
  step: number;
  best: Selected | null;
  /** A metrics line recovered from the checkpoint a resume starts at (killed before it was appended). */
  recovered: Record<string, number> | null;
}

/**
 * The resumed run's record and start point: its last complete checkpoint loaded into
 * `state` (parameters and optimizer state), metrics.jsonl cut back to that epoch, and the
 * resume noted in the record (a RUNNING record whose process is gone was killed hard).
 */
export function resumeFromCheckpoint(
  tf: typeof tfc,
  store: RunStore,
  previous: RunRecord,
  state: Map<string, tfc.Variable>,
  o: {
    select: boolean;
    backend: BackendInfo;
    /** --set train.epochs=N: the planned epochs before and after, and the config's new sha256. */
    epochs?: { from: number; to: number; sha256: string };
    warn(message: string): void;
    log(message: string): void;
  },
): { record: RunRecord; start: StartPoint } {
  const record: RunRecord = {
    ...previous,
    // a FINISHED run trained on: its test metrics are measured again at the new end
    metrics: previous.status === 'FINISHED' ? without(previous.metrics, 'test/') : previous.metrics,
    ...(o.epochs ? { epochs_planned: o.epochs.to, config_sha256: o.epochs.sha256 } : {}),
    status: 'RUNNING',
    end_time: null,
    duration_s: null,
    error: null,
    evaluated_on: undefined,
    published: undefined,
  };
  const start: StartPoint = { epoch: 0, step: 0, best: null, recovered: null };
  const lines = store.readMetrics();
  // what the run had trained before: its duration, or (killed hard, none recorded) its duration
  // at its last metrics line
  const lastAt = lines.at(-1)?.timestamp;
  const trained = previous.duration_s ?? (lastAt !== undefined ? runDuration(previous, lastAt) : undefined);
  const last = store.checkpoints().at(-1);
  if (last) {
    const m = loadCheckpoint(tf, last.dir, state);
    start.epoch = m.epoch;
    start.step = m.global_step;
    if (m.metrics && !lines.some((l) => l.epoch === m.epoch)) start.recovered = m.metrics;
    if (o.select) {
      if (!m.selected)
        throw new UserError(
          'this checkpoint has no best-so-far record for train.select (written by an older elbo?); start the run afresh',
          last.dir,
        );
      start.best = m.selected;
    }
  }
  record.selected = start.best ?? undefined;
  store.truncateMetrics(start.epoch);
  record.epochs_completed = start.epoch;
  record.global_step = start.step;
  // a RUNNING record whose process is gone (we hold its lock) was killed hard: it resumes as KILLED
  const status = previous.status === 'RUNNING' ? 'KILLED' : previous.status;
  record.resumes = [
    ...(record.resumes ?? []),
    {
      time: new Date().toISOString(),
      from_epoch: start.epoch,
      backend: o.backend.name,
      previous_status: status,
      ...(o.epochs ? { epochs: { from: o.epochs.from, to: o.epochs.to } } : {}),
      ...(trained !== undefined ? { trained_s: trained } : {}),
      ...(previous.status === 'RUNNING'
        ? { recovered: 'the run was RUNNING but its process was gone (killed hard): recovered as KILLED' }
        : {}),
    },
  ];
  if (o.backend.name !== previous.backend.name) {
    o.warn(`resuming on backend ${o.backend.name}, the run started on ${previous.backend.name}: numbers may differ in the last digits`);
  }
  record.backend = o.backend;
  o.log(`resuming ${store.dir} from epoch ${start.epoch}${o.epochs ? ` (train.epochs ${o.epochs.from} → ${o.epochs.to})` : ''}`);
  return { record, start };
}

/** `metrics` without the keys that start with `prefix`. */
function without(metrics: Record<string, number>, prefix: string): Record<string, number> {
  return Object.fromEntries(Object.entries(metrics).filter(([k]) => !k.startsWith(prefix)));
}
