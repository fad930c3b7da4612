import * as path from 'path';
import { definePlugin, Type, type OptionsOf } from '../registry/define';
import { RunStore } from './run-store';
import { RunRecord, type Tracker } from '../contracts';

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

const localTrackerOptions = {
  dir: Type.String({ default: 'runs', description: 'Root of the run store, relative to the current directory' }),
};
export type LocalTrackerOptions = OptionsOf<typeof localTrackerOptions>;

export const localTrackerPlugin = definePlugin({
  kind: 'tracker',
  name: 'local',
  description: 'The local run store runs/<experiment>/<runId>/ (always on; --runs-dir overrides dir)',
  options: localTrackerOptions,
  create(o, ctx) {
    const resume = ctx.resumeDir;
    if (resume) return new LocalTracker(RunStore.open(resume));
    const root = path.resolve(ctx.runsDir ?? o.dir);
    return new LocalTracker(RunStore.create(root, ctx.experiment));
  },
});
