import * as path from 'path';
import { loadConfig, LoadedConfig } from '../config/load';
import { selectBackend, BackendConstraint, BackendInfo } from '../runtime/backend';
import type { DeviceRequest } from '../runtime/device';
import { withOptionDefaults } from '../registry/define';
import { UserError } from '../errors';
import { evaluationPhase } from '../nn/network';
import { weightSchedule, evaluationWeights } from '../schedules/schedule';
import { STANDARD_WEIGHTS, weightNames, type StandardWeight } from '../registry/weights';
import { localTrackerPlugin } from '../track/local';
import type { Progress } from '../track/progress';
import { openResumedRun, checkEpochsPlanned } from './resume';
import type { ActiveRun } from './interrupt';
import type { RunOptions } from './options';
import {
  PLUGIN_KINDS,
  type PluginContext,
  type NestedRuns,
  type DataSet,
  type Model,
  type Optimizer,
  type Schedule,
  type TrainProgress,
  type Evaluator,
  type RunRecord,
  type ExperimentConfig,
  type RunResult,
  type PluginRegistry,
} from '../contracts';

/**
 * Step 1 of a run, build: the config (a file with --set and --seed, or a resumed run's
 * recorded one), the backend, the data set, then the model, optimizer, loss-weight
 * schedules and evaluators, each plugin through the registry with its own stream of the
 * run seed.
 */

/**
 * The config to run: the file with its overrides, or the resumed run's (its directory locked
 * first), with --set train.epochs=N when it is trained on (`epochs`: the change).
 */
export function loadRunConfig(
  o: RunOptions,
  registry: PluginRegistry,
  run: ActiveRun,
): { loaded: LoadedConfig; resumeRecord?: RunRecord; epochs?: { from: number; to: number; sha256: string } } {
  if (o.resume) {
    const record = openResumedRun(o.resume, o, run);
    const file = path.join(o.resume, 'config.yaml');
    const loaded = loadConfig(file, o.overrides ?? [], registry, { baseDir: record.config_dir });
    if (!o.overrides?.length) return { loaded, resumeRecord: record };
    const epochs = { ...checkEpochsPlanned(record, loaded.config.train.epochs), sha256: loaded.sha256 };
    return { loaded, resumeRecord: record, epochs };
  }
  if (!o.config) throw new UserError('give a config file (e.g. configs/quickstart.yaml) or --resume RUN_DIR', 'elbo run');
  const overrides = [...(o.overrides ?? [])];
  if (o.seed !== undefined) overrides.push(`seed=${o.seed}`);
  return { loaded: loadConfig(o.config, overrides, registry, { baseDir: o.baseDir, text: o.text }) };
}

/**
 * Where the run executes: --backend, else the backend a resumed run ran on (so its numbers
 * stay comparable), else the config's `backend`, narrowed to what every plugin trains on.
 * It is not written into the config, so the config (and its hash) stays what was asked.
 * The device likewise: --device, else a resumed run's GPU when it trained on one, else the
 * config's `device` (absent: auto).
 */
export function selectRunBackend(
  o: Pick<RunOptions, 'backend' | 'device'>,
  config: ExperimentConfig,
  registry: PluginRegistry,
  resumeRecord?: RunRecord,
): Promise<BackendInfo> {
  const requested = o.backend ?? resumeRecord?.backend.name ?? config.backend;
  const resumedOnGpu = resumeRecord?.backend.device?.startsWith('gpu') ? 'gpu' : undefined;
  const device = o.device ?? resumedOnGpu ?? config.device ?? 'auto';
  const deviceWhere =
    o.device !== undefined
      ? `--device ${o.device}`
      : resumedOnGpu
        ? `--resume (the run trained on ${resumeRecord!.backend.device}; --device cpu continues it on the CPU)`
        : `config 'device: ${device}'`;
  return selectBackend(requested, o.backend ? '--backend' : 'backend', backendConstraint(config, registry), {
    device: device as DeviceRequest,
    where: deviceWhere,
  });
}

/** The run's data set, from its own stream of the run seed (`rng.fork('data')`). */
export async function buildData(config: Pick<ExperimentConfig, 'data'>, ctx: PluginContext): Promise<DataSet> {
  return ctx.registry.create('dataset', config.data, { ...ctx, rng: ctx.rng.fork('data') });
}

/** What a run is made of once built: the model, its optimizer, its loss weights and its evaluators. */
export interface RunParts {
  model: Model;
  optimizer: Optimizer;
  /** The weights the model declares, by name, as schedules (a number is a constant one). */
  weights: Record<string, Schedule>;
  /** The weights evaluations use at a point of training: multipliers at 1, hyper-parameters at their value (schedules/schedule.ts). */
  evaluationWeights: (at: TrainProgress) => Record<string, number>;
  evaluators: { name: string; index: number; ev: Evaluator }[];
}

/**
 * The model (on `data`), its optimizer, the loss-weight schedules of the weights its plugin
 * declares (from `config.loss`, else the declared default) and the evaluators, each from
 * its own stream of the run seed. The benchmark builds its workloads with it too.
 */
export async function buildRun(
  config: Pick<ExperimentConfig, 'model' | 'loss' | 'eval'> & { train: Pick<ExperimentConfig['train'], 'optimizer'> },
  data: DataSet,
  ctx: PluginContext & { runs?: NestedRuns },
): Promise<RunParts> {
  const { registry, rng } = ctx;
  // the model's training/evaluation switch: its networks read it, the training step flips it
  const phase = evaluationPhase();
  const model = await registry.create('model', config.model, { ...ctx, rng: rng.fork('init'), data, phase });
  model.phase ??= phase;
  const optimizer = registry.create('optimizer', config.train.optimizer, { ...ctx, params: model.params });
  const declared = registry.get('model', config.model.kind).weights;
  const weights = Object.fromEntries(
    weightNames(registry.get('model', config.model.kind)).map((n) => [
      n,
      weightSchedule(config.loss[n] ?? declared?.[n]?.default ?? STANDARD_WEIGHTS[n as StandardWeight].default, registry, ctx),
    ]),
  );
  const evaluators = config.eval.map((e, i) => ({ name: e.kind, index: i, ev: registry.create('evaluator', e, ctx) }));
  return { model, optimizer, weights, evaluationWeights: evaluationWeights(declared, weights), evaluators };
}

/**
 * The run store this run writes to (the resumed run's, --runs-dir, else the local tracker's
 * dir) and a way to start another run in it with this run's backend, trackers and
 * interruption (`start` is runExperiment): what a model built on another run uses to train
 * or resume that run first.
 */
export function nestedRuns(
  o: RunOptions,
  loaded: LoadedConfig,
  registry: PluginRegistry,
  backend: string,
  progress: Progress,
  start: (o: RunOptions) => Promise<RunResult>,
): NestedRuns {
  const { config } = loaded;
  const local = config.tracking.find((t) => t.kind === 'local');
  const dir = o.resume
    ? path.dirname(path.dirname(path.resolve(o.resume)))
    : path.resolve(o.runsDir ?? (local ? withOptionDefaults(localTrackerPlugin, local).dir : 'runs'));
  const common = {
    runsDir: dir,
    backend,
    device: o.device ?? config.device,
    progress: o.progress,
    registry,
    trackingUri: o.trackingUri,
    shouldStop: o.shouldStop,
  };
  return {
    dir,
    config,
    run: (n) =>
      'resume' in n
        ? start({ ...common, resume: n.resume })
        : start({ ...common, config: `${loaded.file}#${n.label}`, text: n.text, baseDir: loaded.baseDir }),
    log: (m) => progress.message(m),
  };
}

/**
 * The backends every plugin of the config can train on: plugins that declare
 * `backends` (e.g. conv: tensorflow, cpu) narrow what `auto` may pick, and a named
 * backend outside them is refused with the reason.
 */
function backendConstraint(config: unknown, registry: PluginRegistry): BackendConstraint | undefined {
  let allowed: string[] | null = null;
  const why: string[] = [];
  const visit = (v: unknown) => {
    if (Array.isArray(v)) return v.forEach(visit);
    if (!v || typeof v !== 'object') return;
    const kind = (v as { kind?: unknown }).kind;
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
