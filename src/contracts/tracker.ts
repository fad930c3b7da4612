import type { RunRecord } from './run';

/**
 * A tracker receives a run's events. The local run store is always on and is the
 * system of record; trackers named under `tracking:` (e.g. MLflow) receive the same
 * events. A tracker must never fail a run: errors are reported as warnings.
 */
export interface Tracker {
  name: string;
  start(record: RunRecord, configYaml: string): Promise<void>;
  logMetrics(metrics: Record<string, number>, step: number, timestamp: number): Promise<void>;
  logArtifact(localPath: string, artifactPath: string): Promise<void>;
  /**
   * Optional: the running training losses (keys train/*), every `train.log_every` steps.
   * Called between steps, so it must return at once (spool, don't send).
   */
  logStepMetrics?(metrics: Record<string, number>, step: number, timestamp: number): void;
  finish(record: RunRecord): Promise<void>;
}
