import type { RunStore } from '../track/run-store';
import type { Progress } from '../track/progress';
import type { RunRecord } from '../contracts';
import { runDuration } from './duration';

/**
 * Interruption: Ctrl-C or SIGTERM asks every run in this process to stop after its current
 * step (or evaluator) and record KILLED, resumable with `elbo run --resume`; a second one
 * quits at once, after writing KILLED into every run's record. One process may hold nested
 * runs (m1m2 training its M1), so the handler knows them all.
 */

/** A run in progress in this process, as the signal handler sees it. */
export interface ActiveRun {
  stopRequested: boolean;
  /** Set once the run's directory is locked (the handler writes its record and unlocks it). */
  store: RunStore | null;
  record: RunRecord | null;
  progress: Progress | null;
}

const activeRuns = new Set<ActiveRun>();
let signalled = false;

function onSignal(sig: NodeJS.Signals): void {
  if (signalled) {
    for (const r of activeRuns) {
      if (!r.store || !r.record) continue;
      try {
        r.record.status = 'KILLED';
        r.record.error = `interrupted twice (${sig}): quit at once; resume with: elbo run --resume ${r.store.dir}`;
        r.record.end_time = new Date().toISOString();
        r.record.duration_s = runDuration(r.record);
        r.store.writeRecord(r.record);
        r.store.unlock();
      } catch {
        /* quitting anyway */
      }
    }
    process.exit(130);
  }
  signalled = true;
  for (const r of activeRuns) {
    r.stopRequested = true;
    r.progress?.message(`${sig}: stopping after this step (press Ctrl-C again to quit at once)`);
  }
}

/** A new run: the signal handlers are installed while any run is active. */
export function enterRun(): ActiveRun {
  const r: ActiveRun = { stopRequested: false, store: null, record: null, progress: null };
  if (!activeRuns.size) {
    signalled = false;
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  // a run started by a run that was asked to stop (a nested M1) stops too
  if (signalled) r.stopRequested = true;
  activeRuns.add(r);
  return r;
}

/** The run is over (however it ended): its lock is released, and the handlers go with the last run. */
export function leaveRun(r: ActiveRun): void {
  activeRuns.delete(r);
  if (!activeRuns.size) {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  r.store?.unlock();
}

/** Whether the run should stop now: a signal reached it, or the API caller's `shouldStop` says so. */
export function stopper(r: ActiveRun, shouldStop?: () => boolean): () => boolean {
  return () => r.stopRequested || !!shouldStop?.();
}
