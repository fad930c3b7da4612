import type { RunRecord } from '../contracts';

/** A run's duration_s now: since its start, or since its last resume added to what it had then. */
export function runDuration(record: RunRecord, now = Date.now()): number {
  const last = record.resumes.at(-1);
  if (last?.trained_s === undefined) return (now - Date.parse(record.start_time)) / 1000;
  return last.trained_s + (now - Date.parse(last.time)) / 1000;
}
