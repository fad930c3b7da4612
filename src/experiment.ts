import * as path from 'path';
import * as fs from 'fs';
import type * as tfc from '@tensorflow/tfjs-core';
import { Registry } from './registry/registry';
import { createRegistry } from './builtins';
import { loadConfig, LoadedConfig } from './config/load';
import { selectBackend, BackendConstraint } from './runtime/backend';
import { PLUGIN_KINDS, withOptionDefaults } from './registry/types';
import { fingerprint } from './runtime/fingerprint';
import { Rng } from './runtime/rng';
import { UserError } from './errors';
import type { DataSet } from './data/dataset';
import { classHistogram } from './data/splits';
import type { Model } from './models/model';
import type { Optimizer } from './train/optimizer';
import { weightSchedule } from './schedules/schedule';
import { STANDARD_WEIGHTS, unitWeights, weightNames, type StandardWeight } from './registry/weights';
import { trainLoop, LoopEnd } from './train/loop';
import { saveCheckpoint, loadCheckpoint, Selected } from './track/checkpoint';
import { comparePublished, modelTerms, PublishedComparison } from './config/metrics';
import type { Evaluator } from './eval/evaluator';
import { RunRecord, RunStatus, RunStore } from './track/run-store';
import { faultPoint } from './util/fault';
import { LocalTracker, localTracker } from './track/local';
import { mlflowTrackersFor } from './track/mlflow';
import type { Tracker } from './track/tracker';
import { writeRunReport } from './report/run';
import type { CompileMode } from './eval/compiled';
import { Progress } from './track/progress';
import type { PluginContext, NestedRuns } from './registry/types';
import type { ExperimentConfig } from './config/types';
import type { Schedule } from './schedules/schedule';

export interface RunOptions {
  /** Config file (not with `resume`). */
  config?: string;
  /** The config's YAML text, when it is not read from `config` (which then only names it). */
  text?: string;
  overrides?: string[];
  seed?: number;
  backend?: string;
  runsDir?: string;
  /** A run directory to continue from its last checkpoint. */
  resume?: string;
  /** Directory relative paths in the config resolve against (default: the config's own). */
  baseDir?: string;
  /** Progress output on stderr (default true). */
  progress?: boolean;
  registry?: Registry;
  /** Called after each epoch's checkpoint (API users, tests). */
  onEpoch?: (epoch: number, metrics: Record<string, number>, tf: typeof tfc) => void;
  /** Stop as if interrupted once this returns true (API users; the CLI uses SIGINT/SIGTERM). */
  shouldStop?: () => boolean;
  /** MLflow tracking server (--tracking-uri): turns the mlflow tracker on, overrides the config's tracking_uri. */
  trackingUri?: string;
  /** The user's labels for the run (`--tag K=V`), recorded in run.json and sent to MLflow as tags. */
  tags?: Record<string, string>;
  /** What the run is for (`--note TEXT`), recorded in run.json and in MLflow's run description. */
  note?: string;
}

export interface RunResult {
  runId: string;
  runDir: string;
  status: RunStatus;
  metrics: Record<string, number>;
  error?: string;
  /** Which parameters the test metrics come from (absent when the run ended before evaluating). */
  evaluatedOn?: { checkpoint: 'best' | 'last'; epoch: number };
  /** train.select: the selected epoch and its metric value. */
  selected?: Selected;
  /** The config's published numbers against the measured ones (FINISHED runs). */
  published?: PublishedComparison[];
}

function loadForRun(o: RunOptions, registry: Registry, run: ActiveRun): { loaded: LoadedConfig; resumeRecord?: RunRecord } {
  if (o.resume) {
    const runJson = path.join(o.resume, 'run.json');
    if (!fs.existsSync(runJson)) throw new UserError('not a run directory (no run.json); give runs/<experiment>/<runId>', o.resume);
    // one process at a time resumes (or trains) a run: the lock comes before anything is read
    const store = RunStore.open(o.resume);
    store.lock();
    run.store = store;
    const record = store.readRecord();
    if (record.status === 'FINISHED') throw new UserError('this run already finished; nothing to resume', o.resume);
    if (o.overrides?.length || o.seed !== undefined) {
      throw new UserError('--resume continues the recorded config; --set and --seed cannot change it', '--resume');
    }
    const file = path.join(o.resume, 'config.yaml');
    return { loaded: loadConfig(file, [], registry, { baseDir: record.config_dir }), resumeRecord: record };
  }
  if (!o.config) throw new UserError('give a config file (e.g. configs/quickstart.yaml) or --resume RUN_DIR', 'elbo run');
  const overrides = [...(o.overrides ?? [])];
  if (o.seed !== undefined) overrides.push(`seed=${o.seed}`);
  return { loaded: loadConfig(o.config, overrides, registry, { baseDir: o.baseDir, text: o.text }) };
}

/**
 * One run: config → registry → data, model, optimizer → seeded training with
 * checkpoints → evaluators → run record. The run is recorded RUNNING from its start and
 * ends FINISHED, FAILED (error or divergence) or KILLED (interrupted), always with its
 * last checkpoint and metrics kept, and its learning curves and report.html written.
 */
export async function runExperiment(o: RunOptions): Promise<RunResult> {
  const run: ActiveRun = { stopRequested: false, store: null, record: null, progress: null };
  enterRun(run);
  try {
    return await runLocked(o, run);
  } finally {
    leaveRun(run);
    run.store?.unlock();
  }
}

/**
 * A run in progress in this process, as the signal handler sees it. Ctrl-C or SIGTERM asks
 * every run to stop after its current step (or evaluator) and record KILLED; a second one
 * quits at once, after writing KILLED into every run's record (one process may hold nested
 * runs: m1m2 training its M1).
 */
interface ActiveRun {
  stopRequested: boolean;
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
        r.record.duration_s = (Date.now() - Date.parse(r.record.start_time)) / 1000;
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

function enterRun(r: ActiveRun): void {
  if (!activeRuns.size) {
    signalled = false;
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  // a run started by a run that was asked to stop (a nested M1) stops too
  if (signalled) r.stopRequested = true;
  activeRuns.add(r);
}

function leaveRun(r: ActiveRun): void {
  activeRuns.delete(r);
  if (!activeRuns.size) {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function runLocked(o: RunOptions, run: ActiveRun): Promise<RunResult> {
  const registry = o.registry ?? createRegistry();
  const { loaded, resumeRecord } = loadForRun(o, registry, run);
  const { config } = loaded;
  // --backend chooses where this run executes; the config's `backend` is the default.
  // It is not written into the config, so the config (and its hash) stays what was asked.
  // A resumed run continues on the backend it ran on, so its numbers stay comparable.
  const backendFlag = o.backend ?? resumeRecord?.backend.name ?? config.backend;
  const backend = await selectBackend(backendFlag, o.backend ? '--backend' : 'backend', backendConstraint(config, registry));
  const tf = (await import('./runtime/tf')).getTf();
  const progress = new Progress(process.stderr, o.progress !== false);
  run.progress = progress;

  const rng = new Rng(config.seed);
  const baseCtx: PluginContext = { tf, registry, rng, baseDir: loaded.baseDir };
  const data: DataSet = await registry.create('dataset', config.data, { ...baseCtx, rng: rng.fork('data') });
  // a model may first need another run (m1m2's nested M1): it gets the run store and `elbo run`
  const runs = nestedRuns(o, loaded, config, registry, backend.name, progress);
  const { model, optimizer, weights, evaluators } = await buildRun(config, data, { ...baseCtx, runs });

  // trackers: the local store (always) and whatever `tracking:` adds
  const localOpts = config.tracking.find((t) => t.kind === 'local') ?? { kind: 'local', dir: 'runs' };
  const trackerCtx = { ...baseCtx, runsDir: o.runsDir, resumeDir: o.resume, experiment: config.experiment, trackingUri: o.trackingUri };
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
  const trackers: Tracker[] = [local, ...[...config.tracking.filter((t) => t.kind !== 'local'), ...extra.trackers].map((t) => registry.create('tracker', t, otherCtx))];
  const each = async (what: string, f: (t: Tracker) => Promise<void>) => {
    for (const t of trackers) {
      try {
        await f(t);
      } catch (e: any) {
        if (t === local) throw e;
        warn(`tracker ${t.name} failed to ${what}: ${e?.message ?? e}`);
      }
    }
  };

  const modelState = new Map<string, tfc.Variable>();
  for (const [k, v] of model.params) modelState.set(`model/${k}`, v);
  const allState = new Map<string, tfc.Variable>(modelState);
  for (const [k, v] of optimizer.state) allState.set(`optimizer/${k}`, v);
  // train.select: the best epoch so far; restored from the checkpoint a resumed run starts at
  const select = config.train.select;
  let best: Selected | null = null;

  const started = Date.now();
  let record: RunRecord;
  let startEpoch = 0;
  let startStep = 0;
  /** A metrics line recovered from the checkpoint a resume starts at (killed before it was appended). */
  let recovered: Record<string, number> | null = null;
  if (resumeRecord) {
    record = { ...resumeRecord, status: 'RUNNING', end_time: null, duration_s: null, error: null, evaluated_on: undefined, published: undefined };
    const last = store.checkpoints().at(-1);
    if (last) {
      const m = loadCheckpoint(tf, last.dir, allState);
      startEpoch = m.epoch;
      startStep = m.global_step;
      if (m.metrics && !store.readMetrics().some((l) => l.epoch === m.epoch)) recovered = m.metrics;
      if (select) {
        if (!m.selected) throw new UserError('this checkpoint has no best-so-far record for train.select (written by an older elbo?); start the run afresh', last.dir);
        best = m.selected;
      }
    }
    record.selected = best ?? undefined;
    store.truncateMetrics(startEpoch);
    record.epochs_completed = startEpoch;
    record.global_step = startStep;
    // a RUNNING record whose process is gone (we hold its lock) was killed hard: it resumes as KILLED
    const previous = resumeRecord.status === 'RUNNING' ? 'KILLED' : resumeRecord.status;
    record.resumes = [
      ...(record.resumes ?? []),
      { time: new Date().toISOString(), from_epoch: startEpoch, backend: backend.name, previous_status: previous, ...(resumeRecord.status === 'RUNNING' ? { recovered: 'the run was RUNNING but its process was gone (killed hard): recovered as KILLED' } : {}) },
    ];
    if (backend.name !== resumeRecord.backend.name) {
      warn(`resuming on backend ${backend.name}, the run started on ${resumeRecord.backend.name}: numbers may differ in the last digits`);
    }
    record.backend = backend;
    progress.message(`resuming ${store.dir} from epoch ${startEpoch}`);
  } else {
    record = {
      run_id: store.runId,
      experiment: config.experiment,
      status: 'RUNNING',
      seed: config.seed,
      backend,
      fingerprint: fingerprint(loaded.baseDir),
      config_file: path.resolve(loaded.file),
      config_dir: loaded.baseDir,
      config_sha256: loaded.sha256,
      data: { name: data.name, source: data.source, sha256: data.sha256, train: data.train.n, val: data.val?.n ?? 0, test: data.test.n },
      start_time: new Date(started).toISOString(),
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
  if (model.dependsOn) record.depends_on = model.dependsOn;
  // a resumed run keeps its labels; new ones are added (a new note replaces the old)
  if (o.tags && Object.keys(o.tags).length) record.tags = { ...record.tags, ...o.tags };
  if (o.note) record.note = o.note;
  run.record = record;
  await each('start', (t) => t.start(record, loaded.yaml));
  if (recovered) {
    // the epoch the checkpoint holds, whose metrics line a hard stop kept from metrics.jsonl
    const { step, timestamp, ...line } = recovered;
    record.metrics = { ...record.metrics, ...Object.fromEntries(Object.entries(line).filter(([k]) => k !== 'epoch')) };
    await each('log metrics', (t) => t.logMetrics(line, step, timestamp));
    progress.message(`recovered the metrics of epoch ${line.epoch} from its checkpoint (the run was stopped before writing them)`);
  }
  progress.message(
    `run ${store.runId}: ${config.model.kind} on ${data.name} (${data.train.n} train / ${data.val?.n ?? 0} val / ${data.test.n} test), backend ${backend.name}${backend.fallback ? ` (${backend.fallback})` : ''}, seed ${config.seed}`,
  );

  for (const line of describeClasses(data)) progress.message(line);

  // Ctrl-C / SIGTERM (see onSignal): stop between steps and record KILLED; a second one quits at once
  const stopping = () => run.stopRequested || !!o.shouldStop?.();

  const finish = async (status: RunStatus, error: string | null, exitMetrics: Record<string, number>) => {
    record.status = status;
    record.error = error;
    record.end_time = new Date().toISOString();
    record.duration_s = (Date.now() - Date.parse(record.start_time)) / 1000;
    record.metrics = { ...record.metrics, ...exitMetrics };
    if (status === 'FINISHED' && config.published) record.published = comparePublished(config.published, record.metrics);
    // the learning curves and report.html, in artifacts/: the trackers' finish uploads them with the
    // rest; how the run ended is on disk first, since drawing takes a moment
    store.writeRecord(record);
    try {
      await writeRunReport(store.dir, { record });
    } catch (e: any) {
      warn(`could not write the run's report: ${e?.message ?? e}`);
    }
    await each('finish', (t) => t.finish(record));
    // the run is over: free its parameters and optimizer state (API users run many in one process)
    allState.forEach((v) => v.dispose());
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
  };

  // trackers that take them get the running losses every train.log_every steps
  const stepTrackers = trackers.filter((t) => t.logStepMetrics);
  const loopProgress: Progress = stepTrackers.length
    ? Object.assign(Object.create(progress), {
        update(p: Parameters<Progress['update']>[0]) {
          progress.update(p);
          const step = (p.epoch - 1) * p.steps + p.step;
          const m = Object.fromEntries(Object.entries(p.terms).map(([k, v]) => [`train/${k}`, v]));
          for (const t of stepTrackers) {
            try {
              t.logStepMetrics!(m, step, Date.now());
            } catch (e: any) {
              warn(`tracker ${t.name} failed to log step metrics: ${e?.message ?? e}`);
            }
          }
        },
      })
    : progress;

  let end: LoopEnd;
  try {
    end = await trainLoop(
      tf,
      model,
      data,
      optimizer,
      weights,
      rng.fork('train'),
      {
        epochs: config.train.epochs,
        batchSize: config.train.batch_size,
        logEvery: config.train.log_every,
        stepsPerEpoch: config.train.steps_per_epoch,
        labelledPerBatch: config.train.labelled_per_batch,
        startEpoch,
        startStep,
        compile: config.train.compile,
        draws: config.train.draws,
      },
      {
        interrupted: stopping,
        onStepMode: (m) => {
          progress.message(
            m.mode === 'graph'
              ? `train step (${m.batch}): one TensorFlow graph of ${m.kernels} kernels, traced and checked in ${m.seconds!.toFixed(2)} s`
              : `train step (${m.batch}): kernel by kernel: ${m.reason}`,
          );
          record.step_modes = [...(record.step_modes ?? []).filter((s) => s.batch !== m.batch), m];
        },
        onEpoch: async (epoch, step, metrics) => {
          // the best parameters first, then the epoch checkpoint that names them, then pruning:
          // whichever checkpoint a resume starts from, the best one it names exists
          if (select) {
            const value = metrics[select.metric];
            if (value === undefined) {
              const have = Object.keys(metrics).filter((k) => k.startsWith('val/'));
              throw new UserError(`'${select.metric}' is not among the metrics of epoch ${epoch}${have.length ? ` (${have.join(', ')})` : ' (no val/ metrics: is data.validation 0?)'}`, 'train.select.metric');
            }
            if (!best || (select.mode === 'max' ? value > best.value : value < best.value)) {
              best = { metric: select.metric, mode: select.mode, epoch, value };
              saveCheckpoint(store.bestDir(epoch), epoch, step, modelState);
            }
          }
          const now = Date.now(); // one timestamp for every tracker, and in the checkpoint
          saveCheckpoint(store.checkpointDir(epoch), epoch, step, allState, { ...(best ? { selected: best } : {}), metrics: { step, timestamp: now, epoch, ...metrics } });
          await faultPoint('checkpoint', epoch, stopping);
          store.pruneCheckpoints(config.train.checkpoint_keep);
          if (best) store.pruneBest(best.epoch);
          record.selected = best ?? undefined;
          record.epochs_completed = epoch;
          record.global_step = step;
          record.metrics = { ...record.metrics, ...metrics };
          await each('log metrics', (t) => t.logMetrics({ epoch, ...metrics }, step, now));
          store.writeRecord(record);
          o.onEpoch?.(epoch, metrics, tf);
        },
      },
      loopProgress,
    );
  } catch (e: any) {
    const msg = e instanceof UserError ? e.line() : `internal error: ${e?.message ?? e}`;
    await finish('FAILED', msg, {});
    throw e;
  }
  if (end.status === 'interrupted') return finish('KILLED', `interrupted in epoch ${end.epochs + 1}; resume with: elbo run --resume ${store.dir}`, {});
  if (end.status === 'diverged') return finish('FAILED', end.message, {});

  // evaluation on the test split: the best epoch's parameters under train.select, else the last epoch's
  const testMetrics: Record<string, number> = {};
  try {
    if (select) {
      if (!best) throw new UserError('train.select: no epoch was selected', 'train.select');
      const dir = store.bestDir(best.epoch);
      if (!fs.existsSync(path.join(dir, 'manifest.json'))) throw new UserError(`the best checkpoint (epoch ${best.epoch}) is missing`, dir);
      loadCheckpoint(tf, dir, modelState);
      record.evaluated_on = { checkpoint: 'best', epoch: best.epoch };
      progress.message(`evaluating the best checkpoint: epoch ${best.epoch} of ${record.epochs_completed} (${best.metric} ${best.value.toFixed(4)}, ${best.mode})`);
    } else record.evaluated_on = { checkpoint: 'last', epoch: record.epochs_completed };
    const ended = await evaluateRun(
      { model, evaluators, weights },
      {
        tf,
        data,
        rng,
        registry,
        config,
        modelTerms: modelTerms(config, registry),
        compile: config.train.compile,
        artifact: (n) => store.artifact(n),
        log: (m) => progress.message(m),
        warn,
        stopping: async () => {
          // let a signal that arrived while an evaluator computed reach its handler
          await new Promise((r) => setImmediate(r));
          return stopping();
        },
        faultPoint: (index) => faultPoint('eval', index, stopping),
      },
      testMetrics,
    );
    if (ended.interrupted) return finish('KILLED', `interrupted during evaluation; resume with: elbo run --resume ${store.dir}`, testMetrics);
    const now = Date.now();
    await each('log metrics', (t) => t.logMetrics(testMetrics, record.global_step, now));
    for (const f of fs.readdirSync(path.join(store.dir, 'artifacts'))) {
      await each('upload artifacts', (t) => t.logArtifact(store.artifact(f), f));
    }
  } catch (e: any) {
    await finish('FAILED', e instanceof UserError ? e.line() : `internal error: ${e?.message ?? e}`, testMetrics);
    throw e;
  }
  return finish('FINISHED', null, testMetrics);
}

/** What a run is made of once built: the model, its optimizer, its loss weights and its evaluators. */
export interface RunParts {
  model: Model;
  optimizer: Optimizer;
  /** The weights the model declares, by name, as schedules (a number is a constant one). */
  weights: Record<string, Schedule>;
  evaluators: { name: string; index: number; ev: Evaluator }[];
}

/**
 * Step 1 of a run, build: the model (on `data`), its optimizer, the loss-weight schedules
 * of the weights its plugin declares (from `config.loss`, else the declared default) and
 * the evaluators, each from its own stream of the run seed. The benchmark builds its
 * workloads with it too.
 */
export async function buildRun(
  config: Pick<ExperimentConfig, 'model' | 'loss' | 'eval'> & { train: Pick<ExperimentConfig['train'], 'optimizer'> },
  data: DataSet,
  ctx: PluginContext & { runs?: NestedRuns },
): Promise<RunParts> {
  const { registry, rng } = ctx;
  const model = await registry.create('model', config.model, { ...ctx, rng: rng.fork('init'), data });
  const optimizer = registry.create('optimizer', config.train.optimizer, { ...ctx, params: model.params });
  const declared = registry.get('model', config.model.kind).weights;
  const weights = Object.fromEntries(
    weightNames(registry.get('model', config.model.kind)).map((n) => [n, weightSchedule(config.loss[n] ?? declared?.[n]?.default ?? STANDARD_WEIGHTS[n as StandardWeight].default, registry, ctx)]),
  );
  const evaluators = config.eval.map((e, i) => ({ name: e.kind, index: i, ev: registry.create('evaluator', e, ctx) }));
  return { model, optimizer, weights, evaluators };
}

/**
 * Step 3 of a run, evaluate: every evaluator in turn on the test split with its own stream
 * of the run seed (`rng.fork('eval-<i>-<name>')`), the model's weights at 1 for those that
 * compute its terms. Stops between evaluators when `stopping()` says so (the metrics so far
 * are returned with `interrupted`). Warns when an evaluator writes metrics it does not declare.
 */
export async function evaluateRun(
  parts: Pick<RunParts, 'model' | 'evaluators' | 'weights'>,
  o: { tf: typeof tfc; data: DataSet; rng: Rng; registry: Registry; config: Pick<ExperimentConfig, 'eval'>; modelTerms: string[] | null; compile?: CompileMode; artifact(name: string): string; log(message: string): void; warn(message: string): void; stopping(): boolean | Promise<boolean>; faultPoint?(index: number): Promise<void> },
  /** Filled as the evaluators finish (a failing evaluator leaves the earlier ones' metrics here). */
  metrics: Record<string, number> = {},
): Promise<{ metrics: Record<string, number>; interrupted: boolean }> {
  const unit = unitWeights(Object.keys(parts.weights));
  for (const { name, index, ev } of parts.evaluators) {
    await o.faultPoint?.(index);
    if (await o.stopping()) return { metrics, interrupted: true };
    const t0 = Date.now();
    const out = await ev.run({ tf: o.tf, model: parts.model, data: o.data, rng: o.rng.fork(`eval-${index}-${name}`), compile: o.compile, artifact: o.artifact, log: o.log, unitWeights: unit });
    for (const [k, v] of Object.entries(out)) metrics[`test/${k}`] = v;
    // a plugin whose declared metrics miss what it wrote: published entries cannot be checked for those
    const names = o.registry.get('evaluator', name).metrics?.(o.config.eval[index], { modelTerms: o.modelTerms });
    const extraNames = names ? Object.keys(out).filter((k) => !names.includes(k)) : [];
    if (extraNames.length) o.warn(`evaluator ${name} wrote metrics it does not declare in metrics(): ${extraNames.join(', ')}`);
    o.log(`eval ${name}: ${Object.entries(out).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', ') || 'done'} (${((Date.now() - t0) / 1000).toFixed(1)}s)`);
  }
  // stopped during the last evaluator: the run did not finish (its test metrics are partial)
  return { metrics, interrupted: await o.stopping() };
}

/**
 * The run store this run writes to (the resumed run's, --runs-dir, else the local tracker's
 * dir) and a way to start another run in it with this run's backend, trackers and
 * interruption: what a model built on another run uses to train or resume that run first.
 */
function nestedRuns(o: RunOptions, loaded: LoadedConfig, config: LoadedConfig['config'], registry: Registry, backend: string, progress: Progress): NestedRuns {
  const local = config.tracking.find((t) => t.kind === 'local');
  const dir = o.resume ? path.dirname(path.dirname(path.resolve(o.resume))) : path.resolve(o.runsDir ?? (local ? withOptionDefaults(localTracker, local).dir : 'runs'));
  const common = { runsDir: dir, backend, progress: o.progress, registry, trackingUri: o.trackingUri, shouldStop: o.shouldStop };
  return {
    dir,
    config,
    run: (n) =>
      'resume' in n
        ? runExperiment({ ...common, resume: n.resume })
        : runExperiment({ ...common, config: `${loaded.file}#${n.label}`, text: n.text, baseDir: loaded.baseDir }),
    log: (m) => progress.message(m),
  };
}

/** The class distribution, printed before training (a 90%-one-class set should be noticed). */
function describeClasses(data: DataSet): string[] {
  if (!data.train.y || !data.classes) return [];
  const fmt = (h: number[]) => {
    const total = h.reduce((a, b) => a + b, 0);
    return h.map((c, i) => `${i}:${c} (${((100 * c) / Math.max(total, 1)).toFixed(1)}%)`).join(' ');
  };
  const lines = [`classes in train: ${fmt(classHistogram(data.train.y, data.classes))}`];
  if (data.labelled) lines.push(`labelled subset (${data.labelled.length}): ${fmt(classHistogram(data.train.y, data.classes, data.labelled))}`);
  return lines;
}

/**
 * The backends every plugin of the config can train on: plugins that declare
 * `backends` (e.g. conv: tensorflow, cpu) narrow what `auto` may pick, and a named
 * backend outside them is refused with the reason.
 */
function backendConstraint(config: unknown, registry: Registry): BackendConstraint | undefined {
  let allowed: string[] | null = null;
  const why: string[] = [];
  const visit = (v: unknown) => {
    if (Array.isArray(v)) return v.forEach(visit);
    if (!v || typeof v !== 'object') return;
    const kind = (v as any).kind;
    if (typeof kind === 'string') {
      for (const k of PLUGIN_KINDS) {
        const p = registry.has(k, kind) ? registry.get(k, kind) : null;
        if (p?.backends) {
          allowed = (allowed ?? p.backends).filter((b: string) => p.backends!.includes(b));
          why.push(`${k} '${kind}' trains only on ${p.backends.join(', ')}`);
        }
      }
    }
    Object.values(v).forEach(visit);
  };
  visit(config);
  return allowed ? { backends: allowed, reason: [...new Set(why)].join('; ') } : undefined;
}
