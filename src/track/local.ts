import * as path from 'path';
import type { Plugin } from '../registry/types';
import { RunStore, LocalTrackerOptions, RunRecord } from './run-store';
import type { Tracker } from './tracker';

/**
 * The local run store as a tracker: always on (added when `tracking:` does not name it),
 * it writes config.yaml, run.json and metrics.jsonl into runs/<experiment>/<runId>/.
 * Artifacts and checkpoints are written straight into the same directory.
 */
export class LocalTracker implements Tracker {
  name = 'local';
  constructor(readonly store: RunStore) {}
  async start(record: RunRecord, configYaml: string): Promise<void> {
    this.store.writeAtomic('config.yaml', configYaml);
    this.store.writeRecord(record);
  }
  async logMetrics(metrics: Record<string, number>, step: number, timestamp: number): Promise<void> {
    this.store.appendMetrics({ step, timestamp, ...metrics });
  }
  async logArtifact(): Promise<void> {
    /* artifacts are already in the run directory */
  }
  async finish(record: RunRecord): Promise<void> {
    this.store.writeRecord(record);
  }
}

export const localTracker: Plugin<LocalTrackerOptions, LocalTracker> = {
  kind: 'tracker',
  name: 'local',
  description: 'The local run store runs/<experiment>/<runId>/ (always on; --runs-dir overrides dir)',
  schema: {
    properties: {
      dir: { type: 'string', default: 'runs', description: 'Root of the run store, relative to the current directory' },
    },
  },
  create(o, ctx) {
    const resume = ctx.resumeDir as string | undefined;
    if (resume) return new LocalTracker(RunStore.open(resume));
    const root = path.resolve((ctx.runsDir as string | undefined) ?? o.dir);
    return new LocalTracker(RunStore.create(root, ctx.experiment as string));
  },
};
