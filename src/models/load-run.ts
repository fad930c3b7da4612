import * as fs from 'fs';
import * as path from 'path';
import type * as tfc from '@tensorflow/tfjs-core';
import { modelVariables } from './model';
import { evaluationPhase } from '../nn/network';
import { loadConfig } from '../config/load';
import { loadCheckpoint, CheckpointManifest } from '../track/checkpoint';
import { RunStore } from '../track/run-store';
import { Rng } from '../runtime/rng';
import { UserError } from '../errors';
import { type DataSet, type Model, type ExperimentConfig, RunRecord, type PluginRegistry } from '../contracts';

/**
 * A finished run named by a path (absolute, or relative to the current directory, then
 * to `baseDir`): a run directory, or a directory of runs (runs/<experiment>), which means
 * its latest FINISHED run (run ids sort by start time). A clear one-line error when there is
 * none or the run did not finish.
 */
export function openFinishedRun(
  spec: string,
  baseDir: string,
  where: string,
  hint = '',
): { runDir: string; store: RunStore; record: RunRecord } {
  const candidates = path.isAbsolute(spec) ? [spec] : [path.resolve(spec), path.resolve(baseDir, spec)];
  let runDir = candidates.find((c) => fs.existsSync(path.join(c, 'run.json')));
  if (!runDir) {
    // a directory of runs: its latest finished one
    for (const dir of candidates) {
      if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) continue;
      const runs = fs
        .readdirSync(dir)
        // run directories only (a run.json alone, e.g. another tool's, is not one)
        .filter((d) => ['run.json', 'config.yaml'].every((f) => fs.existsSync(path.join(dir, d, f))))
        .sort();
      if (!runs.length) continue;
      const finished = runs.filter((d) => RunStore.open(path.join(dir, d)).readRecord().status === 'FINISHED');
      if (!finished.length) throw new UserError(`none of the ${runs.length} runs in ${dir} has FINISHED${hint ? `; ${hint}` : ''}`, where);
      runDir = path.join(dir, finished[finished.length - 1]);
      break;
    }
  }
  if (!runDir)
    throw new UserError(
      `not a run directory nor a directory of runs (no run.json at ${[...new Set(candidates)].join(' or ')})${hint ? `; ${hint}` : ''}`,
      where,
    );
  const store = RunStore.open(runDir);
  const record = store.readRecord();
  if (record.status !== 'FINISHED') {
    throw new UserError(`run ${runDir} is ${record.status}, not FINISHED; finish it first (elbo run --resume ${runDir})`, where);
  }
  return { runDir, store, record };
}

/**
 * Load a run's last checkpoint into `vars` (names as the run saved them, e.g. model/encoder/...):
 * the parameters it was evaluated with (train.swa's average where it had begun).
 */
export function loadLastCheckpoint(store: RunStore, tf: typeof tfc, vars: Map<string, tfc.Variable>, where: string): CheckpointManifest {
  const last = store.checkpoints().at(-1);
  if (!last) throw new UserError(`run ${store.dir} has no checkpoint`, where);
  return loadCheckpoint(tf, last.dir, vars, { evaluated: true });
}

/**
 * The trained model of a finished run (`runDir` as openFinishedRun takes it, relative
 * paths against the current directory, then `baseDir`), rebuilt from its resolved config
 * and last checkpoint, on `data` (which must come from the data the run was trained on:
 * the same sha256). Used to compare against another run (G-VAE vs VAE augmentation grids)
 * and to judge with a separately trained classifier.
 */
export async function loadRunModel(
  runDir: string,
  tf: typeof tfc,
  registry: PluginRegistry,
  data: DataSet,
  where: string,
  opts: { baseDir?: string; hint?: string } = {},
): Promise<{ model: Model; config: ExperimentConfig; runDir: string }> {
  // every check the record allows comes first; the other run's config never loads plugins
  // the running config does not (reading a run to compare with must not run its code)
  const run = openFinishedRun(runDir, opts.baseDir ?? process.cwd(), where, opts.hint);
  checkData(run.record, data, where);
  const config = runConfig(run, registry, where);
  const model = await runModel(run, config, tf, registry, data, where, (store) => store.checkpoints().at(-1)?.dir);
  return { model, config, runDir: run.runDir };
}

/**
 * A finished run's resolved config, its data set (loaded again, which must hash as the run
 * recorded) and its trained model with the parameters its test metrics were measured on
 * (the best checkpoint under train.select, else the last): what `elbo export` reads.
 */
export async function loadFinishedRun(
  spec: string,
  tf: typeof tfc,
  registry: PluginRegistry,
  where: string,
): Promise<{ model: Model; config: ExperimentConfig; data: DataSet; runDir: string; record: RunRecord }> {
  const run = openFinishedRun(spec, process.cwd(), where);
  const config = runConfig(run, registry, where);
  const data: DataSet = await registry.create('dataset', config.data, {
    tf,
    registry,
    rng: new Rng(config.seed).fork('data'),
    baseDir: run.record.config_dir,
  });
  checkData(run.record, data, where);
  const evaluated = run.record.evaluated_on;
  const model = await runModel(run, config, tf, registry, data, where, (store) =>
    evaluated?.checkpoint === 'best' ? store.bestDir(evaluated.epoch) : store.checkpoints().at(-1)?.dir,
  );
  return { model, config, data, runDir: run.runDir, record: run.record };
}

type FinishedRun = ReturnType<typeof openFinishedRun>;

/** A clear error when `data` is not what the run was trained on (its recorded sha256). */
export function checkData(record: RunRecord, data: DataSet, where: string): void {
  if (record.data.sha256 && record.data.sha256 !== data.sha256) {
    throw new UserError(
      `run ${record.run_id} was trained on other data (${record.data.name}, sha256 ${record.data.sha256.slice(0, 12)}…, not ${data.sha256.slice(0, 12)}…)`,
      where,
    );
  }
}

/** The run's resolved config; it never loads plugins (reading a run must not run its code). */
function runConfig({ runDir, store, record }: FinishedRun, registry: PluginRegistry, where: string): ExperimentConfig {
  try {
    return loadConfig(store.file('config.yaml'), [], registry, { baseDir: record.config_dir, loadPlugins: false }).config;
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    throw new UserError(`cannot use run ${runDir}: ${e.line().split('\n')[0]}`, where);
  }
}

/** The run's model on `data`, its parameters from the checkpoint `checkpoint` picks. */
async function runModel(
  { runDir, store, record }: FinishedRun,
  config: ExperimentConfig,
  tf: typeof tfc,
  registry: PluginRegistry,
  data: DataSet,
  where: string,
  checkpoint: (store: RunStore) => string | undefined,
): Promise<Model> {
  // a model built on another run (m1m2's M1) finds it in the same run store; nothing is trained
  const runs = { dir: path.dirname(path.dirname(runDir)), config };
  const model = await registry.create('model', config.model, {
    tf,
    registry,
    rng: new Rng(config.seed).fork('init'),
    baseDir: record.config_dir,
    data,
    runs,
    phase: evaluationPhase(),
  });
  const dir = checkpoint(store);
  if (!dir || !fs.existsSync(path.join(dir, 'manifest.json')))
    throw new UserError(`run ${store.dir} has no checkpoint${dir ? ` at ${dir}` : ''}`, where);
  loadModelCheckpoint(tf, model, dir);
  return model;
}

/**
 * A checkpoint's model parameters (and buffers) into `model`, under the names a run saves
 * them (`model/<name>`): the parameters it was evaluated with (train.swa's average where it had
 * begun). Returns the model's variables by those names.
 */
export function loadModelCheckpoint(tf: typeof tfc, model: Model, dir: string): Map<string, tfc.Variable> {
  const vars = new Map<string, tfc.Variable>();
  for (const [k, v] of modelVariables(model)) vars.set(`model/${k}`, v);
  loadCheckpoint(tf, dir, vars, { evaluated: true });
  return vars;
}
