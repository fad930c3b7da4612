import * as fs from 'fs';
import * as path from 'path';
import type { LoadedConfig } from '../config/load';
import type { BackendInfo } from '../runtime/backend';
import { fingerprint } from '../runtime/fingerprint';
import { comparePublished } from '../config/metrics';
import { RunStore } from '../track/run-store';
import { LocalTracker } from '../track/local';
import { mlflowTrackersFor } from '../mlflow/tracker';
import type { Progress } from '../track/progress';
import { writeRunReport } from '../report/run';
import type { ActiveRun } from './interrupt';
import { runDuration } from './duration';
import type { RunOptions } from './options';
import type { Caught } from '../errors';
import {
  type PluginContext,
  type ExperimentConfig,
  type DataSet,
  RunRecord,
  RunStatus,
  type Tracker,
  type RunResult,
  type PluginRegistry,
} from '../contracts';

/**
 * Step 4 of a run, record, and the recording all along: every event of the run goes to
 * each tracker in turn, the local run store first (config.yaml, run.json, metrics.jsonl;
 * the system of record, whose failures fail the run), then those `tracking:`,
 * --tracking-uri or MLFLOW_TRACKING_URI add (MLflow), whose failures are warnings.
 */
export class RunRecorder {
  /** The run's record (run.json), set by start. */
  record!: RunRecord;

  constructor(
    readonly store: RunStore,
    private readonly local: LocalTracker,
    readonly trackers: Tracker[],
    readonly warn: (message: string) => void,
  ) {}

  /** `f` on every tracker: the local store's failure is thrown, another's is a warning. */
  async each(what: string, f: (t: Tracker) => Promise<void>): Promise<void> {
    for (const t of this.trackers) {
      try {
        await f(t);
      } catch (e) {
        if (t === this.local) throw e;
        this.warn(`tracker ${t.name} failed to ${what}: ${(e as Caught)?.message ?? e}`);
      }
    }
  }

  /** The run starts: config.yaml and run.json (RUNNING) written, the other trackers' runs opened. */
  async start(record: RunRecord, configYaml: string): Promise<void> {
    this.record = record;
    await this.each('start', (t) => t.start(record, configYaml));
  }

  logMetrics(metrics: Record<string, number>, step: number, timestamp: number): Promise<void> {
    return this.each('log metrics', (t) => t.logMetrics(metrics, step, timestamp));
  }

  /** Every file of artifacts/ to the trackers that upload (the local store has them already). */
  async uploadArtifacts(): Promise<void> {
    for (const f of fs.readdirSync(path.join(this.store.dir, 'artifacts'))) {
      await this.each('upload artifacts', (t) => t.logArtifact(this.store.artifact(f), f));
    }
  }

  /**
   * `progress` as the training loop reports to it, also sending the running losses
   * (train/*) to the trackers that take them, every train.log_every steps.
   */
  stepProgress(progress: Progress): Progress {
    const stepTrackers = this.trackers.filter((t) => t.logStepMetrics);
    if (!stepTrackers.length) return progress;
    const warn = this.warn;
    return Object.assign(Object.create(progress), {
      update(p: Parameters<Progress['update']>[0]) {
        progress.update(p);
        const step = (p.epoch - 1) * p.steps + p.step;
        const m = Object.fromEntries(Object.entries(p.terms).map(([k, v]) => [`train/${k}`, v]));
        for (const t of stepTrackers) {
          try {
            t.logStepMetrics!(m, step, Date.now());
          } catch (e) {
            warn(`tracker ${t.name} failed to log step metrics: ${(e as Caught)?.message ?? e}`);
          }
        }
      },
    });
  }
}

/**
 * The trackers of a run: the local store (a new run directory, or the resumed one, locked)
 * and whatever `tracking:` adds, made through the registry.
 */
export function openRecorder(
  config: ExperimentConfig,
  registry: PluginRegistry,
  ctx: PluginContext,
  o: Pick<RunOptions, 'runsDir' | 'resume' | 'trackingUri'>,
  progress: Progress,
  run: ActiveRun,
): RunRecorder {
  const localOpts = config.tracking.find((t) => t.kind === 'local') ?? { kind: 'local', dir: 'runs' };
  const trackerCtx = { ...ctx, runsDir: o.runsDir, resumeDir: o.resume, experiment: config.experiment, trackingUri: o.trackingUri };
  const warn = (msg: string) => progress.message(`warning: ${msg}`);
  // --tracking-uri, MLFLOW_TRACKING_URI or a resumed MLflow run add an mlflow tracker
  const extra = mlflowTrackersFor(config.tracking, { trackingUri: o.trackingUri, resumeDir: o.resume });
  extra.warnings.forEach(warn);
  const local = registry.create('tracker', localOpts, trackerCtx);
  if (!(local instanceof LocalTracker)) throw new Error(`the local tracker plugin made a ${local.name} tracker`);
  const store = local.store;
  store.lock();
  run.store = store;
  const otherCtx = { ...trackerCtx, runDir: store.dir, warn };
  const others = [...config.tracking.filter((t) => t.kind !== 'local'), ...extra.trackers].map((t) =>
    registry.create('tracker', t, otherCtx),
  );
  return new RunRecorder(store, local, [local, ...others], warn);
}

/** The record of a new run, RUNNING from now. */
export function newRecord(store: RunStore, loaded: LoadedConfig, data: DataSet, backend: BackendInfo): RunRecord {
  const { config } = loaded;
  return {
    run_id: store.runId,
    experiment: config.experiment,
    status: 'RUNNING',
    seed: config.seed,
    backend,
    fingerprint: fingerprint(loaded.baseDir),
    config_file: path.resolve(loaded.file),
    ...(loaded.bases.length ? { config_bases: loaded.bases } : {}),
    config_dir: loaded.baseDir,
    config_sha256: loaded.sha256,
    data: { name: data.name, source: data.source, sha256: data.sha256, train: data.train.n, val: data.val?.n ?? 0, test: data.test.n },
    start_time: new Date().toISOString(),
    end_time: null,
    duration_s: null,
    epochs_completed: 0,
    epochs_planned: config.train.epochs,
    global_step: 0,
    error: null,
    resumes: [],
    metrics: {},
  };
}

/** The run's labels: the runs it depends on, the sweep cell it is, and the user's tags and note (a resumed run keeps its own; a new note replaces the old). */
export function labelRecord(
  record: RunRecord,
  o: { dependsOn?: RunRecord['depends_on']; tags?: Record<string, string>; note?: string; sweepCell?: RunRecord['sweep'] },
): void {
  if (o.dependsOn) record.depends_on = o.dependsOn;
  if (o.sweepCell) record.sweep = o.sweepCell;
  if (o.tags && Object.keys(o.tags).length) record.tags = { ...record.tags, ...o.tags };
  if (o.note) record.note = o.note;
}

/**
 * Step 4 of a run, record: how it ended (FINISHED, FAILED or KILLED, with the error and the
 * test metrics so far) into run.json, the published numbers compared (FINISHED runs), the
 * learning curves and report.html written into artifacts/, and every tracker finished.
 */
export async function recordRun(
  recorder: RunRecorder,
  status: RunStatus,
  error: string | null,
  exitMetrics: Record<string, number>,
  published: ExperimentConfig['published'],
): Promise<RunResult> {
  const { record, store } = recorder;
  record.status = status;
  record.error = error;
  record.end_time = new Date().toISOString();
  record.duration_s = runDuration(record);
  record.metrics = { ...record.metrics, ...exitMetrics };
  if (status === 'FINISHED' && published) record.published = comparePublished(published, record.metrics);
  // the learning curves and report.html, in artifacts/: the trackers' finish uploads them with the
  // rest; how the run ended is on disk first, since drawing takes a moment
  store.writeRecord(record);
  try {
    await writeRunReport(store.dir, { record });
  } catch (e) {
    recorder.warn(`could not write the run's report: ${(e as Caught)?.message ?? e}`);
  }
  await recorder.each('finish', (t) => t.finish(record));
  return {
    runId: record.run_id,
    runDir: store.dir,
    status,
    metrics: record.metrics,
    ...(error ? { error } : {}),
    ...(record.evaluated_on ? { evaluatedOn: record.evaluated_on } : {}),
    ...(record.selected ? { selected: record.selected } : {}),
    ...(record.published ? { published: record.published } : {}),
  };
}
