import { createRegistry } from './builtins';
import { Rng } from './runtime/rng';
import { UserError, type Caught } from './errors';
import { diskError } from './util/disk-errors';
import { Progress } from './track/progress';
import { enterRun, leaveRun, stopper, type ActiveRun } from './run/interrupt';
import { loadRunConfig, selectRunBackend, buildData, buildRun, nestedRuns } from './run/build';
import { resumeFromCheckpoint, type StartPoint } from './run/resume';
import { trainingState, trainRun, describeClasses } from './run/train';
import { evaluateTest } from './run/evaluate';
import { idleLabelledPerBatch, wholeDataBatch } from './train/loop';
import { openRecorder, newRecord, labelRecord, recordRun } from './run/record';
import type { RunOptions } from './run/options';

export type { RunOptions } from './run/options';
import type { RunRecord, RunStatus, PluginContext, RunResult } from './contracts';
export type { RunResult } from './contracts';

/**
 * One run: config → registry → data, model, optimizer → seeded training with
 * checkpoints → evaluators → run record. The run is recorded RUNNING from its start and
 * ends FINISHED, FAILED (error or divergence) or KILLED (interrupted), always with its
 * last checkpoint and metrics kept, and its learning curves and report.html written.
 *
 * The steps, each in its own file of src/run/: build (build.ts), train (train.ts),
 * evaluate (evaluate.ts), record (record.ts: the trackers all along, and how the run
 * ended), with resume.ts (continuing from a checkpoint) and interrupt.ts (Ctrl-C, SIGTERM).
 */
export async function runExperiment(o: RunOptions): Promise<RunResult> {
  const run = enterRun();
  try {
    return await runLocked(o, run);
  } finally {
    leaveRun(run);
  }
}

async function runLocked(o: RunOptions, run: ActiveRun): Promise<RunResult> {
  // 1. build: config, backend, data, then model, optimizer, loss weights and evaluators
  const registry = o.registry ?? createRegistry();
  const { loaded, resumeRecord, epochs } = loadRunConfig(o, registry, run);
  const { config } = loaded;
  const backend = await selectRunBackend(o, config, registry, resumeRecord);
  const tf = (await import('./runtime/tf')).getTf();
  const progress = new Progress(process.stderr, o.progress !== false, { verbose: o.verbose });
  run.progress = progress;
  const rng = new Rng(config.seed);
  const baseCtx: PluginContext = { tf, registry, rng, baseDir: loaded.baseDir };
  const data = await buildData(config, baseCtx);
  // a model may first need another run (m1m2's nested M1): it gets the run store and `elbo run`
  const runs = nestedRuns(o, loaded, registry, backend.name, progress, runExperiment);
  const parts = await buildRun(config, data, { ...baseCtx, runs });

  // the trackers (the local run store, locked, and those `tracking:` adds) and the run's record,
  // a new one or the resumed run's from its last checkpoint
  const recorder = openRecorder(config, registry, baseCtx, o, progress, run);
  const { store, warn } = recorder;
  const state = trainingState(parts, config.train.swa ? { tf, from_epoch: config.train.swa.from_epoch } : undefined);
  const { record, start }: { record: RunRecord; start: StartPoint } = resumeRecord
    ? resumeFromCheckpoint(tf, store, resumeRecord, state.all, {
        select: !!config.train.select,
        backend,
        epochs,
        warn,
        log: (m) => progress.message(m),
      })
    : { record: newRecord(store, loaded, data, backend), start: { epoch: 0, step: 0, best: null, recovered: null } };
  labelRecord(record, { dependsOn: parts.model.dependsOn, tags: o.tags, note: o.note, sweepCell: o.sweepCell });
  run.record = record;
  await recorder.start(record, loaded.yaml);
  if (start.recovered) {
    // the epoch the checkpoint holds, whose metrics line a hard stop kept from metrics.jsonl
    const { step, timestamp, ...line } = start.recovered;
    record.metrics = { ...record.metrics, ...Object.fromEntries(Object.entries(line).filter(([k]) => k !== 'epoch')) };
    await recorder.logMetrics(line, step, timestamp);
    progress.message(`recovered the metrics of epoch ${line.epoch} from its checkpoint (the run was stopped before writing them)`);
  }
  progress.message(
    `run ${store.runId}: ${config.model.kind} on ${data.name} (${data.train.n} train / ${data.val?.n ?? 0} val / ${data.test.n} test), backend ${backend.name}${backend.fallback ? ` (${backend.fallback})` : ''}, device ${backend.device ?? 'cpu'}, seed ${config.seed}`,
  );
  for (const line of describeClasses(data)) progress.message(line);
  for (const note of [
    idleLabelledPerBatch(parts.model, data, config.model.kind, config.train.labelled_per_batch),
    wholeDataBatch(parts.model, data, config.train.batch_size),
  ]) {
    if (note) warn(note);
  }

  // 4. record (at every end): run.json, report.html, the trackers finished; the state freed
  // (API users run many in one process)
  const finish = async (status: RunStatus, error: string | null, metrics: Record<string, number>) => {
    try {
      return await recordRun(recorder, status, error, metrics, config.published);
    } finally {
      state.all.forEach((v) => v.dispose());
    }
  };
  /** An error as the user reads it (a full disk or a read-only store is theirs to fix, not internal) and as it is thrown on. */
  const userFacing = (e: unknown): { error: object; line: string } => {
    const user = e instanceof UserError ? e : diskError(e);
    const error = user ?? (e instanceof Object ? e : new Error(`a non-error was thrown: ${String(e)}`));
    return { error, line: user ? user.line() : `internal error: ${(e as Caught)?.message ?? e}` };
  };
  /** A failure: recorded FAILED where the record can still be written, then the error, as the user should read it. */
  const fail = async (e: unknown, metrics: Record<string, number>): Promise<never> => {
    const { error, line } = userFacing(e);
    let result;
    try {
      result = await finish('FAILED', line, metrics);
    } catch (recordError) {
      progress.message(`warning: the run's record could not be updated to FAILED (${userFacing(recordError).line})`);
      result = { runId: store.runId, runDir: store.dir, status: 'FAILED', metrics, error: line };
    }
    throw Object.assign(error, { runResult: result });
  };
  // Ctrl-C / SIGTERM (run/interrupt.ts): stop between steps and record KILLED; a second one quits at once
  const interrupted = stopper(run, o.shouldStop);
  // --pause-at (a sweep's early stopping): the loop stops before the first step past that epoch
  const pausing = () => o.pauseAt !== undefined && record.epochs_completed >= o.pauseAt && o.pauseAt < config.train.epochs;
  const stopping = () => interrupted() || pausing();

  // 2. train
  let trained: Awaited<ReturnType<typeof trainRun>>;
  try {
    trained = await trainRun(parts, { tf, data, rng, train: config.train, state, start, recorder, progress, stopping, onEpoch: o.onEpoch });
  } catch (e) {
    return fail(e, {});
  }
  const { end, best } = trained;
  if (end.status === 'interrupted' && pausing() && !interrupted()) return finish('PAUSED', null, {});
  if (end.status === 'interrupted')
    return finish('KILLED', `interrupted in epoch ${end.epochs + 1}; resume with: elbo run --resume ${store.dir}`, {});
  if (end.status === 'diverged') return finish('FAILED', end.message, {});

  // 3. evaluate on the test split: the best epoch's parameters under train.select, else the last epoch's
  const testMetrics: Record<string, number> = {};
  try {
    const ended = await evaluateTest(parts, { tf, data, rng, registry, config, state, best, recorder, progress, stopping }, testMetrics);
    if (ended.interrupted)
      return finish('KILLED', `interrupted during evaluation; resume with: elbo run --resume ${store.dir}`, testMetrics);
    await recorder.logMetrics(testMetrics, record.global_step, Date.now());
    await recorder.uploadArtifacts();
  } catch (e) {
    return fail(e, testMetrics);
  }
  return finish('FINISHED', null, testMetrics);
}
